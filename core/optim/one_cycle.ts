/**
 * OneCycleLR (torch.optim.lr_scheduler.OneCycleLR): the 1cycle policy. Writes `initialLr`,
 * `maxLr`, `minLr`, `maxMomentum` and `baseMomentum` into each group and cycles the group's
 * `momentum` (or Adam's beta1) inversely to the learning rate.
 */
import type { Optimizer, ParamGroup } from "./optimizer.ts";
import { LRScheduler } from "./schedulers.ts";

export interface OneCycleOptions {
  /** Peak learning rate (one, or one per group). */
  maxLr: number | number[];
  /** Total steps; or give epochs and stepsPerEpoch. */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Fraction of the cycle spent increasing the rate (default 0.3). */
  pctStart?: number;
  annealStrategy?: "cos" | "linear";
  /** Cycle momentum (or Adam's beta1) inversely to the rate (default true). */
  cycleMomentum?: boolean;
  baseMomentum?: number | number[];
  maxMomentum?: number | number[];
  /** initial lr = maxLr / divFactor (default 25). */
  divFactor?: number;
  /** min lr = initial lr / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /** A third phase annealing to min lr after a symmetric up/down (default false). */
  threePhase?: boolean;
  lastEpoch?: number;
}

type Phase = { end: number; lr: [string, string]; mom: [string, string] };

/** The 1cycle policy (Smith & Topin, 2017): warm up to maxLr, then anneal far below. */
export class OneCycleLR extends LRScheduler {
  readonly totalSteps: number;
  readonly cycleMomentum: boolean;
  readonly useBeta1: boolean;
  readonly #phases: Phase[];
  readonly #anneal: (a: number, b: number, pct: number) => number;

  constructor(optimizer: Optimizer, o: OneCycleOptions) {
    super(optimizer, o.lastEpoch);
    const last = o.lastEpoch ?? -1;
    if (o.totalSteps !== undefined) this.totalSteps = o.totalSteps;
    else if (o.epochs !== undefined && o.stepsPerEpoch !== undefined) {
      this.totalSteps = o.epochs * o.stepsPerEpoch;
    } else {throw new Error(
        "OneCycleLR: You must define either totalSteps OR (epochs AND stepsPerEpoch)",
      );}
    if (!(this.totalSteps > 0) || !Number.isInteger(this.totalSteps)) {
      throw new Error(`OneCycleLR: Expected positive integer total_steps, got ${this.totalSteps}`);
    }
    const pct = o.pctStart ?? 0.3, N = this.totalSteps;
    if (!(pct >= 0 && pct <= 1)) throw new Error(`OneCycleLR: pctStart must be in [0, 1]`);
    this.#phases = o.threePhase
      ? [
        { end: pct * N - 1, lr: ["initialLr", "maxLr"], mom: ["maxMomentum", "baseMomentum"] },
        { end: 2 * pct * N - 2, lr: ["maxLr", "initialLr"], mom: ["baseMomentum", "maxMomentum"] },
        { end: N - 1, lr: ["initialLr", "minLr"], mom: ["maxMomentum", "maxMomentum"] },
      ]
      : [
        { end: pct * N - 1, lr: ["initialLr", "maxLr"], mom: ["maxMomentum", "baseMomentum"] },
        { end: N - 1, lr: ["maxLr", "minLr"], mom: ["baseMomentum", "maxMomentum"] },
      ];
    const strategy = o.annealStrategy ?? "cos";
    if (strategy !== "cos" && strategy !== "linear") {
      throw new Error(`OneCycleLR: annealStrategy must be "cos" or "linear", got ${strategy}`);
    }
    this.#anneal = strategy === "cos"
      ? (a, b, p) => b + (a - b) / 2 * (Math.cos(Math.PI * p) + 1)
      : (a, b, p) => (b - a) * p + a;
    const perGroup = (v: number | number[], name: string) => {
      const a = Array.isArray(v) ? v : this.groups.map(() => v);
      if (a.length !== this.groups.length) {
        throw new Error(`OneCycleLR: expected ${this.groups.length} values for ${name}`);
      }
      return a;
    };
    const maxLrs = perGroup(o.maxLr, "maxLr");
    if (last === -1) {
      this.groups.forEach((g, i) => {
        g.initialLr = maxLrs[i] / (o.divFactor ?? 25);
        g.maxLr = maxLrs[i];
        g.minLr = g.initialLr / (o.finalDivFactor ?? 1e4);
      });
    }
    this.cycleMomentum = o.cycleMomentum ?? true;
    this.useBeta1 = "betas" in optimizer.defaults;
    if (this.cycleMomentum) {
      if (!("momentum" in optimizer.defaults) && !this.useBeta1) {
        throw new Error(
          "OneCycleLR: optimizer must support momentum or beta1 with `cycleMomentum` option enabled",
        );
      }
      const maxM = perGroup(o.maxMomentum ?? 0.95, "maxMomentum");
      const baseM = perGroup(o.baseMomentum ?? 0.85, "baseMomentum");
      if (last === -1) {
        this.groups.forEach((g, i) => {
          this.#setMomentum(g, maxM[i]);
          g.maxMomentum = maxM[i];
          g.baseMomentum = baseM[i];
        });
      }
    }
    this.baseLrs = this.groups.map((g) => g.initialLr);
    this.initialStep();
  }

  #setMomentum(g: ParamGroup, m: number): void {
    if (this.useBeta1) g.betas = [m, ...g.betas.slice(1)];
    else g.momentum = m;
  }

  protected getLr(): number[] {
    const t = this.lastEpoch;
    if (t > this.totalSteps) {
      throw new Error(
        `OneCycleLR: Tried to step ${t} times. The specified number of total steps is ${this.totalSteps}`,
      );
    }
    return this.groups.map((g) => {
      let start = 0;
      for (const [i, ph] of this.#phases.entries()) {
        if (t <= ph.end || i === this.#phases.length - 1) {
          const pct = (t - start) / (ph.end - start);
          if (this.cycleMomentum) {
            this.#setMomentum(g, this.#anneal(g[ph.mom[0]], g[ph.mom[1]], pct));
          }
          return this.#anneal(g[ph.lr[0]], g[ph.lr[1]], pct);
        }
        start = ph.end;
      }
      throw new Error("OneCycleLR: unreachable");
    });
  }
}
