import assert from "node:assert/strict";
import {
  F,
  keep,
  manualSeed,
  memory,
  noGrad,
  randn,
  scope,
  type Tensor,
  tensor,
} from "../../mod.ts";

Deno.test("memory: a 1,000-step MLP training loop in scope keeps memory() flat", async () => {
  manualSeed(0);
  const x = keep(randn([32, 8]));
  const y = keep(x.sum(1, { keepdim: true }).sin());
  const params: Tensor[] = [
    randn([16, 8]).mul(0.3),
    randn([16]).mul(0.1),
    randn([1, 16]).mul(0.3),
    randn([1]).mul(0.1),
  ].map((p) => keep(p.requiresGrad_()));
  const [w1, b1, w2, b2] = params;
  const losses: number[] = [];
  let baseline = memory();
  for (let step = 0; step < 1000; step++) {
    const loss = scope(() => {
      const out = F.linear(F.linear(x, w1, b1).relu(), w2, b2);
      const l = F.mseLoss(out, y);
      l.backward();
      noGrad(() => {
        for (const p of params) {
          p.assign(p.sub(p.grad!.mul(0.05)));
          p.grad!.dispose();
          p.grad = null;
        }
      });
      return l.detach();
    });
    // Metrics are read back every 100 steps, not every step.
    if (step % 100 === 0) losses.push((await loss.item()) as number);
    loss.dispose();
    if (step === 10) baseline = memory();
  }
  const end = memory();
  assert.equal(end.tensors, baseline.tensors, "live tensors grew during training");
  assert.equal(end.bytes, baseline.bytes, "live bytes grew during training");
  assert.ok(losses[losses.length - 1] < losses[0] * 0.5, `loss did not fall: ${losses}`);
  for (const t of [x, y, ...params]) t.dispose();
});

Deno.test("memory: scope frees intermediates but keeps returned tensors", async () => {
  const before = memory().tensors;
  const out = scope(() => {
    const a = tensor([1, 2, 3]);
    const b = a.mul(2).add(1);
    return { b, list: [b.sum()] };
  });
  assert.equal(memory().tensors, before + 2);
  assert.deepEqual(await out.b.toArray(), [3, 5, 7]);
  out.b.dispose();
  out.list[0].dispose();
  assert.equal(memory().tensors, before);
});

Deno.test("memory: nested scopes hand results to the enclosing scope", () => {
  const before = memory().tensors;
  scope(() => {
    const inner = scope(() => tensor([1.5]).exp());
    assert.ok(!inner.isDisposed);
    return undefined;
  });
  assert.equal(memory().tensors, before);
});

Deno.test("memory: `using` disposes at the end of the block", () => {
  const before = memory().tensors;
  {
    using t = tensor([1, 2]);
    assert.equal(memory().tensors, before + 1);
    assert.equal(t.numel, 2);
  }
  assert.equal(memory().tensors, before);
});

Deno.test("memory: a scope that throws still frees what it made", () => {
  const before = memory().tensors;
  assert.throws(() =>
    scope(() => {
      tensor([1, 2]).add(1);
      throw new Error("boom");
    }), /boom/);
  assert.equal(memory().tensors, before);
});

Deno.test("memory: reshape shares storage, bytes are freed with the last view", () => {
  const before = memory().bytes;
  const a = tensor([1, 2, 3, 4], { dtype: "float32" });
  const b = a.reshape([2, 2]);
  assert.equal(memory().bytes, before + 16);
  a.dispose();
  assert.equal(memory().bytes, before + 16, "the view still holds the buffer");
  b.dispose();
  assert.equal(memory().bytes, before);
});
