import assert from "node:assert/strict";
import {
  breadcrumbs,
  breadcrumbsMasks,
  breadcrumbsMerging,
} from "../../algorithms/model-breadcrumbs/mod.ts";
import { sumTaskVectors } from "../../algorithms/task-vectors/mod.ts";
import { manualSeed, randn, type Tensor } from "../../mod.ts";

const arr = async (t: Tensor) => Array.from(await t.data());

Deno.test("breadcrumbs: each layer drops exactly the top β and the bottom γ of |τ|", async () => {
  manualSeed(0);
  const tv = { w: randn([20, 10]), b: randn([40]) };
  const masks = breadcrumbsMasks(tv, { beta: 0.05, gamma: 0.6 });
  for (const [k, n] of [["w", 200], ["b", 40]] as const) {
    const m = await arr(masks[k]);
    const mags = (await arr(tv[k])).map(Math.abs);
    const order = mags.map((_, i) => i).sort((a, b) => mags[b] - mags[a]);
    const top = Math.round(0.05 * n), keep = Math.round(0.4 * n);
    assert.equal(m.filter((x) => x).length, n - top - Math.round(0.6 * n));
    order.forEach((i, rank) =>
      assert.equal(!!m[i], rank >= top && rank < keep, `${k} rank ${rank}`)
    );
  }
});

Deno.test("breadcrumbs: the largest outlier of every layer is removed", async () => {
  manualSeed(1);
  const tv = { w: randn([8, 8]) };
  const mags = (await arr(tv.w)).map(Math.abs);
  const argmax = mags.indexOf(Math.max(...mags));
  const kept = await arr(breadcrumbs(tv, { beta: 0.02, gamma: 0.5 }).w);
  assert.ok(kept[argmax] === 0, `the outlier survived: ${kept[argmax]}`);
  assert.ok(kept.filter((x) => x !== 0).length > 0);
});

Deno.test("breadcrumbs: with β = γ = 0 the merge is task arithmetic's sum", async () => {
  manualSeed(2);
  const tvs = [0, 1, 2].map(() => ({ w: randn([6, 3]) }));
  const got = await arr(breadcrumbsMerging(tvs, { beta: 0, gamma: 0 }).w);
  const want = await arr(sumTaskVectors(tvs).w);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6));
});

Deno.test("breadcrumbs: the merge is the sum of each task's breadcrumbs", async () => {
  manualSeed(3);
  const tvs = [0, 1].map(() => ({ w: randn([30]) }));
  const got = await arr(breadcrumbsMerging(tvs).w);
  const parts = await Promise.all(tvs.map(async (tv) => await arr(breadcrumbs(tv).w)));
  got.forEach((v, i) => assert.ok(Math.abs(v - parts[0][i] - parts[1][i]) < 1e-6));
  // Defaults β = 0.01, γ = 0.85: ranks [round(0.01 · 30), round((1 − 0.85) · 30)) are kept.
  const kept = Math.round((1 - 0.85) * 30) - Math.round(0.01 * 30);
  assert.equal(parts[0].filter((x) => x !== 0).length, kept);
});

Deno.test("breadcrumbs: invalid β and γ are clear errors", () => {
  const tv = { w: randn([4]) };
  assert.throws(
    () => breadcrumbsMasks(tv, { beta: 0.5, gamma: 0.6 }),
    /beta \+ gamma must be at most 1/,
  );
  assert.throws(() => breadcrumbsMasks(tv, { beta: -0.1 }), /beta must be in \[0, 1\]/);
  assert.throws(() => breadcrumbsMerging([tv, { v: randn([4]) }]), /missing key\(s\) w/);
});
