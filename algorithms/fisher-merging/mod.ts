/**
 * Merging Models with Fisher-Weighted Averaging.
 * Matena, Raffel. NeurIPS 2022. arXiv:2111.09832. Catalog id P110.
 *
 * Merging M models with the same architecture and initialisation is cast as finding the
 * parameters that maximise the joint posterior Σ_i λ_i log p(θ | θ_i, F_i), each posterior
 * approximated by a Gaussian (Laplace) whose precision is the model's diagonal Fisher
 * information. Per parameter the maximiser is (Eq. 4)
 *
 *   θ* = Σ_i λ_i F_i θ_i / Σ_i λ_i F_i,     F_i = E_x E_{y~p(y|x,θ_i)} [(∇_θ log p(y|x,θ_i))²]
 *
 * and plain ("isotropic") averaging is the case F_i = 1. `diagonalFisher` estimates F on a
 * set of inputs with one backward pass per example (per-example squared gradients, not the
 * square of a batch gradient): "expected" takes the expectation over the model's own
 * predictive distribution exactly (one backward per class, the paper's choice for
 * classification), "sampled" draws one y ~ p(y|x) per example (unbiased), "predicted" uses
 * y = argmax p(y|x). `fisherMerging` applies Eq. 4 with the paper's floor ε on F (so a
 * parameter no model is sensitive to falls back to the λ-weighted average). Keys of the
 * models without a Fisher (e.g. int buffers) are averaged by λ or copied. State-dict checks
 * and averaging come from algorithms/task-vectors.
 */
import { noGrad, runBackward } from "../../core/autograd.ts";
import { logSoftmax } from "../../core/functional.ts";
import { keep, scope } from "../../core/memory.ts";
import { rand } from "../../core/ops/creation.ts";
import type { Tensor } from "../../core/tensor.ts";
import {
  averageStateDicts,
  checkCompatible,
  disposeStateDict,
  type StateDict,
} from "../task-vectors/mod.ts";

/** How the label of each example's log-likelihood is chosen. */
export type FisherMode = "expected" | "sampled" | "predicted";

/** Options of `diagonalFisher`. */
export interface FisherOptions {
  /** Default "expected" (exact expectation over classes). */
  mode?: FisherMode;
}

/**
 * The diagonal Fisher of the parameters `params` (tensors that require grad and that
 * `logitsOf` uses) over `inputs` [N, ...]: the mean over examples of the squared gradient of
 * log p(y | x_n) with y from the model's own predictive distribution. `logitsOf(x)` maps one
 * example [1, ...] to logits [1, C]. Returns one tensor per key of `params`.
 */
export function diagonalFisher(
  params: Record<string, Tensor>,
  logitsOf: (x: Tensor) => Tensor,
  inputs: Tensor,
  o: FisherOptions = {},
): Record<string, Tensor> {
  const mode = o.mode ?? "expected";
  if (!["expected", "sampled", "predicted"].includes(mode)) {
    throw new Error(`diagonalFisher: mode must be expected, sampled or predicted, got "${mode}"`);
  }
  const keys = Object.keys(params), ps = keys.map((k) => params[k]);
  const frozen = keys.filter((k) => !params[k].requiresGrad);
  if (frozen.length) {
    throw new Error(`diagonalFisher: parameters must require grad: ${frozen.join(", ")}`);
  }
  const N = inputs.shape[0];
  if (!(N > 0)) throw new Error("diagonalFisher: no inputs");
  const F = ps.map((p) => keep(noGrad(() => p.zerosLike())));
  const add = (gs: (Tensor | null)[], w: Tensor | number) =>
    noGrad(() => gs.forEach((g, i) => g && F[i].assign(F[i].add(g.square().mul(w)))));
  for (let n = 0; n < N; n++) {
    scope(() => {
      const logp = logSoftmax(logitsOf(inputs.narrow(0, n, 1)), -1); // (1, C)
      const C = logp.shape[1], lp = logp.reshape([C]); // (C,)
      const p = noGrad(() => lp.exp());
      if (mode === "expected") {
        for (let c = 0; c < C; c++) {
          add(
            runBackward(lp.select(0, c), undefined, { inputs: ps, retainGraph: c < C - 1 }),
            p.select(0, c),
          );
        }
        return;
      }
      const y = noGrad(() =>
        mode === "predicted"
          ? lp.argmax(0, { keepdim: true })
          : p.cumsum(0).lt(rand([1])).sum().clamp(0, C - 1).reshape([1]).int()
      );
      add(runBackward(lp.gather(0, y).sum(), undefined, { inputs: ps }), 1);
    });
  }
  return scope(() =>
    noGrad(() => {
      const out = Object.fromEntries(keys.map((k, i) => [k, F[i].div(N)]));
      F.forEach((f) => f.dispose());
      return out;
    })
  );
}

/** Options of `fisherMerging`. */
export interface FisherMergeOptions {
  /** λ_i, the weight of each model (the paper sweeps them). Default uniform. */
  weights?: number[];
  /** ε: floor on every Fisher value (the paper's "fisher floor"). Default 1e-6. */
  epsilon?: number;
}

/**
 * θ* = Σ_i λ_i F_i θ_i / Σ_i λ_i F_i per parameter (Eq. 4) for the keys of the Fishers; the
 * other keys are the λ-weighted average (floats) or copied from the first model (ints).
 */
export function fisherMerging(
  models: StateDict[],
  fishers: Record<string, Tensor>[],
  o: FisherMergeOptions = {},
): StateDict {
  const M = models.length;
  const lambda = o.weights ?? models.map(() => 1), eps = o.epsilon ?? 1e-6;
  if (fishers.length !== M || lambda.length !== M) {
    throw new Error(
      `fisherMerging: ${M} models, ${fishers.length} Fishers and ${lambda.length} weights`,
    );
  }
  if (lambda.some((l) => !(l >= 0)) || !lambda.some((l) => l > 0)) {
    throw new Error(`fisherMerging: weights must be >= 0 and not all 0, got ${lambda}`);
  }
  checkCompatible("fisherMerging", models);
  const fkeys = checkCompatible("fisherMerging (Fishers)", fishers);
  for (const k of fkeys) {
    if (!(k in models[0])) throw new Error(`fisherMerging: Fisher key ${k} is not in the models`);
    if (fishers[0][k].shape.join() !== models[0][k].shape.join()) {
      throw new Error(
        `fisherMerging: Fisher ${k} has shape [${fishers[0][k].shape}], the parameter ` +
          `[${models[0][k].shape}]`,
      );
    }
  }
  return scope(() =>
    noGrad(() => {
      const avg = averageStateDicts(models, lambda);
      for (const k of fkeys) {
        const w = fishers.map((f, i) => f[k].clamp(eps).mul(lambda[i])); // λ_i F_i
        const num = w.map((wi, i) => wi.mul(models[i][k])).reduce((a, b) => a.add(b));
        avg[k].dispose();
        avg[k] = num.div(w.reduce((a, b) => a.add(b)));
      }
      return avg;
    })
  );
}

/** Disposes Fishers (an alias of task-vectors' `disposeStateDict`). */
export const disposeFishers: (...fs: Record<string, Tensor>[]) => void = disposeStateDict;
