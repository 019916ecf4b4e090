import assert from "node:assert/strict";
import { teacher, teacherForward, type TeacherParams } from "../../data/synthetic/teacher.ts";
import { assertThrowsMatch, counts, sameBytes } from "./_helpers.ts";

Deno.test("teacher: same seed gives identical bytes, another seed different data", () => {
  const a = teacher({ n: 100, seed: 1, noiseStd: 0.1 }),
    b = teacher({ n: 100, seed: 1, noiseStd: 0.1 });
  const c = teacher({ n: 100, seed: 2, noiseStd: 0.1 });
  assert.ok(sameBytes(a.x, b.x) && sameBytes(a.y, b.y));
  assert.ok(!sameBytes(a.x, c.x) && !sameBytes(a.y, c.y));
});

Deno.test("teacher: regression targets are the teacher MLP's outputs when noise is 0", () => {
  const ds = teacher({ n: 200, inputDim: 5, widths: [7, 6], outputDim: 3, activation: "tanh" });
  assert.deepEqual([ds.xShape, ds.yShape], [[200, 5], [200, 3]]);
  const t = ds.meta!.teacher as TeacherParams;
  assert.deepEqual(t.sizes, [5, 7, 6, 3]);
  assert.deepEqual(t.weights.map((w) => w.length), [35, 42, 18]);
  const f = teacherForward(t, ds.x, 200);
  assert.ok(sameBytes(f, ds.y));
  // Check one output by hand: 2 layers of tanh, then linear.
  const h = (l: number, v: number[]) =>
    Array.from({ length: t.sizes[l + 1] }, (_, o) => {
      let s = t.biases[l][o];
      for (let i = 0; i < v.length; i++) s += t.weights[l][o * v.length + i] * v[i];
      return s;
    });
  const x0 = Array.from(ds.x.subarray(0, 5));
  const out = h(2, h(1, h(0, x0).map(Math.tanh)).map(Math.tanh));
  for (let o = 0; o < 3; o++) assert.ok(Math.abs(out[o] - ds.y[o]) < 1e-5);
});

Deno.test("teacher: classification labels are the argmax of the teacher, roughly balanced", () => {
  const ds = teacher({ task: "classification", n: 2000, numClasses: 4, seed: 3 });
  assert.equal(ds.numClasses, 4);
  assert.ok(ds.y instanceof Int32Array);
  const logits = ds.meta!.outputs as Float32Array;
  for (let r = 0; r < 2000; r++) {
    const row = Array.from(logits.subarray(4 * r, 4 * r + 4));
    assert.equal(ds.y[r], row.indexOf(Math.max(...row)));
  }
  assert.ok(counts(ds.y, 4).every((c) => c > 2000 / 4 / 3), `counts ${counts(ds.y, 4)}`);
});

Deno.test("teacher: the same teacherSeed with another seed gives fresh samples of one teacher", () => {
  const a = teacher({ n: 50, seed: 1, teacherSeed: 7 }),
    b = teacher({ n: 50, seed: 2, teacherSeed: 7 });
  const [ta, tb] = [a.meta!.teacher as TeacherParams, b.meta!.teacher as TeacherParams];
  ta.weights.forEach((w, l) => assert.ok(sameBytes(w, tb.weights[l])));
  assert.ok(!sameBytes(a.x, b.x));
  assert.ok(sameBytes(teacherForward(ta, b.x, 50), b.y));
});

Deno.test("teacher: temperature sampling disagrees with the argmax on some rows", () => {
  const hard = teacher({ task: "classification", n: 500 });
  const soft = teacher({ task: "classification", n: 500, temperature: 1 });
  let differ = 0;
  for (let i = 0; i < 500; i++) if (hard.y[i] !== soft.y[i]) differ++;
  assert.ok(differ > 10 && differ < 400, `${differ} differ`);
});

Deno.test("teacher: bad options throw Errors naming the generator and option", () => {
  assertThrowsMatch(() => teacher({ widths: [0] }), /^teacher: option widths/);
  assertThrowsMatch(
    () => teacher({ task: "classification", numClasses: 1 }),
    /^teacher: option numClasses/,
  );
  assertThrowsMatch(
    () => teacher({ activation: "swish" as "relu" }),
    /^teacher: option activation/,
  );
  assertThrowsMatch(
    () => teacher({ task: "classification", noiseStd: 1 }),
    /^teacher: option noiseStd/,
  );
});
