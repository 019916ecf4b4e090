import assert from "node:assert/strict";
import { modular } from "../../data/synthetic/modular.ts";
import { assertThrowsMatch, sameBytes } from "./_helpers.ts";

Deno.test("modular: same seed gives identical bytes, another seed a different order", () => {
  const a = modular({ p: 31, corruption: 0.1, seed: 4 });
  const b = modular({ p: 31, corruption: 0.1, seed: 4 });
  const c = modular({ p: 31, corruption: 0.1, seed: 5 });
  assert.ok(sameBytes(a.all.x, b.all.x) && sameBytes(a.all.y, b.all.y));
  assert.ok(!sameBytes(a.all.x, c.all.x));
});

Deno.test("modular: labels are (a + b) mod p outside the corrupted fraction", () => {
  const p = 23, corruption = 0.1;
  const { all, train, test } = modular({ p, corruption, trainFraction: 0.4, seed: 1 });
  const wrong = (ds: typeof all) => {
    let count = 0;
    for (let i = 0; i < ds.y.length; i++) {
      const [a, b] = [ds.x[2 * i], ds.x[2 * i + 1]];
      if (ds.y[i] !== (a + b) % p) count++;
    }
    return count;
  };
  assert.equal(train.y.length, Math.round(0.4 * p * p));
  assert.equal(wrong(train), Math.round(corruption * train.y.length)); // exactly the fraction
  assert.equal(wrong(test), 0); // only the train split is corrupted by default
  assert.equal(wrong(all), wrong(train));
  const flagged = (train.meta!.corrupted as Uint8Array).reduce((s, v) => s + v, 0);
  assert.equal(flagged, wrong(train));
  // corruptSplit "all": the fraction is of every row.
  const every = modular({ p, corruption, corruptSplit: "all", seed: 1 });
  assert.equal(wrong(every.all), Math.round(corruption * p * p));
});

Deno.test("modular: sub, mul and div (by the inverse) give the right residues", () => {
  const p = 13;
  const sub = modular({ p, op: "sub" }).all;
  const mul = modular({ p, op: "mul" }).all;
  const div = modular({ p, op: "div" }).all;
  for (let i = 0; i < sub.y.length; i++) {
    assert.equal(sub.y[i], (((sub.x[2 * i] - sub.x[2 * i + 1]) % p) + p) % p);
    assert.equal(mul.y[i], (mul.x[2 * i] * mul.x[2 * i + 1]) % p);
  }
  assert.equal(div.y.length, p * (p - 1)); // b = 0 is excluded
  for (let i = 0; i < div.y.length; i++) {
    const [a, b] = [div.x[2 * i], div.x[2 * i + 1]];
    assert.ok(b !== 0);
    assert.equal((div.y[i] * b) % p, a); // c = a / b  <=>  c * b = a
  }
});

Deno.test("modular: the full table holds every pair once, split into disjoint train and test", () => {
  const p = 17;
  const { all, train, test } = modular({ p, trainFraction: 0.3 });
  const key = (x: Int32Array, i: number) => x[2 * i] * p + x[2 * i + 1];
  const seen = new Set<number>();
  for (let i = 0; i < all.y.length; i++) seen.add(key(all.x, i));
  assert.equal(seen.size, p * p);
  assert.equal(train.y.length + test.y.length, p * p);
  const trainKeys = new Set(Array.from({ length: train.y.length }, (_, i) => key(train.x, i)));
  for (let i = 0; i < test.y.length; i++) assert.ok(!trainKeys.has(key(test.x, i)));
});

Deno.test("modular: numPairs samples distinct pairs; formats add '=' and op tokens", () => {
  const p = 97;
  const { all } = modular({ p, numPairs: 500, format: "full" });
  assert.deepEqual(all.xShape, [500, 4]);
  const keys = new Set<number>();
  for (let i = 0; i < 500; i++) {
    const [a, op, b, eq] = all.x.subarray(4 * i, 4 * i + 4);
    assert.equal(op, p + 1);
    assert.equal(eq, p);
    assert.equal(all.y[i], (a + b) % p);
    keys.add(a * p + b);
  }
  assert.equal(keys.size, 500);
  assert.equal(all.meta!.vocabSize, p + 2);
  const eq = modular({ p: 5, format: "equals" }).all;
  assert.deepEqual(eq.xShape, [25, 3]);
  for (let i = 0; i < 25; i++) assert.equal(eq.x[3 * i + 2], 5);
});

Deno.test("modular: bad options throw Errors naming the generator and option", () => {
  assertThrowsMatch(() => modular({ p: 12, op: "div" }), /^modular: option p must be a prime/);
  assertThrowsMatch(() => modular({ corruption: 1.5 }), /^modular: option corruption/);
  assertThrowsMatch(() => modular({ p: 5, numPairs: 26 }), /^modular: option numPairs/);
  assertThrowsMatch(() => modular({ op: "pow" as "add" }), /^modular: option op/);
});
