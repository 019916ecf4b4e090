/**
 * A training loop for the miniatures: each step runs in a scope (so memory stays flat), the
 * loss is read back only every `logEvery` steps, evaluation runs every `evalEvery` steps, and
 * early stopping watches one evaluation metric.
 */
import { scope } from "../core/memory.ts";
import type { Tensor } from "../core/tensor.ts";

/** What `fit` needs of an optimiser (core/optim's optimisers satisfy it). */
export interface StepOptimizer {
  zeroGrad(): void;
  step(): void;
}

export interface FitOptions {
  /** Number of optimisation steps. */
  steps: number;
  /** Computes the loss of step `i` (draw the batch inside); runs inside a scope. */
  loss: (step: number) => Tensor;
  optimizer: StepOptimizer;
  /** Runs after each optimiser step, inside the step's scope (e.g. a scheduler's step). */
  afterStep?: (step: number) => void;
  /** Read the loss back every this many steps (default 50). */
  logEvery?: number;
  /** Evaluate every this many steps (default: only at the end). */
  evalEvery?: number;
  /** Returns metrics; called every `evalEvery` steps and after the last step. */
  evaluate?: (step: number) => Promise<Record<string, number>> | Record<string, number>;
  /** Stop when `metric` has not improved for `patience` evaluations. */
  earlyStop?: { metric: string; mode?: "max" | "min"; patience: number };
  /** Called with the fraction done and a short message. */
  onProgress?: (fraction: number, message: string) => void;
}

export interface FitRecord {
  step: number;
  loss?: number;
  [metric: string]: number | undefined;
}

export interface FitResult {
  history: FitRecord[];
  /** The last evaluation's metrics (empty without `evaluate`). */
  final: Record<string, number>;
  /** Steps actually run (fewer than asked after an early stop). */
  steps: number;
  stoppedEarly: boolean;
}

/** Trains for `steps` steps and returns the loss/metric history. */
export async function fit(o: FitOptions): Promise<FitResult> {
  if (!(o.steps > 0) || !Number.isInteger(o.steps)) {
    throw new Error(`fit: steps must be a positive integer, got ${o.steps}`);
  }
  const logEvery = o.logEvery ?? 50;
  const history: FitRecord[] = [];
  let final: Record<string, number> = {};
  let best = NaN, bad = 0, stoppedEarly = false, step = 0;
  const es = o.earlyStop;
  for (; step < o.steps; step++) {
    const loss = scope(() => {
      o.optimizer.zeroGrad();
      const l = o.loss(step);
      if (l.numel !== 1) throw new Error(`fit: loss must be a scalar, got shape [${l.shape}]`);
      l.backward();
      o.optimizer.step();
      o.afterStep?.(step);
      return (step + 1) % logEvery === 0 || step === 0 ? l.detach() : null;
    });
    const rec: FitRecord = { step: step + 1 };
    if (loss) {
      rec.loss = (await loss.item()) as number;
      loss.dispose();
      if (!Number.isFinite(rec.loss)) {
        throw new Error(`fit: loss became ${rec.loss} at step ${step + 1}`);
      }
    }
    const last = step === o.steps - 1;
    if (o.evaluate && ((o.evalEvery && (step + 1) % o.evalEvery === 0) || last)) {
      final = await o.evaluate(step + 1);
      Object.assign(rec, final);
      if (es) {
        const v = final[es.metric];
        if (v === undefined) {
          throw new Error(`fit: earlyStop metric "${es.metric}" is not reported by evaluate`);
        }
        const better = Number.isNaN(best) || (es.mode === "min" ? v < best : v > best);
        if (better) [best, bad] = [v, 0];
        else if (++bad >= es.patience) stoppedEarly = true;
      }
    }
    if (rec.loss !== undefined || Object.keys(rec).length > 1) history.push(rec);
    o.onProgress?.(
      (step + 1) / o.steps,
      rec.loss !== undefined ? `loss ${rec.loss.toFixed(4)}` : "",
    );
    if (stoppedEarly) {
      step++;
      break;
    }
  }
  return { history, final, steps: step, stoppedEarly };
}
