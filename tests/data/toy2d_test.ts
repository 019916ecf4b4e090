import assert from "node:assert/strict";
import { gaussianMixture, spirals, twoMoons } from "../../data/synthetic/toy2d.ts";
import { assertBalanced, assertThrowsMatch, sameBytes } from "./_helpers.ts";

Deno.test("toy2d: same seed gives identical bytes, another seed different points", () => {
  for (const make of [gaussianMixture, twoMoons, spirals]) {
    const a = make({ n: 100, seed: 1 }),
      b = make({ n: 100, seed: 1 }),
      c = make({ n: 100, seed: 2 });
    assert.ok(sameBytes(a.x, b.x) && sameBytes(a.y, b.y));
    assert.ok(!sameBytes(a.x, c.x));
  }
});

Deno.test("moons: two balanced classes on the two half circles when noise is 0", () => {
  const ds = twoMoons({ n: 301, noise: 0 });
  assert.deepEqual([ds.xShape, ds.numClasses], [[301, 2], 2]);
  assertBalanced(ds.y, 2);
  for (let i = 0; i < 301; i++) {
    const [a, b] = [ds.x[2 * i], ds.x[2 * i + 1]];
    if (ds.y[i] === 0) assert.ok(Math.abs(a * a + b * b - 1) < 1e-5 && b >= -1e-6);
    else assert.ok(Math.abs((a - 1) ** 2 + (b - 0.5) ** 2 - 1) < 1e-5 && b <= 0.5 + 1e-6);
  }
});

Deno.test("spirals: k balanced arms, each point on its arm's curve when noise is 0", () => {
  const arms = 3, turns = 1.5;
  const ds = spirals({ n: 300, arms, turns, noise: 0 });
  assert.equal(ds.numClasses, arms);
  assertBalanced(ds.y, arms);
  for (let i = 0; i < 300; i++) {
    const [a, b] = [ds.x[2 * i], ds.x[2 * i + 1]];
    const s = Math.hypot(a, b); // the radius is the arm parameter
    assert.ok(s > 0 && s <= 1 + 1e-6);
    const angle = 2 * Math.PI * (turns * s + ds.y[i] / arms);
    assert.ok(Math.hypot(a - s * Math.cos(angle), b - s * Math.sin(angle)) < 1e-4);
  }
});

Deno.test("gaussianMixture: k balanced classes whose means match meta.means", () => {
  const k = 4, dim = 5;
  const ds = gaussianMixture({ n: 4000, k, dim, std: 0.5, seed: 6 });
  assert.deepEqual(ds.xShape, [4000, dim]);
  assertBalanced(ds.y, k);
  const means = ds.meta!.means as Float32Array;
  const sum = new Float64Array(k * dim);
  for (let i = 0; i < 4000; i++) {
    for (let j = 0; j < dim; j++) sum[ds.y[i] * dim + j] += ds.x[i * dim + j];
  }
  for (let c = 0; c < k * dim; c++) assert.ok(Math.abs(sum[c] / 1000 - means[c]) < 0.1);
});

Deno.test("toy2d: bad options throw Errors naming the generator and option", () => {
  assertThrowsMatch(() => twoMoons({ noise: -0.1 }), /^twoMoons: option noise/);
  assertThrowsMatch(() => spirals({ arms: 0 }), /^spirals: option arms/);
  assertThrowsMatch(() => gaussianMixture({ k: 2.5 }), /^gaussianMixture: option k/);
});
