import assert from "node:assert/strict";
import { ensembleLogits, greedySoup, uniformSoup } from "../../algorithms/model-soups/mod.ts";
import type { StateDict } from "../../algorithms/task-vectors/mod.ts";
import { memory, type Tensor, tensor } from "../../mod.ts";

const arr = async (t: Tensor) => Array.from(await t.data());
const sd = (v: number): StateDict => ({ w: tensor([v], { dtype: "float32" }) });

Deno.test("soups: the uniform soup of identical models is the model", async () => {
  assert.deepEqual(await arr(uniformSoup([sd(1.5), sd(1.5), sd(1.5)]).w), [1.5]);
  assert.deepEqual(await arr(uniformSoup([sd(1), sd(2), sd(6)]).w), [3]);
});

// Held-out "accuracy" of a one-weight model: the closer to 1, the better.
const score = async (s: StateDict) => -Math.abs((await arr(s.w))[0] - 1);

Deno.test("soups: the greedy soup starts from the best ingredient and skips harmful ones", async () => {
  const ing = [sd(5), sd(1.25), sd(0.5), sd(1.75)]; // held-out order: 1.25, 0.5, 1.75, 5
  const heldOut = await Promise.all(ing.map(score));
  const r = await greedySoup(ing, heldOut, score);
  assert.equal(r.members[0], 1, "the best ingredient comes first");
  assert.deepEqual(r.members, [1, 2], "0.5 helps (soup 0.875); 1.75 and 5 would hurt");
  assert.deepEqual(await arr(r.soup.w), [0.875]);
  assert.ok(r.heldOut >= Math.max(...heldOut), "never worse than the best ingredient");
});

Deno.test("soups: ingredients that do not change the score are added unless strict", async () => {
  const ing = [sd(1), sd(1), sd(1)];
  const flat = () => Promise.resolve(0.5);
  assert.deepEqual((await greedySoup(ing, [0.5, 0.5, 0.5], flat)).members, [0, 1, 2]);
  assert.deepEqual((await greedySoup(ing, [0.5, 0.5, 0.5], flat, { strict: true })).members, [0]);
});

Deno.test("soups: the greedy soup frees every rejected candidate", async () => {
  const ing = [sd(1), sd(3), sd(7)];
  const heldOut = await Promise.all(ing.map(score));
  const before = memory().tensors;
  const r = await greedySoup(ing, heldOut, score);
  assert.equal(memory().tensors, before + 1);
  r.soup.w.dispose();
});

Deno.test("soups: the ensemble averages logits; bad inputs are clear errors", async () => {
  const l = ensembleLogits([
    tensor([[1, 3]], { dtype: "float32" }),
    tensor([[3, 1]], { dtype: "float32" }),
  ]);
  assert.deepEqual(await arr(l), [2, 2]);
  await assert.rejects(() => greedySoup([], [], score), /no ingredients/);
  await assert.rejects(() => greedySoup([sd(1)], [1, 2], score), /2 held-out accuracies for 1/);
  await assert.rejects(
    () => greedySoup([sd(1), { v: tensor([1.5]) }], [1, 0], score),
    /missing key\(s\) w/,
  );
  assert.throws(() => ensembleLogits([]), /no logits/);
});
