import assert from "node:assert/strict";
import {
  applyProbe,
  fitLinearProbe,
  gradientDescent,
  ICLTransformer,
  leastSquares,
  nearestNeighbours,
  predictors,
  prefixPrompts,
  promptTokens,
  r2Score,
  ridge,
  squaredPredictionDifference,
} from "../../algorithms/icl-learning-algorithm/mod.ts";
import { linalg, manualSeed, randn, tensor } from "../../mod.ts";

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
};

/** Noiseless prompts: w [B, d], X [B, k, d], y = X w. */
function prompts(B: number, k: number, d: number) {
  const w = randn([B, d]);
  const X = randn([B, k, d]);
  return { w, X, y: X.matmul(w.unsqueeze(-1)).squeeze(-1) };
}

Deno.test("icl: least squares recovers w exactly once k >= d (noiseless)", async () => {
  manualSeed(0);
  const { w, X, y } = prompts(5, 6, 4);
  close(await leastSquares(X, y).data(), await w.data(), 1e-3, "w_OLS");
});

Deno.test("icl: under-determined least squares is the minimum-norm interpolant", async () => {
  manualSeed(1);
  const { X, y } = prompts(3, 2, 5); // k = 2 < d = 5
  const w = leastSquares(X, y);
  close(await X.matmul(w.unsqueeze(-1)).squeeze(-1).data(), await y.data(), 1e-4, "X w = y");
  // Minimum norm <=> w lies in the row space of X: X^T (X X^T)^{-1} X w = w.
  const a = linalg.solve(X.matmul(X.mT), X.matmul(w.unsqueeze(-1))); // [3, 2, 1]
  close(await X.mT.matmul(a).squeeze(-1).data(), await w.data(), 1e-3, "projection");
});

Deno.test("icl: ridge shrinks towards 0 and tends to least squares as λ -> 0", async () => {
  manualSeed(2);
  const { X, y } = prompts(4, 10, 3);
  const ols = await leastSquares(X, y).data();
  close(await ridge(X, y, { lambda: 1e-4 }).data(), ols, 1e-3, "ridge(1e-4)");
  const n = async (t: ReturnType<typeof ridge>) => await t.norm().item() as number;
  assert.ok(await n(ridge(X, y, { lambda: 10 })) < await n(ridge(X, y, { lambda: 0.1 })));
  assert.throws(() => ridge(X, y, { lambda: 0 }), /lambda must be > 0/);
});

Deno.test("icl: one GD step from 0 is (η / n) X^T y; many small steps reach least squares", async () => {
  manualSeed(3);
  const { X, y } = prompts(2, 12, 3);
  const one = await gradientDescent(X, y, { lr: 0.5 }).data();
  const want = await X.mT.matmul(y.unsqueeze(-1)).squeeze(-1).mul(0.5 / 12).data();
  close(one, want, 1e-5, "w_1");
  const many = await gradientDescent(X, y, { steps: 300, lr: 0.5 }).data();
  close(many, await leastSquares(X, y).data(), 1e-3, "w_300");
  assert.throws(() => gradientDescent(X, y, { steps: 0 }), /steps must be a positive integer/);
});

Deno.test("icl: masked examples are ignored by every algorithm", async () => {
  manualSeed(4);
  const { X, y } = prompts(3, 8, 3);
  const mask = tensor([1, 1, 1, 1, 1, 0, 0, 0]).unsqueeze(0).expand([3, 8]);
  const [Xs, ys] = [X.narrow(1, 0, 5), y.narrow(1, 0, 5)];
  // Garbage in the masked rows must not matter.
  const Xg = X.add(randn([3, 8, 3]).mul(mask.rsub(1).unsqueeze(-1)).mul(100));
  close(
    await leastSquares(Xg, y, mask).data(),
    await leastSquares(Xs, ys).data(),
    1e-3,
    "OLS",
  );
  close(
    await ridge(Xg, y, { lambda: 0.5, mask }).data(),
    await ridge(Xs, ys, { lambda: 0.5 }).data(),
    1e-3,
    "ridge",
  );
  close(
    await gradientDescent(Xg, y, { steps: 2, lr: 0.3, mask }).data(),
    await gradientDescent(Xs, ys, { steps: 2, lr: 0.3 }).data(),
    1e-4,
    "GD",
  );
  const xq = randn([3, 3]);
  close(
    await nearestNeighbours(Xg, y, xq, { k: 2, mask }).data(),
    await nearestNeighbours(Xs, ys, xq, { k: 2 }).data(),
    1e-5,
    "kNN",
  );
});

Deno.test("icl: k-NN averages the targets of the k nearest examples", async () => {
  const X = tensor([[[0], [1], [5], [6]]]); // [1, 4, 1]
  const y = tensor([[10, 20, 30, 40]]);
  assert.deepEqual([...await nearestNeighbours(X, y, tensor([[0.2]]), { k: 2 }).data()], [15]);
  assert.deepEqual([...await nearestNeighbours(X, y, tensor([[5.4]]), { k: 1 }).data()], [30]);
  // With no example available the prediction is 0.
  const none = nearestNeighbours(X, y, tensor([[0]]), { mask: tensor([[0, 0, 0, 0]]) });
  assert.deepEqual([...await none.data()], [0]);
});

Deno.test("icl: prefixPrompts lets query i see exactly the examples before it", async () => {
  manualSeed(5);
  const { X, y } = prompts(2, 4, 3);
  const p = prefixPrompts(X, y);
  assert.deepEqual(p.X.shape, [8, 4, 3]);
  assert.deepEqual(p.mask.shape, [8, 4]);
  assert.deepEqual([...await p.mask.data()].slice(0, 16), [
    ...[0, 0, 0, 0],
    ...[1, 0, 0, 0],
    ...[1, 1, 0, 0],
    ...[1, 1, 1, 0],
  ]);
  close(await p.target.data(), await y.reshape([8]).data(), 0, "targets");
  // Position 0 has no example: every linear learner predicts 0 there.
  const ols = await predictors.leastSquares()(p).data();
  assert.equal(ols[0], 0);
  assert.equal(ols[4], 0);
  // Once i >= d, least squares predicts y_i exactly (noiseless).
  const tg = await p.target.data();
  close([ols[3], ols[7]], [tg[3], tg[7]], 1e-3, "OLS at i = d");
});

Deno.test("icl: SPD is the per-position mean squared difference", async () => {
  const a = tensor([[1, 2], [3, 4]]), b = tensor([[1, 0], [1, 4]]);
  assert.deepEqual([...await squaredPredictionDifference(a, b).data()], [2, 2]);
  assert.throws(() => squaredPredictionDifference(a, tensor([1, 2])), /shapes differ/);
});

Deno.test("icl: tokens and the transformer's shapes; predictions are causal", async () => {
  manualSeed(6);
  const { X, y } = prompts(2, 5, 3);
  const tok = promptTokens(X, y);
  assert.deepEqual(tok.shape, [2, 10, 5]);
  const t = await tok.data(), xs = await X.data(), ys = await y.data();
  // Token 2i = (x_i, 0, 0); token 2i + 1 = (x_i, y_i, 1).
  close(t.slice(2 * 5, 2 * 5 + 5), [...xs.slice(3, 6), 0, 0], 0, "x-token 1");
  close(t.slice(3 * 5, 3 * 5 + 5), [...xs.slice(3, 6), ys[1], 1], 0, "y-token 1");

  const m = new ICLTransformer({ d: 3, k: 5, dModel: 16, layers: 2, heads: 2 });
  const { yHat, hidden } = m.forward(tok);
  assert.deepEqual(yHat.shape, [2, 5]);
  assert.equal(hidden.length, 3);
  assert.deepEqual(hidden[2].shape, [2, 10, 16]);
  // The prediction of y_i may not depend on y_i itself or anything after x_i.
  const y2 = y.add(tensor([[0, 0, 5, 5, 5], [0, 0, 5, 5, 5]]));
  const a = await yHat.data(), b = await m.forward(promptTokens(X, y2)).yHat.data();
  close([a[0], a[1], a[2], a[5], a[6], a[7]], [b[0], b[1], b[2], b[5], b[6], b[7]], 1e-5, "causal");
  assert.ok(Math.abs(a[3] - b[3]) > 1e-6, "y_2 reaches the prediction of y_3");
  assert.throws(() => new ICLTransformer({ d: 3, k: 5, dModel: 10, heads: 4 }), /divisible/);
  assert.throws(() => m.forward(randn([1, 12, 5])), /expected tokens/);
});

Deno.test("icl: gradients reach every transformer parameter", () => {
  manualSeed(7);
  const { X, y } = prompts(2, 3, 2);
  const m = new ICLTransformer({ d: 2, k: 3, dModel: 8, layers: 1, heads: 2 });
  m.forward(promptTokens(X, y)).yHat.sub(y).square().mean().backward();
  for (const [name, p] of m.namedParameters()) assert.ok(p.grad, `no gradient for ${name}`);
});

Deno.test("icl: a linear probe recovers a linear code (R^2 ~ 1) and not noise (R^2 ~ 0)", async () => {
  manualSeed(8);
  const H = randn([400, 6]), A = randn([6, 2]);
  const T = H.matmul(A).add(1);
  const [tr, te] = [H.narrow(0, 0, 300), H.narrow(0, 300, 100)];
  const probe = fitLinearProbe(tr, T.narrow(0, 0, 300), { lambda: 1e-6 });
  assert.deepEqual(probe.W.shape, [7, 2]);
  const r2 = await r2Score(applyProbe(probe, te), T.narrow(0, 300, 100)).item() as number;
  assert.ok(r2 > 0.999, `R^2 ${r2}`);
  const noise = randn([400, 2]);
  const p2 = fitLinearProbe(tr, noise.narrow(0, 0, 300));
  const r2n = await r2Score(applyProbe(p2, te), noise.narrow(0, 300, 100)).item() as number;
  assert.ok(r2n < 0.1, `R^2 on noise ${r2n}`);
});
