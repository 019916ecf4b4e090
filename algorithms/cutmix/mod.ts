/**
 * CutMix: Regularization Strategy to Train Strong Classifiers with Localizable Features.
 * Yun, Han, Oh, Chun, Choe, Yoo. ICCV 2019. arXiv:1905.04899. Catalog id P217.
 *
 * The mixing augmentations as reusable, seeded functions on image batches x [N, C, H, W] with
 * class labels y [N]: `cutmix` (the paper: paste a box of a partner image, labels mixed by the
 * box's exact area, Eq. 1-2 and Algorithm A1), and the two baselines it is compared with,
 * `mixup` (Zhang et al. 2018: convex combination of whole images) and `cutout` (DeVries &
 * Taylor 2017: zero a random square). A mixed batch carries both label vectors and the mixing
 * ratio λ; `mixedCrossEntropy` is the paper's loss λ CE(f(x̃), y_A) + (1 - λ) CE(f(x̃), y_B)
 * and `mixedTargets` the soft labels ỹ = λ y_A + (1 - λ) y_B. All randomness (λ ~ Beta(α, α),
 * the box, the partner permutation) is drawn on the host from the global stream that
 * `manualSeed` seeds, so a run is reproducible, or from a `Generator` when one is given.
 */
import { bitsAt, Generator, takeCounter } from "../../core/random.ts";
import { tensor } from "../../core/ops/creation.ts";
import { oneHot } from "../../core/ops/indexing.ts";
import { crossEntropy } from "../../core/functional.ts";
import type { Tensor } from "../../core/tensor.ts";

/** The global tensor stream as a host-side Generator: each word advances `manualSeed`'s counter. */
class GlobalStream extends Generator {
  constructor() {
    super(0);
  }
  override nextU32(): number {
    const { key, start } = takeCounter(1);
    return bitsAt(key[0], key[1], start);
  }
}

/** The generator used when none is given: the global stream seeded by `manualSeed`. */
export function globalGenerator(): Generator {
  return new GlobalStream();
}

/** Gamma(a, 1) by Marsaglia & Tsang (2000), boosted for a < 1. */
function sampleGamma(g: Generator, a: number): number {
  if (a < 1) return sampleGamma(g, a + 1) * Math.pow(g.uniform(), 1 / a);
  const d = a - 1 / 3, c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const z = g.normal();
    const v = (1 + c * z) ** 3;
    if (v <= 0) continue;
    const u = g.uniform();
    if (u < 1 - 0.0331 * z ** 4 || Math.log(u) < 0.5 * z * z + d * (1 - v + Math.log(v))) {
      return d * v;
    }
  }
}

/** λ ~ Beta(a, b), as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
export function sampleBeta(a: number, b: number, g: Generator = globalGenerator()): number {
  if (!(a > 0 && b > 0)) throw new Error(`sampleBeta: a and b must be > 0, got ${a} and ${b}`);
  for (;;) {
    const x = sampleGamma(g, a), y = sampleGamma(g, b);
    if (x + y > 0) return x / (x + y);
  }
}

/** A box of rows [y0, y1) and columns [x0, x1) of an H x W image. */
export interface Box {
  y0: number;
  y1: number;
  x0: number;
  x1: number;
}

/**
 * The CutMix box for ratio λ (Eq. 2, Algorithm A1): centre (r_x, r_y) uniform over the pixel
 * grid, sides r_w = W sqrt(1 - λ), r_h = H sqrt(1 - λ) (floored to pixels, as the official code),
 * clipped at the borders, so the box can be smaller than (1 - λ) of the image.
 */
export function randBox(h: number, w: number, lam: number, g: Generator = globalGenerator()): Box {
  const cutRat = Math.sqrt(1 - lam);
  const cutW = Math.floor(w * cutRat), cutH = Math.floor(h * cutRat);
  const rx = g.int(0, w), ry = g.int(0, h);
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  return {
    x0: clip(rx - Math.floor(cutW / 2), w),
    x1: clip(rx + Math.floor(cutW / 2), w),
    y0: clip(ry - Math.floor(cutH / 2), h),
    y1: clip(ry + Math.floor(cutH / 2), h),
  };
}

/** A mixed batch: inputs, the two label vectors and the mixing ratio. */
export interface MixedBatch {
  /** x̃ [N, C, H, W]. */
  x: Tensor;
  /** y_A: the labels of the images the batch started from (int32 [N]). */
  yA: Tensor;
  /** y_B: the labels of the partner images, y[index] (int32 [N]). */
  yB: Tensor;
  /** λ: the weight of y_A (for CutMix the exact fraction of pixels kept from x_A). */
  lam: number;
  /** The partner permutation: sample i was mixed with sample index[i]. */
  index: Int32Array;
  /** CutMix only: the pasted box (absent when the batch was left unmixed). */
  box?: Box;
}

export interface MixOptions {
  /** α of λ ~ Beta(α, α). Default 1 (λ uniform on [0, 1]), the paper's setting. */
  alpha?: number;
  /**
   * Probability of mixing a batch (otherwise it is returned with λ = 1). Default 1, as in
   * Algorithm A1; the official CIFAR scripts use 0.5 for CutMix (`--cutmix_prob 0.5`).
   */
  prob?: number;
  /** Random source; default the global stream seeded by `manualSeed`. */
  generator?: Generator;
}

function check4d(op: string, x: Tensor, y?: Tensor): void {
  if (x.ndim !== 4) throw new Error(`${op}: expected x of shape [N, C, H, W], got [${x.shape}]`);
  if (y && (y.ndim !== 1 || y.shape[0] !== x.shape[0])) {
    throw new Error(`${op}: expected labels y of shape [${x.shape[0]}], got [${y.shape}]`);
  }
}

function mixOptions(op: string, o: MixOptions) {
  const alpha = o.alpha ?? 1, prob = o.prob ?? 1;
  if (!(alpha > 0)) throw new Error(`${op}: alpha must be > 0, got ${alpha}`);
  if (!(prob >= 0 && prob <= 1)) throw new Error(`${op}: prob must be in [0, 1], got ${prob}`);
  return { alpha, prob, g: o.generator ?? globalGenerator() };
}

function identity(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/**
 * CutMix (Eq. 1): x̃ = M ⊙ x_A + (1 - M) ⊙ x_B, where M is 0 inside a random box and x_B is the
 * batch under a random permutation; λ ~ Beta(α, α) sets the box (Eq. 2) and is then replaced
 * by the exact kept fraction 1 - box area / (H W) (Algorithm A1). One λ and one box
 * per batch, as in Algorithm A1.
 */
export function cutmix(x: Tensor, y: Tensor, o: MixOptions = {}): MixedBatch {
  check4d("cutmix", x, y);
  const { alpha, prob, g } = mixOptions("cutmix", o);
  const [n, , h, w] = x.shape;
  if (g.uniform() >= prob) return { x, yA: y, yB: y, lam: 1, index: identity(n) };
  const lam0 = sampleBeta(alpha, alpha, g);
  const index = g.permutation(n);
  const box = randBox(h, w, lam0, g);
  const M = new Float32Array(h * w).fill(1);
  for (let r = box.y0; r < box.y1; r++) M.fill(0, r * w + box.x0, r * w + box.x1);
  const m = tensor(M, { shape: [1, 1, h, w] }); // (1, 1, H, W)
  const idx = tensor(index, { shape: [n] });
  const xB = x.indexSelect(0, idx);
  const mixed = x.mul(m).add(xB.mul(m.neg().add(1))); // Eq. 1
  const lam = 1 - ((box.x1 - box.x0) * (box.y1 - box.y0)) / (h * w); // adjusted λ
  return { x: mixed, yA: y, yB: y.indexSelect(0, idx), lam, index, box };
}

/** Mixup (Zhang et al. 2018): x̃ = λ x_A + (1 - λ) x_B with λ ~ Beta(α, α), one λ per batch. */
export function mixup(x: Tensor, y: Tensor, o: MixOptions = {}): MixedBatch {
  check4d("mixup", x, y);
  const { alpha, prob, g } = mixOptions("mixup", o);
  const n = x.shape[0];
  if (g.uniform() >= prob) return { x, yA: y, yB: y, lam: 1, index: identity(n) };
  const lam = sampleBeta(alpha, alpha, g);
  const index = g.permutation(n);
  const idx = tensor(index, { shape: [n] });
  const mixed = x.mul(lam).add(x.indexSelect(0, idx).mul(1 - lam));
  return { x: mixed, yA: y, yB: y.indexSelect(0, idx), lam, index };
}

export interface CutoutOptions {
  /**
   * Side of the square in pixels. Default: half the image side, rounded down (16 on 32 x 32
   * CIFAR-10, Cutout's setting and the one CutMix compares with).
   */
  size?: number;
  /** Probability of cutting each image. Default 1. */
  prob?: number;
  /** The fill value. Default 0. */
  value?: number;
  /** Random source; default the global stream seeded by `manualSeed`. */
  generator?: Generator;
}

/**
 * Cutout (DeVries & Taylor 2017): per image, a size x size square centred uniformly on the
 * pixel grid (clipped at the borders, so it may be partly outside) is set to `value`. Labels
 * are unchanged. Also usable as a seeded random occlusion at test time.
 */
export function cutout(x: Tensor, o: CutoutOptions = {}): Tensor {
  check4d("cutout", x);
  const [n, , h, w] = x.shape;
  const size = o.size ?? Math.floor(Math.min(h, w) / 2), prob = o.prob ?? 1, value = o.value ?? 0;
  if (!(Number.isInteger(size) && size >= 0)) {
    throw new Error(`cutout: size must be a non-negative integer, got ${size}`);
  }
  if (!(prob >= 0 && prob <= 1)) throw new Error(`cutout: prob must be in [0, 1], got ${prob}`);
  const g = o.generator ?? globalGenerator();
  const M = new Float32Array(n * h * w).fill(1);
  for (let i = 0; i < n; i++) {
    if (g.uniform() >= prob) continue;
    const cy = g.int(0, h), cx = g.int(0, w);
    const y0 = Math.max(cy - Math.floor(size / 2), 0), y1 = Math.min(cy + Math.ceil(size / 2), h);
    const x0 = Math.max(cx - Math.floor(size / 2), 0), x1 = Math.min(cx + Math.ceil(size / 2), w);
    for (let r = y0; r < y1; r++) M.fill(0, i * h * w + r * w + x0, i * h * w + r * w + x1);
  }
  const m = tensor(M, { shape: [n, 1, h, w] }); // (N, 1, H, W), broadcast over channels
  return value === 0 ? x.mul(m) : x.mul(m).add(m.neg().add(1).mul(value));
}

/** The paper's loss on a mixed batch: λ CE(logits, y_A) + (1 - λ) CE(logits, y_B). */
export function mixedCrossEntropy(
  logits: Tensor,
  b: Pick<MixedBatch, "yA" | "yB" | "lam">,
  o: { labelSmoothing?: number } = {},
): Tensor {
  const lA = crossEntropy(logits, b.yA, o);
  if (b.lam === 1) return lA;
  return lA.mul(b.lam).add(crossEntropy(logits, b.yB, o).mul(1 - b.lam));
}

/** Soft targets ỹ = λ onehot(y_A) + (1 - λ) onehot(y_B), float32 [N, numClasses]. */
export function mixedTargets(b: Pick<MixedBatch, "yA" | "yB" | "lam">, numClasses: number): Tensor {
  const oh = (y: Tensor) => oneHot(y, numClasses).float();
  return oh(b.yA).mul(b.lam).add(oh(b.yB).mul(1 - b.lam));
}
