import assert from "node:assert/strict";
import {
  FIRST_SYMBOL,
  mixture,
  PAD,
  SEP,
  SEQUENCE_TASKS,
  sequenceTask,
  taskToken,
} from "../../data/synthetic/sequences.ts";
import { assertThrowsMatch, counts, sameBytes } from "./_helpers.ts";

type Rows = { x: Int32Array; xShape: number[]; y: Int32Array; yShape: number[] };

/** Row i of x and y as plain arrays. */
function row(ds: Rows, i: number): { input: number[]; target: number[] } {
  const [wi, wt] = [ds.xShape[1], ds.yShape[1]];
  return {
    input: Array.from(ds.x.subarray(i * wi, (i + 1) * wi)),
    target: Array.from(ds.y.subarray(i * wt, (i + 1) * wt)),
  };
}

/** The content symbols of an input (tokens before SEP), as symbol values. */
const content = (input: number[]) =>
  input.slice(0, input.indexOf(SEP)).map((t) => t - FIRST_SYMBOL);
/** Sum of a list. */
const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);
/** Target tokens up to the first PAD, as symbol values. */
const answer = (target: number[]) =>
  (target.includes(PAD) ? target.slice(0, target.indexOf(PAD)) : target).map((t) =>
    t - FIRST_SYMBOL
  );

Deno.test("sequences: same seed gives identical bytes, another seed different rows", () => {
  for (const task of SEQUENCE_TASKS) {
    const a = sequenceTask(task, { n: 30, seed: 1 }), b = sequenceTask(task, { n: 30, seed: 1 });
    const c = sequenceTask(task, { n: 30, seed: 2 });
    assert.ok(sameBytes(a.x, b.x) && sameBytes(a.y, b.y), task);
    assert.ok(!sameBytes(a.x, c.x), task);
  }
});

Deno.test("sequences: copy, reverse and sort targets are the input copied, reversed, sorted", () => {
  const opts = { n: 200, length: 10, minLength: 3, seed: 5 };
  const [cp, rv, st] = [
    sequenceTask("copy", opts),
    sequenceTask("reverse", opts),
    sequenceTask("sort", opts),
  ];
  assert.deepEqual([cp.xShape, cp.yShape], [[200, 11], [200, 10]]);
  for (let i = 0; i < 200; i++) {
    const a = content(row(cp, i).input);
    assert.ok(a.length >= 3 && a.length <= 10 && a.every((s) => s >= 0 && s < 16));
    assert.deepEqual(answer(row(cp, i).target), a);
    const r = content(row(rv, i).input);
    assert.deepEqual(answer(row(rv, i).target), [...r].reverse());
    const s = content(row(st, i).input), t = answer(row(st, i).target);
    assert.deepEqual(t, [...s].sort((p, q) => p - q)); // sorted, same multiset
    // after the end: input SEP then PAD, target PAD
    assert.ok(row(st, i).input.slice(s.length + 1).every((v) => v === PAD));
  }
});

Deno.test("sequences: parity, majority and modsum answers follow their definitions", () => {
  const par = sequenceTask("parity", { n: 300, length: 7 });
  const maj = sequenceTask("majority", { n: 300, length: 7, numSymbols: 4 });
  const mod = sequenceTask("modsum", { n: 300, length: 5, modulus: 7 });
  for (let i = 0; i < 300; i++) {
    const bits = content(row(par, i).input);
    assert.ok(bits.every((b) => b === 0 || b === 1));
    assert.deepEqual(answer(row(par, i).target), [sum(bits) % 2]);
    const a = content(row(maj, i).input), c = counts(a, 4), best = Math.max(...c);
    assert.equal(c.filter((v) => v === best).length, 1); // a unique mode
    assert.deepEqual(answer(row(maj, i).target), [c.indexOf(best)]);
    const m = content(row(mod, i).input);
    assert.ok(m.every((s) => s < 7));
    assert.deepEqual(answer(row(mod, i).target), [sum(m) % 7]);
  }
  const parityAnswers = Array.from(par.y, (t) => t - FIRST_SYMBOL);
  const ones = parityAnswers.filter((v) => v === 1).length;
  assert.ok(ones > 120 && ones < 180, `parity answers unbalanced: ${ones} / 300`);
});

Deno.test("sequences: recall answers the value paired with the queried key", () => {
  const ds = sequenceTask("recall", { n: 200, length: 4, numSymbols: 12 });
  assert.deepEqual([ds.xShape, ds.yShape], [[200, 10], [200, 1]]);
  for (let i = 0; i < 200; i++) {
    const input = row(ds, i).input.map((t) => t - FIRST_SYMBOL);
    const keys = [0, 2, 4, 6].map((j) => input[j]), values = [1, 3, 5, 7].map((j) => input[j]);
    assert.equal(row(ds, i).input[8], SEP);
    assert.equal(new Set(keys).size, 4); // distinct keys from the lower half
    assert.ok(keys.every((k) => k < 6) && values.every((v) => v >= 6 && v < 12));
    assert.equal(answer(row(ds, i).target)[0], values[keys.indexOf(input[9])]);
  }
});

Deno.test("mixture: each row starts with its task token and follows that task", () => {
  const ds = mixture({ n: 700, length: 6, seed: 3 });
  const ids = ds.meta!.taskIds as Int32Array;
  assert.equal(ds.xShape[1], 2 * 6 + 2 + 1); // widest task (recall) + task token
  assert.ok(counts(ids, SEQUENCE_TASKS.length).every((c) => c > 50)); // every task appears
  for (let i = 0; i < 700; i++) {
    const { input, target } = row(ds, i);
    const task = SEQUENCE_TASKS[ids[i]];
    assert.equal(input[0], taskToken(task));
    const a = content(input.slice(1));
    if (task === "copy") assert.deepEqual(answer(target), a);
    if (task === "reverse") assert.deepEqual(answer(target), [...a].reverse());
    if (task === "sort") assert.deepEqual(answer(target), [...a].sort((p, q) => p - q));
    if (task === "parity") assert.deepEqual(answer(target), [sum(a) % 2]);
  }
  assert.ok(ds.x.every((t) => t >= 0 && t < (ds.numClasses as number)));
});

Deno.test("mixture: weights choose the tasks, zero weight never", () => {
  const ds = mixture({ n: 400, tasks: ["copy", "sort", "parity"], weights: [3, 1, 0] });
  const c = counts(ds.meta!.taskIds as Int32Array, SEQUENCE_TASKS.length);
  assert.equal(c[SEQUENCE_TASKS.indexOf("parity")], 0);
  assert.ok(c[SEQUENCE_TASKS.indexOf("copy")] > 2 * c[SEQUENCE_TASKS.indexOf("sort")]);
});

Deno.test("sequences: bad options throw Errors naming the generator and option", () => {
  assertThrowsMatch(() => sequenceTask("recall", { length: 9, numSymbols: 16 }), /option length/);
  assertThrowsMatch(
    () => sequenceTask("copy", { minLength: 9, length: 8 }),
    /^sequenceTask\(copy\): option minLength/,
  );
  assertThrowsMatch(() => sequenceTask("modsum", { modulus: 40 }), /option modulus/);
  assertThrowsMatch(() => mixture({ tasks: [] }), /^mixture: option tasks/);
  assertThrowsMatch(() => mixture({ weights: [1] }), /^mixture: option weights/);
});
