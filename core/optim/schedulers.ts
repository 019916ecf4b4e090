/**
 * Learning-rate schedulers with torch.optim.lr_scheduler's semantics: construction sets the
 * first learning rate (step 0), each `step()` after `optimizer.step()` moves to the next, and
 * `getLastLr()` returns the current ones. The recursive ("chainable") formulas are PyTorch's,
 * so the sequences agree with it to rounding. Groups get `initialLr` (PyTorch's
 * "initial_lr"). OneCycleLR is in one_cycle.ts.
 *
 * Options keep PyTorch's names in camelCase (`stepSize`, `tMax`, `etaMin`, `totalIters`).
 * `stateDict()` holds the progress (base_lrs, last_epoch, _step_count, _last_lr) under
 * PyTorch's keys; hyper-parameters come from the constructor and are not restored.
 */
import type { Optimizer, ParamGroup } from "./optimizer.ts";

export abstract class LRScheduler {
  baseLrs: number[];
  lastEpoch: number;
  protected stepCount = 0;
  /** True during the step made at construction (PyTorch's `_is_initial`). */
  protected isInitial = false;
  #lastLr: number[] = [];

  /** Subclasses set their options, then call `this.initialStep()` at the end of theirs. */
  constructor(readonly optimizer: Optimizer, lastEpoch = -1) {
    this.optimizer.paramGroups.forEach((g, i) => {
      if (lastEpoch === -1) g.initialLr ??= g.lr;
      else if (g.initialLr === undefined) {
        throw new Error(
          `${this.constructor.name}: param 'initial_lr' is not specified in param_groups[${i}] ` +
            "when resuming scheduler with last_epoch >= 0",
        );
      }
    });
    this.baseLrs = this.groups.map((g) => g.initialLr);
    this.lastEpoch = lastEpoch;
  }

  protected get groups(): ParamGroup[] {
    return this.optimizer.paramGroups;
  }
  protected get lrs(): number[] {
    return this.groups.map((g) => g.lr);
  }

  /** The step made at construction: sets the learning rate of epoch lastEpoch + 1. */
  protected initialStep(): void {
    this.stepCount = 0;
    this.isInitial = true;
    try {
      this.step();
    } finally {
      this.isInitial = false;
    }
  }

  /** Moves to the next epoch's learning rates (call after `optimizer.step()`). */
  step(): void {
    this.stepCount++;
    this.updateLr();
  }

  /** Sets the rates for the next epoch, or for `epoch` (closed form where there is one). */
  updateLr(epoch?: number): void {
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr?.() ?? this.getLr();
    }
    this.groups.forEach((g, i) => (g.lr = values[i]));
    this.#lastLr = this.lrs;
  }

  /** The (chainable) rule: next rates from the current ones. */
  protected abstract getLr(): number[];
  /** The rates at `lastEpoch` from the base rates, where a closed form exists. */
  protected closedFormLr?(): number[];

  /** The learning rates set by the last step. */
  getLastLr(): number[] {
    return [...this.#lastLr];
  }

  stateDict(): Record<string, unknown> {
    return {
      base_lrs: [...this.baseLrs],
      last_epoch: this.lastEpoch,
      _step_count: this.stepCount,
      _last_lr: [...this.#lastLr],
    };
  }
  loadStateDict(sd: Record<string, unknown>): void {
    this.baseLrs = [...(sd.base_lrs as number[])];
    this.lastEpoch = sd.last_epoch as number;
    this.stepCount = sd._step_count as number;
    this.#lastLr = [...(sd._last_lr as number[])];
  }
}

/** lr = base_lr * lrLambda(epoch) (one function, or one per group). */
export class LambdaLR extends LRScheduler {
  readonly lrLambdas: ((epoch: number) => number)[];
  constructor(
    optimizer: Optimizer,
    lrLambda: ((epoch: number) => number) | ((epoch: number) => number)[],
    lastEpoch = -1,
  ) {
    super(optimizer, lastEpoch);
    const n = optimizer.paramGroups.length;
    this.lrLambdas = Array.isArray(lrLambda) ? lrLambda : Array(n).fill(lrLambda);
    if (this.lrLambdas.length !== n) {
      throw new Error(`LambdaLR: Expected ${n} lr_lambdas, but got ${this.lrLambdas.length}`);
    }
    this.initialStep();
  }
  protected getLr(): number[] {
    return this.baseLrs.map((b, i) => b * this.lrLambdas[i](this.lastEpoch));
  }
}

/** Multiplies the rate by gamma every stepSize epochs. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: Optimizer, o: { stepSize: number; gamma?: number; lastEpoch?: number }) {
    super(optimizer, o.lastEpoch);
    this.stepSize = o.stepSize;
    this.gamma = o.gamma ?? 0.1;
    this.initialStep();
  }
  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.lrs;
    return this.lrs.map((lr) => lr * this.gamma);
  }
  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }
}

/** Scales the rate linearly from startFactor to endFactor over totalIters epochs. */
export class LinearLR extends LRScheduler {
  readonly startFactor: number;
  readonly endFactor: number;
  readonly totalIters: number;
  constructor(
    optimizer: Optimizer,
    o: { startFactor?: number; endFactor?: number; totalIters?: number; lastEpoch?: number } = {},
  ) {
    super(optimizer, o.lastEpoch);
    this.startFactor = o.startFactor ?? 1 / 3;
    this.endFactor = o.endFactor ?? 1;
    this.totalIters = o.totalIters ?? 5;
    if (this.startFactor > 1 || this.startFactor <= 0) {
      throw new Error("LinearLR: startFactor must be in (0, 1]");
    }
    if (this.endFactor > 1 || this.endFactor < 0) {
      throw new Error("LinearLR: endFactor must be in [0, 1]");
    }
    this.initialStep();
  }
  protected getLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: T } = this;
    if (this.lastEpoch === 0) return this.lrs.map((lr) => lr * s);
    if (this.isInitial || this.lastEpoch > T) return this.lrs;
    const f = 1 + (e - s) / (T * s + (this.lastEpoch - 1) * (e - s));
    return this.lrs.map((lr) => lr * f);
  }
  protected override closedFormLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: T } = this;
    return this.baseLrs.map((b) => b * (s + (e - s) * Math.min(T, this.lastEpoch) / T));
  }
}

/** Cosine annealing from the base rate to etaMin over tMax epochs (SGDR without restarts). */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: Optimizer, o: { tMax: number; etaMin?: number; lastEpoch?: number }) {
    super(optimizer, o.lastEpoch);
    this.tMax = o.tMax;
    this.etaMin = o.etaMin ?? 0;
    this.initialStep();
  }
  protected getLr(): number[] {
    const { tMax: T, etaMin: eta, lastEpoch: t } = this;
    if (this.isInitial) return this.lrs;
    if (this.stepCount === 1 && t > 0) {
      return this.baseLrs.map((b) => eta + (b - eta) * (1 + Math.cos(t * Math.PI / T)) / 2);
    }
    const m = 2 * T;
    if ((((t - 1 - T) % m) + m) % m === 0) {
      return this.lrs.map((lr, i) =>
        lr + (this.baseLrs[i] - eta) * (1 - Math.cos(Math.PI / T)) / 2
      );
    }
    const r = (1 + Math.cos(Math.PI * t / T)) / (1 + Math.cos(Math.PI * (t - 1) / T));
    return this.lrs.map((lr) => r * (lr - eta) + eta);
  }
  protected override closedFormLr(): number[] {
    const { tMax: T, etaMin: eta, lastEpoch: t } = this;
    return this.baseLrs.map((b) => eta + (b - eta) * (1 + Math.cos(Math.PI * t / T)) / 2);
  }
}

/**
 * Runs `schedulers` one after another, switching at each milestone (the next scheduler
 * starts from its epoch 0 there).
 */
export class SequentialLR {
  lastEpoch: number;
  #lastLr: number[];

  constructor(
    readonly optimizer: Optimizer,
    readonly schedulers: LRScheduler[],
    readonly milestones: number[],
    lastEpoch = -1,
  ) {
    if (!schedulers.length) throw new Error("SequentialLR: expects at least one scheduler");
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) {
        throw new Error(`SequentialLR: scheduler at index ${i} belongs to another optimizer`);
      }
    });
    if (milestones.length !== schedulers.length - 1) {
      throw new Error(
        `SequentialLR: expects number of schedulers provided to be one more than the number of ` +
          `milestone points, but got ${schedulers.length} and ${milestones.length}`,
      );
    }
    this.lastEpoch = lastEpoch + 1;
    for (const g of optimizer.paramGroups) g.lr = g.initialLr;
    for (const s of schedulers) s.lastEpoch -= 1; // undo their construction steps
    const first = schedulers[this.#index(0)];
    (first as unknown as { initialStep(): void }).initialStep();
    this.#lastLr = first.getLastLr();
  }

  /** bisect_right(milestones, epoch). */
  #index(epoch: number): number {
    let i = 0;
    while (i < this.milestones.length && this.milestones[i] <= epoch) i++;
    return i;
  }

  step(): void {
    this.lastEpoch++;
    const i = this.#index(this.lastEpoch);
    const s = this.schedulers[i];
    if (i > 0 && this.milestones[i - 1] === this.lastEpoch) s.updateLr(0);
    else s.step();
    this.#lastLr = s.getLastLr();
  }

  getLastLr(): number[] {
    return [...this.#lastLr];
  }

  stateDict(): Record<string, unknown> {
    return {
      _milestones: [...this.milestones],
      last_epoch: this.lastEpoch,
      _last_lr: [...this.#lastLr],
      _schedulers: this.schedulers.map((s) => s.stateDict()),
    };
  }
  loadStateDict(sd: Record<string, unknown>): void {
    this.lastEpoch = sd.last_epoch as number;
    this.#lastLr = [...(sd._last_lr as number[])];
    (sd._schedulers as Record<string, unknown>[]).forEach((s, i) =>
      this.schedulers[i].loadStateDict(s)
    );
  }
}

/**
 * Linear warm-up then `main`: LinearLR from startFactor (default 1e-3) to 1 over
 * `warmupSteps`, then `main` from its epoch 0 (a SequentialLR with one milestone).
 */
export function warmup(
  optimizer: Optimizer,
  main: LRScheduler,
  o: { warmupSteps: number; startFactor?: number },
): SequentialLR {
  const warm = new LinearLR(optimizer, {
    startFactor: o.startFactor ?? 1e-3,
    endFactor: 1,
    totalIters: o.warmupSteps,
  });
  return new SequentialLR(optimizer, [warm, main], [o.warmupSteps]);
}
