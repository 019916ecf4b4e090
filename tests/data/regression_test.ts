import assert from "node:assert/strict";
import { linearRegression, regressionTokens } from "../../data/synthetic/regression.ts";
import { subset } from "../../data/loader.ts";
import { assertThrowsMatch, sameBytes } from "./_helpers.ts";

Deno.test("regression: same seed gives identical bytes, another seed different prompts", () => {
  const a = linearRegression({ n: 20, noiseStd: 0.1, seed: 2 });
  const b = linearRegression({ n: 20, noiseStd: 0.1, seed: 2 });
  const c = linearRegression({ n: 20, noiseStd: 0.1, seed: 3 });
  assert.ok(sameBytes(a.x, b.x) && sameBytes(a.y, b.y) && sameBytes(a.w, b.w));
  assert.ok(!sameBytes(a.x, c.x) && !sameBytes(a.w, c.w));
});

Deno.test("regression: xs [n, k, d], ys [n, k], ws [n, d]", () => {
  const ds = linearRegression({ n: 10, k: 5, d: 3 });
  assert.deepEqual([ds.xShape, ds.yShape, ds.wShape], [[10, 5, 3], [10, 5], [10, 3]]);
  assert.equal(ds.x.length, 150);
  assert.equal(ds.y.length, 50);
  assert.equal(ds.w.length, 30);
  assert.equal(ds.meta!.w, ds.w);
});

Deno.test("regression: y = w . x exactly (to float32) when noise is 0", () => {
  const { x, y, w } = linearRegression({ n: 50, k: 8, d: 6 });
  for (let p = 0; p < 50; p++) {
    for (let i = 0; i < 8; i++) {
      let dot = 0;
      for (let j = 0; j < 6; j++) dot += w[p * 6 + j] * x[(p * 8 + i) * 6 + j];
      assert.equal(y[p * 8 + i], Math.fround(dot));
    }
  }
});

Deno.test("regression: noise changes only y, with the requested std; w and x are N(0, 1)", () => {
  const clean = linearRegression({ n: 400, k: 20, d: 4, seed: 9 });
  const noisy = linearRegression({ n: 400, k: 20, d: 4, seed: 9, noiseStd: 0.5 });
  assert.ok(sameBytes(clean.x, noisy.x) && sameBytes(clean.w, noisy.w));
  let s2 = 0;
  for (let i = 0; i < clean.y.length; i++) s2 += (noisy.y[i] - clean.y[i]) ** 2;
  assert.ok(Math.abs(Math.sqrt(s2 / clean.y.length) - 0.5) < 0.03);
  const moments = (a: Float32Array) => {
    let m = 0, v = 0;
    for (const t of a) (m += t), (v += t * t);
    return [m / a.length, v / a.length];
  };
  for (const arr of [clean.w, clean.x]) {
    const [m, v] = moments(arr);
    assert.ok(Math.abs(m) < 0.1 && Math.abs(v - 1) < 0.1, `mean ${m}, var ${v}`);
  }
});

Deno.test("regression: subset keeps each prompt's weights in meta.w", () => {
  const ds = linearRegression({ n: 6, k: 3, d: 2 });
  const sub = subset(ds, [4, 1]);
  assert.deepEqual(Array.from(sub.meta!.w as Float32Array), [
    ...ds.w.slice(8, 10),
    ...ds.w.slice(2, 4),
  ]);
  assert.deepEqual(sub.yShape, [2, 3]);
});

Deno.test("regression: tokens interleave (x_i, 0) and (y_i, 0.., 1)", () => {
  const ds = linearRegression({ n: 2, k: 3, d: 2 });
  const { tokens, shape } = regressionTokens(ds);
  assert.deepEqual(shape, [2, 6, 3]);
  // prompt 1, point 2: tokens 4 (x) and 5 (y)
  const xt = (1 * 6 + 4) * 3, yt = xt + 3;
  assert.deepEqual(Array.from(tokens.subarray(xt, xt + 3)), [
    ds.x[(3 + 2) * 2],
    ds.x[(3 + 2) * 2 + 1],
    0,
  ]);
  assert.deepEqual(Array.from(tokens.subarray(yt, yt + 3)), [ds.y[3 + 2], 0, 1]);
});

Deno.test("regression: bad options throw Errors naming the generator and option", () => {
  assertThrowsMatch(() => linearRegression({ d: 0 }), /^linearRegression: option d/);
  assertThrowsMatch(
    () => linearRegression({ noiseStd: NaN }),
    /^linearRegression: option noiseStd/,
  );
  assertThrowsMatch(() => linearRegression({ seed: -1 }), /^linearRegression: option seed/);
});
