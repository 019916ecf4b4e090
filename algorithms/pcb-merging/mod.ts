/**
 * Parameter Competition Balancing for Model Merging (PCB-Merging).
 * Du, Lee, Li, Jiang, Guo, Yu, Liu, Goh, Tang, He, Zhang. NeurIPS 2024. arXiv:2410.02396.
 * Catalog id P040.
 *
 * A training-free merge that re-weights every parameter of every task vector τ_i (stacked as
 * rows of T, n tasks x d parameters) before averaging them (Sec. 3.2):
 *
 *   β_intra,i = Softmax(n · Norm(τ_i ⊙ τ_i))                 (Eq. 1, intra-balancing)
 *   β_inter,i = Σ_j Softmax(Norm(τ_i ⊙ τ_j))                  (Eq. 2, inter-balancing)
 *   β_i = β_intra,i ⊙ β_inter,i                               (Eq. 3)
 *   m_i = β_i ≥ sorted(β_i)[(1 − r) · d],  β̂_i = m_i ⊙ β_i   (Eq. 4, drop)
 *   τ_m = Σ_i β̂_i ⊙ τ_i / Σ_i β̂_i,  θ_m = θ_0 + λ τ_m        (Eq. 5, rescale and merge)
 *
 * Norm is min-max normalisation over the d parameters of a row and Softmax runs over those d
 * parameters, as in the authors' code. Softmax is computed as d · softmax (each row divided
 * by its mean instead of its sum): the common factor d² cancels in Eq. 5 and keeps β in
 * float32's comfortable range. `variant: "code"` follows the authors' released
 * `pcb-merging.py` instead: |τ| clipped to its [0.01%, 99.99%] quantiles, intra score
 * exp(n · Norm(|τ|)²), inter score tanh(τ_i ⊙ Σ_j τ_j), and the kept scores min-max
 * normalised to [0, 1] in place of the masked β. The evolutionary search of per-task λ_i
 * (Sec. 3.3, optional in the paper) is not implemented: one λ is chosen on validation data,
 * like the baselines'. Task vectors come from algorithms/task-vectors.
 */
import { noGrad } from "../../core/autograd.ts";
import { scope } from "../../core/memory.ts";
import { stack } from "../../core/ops/shape.ts";
import type { Tensor } from "../../core/tensor.ts";
import {
  checkCompatible,
  flattenTaskVector,
  type Granularity,
  type TaskVector,
  unflattenTaskVector,
} from "../task-vectors/mod.ts";

/** Options of PCB-Merging (the paper's defaults). */
export interface PcbOptions {
  /** r: fraction of each task's parameters kept after balancing (Eq. 4). Default 0.1. */
  ratio?: number;
  /** Balance over the whole flattened model (the authors' code) or per tensor. Default "model". */
  granularity?: Granularity;
  /** The paper's equations, or the authors' released code. Default "paper". */
  variant?: "paper" | "code";
}

const run = <T>(fn: () => T): T => scope(() => noGrad(fn));

/** Min-max normalisation of each row of x [n, d] to [0, 1] (Norm in Eqs. 1-2). */
export function minMaxRows(x: Tensor): Tensor {
  return run(() => {
    const lo = x.amin(1, { keepdim: true }), hi = x.amax(1, { keepdim: true }); // (n, 1)
    return x.sub(lo).div(hi.sub(lo).clamp(1e-30));
  });
}

/** d · Softmax over each row of x [n, d] (softmax divided by its mean instead of its sum). */
function scaledSoftmaxRows(x: Tensor): Tensor {
  const e = x.sub(x.amax(1, { keepdim: true })).exp(); // (n, d)
  return e.div(e.mean(1, { keepdim: true }));
}

/** β_intra [n, d] of stacked task vectors T [n, d] (Eq. 1). */
export function intraBalancing(T: Tensor): Tensor {
  return run(() => scaledSoftmaxRows(minMaxRows(T.square()).mul(T.shape[0])));
}

/** β_inter [n, d] of stacked task vectors T [n, d] (Eq. 2). */
export function interBalancing(T: Tensor): Tensor {
  const n = T.shape[0];
  return run(() =>
    Array.from({ length: n }, (_, j) => scaledSoftmaxRows(minMaxRows(T.mul(T.narrow(0, j, 1)))))
      .reduce((a, b) => a.add(b))
  );
}

/** The value at ascending rank ⌊q · d⌋ of each row of x [n, d], as [n, 1] (an on-device sort). */
function rowQuantile(x: Tensor, q: number): Tensor {
  const d = x.shape[1];
  const k = Math.min(d - 1, Math.max(0, Math.floor(q * d)));
  return x.sort(1).values.narrow(1, k, 1); // (n, 1)
}

/** Keeps the top `ratio` of each row of β [n, d] (Eq. 4): β̂ = m ⊙ β with exactly round(r d). */
function dropRows(beta: Tensor, ratio: number): Tensor {
  const d = beta.shape[1], k = Math.round(ratio * d);
  if (k === 0) return beta.zerosLike();
  const order = beta.argsort(1, { descending: true }).narrow(1, 0, k); // (n, k)
  return beta.zerosLike().scatter(1, order, 1).mul(beta); // (n, d)
}

/**
 * The merged vector of stacked task vectors T [n, d]: Eqs. 1-5 ("paper") or the released
 * code ("code"). Returns τ_m [d].
 */
export function pcbMergeRows(T: Tensor, o: PcbOptions = {}): Tensor {
  const ratio = o.ratio ?? 0.1, variant = o.variant ?? "paper";
  if (!(ratio > 0 && ratio <= 1)) {
    throw new Error(`pcbMerging: ratio must be in (0, 1], got ${ratio}`);
  }
  if (variant !== "paper" && variant !== "code") {
    throw new Error(`pcbMerging: variant must be "paper" or "code", got "${variant}"`);
  }
  if (T.ndim !== 2) throw new Error(`pcbMerging: expected T [n, d], got [${T.shape}]`);
  return run(() => {
    if (variant === "paper") {
      const beta = intraBalancing(T).mul(interBalancing(T)); // Eq. 3, (n, d)
      const betaHat = dropRows(beta, ratio); // Eq. 4
      const den = betaHat.sum(0); // (d,)
      return betaHat.mul(T).sum(0).div(den.clamp(1e-30)).mul(den.gt(0)); // Eq. 5
    }
    const n = T.shape[0];
    const abs = T.abs();
    const clipped = abs.clamp(rowQuantile(abs, 1e-4), rowQuantile(abs, 1 - 1e-4));
    const tvs = T.sign().mul(clipped);
    const self = minMaxRows(clipped).square().mul(n).exp();
    const cross = T.mul(T.sum(0, { keepdim: true })).tanh();
    const score = self.mul(cross); // (n, d)
    const scale = minMaxRows(score.clamp(rowQuantile(score, 1 - ratio)));
    return tvs.mul(scale).sum(0).div(scale.sum(0).clamp(1e-12));
  });
}

/**
 * PCB-Merging's τ_m over task vectors with the same keys (Eqs. 1-5); the merged model is
 * `applyTaskVector(θ_0, τ_m, λ)`.
 */
export function pcbMerging(tvs: TaskVector[], o: PcbOptions = {}): TaskVector {
  const keys = checkCompatible("pcbMerging", tvs);
  const granularity = o.granularity ?? "model";
  if (granularity !== "model" && granularity !== "tensor") {
    throw new Error(`pcbMerging: granularity must be "model" or "tensor", got "${granularity}"`);
  }
  return run(() => {
    if (granularity === "tensor") {
      return Object.fromEntries(keys.map((k) => {
        const T = stack(tvs.map((tv) => tv[k].reshape([tv[k].numel]))); // (n, numel)
        return [k, pcbMergeRows(T, o).reshape([...tvs[0][k].shape])]; // (shape of k)
      }));
    }
    const T = stack(tvs.map(flattenTaskVector)); // (n, d)
    return unflattenTaskVector(pcbMergeRows(T, o), tvs[0]);
  });
}
