/**
 * Functional ops (`F`): activations, losses, normalisation, attention. All are composed from
 * the core's primitives, so their gradients (and double backward) come for free; the
 * exceptions are binaryCrossEntropyWithLogits, whose closed-form backward is stable at x = 0,
 * and softmax, logSoftmax, layerNorm and scaledDotProductAttention (without dropout), which run
 * one fused kernel where the backend has it (ops/fused.ts; their backward passes are composed).
 */
import { noGrad, record } from "./autograd.ts";
import { rand } from "./ops/creation.ts";
import { where } from "./ops/elementwise.ts";
import { fusedAttention, fusedLayerNorm, fusedSoftmax } from "./ops/fused.ts";
import { bmmT } from "./ops/matmul.ts";
import { pad } from "./ops/shape.ts";
import { fmtShape, normDim } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

export { pad, where };

export type Reduction = "mean" | "sum" | "none";

function reduce(loss: Tensor, reduction: Reduction | "batchmean" = "mean", op = "loss"): Tensor {
  if (reduction === "mean") return loss.mean();
  if (reduction === "sum") return loss.sum();
  if (reduction === "none") return loss;
  throw new Error(`${op}: unknown reduction "${reduction}"; expected "mean", "sum" or "none"`);
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.join() !== b.shape.join()) {
    throw new Error(`${op}: input ${fmtShape(a.shape)} and target ${fmtShape(b.shape)} differ`);
  }
}

// ------------------------------------------------------------------------- activations
export const relu = (x: Tensor): Tensor => x.relu();
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const tanh = (x: Tensor): Tensor => x.tanh();
export const silu = (x: Tensor): Tensor => x.silu();
export const gelu = (x: Tensor, o: { approximate?: "none" | "tanh" } = {}): Tensor => x.gelu(o);
export const leakyRelu = (x: Tensor, negativeSlope = 0.01): Tensor => x.leakyRelu(negativeSlope);
export const elu = (x: Tensor, alpha = 1): Tensor => x.elu(alpha);
export const softplus = (x: Tensor, o: { beta?: number; threshold?: number } = {}): Tensor =>
  x.softplus(o);

/** softmax along `dim` (max-shifted for stability). */
export function softmax(x: Tensor, dim = -1): Tensor {
  dim = normDim("softmax", dim, x.ndim);
  if (dim === x.ndim - 1) {
    const y = fusedSoftmax(x, false);
    if (y) return y;
  }
  const m = noGrad(() => x.amax(dim, { keepdim: true }));
  const e = x.sub(m).exp();
  return e.div(e.sum(dim, { keepdim: true }));
}

/**
 * log softmax along `dim`, as (x - m) - log(sum(exp(x - m))) with m the row max, so that the
 * largest entry's result is not rounded at the scale of x (x - logsumexp(x) would be).
 */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  dim = normDim("logSoftmax", dim, x.ndim);
  if (dim === x.ndim - 1) {
    const y = fusedSoftmax(x, true);
    if (y) return y;
  }
  const m0 = noGrad(() => x.amax(dim, { keepdim: true }));
  // All -inf rows: shift by 0 (the result is NaN, as PyTorch's; so is any row with +inf).
  const xs = x.sub(where(m0.eq(-Infinity), 0, m0));
  return xs.sub(xs.exp().sum(dim, { keepdim: true }).log());
}

// ------------------------------------------------------------------------------ losses
export interface NllOptions {
  /** Per-class weights, shape [C]. */
  weight?: Tensor;
  /** Target value that contributes no loss and no gradient (default -100). */
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** Moves the class dim last: [N, C, d...] -> [N, d..., C]; [C] stays. */
function classLast(x: Tensor): Tensor {
  if (x.ndim <= 2) return x;
  return x.permute([0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2), 1]);
}

/** Negative log-likelihood of class indices given log-probabilities [N, C, d...] or [C]. */
export function nllLoss(logp: Tensor, target: Tensor, o: NllOptions = {}): Tensor {
  const { weight, ignoreIndex = -100, reduction = "mean" } = o;
  if (target.dtype !== "int32") {
    throw new Error(`nllLoss: target must hold int32 class indices, got ${target.dtype}`);
  }
  const lp = classLast(logp); // (..., C)
  const expect = logp.ndim === 1 ? [] : [logp.shape[0], ...logp.shape.slice(2)];
  if (target.shape.join() !== expect.join()) {
    throw new Error(
      `nllLoss: target ${fmtShape(target.shape)} does not match input ${
        fmtShape(logp.shape)
      } (expected ${fmtShape(expect)})`,
    );
  }
  const keep = target.ne(ignoreIndex);
  const safe = where(keep, target, 0);
  const picked = lp.gather(-1, safe.unsqueeze(-1)).squeeze(-1); // (...)
  const w = (weight ? weight.gather(0, safe.reshape([-1])).reshape(safe.shape) : keep.float())
    .mul(keep);
  const loss = picked.mul(w).neg();
  if (reduction === "mean") return loss.sum().div(w.sum());
  return reduce(loss, reduction, "nllLoss");
}

export interface CrossEntropyOptions extends NllOptions {
  /** Mix the target with the uniform distribution by this amount (default 0). */
  labelSmoothing?: number;
}

/**
 * Cross entropy between logits [N, C, d...] (or [C]) and class indices (int32) or class
 * probabilities (float, same shape as the logits), with PyTorch's weight, ignoreIndex,
 * labelSmoothing and reduction semantics.
 */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  const { weight, ignoreIndex = -100, reduction = "mean", labelSmoothing: eps = 0 } = o;
  if (!(eps >= 0 && eps <= 1)) {
    throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
  }
  const cdim = logits.ndim === 1 ? 0 : 1;
  const C = logits.shape[cdim];
  const logp = logSoftmax(logits, cdim);
  const wview = weight?.reshape([C, ...Array(Math.max(logits.ndim - cdim - 1, 0)).fill(1)]);
  if (target.dtype === "float32") {
    sameShape("crossEntropy", logits, target);
    const t = eps > 0 ? target.mul(1 - eps).add(eps / C) : target;
    const lw = wview ? logp.mul(wview) : logp;
    const loss = lw.mul(t).sum(cdim).neg();
    return reduce(loss, reduction, "crossEntropy");
  }
  const nll = nllLoss(logp, target, { weight, ignoreIndex, reduction });
  if (eps === 0) return nll;
  const keep = target.ne(ignoreIndex);
  const smooth = (wview ? logp.mul(wview) : logp).sum(cdim).neg().mul(keep);
  let s: Tensor;
  if (reduction === "mean") {
    const denom = weight
      ? weight.gather(0, where(keep, target, 0).reshape([-1])).mul(keep.reshape([-1])).sum()
      : keep.float().sum();
    s = smooth.sum().div(denom);
  } else s = reduce(smooth, reduction, "crossEntropy");
  return nll.mul(1 - eps).add(s.mul(eps / C));
}

export function mseLoss(input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor {
  sameShape("mseLoss", input, target);
  const d = input.sub(target);
  return reduce(d.mul(d), o.reduction, "mseLoss");
}

export function l1Loss(input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor {
  sameShape("l1Loss", input, target);
  return reduce(input.sub(target).abs(), o.reduction, "l1Loss");
}

/** Quadratic below `beta` (default 1), linear above (PyTorch's smooth_l1_loss). */
export function smoothL1Loss(
  input: Tensor,
  target: Tensor,
  o: { reduction?: Reduction; beta?: number } = {},
): Tensor {
  sameShape("smoothL1Loss", input, target);
  const beta = o.beta ?? 1;
  const d = input.sub(target), a = d.abs();
  const loss = beta === 0 ? a : where(a.lt(beta), d.mul(d).mul(0.5 / beta), a.sub(0.5 * beta));
  return reduce(loss, o.reduction, "smoothL1Loss");
}

/** BCE on probabilities; each log is clamped at -100 as PyTorch does. */
export function binaryCrossEntropy(
  p: Tensor,
  y: Tensor,
  o: { weight?: Tensor; reduction?: Reduction } = {},
): Tensor {
  sameShape("binaryCrossEntropy", p, y);
  const logs = () => [p.log().clamp(-100), p.rsub(1).log().clamp(-100)];
  const value = noGrad(() => {
    const [lp, l1p] = logs();
    return y.mul(lp).add(y.rsub(1).mul(l1p)).neg();
  });
  // PyTorch's backward: (p - y) / max(p (1 - p), 1e-12), finite (0 at p = y) at p = 0 and 1.
  let loss = record(value, "binaryCrossEntropy", [p, y], (g) => {
    const [lp, l1p] = logs();
    return [g.mul(p.sub(y)).div(p.mul(p.rsub(1)).clamp(1e-12)), g.mul(l1p.sub(lp))];
  });
  if (o.weight) loss = loss.mul(o.weight);
  return reduce(loss, o.reduction, "binaryCrossEntropy");
}

/**
 * BCE on logits: (1 - y) x + L softplus(-x) with L = 1 + (posWeight - 1) y, computed stably;
 * its backward is the closed form (1 - y) + L (sigmoid(x) - 1), exact at x = 0.
 */
export function binaryCrossEntropyWithLogits(
  x: Tensor,
  y: Tensor,
  o: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {},
): Tensor {
  sameShape("binaryCrossEntropyWithLogits", x, y);
  const L = () => (o.posWeight ? o.posWeight.sub(1).mul(y).add(1) : null);
  const sp = (t: Tensor) => t.abs().neg().exp().log1p().add(t.neg().relu()); // softplus(-t)
  const value = noGrad(() => {
    const l = L();
    return y.rsub(1).mul(x).add(l ? l.mul(sp(x)) : sp(x));
  });
  let loss = record(value, "bceWithLogits", [x, y], (g) => {
    const l = L();
    const s = x.sigmoid().sub(1);
    const gx = y.rsub(1).add(l ? l.mul(s) : s);
    const gy = o.posWeight ? o.posWeight.sub(1).mul(sp(x)).sub(x) : x.neg();
    return [g.mul(gx), g.mul(gy)];
  });
  if (o.weight) loss = loss.mul(o.weight);
  return reduce(loss, o.reduction, "binaryCrossEntropyWithLogits");
}

/**
 * KL divergence with `input` as log-probabilities: target (log target - input), zero where
 * target is 0. reduction "batchmean" divides the sum by the batch size (the true KL).
 */
export function klDiv(
  input: Tensor,
  target: Tensor,
  o: { reduction?: Reduction | "batchmean"; logTarget?: boolean } = {},
): Tensor {
  const loss = o.logTarget
    ? target.exp().mul(target.sub(input))
    : where(target.gt(0), target.mul(target.log().sub(input)), 0);
  if (o.reduction === "batchmean") return loss.sum().div(input.ndim ? input.shape[0] : 1);
  return reduce(loss, o.reduction, "klDiv");
}

// ------------------------------------------------------------------ similarity / norms
export function cosineSimilarity(
  a: Tensor,
  b: Tensor,
  o: { dim?: number; eps?: number } = {},
): Tensor {
  const dim = o.dim ?? 1, eps = o.eps ?? 1e-8;
  const na = a.norm(2, dim, { keepdim: true }).clamp(eps);
  const nb = b.norm(2, dim, { keepdim: true }).clamp(eps);
  return a.div(na).mul(b.div(nb)).sum(dim);
}

/** x / max(||x||_p, eps) along `dim` (defaults p = 2, dim = 1, eps = 1e-12). */
export function normalize(x: Tensor, o: { p?: number; dim?: number; eps?: number } = {}): Tensor {
  return x.div(x.norm(o.p ?? 2, o.dim ?? 1, { keepdim: true }).clamp(o.eps ?? 1e-12));
}

/** y = x W^T + b with W of shape [out, in]; no transpose copy is made. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const inF = weight.shape[1];
  if (weight.ndim !== 2 || x.shape[x.ndim - 1] !== inF) {
    throw new Error(
      `linear: input ${fmtShape(x.shape)} does not match weight ${
        fmtShape(weight.shape)
      } (expected last dim ${inF})`,
    );
  }
  const lead = x.shape.slice(0, -1);
  const y = bmmT(
    x.float().reshape([1, -1, inF]),
    weight.reshape([1, weight.shape[0], inF]),
    false,
    true,
  )
    .reshape([...lead, weight.shape[0]]);
  return bias ? y.add(bias) : y;
}

/** Zeroes each element with probability p and scales the rest by 1 / (1 - p) in training. */
export function dropout(x: Tensor, o: { p?: number; training?: boolean } = {}): Tensor {
  const p = o.p ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  if (o.training === false || p === 0) return x;
  if (p === 1) return x.mul(0);
  return x.mul(rand([...x.shape]).ge(p)).div(1 - p);
}

function normDimsOf(op: string, x: Tensor, normalizedShape: number[]): number[] {
  const k = normalizedShape.length;
  if (x.shape.slice(x.ndim - k).join() !== normalizedShape.join()) {
    throw new Error(
      `${op}: input ${fmtShape(x.shape)} does not end with normalizedShape ${
        fmtShape(normalizedShape)
      }`,
    );
  }
  return Array.from({ length: k }, (_, i) => x.ndim - k + i);
}

export interface NormAffine {
  weight?: Tensor | null;
  bias?: Tensor | null;
  eps?: number;
}

export function layerNorm(x: Tensor, normalizedShape: number[], o: NormAffine = {}): Tensor {
  const dims = normDimsOf("layerNorm", x, normalizedShape);
  const fused = fusedLayerNorm(x, dims.length, o.weight ?? null, o.bias ?? null, o.eps ?? 1e-5);
  if (fused) return fused;
  const mu = x.mean(dims, { keepdim: true });
  const xc = x.sub(mu);
  const v = xc.mul(xc).mean(dims, { keepdim: true });
  let y = xc.mul(v.add(o.eps ?? 1e-5).rsqrt());
  if (o.weight) y = y.mul(o.weight);
  if (o.bias) y = y.add(o.bias);
  return y;
}

/** x / sqrt(mean(x^2) + eps) * weight; eps defaults to float32's machine epsilon (PyTorch). */
export function rmsNorm(x: Tensor, normalizedShape: number[], o: NormAffine = {}): Tensor {
  const dims = normDimsOf("rmsNorm", x, normalizedShape);
  const y = x.mul(
    x.mul(x).mean(dims, { keepdim: true }).add(o.eps ?? 1.1920928955078125e-7).rsqrt(),
  );
  return o.weight ? y.mul(o.weight) : y;
}

export interface BatchNormOptions extends NormAffine {
  /** Use batch statistics and update the running ones (default false). */
  training?: boolean;
  momentum?: number;
}

/**
 * Batch norm over [N, C, ...]. In training, normalises with the batch's (biased) statistics and
 * updates runningMean/runningVar in place (unbiased variance), as PyTorch does.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  o: BatchNormOptions = {},
): Tensor {
  if (x.ndim < 2) {
    throw new Error(`batchNorm: expected input [N, C, ...], got ${fmtShape(x.shape)}`);
  }
  const C = x.shape[1];
  const dims = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
  const view = [1, C, ...Array(x.ndim - 2).fill(1)];
  let mu: Tensor, v: Tensor;
  if (o.training || !runningMean || !runningVar) {
    mu = x.mean(dims, { keepdim: true });
    const xc = x.sub(mu);
    v = xc.mul(xc).mean(dims, { keepdim: true });
    const n = x.numel / C;
    if (n <= 1 && o.training) {
      throw new Error(
        `batchNorm: expected more than 1 value per channel in training, got input ${
          fmtShape(x.shape)
        }`,
      );
    }
    if (o.training && runningMean && runningVar) {
      const m = o.momentum ?? 0.1;
      noGrad(() => {
        runningMean.assign(runningMean.mul(1 - m).add(mu.reshape([C]).mul(m)));
        runningVar.assign(runningVar.mul(1 - m).add(v.reshape([C]).mul(m * n / (n - 1))));
      });
    }
  } else {
    mu = runningMean.reshape(view);
    v = runningVar.reshape(view);
  }
  let y = x.sub(mu).mul(v.add(o.eps ?? 1e-5).rsqrt());
  if (o.weight) y = y.mul(o.weight.reshape(view));
  if (o.bias) y = y.add(o.bias.reshape(view));
  return y;
}

export function groupNorm(x: Tensor, numGroups: number, o: NormAffine = {}): Tensor {
  const [N, C] = x.shape;
  if (x.ndim < 2 || C % numGroups !== 0) {
    throw new Error(
      `groupNorm: channels ${C} of input ${
        fmtShape(x.shape)
      } are not divisible into ${numGroups} groups`,
    );
  }
  const g = x.reshape([N, numGroups, -1]); // (N, G, C/G * spatial)
  const mu = g.mean(2, { keepdim: true });
  const gc = g.sub(mu);
  const v = gc.mul(gc).mean(2, { keepdim: true });
  let y = gc.mul(v.add(o.eps ?? 1e-5).rsqrt()).reshape(x.shape);
  const view = [1, C, ...Array(x.ndim - 2).fill(1)];
  if (o.weight) y = y.mul(o.weight.reshape(view));
  if (o.bias) y = y.add(o.bias.reshape(view));
  return y;
}

/** Rows of `weight` [num, dim] at `index`; the paddingIdx row gets no gradient. */
export function embedding(index: Tensor, weight: Tensor, o: { paddingIdx?: number } = {}): Tensor {
  if (index.dtype !== "int32") {
    throw new Error(`embedding: index must be int32, got ${index.dtype}`);
  }
  const out = weight.indexSelect(0, index.reshape([-1])).reshape([...index.shape, weight.shape[1]]);
  if (o.paddingIdx === undefined) return out;
  const pad = o.paddingIdx < 0 ? o.paddingIdx + weight.shape[0] : o.paddingIdx;
  return where(index.eq(pad).unsqueeze(-1), out.detach(), out);
}

export interface AttentionOptions {
  /** bool (true = may attend) or float (added to the scores), broadcast to [..., L, S]. */
  attnMask?: Tensor | null;
  dropoutP?: number;
  isCausal?: boolean;
  /** Defaults to 1 / sqrt(E). */
  scale?: number;
}

/** softmax(q k^T * scale + mask) v over q [..., L, E], k [..., S, E], v [..., S, Ev]. */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: AttentionOptions = {},
): Tensor {
  const E = q.shape[q.ndim - 1];
  const [L, S] = [q.shape[q.ndim - 2], k.shape[k.ndim - 2]];
  if (o.isCausal && o.attnMask) {
    throw new Error("scaledDotProductAttention: give attnMask or isCausal, not both");
  }
  const scale = o.scale ?? 1 / Math.sqrt(E);
  if (!o.dropoutP) {
    const fused = fusedAttention(q, k, v, o.attnMask ?? null, scale, !!o.isCausal);
    if (fused) return fused;
  }
  const sameBatch = q.shape.slice(0, -2).join() === k.shape.slice(0, -2).join();
  const scores =
    (sameBatch
      ? bmmT(q.reshape([-1, L, E]), k.reshape([-1, S, E]), false, true).reshape([
        ...q.shape.slice(0, -2),
        L,
        S,
      ])
      : q.matmul(k.mT)).mul(scale);
  let s = scores;
  if (o.isCausal) {
    const causal = s.onesLike().bool().tril();
    s = s.maskedFill(causal.logicalNot(), -Infinity);
  }
  if (o.attnMask) {
    s = o.attnMask.dtype === "bool"
      ? s.maskedFill(o.attnMask.logicalNot(), -Infinity)
      : s.add(o.attnMask);
  }
  // Rows with every score masked attend to nothing and give zeros (PyTorch's safe softmax);
  // their scores are replaced first so no NaN reaches the values or the gradient.
  const dead = noGrad(() => s.amax(-1, { keepdim: true }).eq(-Infinity));
  let p = where(dead, 0, softmax(where(dead, 0, s), -1));
  if (o.dropoutP) p = dropout(p, { p: o.dropoutP });
  return p.matmul(v);
}

export {
  adaptiveAvgPool1d,
  adaptiveAvgPool2d,
  avgPool1d,
  avgPool2d,
  conv1d,
  conv2d,
  convTranspose2d,
  fold,
  interpolate,
  maxPool1d,
  maxPool2d,
  unfold,
} from "./conv.ts";
export type {
  AvgPoolOptions,
  ConvOptions,
  ConvTransposeOptions,
  InterpolateOptions,
  MaxPool1dOptions,
  MaxPoolOptions,
  UnfoldOptions,
} from "./conv.ts";
