/**
 * `optim`: optimisers with torch.optim's update equations, parameter groups and state dicts,
 * learning-rate schedulers, and gradient clipping.
 *
 * ```ts
 * const opt = new optim.AdamW(model.parameters(), { lr: 3e-4 });
 * const sched = optim.warmup(opt, new optim.CosineAnnealingLR(opt, { tMax: 900 }), {
 *   warmupSteps: 100,
 * });
 * for (let step = 0; step < 1000; step++) {
 *   scope(() => F.crossEntropy(model.forward(x), y).backward());
 *   optim.clipGradNorm(model.parameters(), 1).dispose();
 *   opt.step();
 *   opt.zeroGrad();
 *   sched.step();
 * }
 * ```
 *
 * @module
 */
export {
  Optimizer,
  type OptimizerStateDict,
  type ParamGroup,
  type Params,
  type ParamState,
} from "./optimizer.ts";
export { SGD, type SGDOptions } from "./sgd.ts";
export { Adam, type AdamOptions, AdamW } from "./adam.ts";
export { RMSprop, type RMSpropOptions } from "./rmsprop.ts";
export { Adagrad, type AdagradOptions } from "./adagrad.ts";
export {
  CosineAnnealingLR,
  LambdaLR,
  LinearLR,
  LRScheduler,
  SequentialLR,
  StepLR,
  warmup,
} from "./schedulers.ts";
export { OneCycleLR, type OneCycleOptions } from "./one_cycle.ts";
export { clipGradNorm, clipGradValue } from "./clip.ts";
