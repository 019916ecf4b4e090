import assert from "node:assert/strict";
import { diagonalFisher, fisherMerging } from "../../algorithms/fisher-merging/mod.ts";
import { averageStateDicts } from "../../algorithms/task-vectors/mod.ts";
import { F, manualSeed, memory, nn, randn, type Tensor, tensor } from "../../mod.ts";

const arr = async (t: Tensor) => Array.from(await t.data());

/** A bias-free linear classifier: logits = x W^T, W [C, D]. */
function linear(seed: number): nn.Linear {
  manualSeed(seed);
  return new nn.Linear(3, 4, { bias: false });
}

Deno.test("Fisher: the expected diagonal Fisher of a linear softmax model matches the formula", async () => {
  const m = linear(0);
  const x = randn([5, 3]);
  const got = await arr(diagonalFisher({ w: m.weight }, (xi) => m.forward(xi), x).w);
  // ∇_W log p_c = (e_c − p) x^T, so F[k, d] = mean_n Σ_c p_c (δ_ck − p_k)² x_d².
  const X = await arr(x), P = await arr(F.softmax(m.forward(x), -1));
  const want = new Array(12).fill(0);
  for (let n = 0; n < 5; n++) {
    for (let k = 0; k < 4; k++) {
      for (let d = 0; d < 3; d++) {
        let s = 0;
        for (let c = 0; c < 4; c++) s += P[n * 4 + c] * ((c === k ? 1 : 0) - P[n * 4 + k]) ** 2;
        want[k * 3 + d] += (s * X[n * 3 + d] ** 2) / 5;
      }
    }
  }
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5, `${i}: ${v} vs ${want[i]}`));
});

Deno.test("Fisher: 'predicted' squares the gradient at the model's own arg-max label", async () => {
  const m = linear(1);
  const x = randn([1, 3]);
  const got = await arr(
    diagonalFisher({ w: m.weight }, (xi) => m.forward(xi), x, { mode: "predicted" }).w,
  );
  const P = await arr(F.softmax(m.forward(x), -1)), X = await arr(x);
  const y = P.indexOf(Math.max(...P));
  const want = [0, 1, 2, 3].flatMap((k) => X.map((xd) => (((k === y ? 1 : 0) - P[k]) * xd) ** 2));
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5));
});

Deno.test("Fisher: sampled Fishers average to the expected one", async () => {
  const m = linear(2);
  const x = randn([1, 3]).expand([1500, 3]).contiguous();
  manualSeed(5);
  const s = await arr(
    diagonalFisher({ w: m.weight }, (xi) => m.forward(xi), x, { mode: "sampled" }).w,
  );
  const e = await arr(diagonalFisher({ w: m.weight }, (xi) => m.forward(xi), x.narrow(0, 0, 1)).w);
  const tot = (v: number[]) => v.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(tot(s) - tot(e)) < 0.15 * tot(e), `${tot(s)} vs ${tot(e)}`);
});

Deno.test("Fisher: computing it leaves no tensors behind and accumulates no .grad", () => {
  const m = linear(3);
  const x = randn([4, 3]);
  const before = memory().tensors;
  const f = diagonalFisher({ w: m.weight }, (xi) => m.forward(xi), x);
  assert.equal(memory().tensors, before + 1);
  assert.equal(m.weight.grad, null);
  f.w.dispose();
});

Deno.test("Fisher merging: equal Fishers give the λ-weighted average; a dominant Fisher wins", async () => {
  const a = { w: tensor([1, 2, 3], { dtype: "float32" }) },
    b = { w: tensor([3, 2, -1], { dtype: "float32" }) };
  const one = { w: tensor([1, 1, 1], { dtype: "float32" }) };
  const iso = await arr(fisherMerging([a, b], [one, one], { weights: [3, 1] }).w);
  assert.deepEqual(iso, await arr(averageStateDicts([a, b], [3, 1]).w));
  const big = { w: tensor([1e4, 1, 0], { dtype: "float32" }) };
  const m = await arr(fisherMerging([a, b], [big, one]).w);
  assert.ok(Math.abs(m[0] - 1) < 1e-3, "a's Fisher dominates entry 0");
  assert.ok(Math.abs(m[1] - 2) < 1e-6);
  assert.ok(Math.abs(m[2] - -1) < 1e-3, "entry 2: a has zero Fisher (floored), b wins");
  const zero = { w: tensor([0, 0, 0], { dtype: "float32" }) };
  const floored = await arr(fisherMerging([a, b], [zero, zero]).w); // floor: the average
  floored.forEach((v, i) => assert.ok(Math.abs(v - [2, 2, 1][i]) < 1e-6));
});

Deno.test("Fisher merging: keys without a Fisher are averaged, int buffers copied", async () => {
  const a = { w: tensor([1.5]), n: tensor([4], { dtype: "int32" }), v: tensor([0.5]) };
  const b = { w: tensor([2.5]), n: tensor([6], { dtype: "int32" }), v: tensor([1.5]) };
  const m = fisherMerging([a, b], [{ w: tensor([1.5]) }, { w: tensor([0.5]) }]);
  assert.deepEqual(await arr(m.n), [4]);
  assert.deepEqual(await arr(m.v), [1]);
  assert.ok(Math.abs((await arr(m.w))[0] - 1.75) < 1e-6); // (1.5·1.5 + 0.5·2.5) / 2
});

Deno.test("Fisher: bad inputs are clear errors", () => {
  const m = linear(4);
  m.weight.requiresGrad_(false);
  assert.throws(
    () => diagonalFisher({ w: m.weight }, (x) => m.forward(x), randn([2, 3])),
    /parameters must require grad: w/,
  );
  assert.throws(
    () =>
      diagonalFisher({ w: m.weight }, (x) => m.forward(x), randn([2, 3]), { mode: "x" as never }),
    /mode must be expected, sampled or predicted/,
  );
  const a = { w: randn([2]) };
  assert.throws(() => fisherMerging([a, a], [a]), /2 models, 1 Fishers and 2 weights/);
  assert.throws(() => fisherMerging([a, a], [a, a], { weights: [0, 0] }), /not all 0/);
  assert.throws(
    () => fisherMerging([a, a], [{ w: randn([3]) }, { w: randn([3]) }]),
    /Fisher w has shape \[3\]/,
  );
});
