import assert from "node:assert/strict";
import { fit } from "../../lab/train.ts";
import { toTensors } from "../../lab/tensors.ts";
import { twoMoons } from "../../data/mod.ts";
import { F, keep, manualSeed, memory, noGrad, randn, scope, type Tensor } from "../../mod.ts";
import { accuracy } from "../../lab/metrics.ts";

/** Plain SGD over a list of parameters, enough to drive `fit` in these tests. */
function sgd(params: Tensor[], lr: number) {
  return {
    zeroGrad() {
      for (const p of params) {
        p.grad?.dispose();
        p.grad = null;
      }
    },
    step() {
      noGrad(() => {
        for (const p of params) if (p.grad) p.assign(p.sub(p.grad.mul(lr)));
      });
    },
  };
}

function mlp() {
  manualSeed(1);
  const params = [
    randn([32, 2]).mul(0.5),
    randn([32]).mul(0.1),
    randn([2, 32]).mul(0.2),
    randn([2]).mul(0),
  ]
    .map((p) => keep(p.requiresGrad_()));
  const forward = (x: Tensor) =>
    F.linear(F.linear(x, params[0], params[1]).relu(), params[2], params[3]);
  return { params, forward };
}

Deno.test("fit: trains a small MLP on two moons end to end from data/ through lab/", async () => {
  const ds = twoMoons({ n: 256, noise: 0.1, seed: 0 });
  const { x, y } = toTensors(ds);
  keep(x);
  keep(y);
  const { params, forward } = mlp();
  const before = memory().tensors;
  const opt = sgd(params, 0.2);
  const res = await fit({
    steps: 300,
    loss: () => F.crossEntropy(forward(x), y),
    optimizer: opt,
    logEvery: 50,
    evalEvery: 100,
    evaluate: async () => {
      const logits = scope(() => noGrad(() => forward(x)));
      const acc = accuracy(await logits.data(), ds.y);
      logits.dispose();
      return { acc };
    },
  });
  opt.zeroGrad(); // the last step's gradients are the only tensors fit leaves behind
  assert.equal(memory().tensors, before, "fit leaked tensors");
  assert.equal(res.steps, 300);
  assert.ok(res.final.acc > 0.85, `accuracy ${res.final.acc}`);
  const losses = res.history.filter((r) => r.loss !== undefined).map((r) => r.loss!);
  assert.equal(losses.length, 7); // step 1 and every 50 steps
  assert.ok(losses[losses.length - 1] < losses[0]);
  for (const t of [x, y, ...params]) t.dispose();
});

Deno.test("fit: early stopping ends the run when the metric stops improving", async () => {
  const { params, forward } = mlp();
  const x = keep(randn([8, 2]));
  let calls = 0;
  const res = await fit({
    steps: 100,
    loss: () => forward(x).square().mean(),
    optimizer: sgd(params, 0.01),
    evalEvery: 5,
    evaluate: () => ({ score: calls++ < 2 ? calls : 0 }),
    earlyStop: { metric: "score", mode: "max", patience: 3 },
  });
  assert.ok(res.stoppedEarly);
  assert.equal(res.steps, 25); // best at eval 2 (step 10), three bad evals later
  for (const t of [x, ...params]) t.dispose();
});

Deno.test("fit: a non-finite loss is an error naming the step", async () => {
  const { params } = mlp();
  await assert.rejects(
    fit({
      steps: 3,
      loss: () => params[0].sum().mul(Infinity),
      optimizer: sgd(params, 0.1),
      logEvery: 1,
    }),
    /loss became .* at step 1/,
  );
  params.forEach((p) => p.dispose());
});
