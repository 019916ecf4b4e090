/**
 * Learning-rate schedulers against torch.optim.lr_scheduler: the rates (and OneCycleLR's
 * momentum / beta1) after construction and after each of 30 steps
 * (tests/fixtures/nn_optim.json), plus state dicts.
 */
import assert from "node:assert/strict";
import { keep, zeros } from "../../mod.ts";
import * as optim from "../../core/optim/mod.ts";
import { assertCloseArr, nnFixture } from "../nn/_helpers.ts";

const fx = await nnFixture();
const param = keep(zeros([1]).requiresGrad_());
const sgd = (o: optim.SGDOptions = {}) => new optim.SGD([param], { lr: 0.1, ...o });

/** Each fixture case: the optimiser and scheduler, built as the Python script builds them. */
const BUILDERS: Record<string, () => [optim.Optimizer, { step(): void; getLastLr(): number[] }]> = {
  "StepLR": () => {
    const o = sgd();
    return [o, new optim.StepLR(o, { stepSize: 7, gamma: 0.5 })];
  },
  "CosineAnnealingLR": () => {
    const o = sgd();
    return [o, new optim.CosineAnnealingLR(o, { tMax: 10, etaMin: 0.01 })];
  },
  "LinearLR": () => {
    const o = sgd();
    return [o, new optim.LinearLR(o, { startFactor: 0.25, totalIters: 8 })];
  },
  "LambdaLR": () => {
    const o = sgd();
    return [o, new optim.LambdaLR(o, (e) => 1 / (1 + 0.1 * e))];
  },
  "OneCycleLR": () => {
    const o = sgd({ momentum: 0.9 });
    return [o, new optim.OneCycleLR(o, { maxLr: 1, totalSteps: 30 })];
  },
  "OneCycleLR(threePhase, linear, Adam)": () => {
    const o = new optim.Adam([param], { lr: 0.1 });
    return [
      o,
      new optim.OneCycleLR(o, {
        maxLr: 0.5,
        totalSteps: 40,
        pctStart: 0.25,
        annealStrategy: "linear",
        threePhase: true,
      }),
    ];
  },
  "SequentialLR(LinearLR, CosineAnnealingLR)": () => {
    const o = sgd();
    const a = new optim.LinearLR(o, { startFactor: 0.1, totalIters: 5 });
    const b = new optim.CosineAnnealingLR(o, { tMax: 25 });
    return [o, new optim.SequentialLR(o, [a, b], [5])];
  },
  "warmup(CosineAnnealingLR)": () => {
    const o = sgd();
    const main = new optim.CosineAnnealingLR(o, { tMax: 20, etaMin: 0.001 });
    return [o, optim.warmup(o, main, { warmupSteps: 10, startFactor: 0.001 })];
  },
};

const momentumOf = (o: optim.Optimizer) => {
  const g = o.paramGroups[0];
  return g.betas ? g.betas[0] : g.momentum;
};

for (const c of fx.schedulers as { name: string; lrs: number[]; momentum?: number[] }[]) {
  Deno.test(`${c.name}: 30 steps give torch's learning rates`, () => {
    const [opt, sched] = BUILDERS[c.name]();
    const lrs = [sched.getLastLr()[0]], moms = [momentumOf(opt)];
    for (let i = 0; i < c.lrs.length - 1; i++) {
      opt.step();
      sched.step();
      lrs.push(sched.getLastLr()[0]);
      moms.push(momentumOf(opt));
      assert.equal(opt.paramGroups[0].lr, lrs[lrs.length - 1], "getLastLr is the group's lr");
    }
    assertCloseArr(lrs, c.lrs, `${c.name} learning rates`, { rtol: 1e-9, atol: 1e-12 });
    if (c.momentum) {
      assertCloseArr(moms, c.momentum, `${c.name} momentum`, { rtol: 1e-9, atol: 1e-12 });
    }
  });
}

Deno.test("LRScheduler: stateDict restores progress into a fresh scheduler", () => {
  const o1 = sgd(), s1 = new optim.CosineAnnealingLR(o1, { tMax: 10 });
  for (let i = 0; i < 4; i++) s1.step();
  const sd = s1.stateDict();
  assert.deepEqual(Object.keys(sd), ["base_lrs", "last_epoch", "_step_count", "_last_lr"]);
  assert.equal(sd.last_epoch, 4);
  const o2 = sgd(), s2 = new optim.CosineAnnealingLR(o2, { tMax: 10 });
  s2.loadStateDict(sd);
  o2.loadStateDict(o1.stateDict());
  for (let i = 0; i < 3; i++) [s1, s2].forEach((s) => s.step());
  assert.deepEqual(s2.getLastLr(), s1.getLastLr());
  assert.equal(o2.paramGroups[0].initialLr, 0.1, "initial_lr travels in the optimizer state");
});

Deno.test("OneCycleLR: needs momentum or betas, and refuses to step past totalSteps", () => {
  const ada = new optim.Adagrad([param]);
  assert.throws(() => new optim.OneCycleLR(ada, { maxLr: 1, totalSteps: 5 }), /momentum or beta1/);
  ada.dispose();
  const o = sgd({ momentum: 0.9 });
  const s = new optim.OneCycleLR(o, { maxLr: 1, totalSteps: 3 });
  s.step();
  s.step();
  s.step();
  assert.throws(() => s.step(), /Tried to step 4 times/);
});
