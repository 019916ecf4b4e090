import assert from "node:assert/strict";
import {
  addTaskVectors,
  applyTaskVector,
  averageStateDicts,
  checkCompatible,
  cloneStateDict,
  cosineSimilarity,
  disjointMean,
  disposeStateDict,
  electSign,
  flattenTaskVector,
  magnitudeMasks,
  rankMask,
  rankMasks,
  scaleTaskVector,
  type StateDict,
  sumTaskVectors,
  taskArithmetic,
  taskVector,
  tiesMerging,
  trimTaskVector,
  unflattenTaskVector,
} from "../../algorithms/task-vectors/mod.ts";
import { manualSeed, memory, nn, randn, scope, type Tensor, tensor } from "../../mod.ts";

/** A model with a float parameter set and an int buffer (BatchNorm's num_batches_tracked). */
function model(seed: number): nn.Sequential {
  manualSeed(seed);
  return new nn.Sequential(new nn.Linear(6, 8), new nn.BatchNorm1d(8), new nn.Linear(8, 3));
}

async function values(sd: Record<string, Tensor>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of Object.entries(sd)) {
    out[k] = Array.from(await t.data(), (v) => (v === 0 ? 0 : v)); // -0 -> 0
  }
  return out;
}

async function assertClose(a: Record<string, Tensor>, b: Record<string, Tensor>, tol = 1e-5) {
  assert.deepEqual(Object.keys(a), Object.keys(b));
  const [x, y] = [await values(a), await values(b)];
  for (const k of Object.keys(x)) {
    x[k].forEach((v, i) =>
      assert.ok(Math.abs(v - y[k][i]) <= tol, `${k}[${i}]: ${v} vs ${y[k][i]}`)
    );
  }
}

const tv1 = (v: number[]) => ({ w: tensor(v, { dtype: "float32" }) });

Deno.test("task vectors: θ_pre + τ(θ_pre, θ_ft) is θ_ft, and int buffers come from the base", async () => {
  const pre = model(0).stateDict(), ft = model(1).stateDict();
  ft["1.num_batches_tracked"].assign(tensor(7, { dtype: "int32" }));
  const tau = taskVector(pre, ft);
  assert.ok(!("1.num_batches_tracked" in tau), "int buffers are not part of τ");
  assert.ok(Object.values(tau).every((t) => !t.requiresGrad), "no graph is recorded");
  const back = applyTaskVector(pre, tau);
  assert.equal(back["1.num_batches_tracked"].dtype, "int32");
  assert.equal(await back["1.num_batches_tracked"].item(), 0); // the base's value
  delete back["1.num_batches_tracked"];
  const want = { ...ft };
  delete want["1.num_batches_tracked"];
  await assertClose(back, want);
});

Deno.test("task vectors: merging identical models returns the model", async () => {
  const pre = model(0).stateDict(), ft = model(1).stateDict();
  await assertClose(averageStateDicts([ft, ft, ft]), ft);
  const tau = taskVector(pre, ft);
  const ties = tiesMerging([tau, tau, tau], { density: 1 });
  await assertClose(applyTaskVector(pre, ties), applyTaskVector(pre, tau));
  await assertClose(
    applyTaskVector(pre, taskArithmetic([tau, tau], 0.5)),
    applyTaskVector(pre, tau),
  );
});

Deno.test("task vectors: task arithmetic with λ = 0 returns the base", async () => {
  const pre = model(0).stateDict();
  const taus = [1, 2, 3].map((s) => taskVector(pre, model(s).stateDict()));
  await assertClose(applyTaskVector(pre, taskArithmetic(taus, 0)), pre);
  await assertClose(applyTaskVector(pre, sumTaskVectors(taus), 0), pre);
});

Deno.test("task vectors: add, scale and weighted sum agree", async () => {
  const a = tv1([1, -2, 3]), b = tv1([0.5, 0.5, -1]);
  assert.deepEqual((await values(addTaskVectors(a, b))).w, [1.5, -1.5, 2]);
  assert.deepEqual((await values(scaleTaskVector(a, -1))).w, [-1, 2, -3]);
  assert.deepEqual((await values(sumTaskVectors([a, b], [2, 4]))).w, [4, -2, 2]);
  const c = (await cosineSimilarity(a, scaleTaskVector(a, 3)).item()) as number;
  assert.ok(Math.abs(c - 1) < 1e-6);
});

Deno.test("TIES: with full density and no sign conflicts it is the mean of the task vectors", async () => {
  manualSeed(3);
  const base = randn([4, 5]).abs();
  const taus = [1, 2, 3].map(() => ({
    w: base.mul(randn([4, 5]).abs()),
    b: randn([5]).abs().neg(),
  }));
  const mean = scaleTaskVector(sumTaskVectors(taus), 1 / 3);
  await assertClose(tiesMerging(taus, { density: 1 }), mean);
});

Deno.test("TIES: sign election picks the sign of the larger mass, not of the majority count", async () => {
  const taus = [tv1([3, -1, 0, -1]), tv1([-1, 2, 0, -1]), tv1([-1, -2, 0, -1])];
  // Entry 2 has no mass: it takes the sign of the whole model's majority (-1).
  assert.deepEqual((await values(electSign(taus))).w, [1, -1, -1, -1]);
  assert.deepEqual((await values(electSign(taus, { method: "count" }))).w, [-1, -1, -1, -1]);
  // The disjoint mean averages only the non-zero entries that agree with the elected sign.
  const merged = await values(disjointMean(taus, electSign(taus)));
  assert.deepEqual(merged.w, [3, -1.5, 0, -1]);
});

Deno.test("TIES: trimming keeps exactly round(k n) entries, ties included", async () => {
  const tv = { w: tensor(Array(10).fill(1), { dtype: "float32" }), v: tensor([[5, -4], [0.5, 3]]) };
  const perTensor = await values(trimTaskVector(tv, 0.3, { granularity: "tensor" }));
  assert.equal(perTensor.w.filter((x) => x !== 0).length, 3); // all tied: still exactly 3
  assert.deepEqual(perTensor.v, [5, 0, 0, 0]); // round(0.3 * 4) = 1
  const global = await values(trimTaskVector(tv, 0.2, { granularity: "model" }));
  assert.deepEqual(global.v, [5, -4, 0, 3]); // the 3 largest of all 14 entries
  assert.ok(global.w.every((x) => x === 0));
  manualSeed(0);
  const big = { a: randn([37, 11]), b: randn([101]) };
  for (const k of [0, 0.1, 0.2, 0.55, 1]) {
    const m = await values(magnitudeMasks(big, k, { granularity: "model" }));
    const kept = [...m.a, ...m.b].filter((x) => x).length;
    assert.equal(kept, Math.round(k * (37 * 11 + 101)), `density ${k}`);
    const t = await values(magnitudeMasks(big, k));
    assert.equal(t.a.filter((x) => x).length, Math.round(k * 37 * 11));
    assert.equal(t.b.filter((x) => x).length, Math.round(k * 101));
  }
});

Deno.test("task vectors: trimming keeps the largest magnitudes", async () => {
  manualSeed(1);
  const tv = { w: randn([200]) };
  const kept = await values(trimTaskVector(tv, 0.1, { granularity: "tensor" }));
  const all = Array.from(await tv.w.data()).map(Math.abs).sort((a, b) => b - a);
  const smallestKept = Math.min(...kept.w.filter((x) => x !== 0).map(Math.abs));
  assert.equal(smallestKept, all[19]);
});

Deno.test("task vectors: rank masks select a band of the descending order", async () => {
  const s = tensor([0.1, 0.9, 0.5, 0.7, 0.3]);
  assert.deepEqual(Array.from(await rankMask(s, 1, 3).data()), [0, 0, 1, 1, 0]);
  assert.equal(rankMask(s, 1, 3).dtype, "bool");
  assert.deepEqual(Array.from(await rankMask(s, 2, 2).data()), [0, 0, 0, 0, 0]);
  const m = await values(rankMasks({ s }, { from: 0.2, to: 0.8 }));
  assert.deepEqual(m.s, [0, 0, 1, 1, 1]);
  assert.throws(() => rankMask(s, 3, 2), /rankMask: need integers 0 <= from <= to <= 5/);
  assert.throws(() => rankMasks({ s }, { to: 1.5 }), /to must be in \[0, 1\], got 1.5/);
  assert.throws(
    () => rankMasks({ s }, { granularity: "layer" as never }),
    /granularity must be "tensor" or "model"/,
  );
});

Deno.test("task vectors: flatten and unflatten are inverses", async () => {
  manualSeed(2);
  const tv = { a: randn([3, 4]), b: randn([5]), c: randn([2, 1, 2]) };
  const flat = flattenTaskVector(tv);
  assert.deepEqual(flat.shape, [12 + 5 + 4]);
  await assertClose(unflattenTaskVector(flat, tv), tv, 0);
  assert.throws(() => unflattenTaskVector(randn([20]), tv), /expected a flat tensor of 21/);
});

Deno.test("task vectors: mismatched keys or shapes are clear errors", () => {
  const a: StateDict = { w: randn([2, 3]), b: randn([3]) };
  assert.throws(
    () => taskVector(a, { w: randn([2, 3]) }),
    /dict 1 does not match dict 0: missing key\(s\) b/,
  );
  assert.throws(
    () => taskVector(a, { ...a, extra: randn([1]) }),
    /unexpected key\(s\) extra/,
  );
  assert.throws(
    () => sumTaskVectors([a, { w: randn([3, 2]), b: randn([3]) }]),
    /key w is float32 \[2, 3\] in dict 0 but float32 \[3, 2\] in dict 1/,
  );
  assert.throws(
    () => applyTaskVector({ w: randn([2, 3]) }, a),
    /key b of the task vector is not in the base/,
  );
  assert.throws(() => checkCompatible("x", []), /x: expected at least one/);
  assert.throws(() => averageStateDicts([a, a], [1, -1]), /the weights sum to 0/);
  assert.throws(() => magnitudeMasks(a, 1.2), /density must be in \[0, 1\]/);
  assert.throws(
    () => electSign([a], { method: "vote" as never }),
    /method must be "mass" or "count"/,
  );
});

Deno.test("task vectors: a filter leaves keys (e.g. heads) out of τ, and they are copied back", async () => {
  const pre = model(0).stateDict(), ft = model(1).stateDict();
  const tau = taskVector(pre, ft, { filter: (k) => !k.startsWith("2.") });
  assert.ok(!("2.weight" in tau) && "0.weight" in tau);
  const merged = applyTaskVector(pre, tau);
  await assertClose({ w: merged["2.weight"] }, { w: pre["2.weight"] }, 0);
});

Deno.test("task vectors: operations free their intermediates", () => {
  const pre = model(0).stateDict(), ft = model(1).stateDict();
  const snap = cloneStateDict(ft);
  const before = memory().tensors;
  const merged = scope(() => {
    const taus = [taskVector(pre, ft), taskVector(pre, snap)];
    return applyTaskVector(pre, tiesMerging(taus));
  });
  assert.equal(memory().tensors, before + Object.keys(pre).length, "only the result survives");
  disposeStateDict(merged);
  const tau = taskVector(pre, ft);
  const n = Object.keys(tau).length, mid = memory().tensors;
  const keepOne = tiesMerging([tau, tau]);
  assert.equal(memory().tensors, mid + n, "only the result survives");
  disposeStateDict(keepOne, tau, snap);
  assert.equal(memory().tensors, before - Object.keys(snap).length);
});
