/**
 * Lazy elementwise fusion on the WebGPU backend (core/backends/webgpu/fusion.ts): chains run
 * as one kernel with the eager kernels' results, pending buffers keep their inputs alive and
 * never run when freed unread, expressions too large for one kernel are split, and a training
 * loop (whose optimizer state feeds itself step after step) keeps GPU memory flat. Runs in the
 * webgpu pass (PAPERLAB_BACKEND=webgpu); skipped on other backends.
 */
import assert from "node:assert/strict";
import "./_helpers.ts";
import { getBackend } from "../../core/backend.ts";
import type { WebGpuBackend } from "../../core/backends/webgpu/mod.ts";
import { F, keep, manualSeed, nn, optim, randn, scope, type Tensor, tensor } from "../../mod.ts";

const be = getBackend() as WebGpuBackend;
const ignore = be.name !== "webgpu";
const dispatches = () => be.poolStats().dispatches;

/** Runs f with fusion on and off: both results' data and the dispatches each queued. */
async function fusedAndEager(f: () => Tensor) {
  const out = [];
  for (const on of [true, false]) {
    be.fusion.enabled = on;
    try {
      const d0 = dispatches();
      const y = scope(f);
      const data = await y.data() as Float32Array; // (a pending result runs here)
      out.push({ data, n: dispatches() - d0 });
      y.dispose();
    } finally {
      be.fusion.enabled = true;
    }
  }
  return { fused: out[0], eager: out[1] };
}

/** Equal within float32 rounding (a compiler may contract a * b + c into an fma), NaN = NaN. */
function close(what: string, a: ArrayLike<number>, b: ArrayLike<number>) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x === y || (x !== x && y !== y)) continue;
    if (!(Math.abs(x - y) <= 1e-6 + 1e-6 * Math.abs(y))) {
      assert.fail(`${what}: [${i}] fused ${x} vs eager ${y}`);
    }
  }
}

Deno.test({
  name: "fusion: an elementwise chain runs as one kernel per shared intermediate, as eager",
  ignore,
  fn: async () => {
    manualSeed(1);
    const x = keep(randn([64, 300]));
    // gelu written out, z (1 + erf(z / sqrt 2)) / 2, reads z = 2x + 1 twice, so z is computed
    // once and the rest reads it: 2 kernels where the eager backend queues one per op (and one
    // per scalar constant).
    const gelu = (z: Tensor) => z.mul(0.5).mul(z.mul(Math.SQRT1_2).erf().add(1));
    const r = await fusedAndEager(() => gelu(x.mul(2).add(1)).mul(x));
    assert.equal(r.fused.n, 2);
    assert.ok(r.eager.n >= 10, `eager queued ${r.eager.n} dispatches`);
    close("gelu chain", r.fused.data, r.eager.data);
    // gelu as one op reads z once: the whole chain is one kernel.
    const r1 = await fusedAndEager(() => x.mul(2).add(1).gelu().mul(x));
    assert.equal(r1.fused.n, 1);
    close("gelu op chain", r1.fused.data, r.eager.data);
    x.dispose();
  },
});

Deno.test({
  name: "fusion: broadcast operands, where, comparisons, casts and NaN rules match eager",
  ignore,
  fn: async () => {
    manualSeed(2);
    const vals = [NaN, Infinity, -Infinity, 0, -0, 0.5, -2.5, 1, 3, -1];
    const x = keep(
      tensor(Array.from({ length: 4 * 5 * 6 }, (_, i) => vals[i % 10] * (1 + i / 7)))
        .reshape([4, 5, 6]),
    );
    const bias = keep(randn([6])), col = keep(randn([4, 1, 1]));
    const r = await fusedAndEager(() => {
      const pos = x.gt(0);
      const a = x.mul(bias).sqrt().add(x.isnan().float());
      const b = x.exp().sub(col).maximum(bias).remainder(1.5).pow(2);
      return a.where(pos, b).add(pos.logicalNot().float().mul(x.sign()));
    });
    assert.ok(r.fused.n < r.eager.n, `fused ${r.fused.n} vs eager ${r.eager.n} dispatches`);
    close("mixed expression", r.fused.data, r.eager.data);
    for (const t of [x, bias, col]) t.dispose();
  },
});

Deno.test({
  name: "fusion: a pending result outlives its freed inputs; one freed unread never runs",
  ignore,
  fn: async () => {
    const a = randn([1000]);
    const host = await a.data() as Float32Array;
    const b = a.mul(3).add(1);
    a.dispose(); // b's expression still reads a's buffer
    const bd = await b.data();
    for (let i = 0; i < host.length; i++) {
      assert.equal(bd[i], Math.fround(Math.fround(host[i] * 3) + 1), `[${i}]`);
    }
    b.dispose();

    const c = randn([1000]);
    await c.data();
    const d0 = dispatches();
    const e = c.exp().mul(2);
    e.dispose();
    c.dispose();
    assert.equal(dispatches(), d0, "a freed pending result was computed");
  },
});

Deno.test({
  name: "fusion: an operand given twice is computed once; a second consumer reads it",
  ignore,
  fn: async () => {
    const x = keep(randn([257]));
    const r = await fusedAndEager(() => {
      const y = x.exp();
      return y.mul(y).add(y.sin()); // y inlined in mul (both operands), read by sin's chain
    });
    assert.equal(r.fused.n, 2);
    close("shared operand", r.fused.data, r.eager.data);
    x.dispose();
  },
});

Deno.test({
  name: "fusion: expressions beyond one kernel's ops and bindings are split, as eager",
  ignore,
  fn: async () => {
    manualSeed(3);
    const x = keep(randn([33, 17]));
    // 150 ops in a row: more than one kernel takes.
    const long = await fusedAndEager(() => {
      let y = x;
      for (let i = 0; i < 75; i++) y = y.mul(0.999).add(Math.sin(i) * 0.01);
      return y;
    });
    assert.ok(long.fused.n > 1 && long.fused.n < long.eager.n);
    close("150-op chain", long.fused.data, long.eager.data);
    // 20 distinct inputs, strided and broadcast: more than one kernel's bindings.
    const xs = Array.from({ length: 20 }, (_, i) => keep(randn(i % 2 ? [17] : [17, 33])));
    const wide = await fusedAndEager(() =>
      xs.reduce<Tensor>((s, t, i) => s.add(i % 2 ? t.mul(i) : t.transpose(0, 1).tanh()), x)
    );
    close("20 inputs", wide.fused.data, wide.eager.data);
    for (const t of [x, ...xs]) t.dispose();
  },
});

Deno.test({
  name: "fusion: a 1,000-step AdamW training loop keeps GPU buffers and live bytes flat",
  ignore,
  fn: async () => {
    manualSeed(4);
    const model = new nn.Sequential(new nn.Linear(8, 16), new nn.Tanh(), new nn.Linear(16, 1));
    const opt = new optim.AdamW(model.parameters(), { lr: 1e-2 });
    const x = keep(randn([32, 8]));
    const y = keep(x.sum(1, { keepdim: true }).sin());
    let base = be.poolStats();
    const losses: number[] = [];
    for (let step = 0; step < 1000; step++) {
      const loss = scope(() => {
        opt.zeroGrad();
        const l = F.mseLoss(model.forward(x), y);
        l.backward();
        opt.step();
        return l.detach();
      });
      if (step % 100 === 0) losses.push(await loss.item() as number);
      loss.dispose();
      if (step === 10) base = be.poolStats();
    }
    const end = be.poolStats();
    assert.equal(end.created, base.created, "GPU buffers were created after step 10");
    assert.ok(end.pooledBytes <= base.pooledBytes * 1.01 + 4096, "the pool grew");
    assert.ok(losses[9] < losses[0] * 0.2, `loss did not fall: ${losses}`);
    for (const t of [x, y]) t.dispose();
  },
});
