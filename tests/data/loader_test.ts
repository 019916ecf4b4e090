import assert from "node:assert/strict";
import type { Dataset } from "../../data/dataset.ts";
import { batches, fewShot, split, subset } from "../../data/loader.ts";
import { shapes } from "../../data/synthetic/shapes.ts";
import { assertThrowsMatch, counts } from "./_helpers.ts";

/** n rows whose x is (id, id + 0.5) so a row can be traced; labels cycle with `sizes`. */
function traced(sizes: number[]): Dataset {
  const y: number[] = [];
  sizes.forEach((m, c) => y.push(...new Array(m).fill(c)));
  const n = y.length;
  const x = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) (x[2 * i] = i), (x[2 * i + 1] = i + 0.5);
  return {
    name: "traced",
    x,
    xShape: [n, 2],
    y: Int32Array.from(y),
    yShape: [n],
    numClasses: sizes.length,
  };
}
const ids = (ds: Dataset) => Array.from({ length: ds.xShape[0] }, (_, i) => ds.x[2 * i]);

Deno.test("split: sizes follow the fractions, parts are disjoint and cover the data", () => {
  const ds = traced([300, 200, 100]);
  const { train, val, test } = split(ds, { train: 0.7, val: 0.1, seed: 3 });
  assert.deepEqual([train, val, test].map((d) => d.xShape[0]), [420, 60, 120]);
  const all = [...ids(train), ...ids(val), ...ids(test)];
  assert.equal(new Set(all).size, 600); // no overlap, every row
  for (const part of [train, val, test]) {
    for (let i = 0; i < part.xShape[0]; i++) {
      assert.equal(part.x[2 * i + 1], part.x[2 * i] + 0.5); // rows copied whole
      assert.equal(part.y[i], ds.y[part.x[2 * i]]); // labels follow their rows
    }
  }
  // An explicit test fraction below the rest leaves rows out.
  const partial = split(ds, { train: 0.5, test: 0.2 });
  assert.deepEqual([partial.train.xShape[0], partial.val.xShape[0], partial.test.xShape[0]], [
    300,
    0,
    120,
  ]);
});

Deno.test("split: the same seed gives the same parts, another seed different ones", () => {
  const ds = traced([100, 100]);
  const a = split(ds, { train: 0.5, seed: 1 }), b = split(ds, { train: 0.5, seed: 1 });
  const c = split(ds, { train: 0.5, seed: 2 });
  assert.deepEqual(ids(a.train), ids(b.train));
  assert.notDeepEqual(ids(a.train), ids(c.train));
});

Deno.test("split: stratify keeps each class's fraction in every part", () => {
  const ds = traced([500, 90, 31, 7]);
  const { train, val, test } = split(ds, {
    train: 0.6,
    val: 0.2,
    test: 0.2,
    stratify: true,
    seed: 5,
  });
  const sizes = [500, 90, 31, 7];
  for (const [part, f] of [[train, 0.6], [val, 0.2], [test, 0.2]] as const) {
    counts(part.y, 4).forEach((c, k) =>
      assert.ok(Math.abs(c - f * sizes[k]) < 1, `class ${k}: ${c}`)
    );
  }
  assert.equal(new Set([...ids(train), ...ids(val), ...ids(test)]).size, 628);
  assertThrowsMatch(() => split(ds, { train: 0.8, val: 0.3 }), /^split: option train\/val\/test/);
});

Deno.test("fewShot: perClass rows of each class in support, the rest in query", () => {
  const ds = traced([20, 15, 9]);
  const { support, query } = fewShot(ds, { perClass: 5, seed: 2 });
  assert.deepEqual(counts(support.y, 3), [5, 5, 5]);
  assert.deepEqual(counts(query.y, 3), [15, 10, 4]);
  const s = new Set(ids(support));
  assert.ok(ids(query).every((i) => !s.has(i)));
  const only = fewShot(ds, { perClass: 2, classes: [2, 0] });
  assert.deepEqual(counts(only.support.y, 3), [2, 0, 2]);
  assertThrowsMatch(
    () => fewShot(ds, { perClass: 10 }),
    /^fewShot: option perClass .*class 2 has only 9/,
  );
});

Deno.test("batches: one epoch visits every row exactly once, in copies of whole rows", () => {
  const ds = traced([23, 24]);
  for (const shuffle of [false, true]) {
    const seen: number[] = [];
    let nBatches = 0;
    for (const b of batches(ds, { batchSize: 10, shuffle, seed: 4 })) {
      nBatches++;
      assert.equal(b.xShape[0], b.indices.length);
      assert.deepEqual(b.yShape, [b.indices.length]);
      for (let i = 0; i < b.indices.length; i++) {
        assert.equal(b.x[2 * i], b.indices[i]);
        assert.equal(b.y[i], ds.y[b.indices[i]]);
        seen.push(b.x[2 * i]);
      }
    }
    assert.equal(nBatches, 5);
    assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: 47 }, (_, i) => i));
    if (!shuffle) assert.deepEqual(seen, Array.from({ length: 47 }, (_, i) => i));
  }
  const dropped = [...batches(ds, { batchSize: 10, dropLast: true })];
  assert.deepEqual(dropped.map((b) => b.xShape[0]), [10, 10, 10, 10]);
  const o1 = [...batches(ds, { batchSize: 47, shuffle: true, seed: 1 })][0].indices;
  const o2 = [...batches(ds, { batchSize: 47, shuffle: true, seed: 2 })][0].indices;
  assert.notDeepEqual(Array.from(o1), Array.from(o2));
  assertThrowsMatch(() => [...batches(ds, { batchSize: 0 })], /^batches: option batchSize/);
});

Deno.test("subset: copies the rows and the row-aligned meta arrays listed in meta.perRow", () => {
  const ds = shapes({ n: 30, seed: 1 });
  const sub = subset(ds, [29, 3, 3]);
  assert.deepEqual(sub.xShape, [3, 3, 16, 16]);
  const P = 3 * 16 * 16;
  assert.deepEqual(Array.from(sub.x.subarray(0, P)), Array.from(ds.x.subarray(29 * P, 30 * P)));
  const [l, ls] = [
    ds.meta!.labels as Record<string, Int32Array>,
    sub.meta!.labels as Record<string, Int32Array>,
  ];
  for (const t of Object.keys(l)) assert.deepEqual(Array.from(ls[t]), [l[t][29], l[t][3], l[t][3]]);
  assert.equal(sub.numClasses, ds.numClasses);
  sub.x[0] = 42; // a copy, not a view
  assert.notEqual(ds.x[29 * P], 42);
  assertThrowsMatch(() => subset(ds, [30]), /^subset: index 30/);
});
