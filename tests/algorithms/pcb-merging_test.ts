import assert from "node:assert/strict";
import {
  interBalancing,
  intraBalancing,
  pcbMergeRows,
  pcbMerging,
} from "../../algorithms/pcb-merging/mod.ts";
import { trimTaskVector } from "../../algorithms/task-vectors/mod.ts";
import { manualSeed, randn, type Tensor, tensor } from "../../mod.ts";

const arr = async (t: Tensor) => Array.from(await t.data());
const close = (a: number[], b: number[], tol = 1e-5) =>
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol, `[${i}] ${v} vs ${b[i]}`));

Deno.test("PCB: merging identical task vectors with r = 1 returns the task vector", async () => {
  manualSeed(0);
  const tv = { w: randn([4, 6]), b: randn([6]) };
  const merged = pcbMerging([tv, tv, tv], { ratio: 1 });
  close(await arr(merged.w), await arr(tv.w));
  close(await arr(merged.b), await arr(tv.b));
});

Deno.test("PCB: for one task, drop keeps exactly the top-r magnitudes (TIES's trim)", async () => {
  manualSeed(1);
  const tv = { w: randn([10, 10]), b: randn([20]) };
  for (const ratio of [0.1, 0.25, 0.5]) {
    const got = await arr(pcbMerging([tv], { ratio }).w);
    const want = await arr(trimTaskVector(tv, ratio, { granularity: "model" }).w);
    close(got, want);
    const kept = [...got, ...(await arr(pcbMerging([tv], { ratio }).b))].filter((x) => x !== 0);
    assert.equal(kept.length, Math.round(ratio * 120));
  }
});

Deno.test("PCB: intra-balancing grows with magnitude; scores are mean-one rows", async () => {
  const T = tensor([[0.1, -0.5, 0.2, 1], [2, 0, -1, 0.5]]);
  const b = await arr(intraBalancing(T));
  assert.ok(b[3] > b[1] && b[1] > b[2] && b[2] > b[0], `row 0 ordered by |τ|: ${b.slice(0, 4)}`);
  close([b.slice(0, 4).reduce((s, x) => s + x) / 4, b.slice(4).reduce((s, x) => s + x) / 4], [
    1,
    1,
  ]);
});

Deno.test("PCB: inter-balancing favours parameters on which the tasks agree", async () => {
  const T = tensor([[1, 1], [1, -1]]); // entry 0 agrees across tasks, entry 1 conflicts
  const b = await arr(interBalancing(T));
  assert.ok(b[0] > b[1], `task 0: agreeing ${b[0]} > conflicting ${b[1]}`);
  assert.ok(b[2] > b[3], `task 1: agreeing ${b[2]} > conflicting ${b[3]}`);
});

Deno.test("PCB: the merged entry is a convex combination of the kept task values", async () => {
  manualSeed(2);
  const T = randn([4, 50]);
  for (const variant of ["paper", "code"] as const) {
    const m = await arr(pcbMergeRows(T, { ratio: 0.5, variant }));
    const t = await arr(T);
    m.forEach((v, j) => {
      const col = [0, 1, 2, 3].map((i) => t[i * 50 + j]);
      assert.ok(Number.isFinite(v));
      assert.ok(
        v >= Math.min(0, ...col) - 1e-5 && v <= Math.max(0, ...col) + 1e-5,
        `${variant} ${j}`,
      );
    });
  }
});

Deno.test("PCB: per-tensor granularity keeps shapes and differs from the global one", async () => {
  manualSeed(3);
  const tvs = [0, 1, 2].map(() => ({ w: randn([5, 4]), b: randn([4]).mul(10) }));
  const g = pcbMerging(tvs, { ratio: 0.3 }),
    t = pcbMerging(tvs, { ratio: 0.3, granularity: "tensor" });
  assert.deepEqual(t.w.shape, [5, 4]);
  assert.deepEqual(t.b.shape, [4]);
  const nz = async (x: Tensor) => (await arr(x)).filter((v) => v !== 0).length;
  assert.ok((await nz(g.w)) < (await nz(t.w)), "global ranking favours the large-scale tensor b");
});

Deno.test("PCB: bad options and mismatched task vectors are clear errors", () => {
  const tv = { w: randn([3]) };
  assert.throws(() => pcbMerging([tv], { ratio: 0 }), /ratio must be in \(0, 1\], got 0/);
  assert.throws(
    () => pcbMerging([tv], { variant: "x" as never }),
    /variant must be "paper" or "code"/,
  );
  assert.throws(
    () => pcbMerging([tv], { granularity: "layer" as never }),
    /granularity must be "model" or "tensor"/,
  );
  assert.throws(() => pcbMerging([tv, { w: randn([4]) }]), /key w is float32 \[3\] in dict 0/);
});
