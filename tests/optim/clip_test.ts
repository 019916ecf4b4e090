/** clipGradNorm / clipGradValue: torch.nn.utils' formulas, in place, with no readback. */
import assert from "node:assert/strict";
import { keep, memory, scope, type Tensor, tensor } from "../../mod.ts";
import * as optim from "../../core/optim/mod.ts";
import { assertCloseArr } from "../nn/_helpers.ts";

/** Two parameters whose gradients are exactly g1 and g2 (loss = sum(p1 g1) + sum(p2 g2)). */
function withGrads(g1: number[], g2: number[]): Tensor[] {
  const ps = [g1, g2].map((g) => keep(tensor(g.map(() => 0), { requiresGrad: true })));
  scope(() => ps[0].mul(tensor(g1)).sum().add(ps[1].mul(tensor(g2)).sum()).backward());
  return ps;
}

Deno.test("clipGradNorm: scales gradients to maxNorm and returns the total 2-norm", async () => {
  const ps = withGrads([3, 4], [0, 12]); // total norm 13
  const before = memory().tensors;
  const total = optim.clipGradNorm(ps, 6.5);
  assert.equal(memory().tensors, before + 1, "only the returned norm survives");
  assert.equal(total.ndim, 0);
  assertCloseArr(await total.data(), [13], "total norm");
  const c = 6.5 / (13 + 1e-6);
  assertCloseArr(await ps[0].grad!.data(), [3 * c, 4 * c], "clipped grad 0", { rtol: 1e-6 });
  assertCloseArr(await ps[1].grad!.data(), [0, 12 * c], "clipped grad 1", { rtol: 1e-6 });
  total.dispose();
  ps.forEach((p) => p.dispose());
});

Deno.test("clipGradNorm: leaves gradients under maxNorm unchanged; inf and 1 norms", async () => {
  const ps = withGrads([3, -4], [1, 2]);
  const t2 = optim.clipGradNorm(ps, 100);
  assertCloseArr(await ps[0].grad!.data(), [3, -4], "unclipped grad", { rtol: 1e-6 });
  const tInf = optim.clipGradNorm(ps, 2, { normType: Infinity });
  assertCloseArr(await tInf.data(), [4], "inf norm");
  assertCloseArr(await ps[0].grad!.data(), [1.5, -2], "inf-norm clipped", { rtol: 1e-6 });
  const t1 = optim.clipGradNorm(ps, 100, { normType: 1 });
  assertCloseArr(await t1.data(), [1.5 + 2 + 0.5 + 1], "1-norm");
  [t2, tInf, t1].forEach((t) => t.dispose());
  ps.forEach((p) => p.dispose());
});

Deno.test("clipGradValue: clamps every gradient element", async () => {
  const ps = withGrads([3, -4, 0.5], [-0.25, 10]);
  optim.clipGradValue(ps, 1);
  assert.deepEqual([...await ps[0].grad!.data()], [1, -1, 0.5]);
  assert.deepEqual([...await ps[1].grad!.data()], [-0.25, 1]);
  ps.forEach((p) => p.dispose());
});
