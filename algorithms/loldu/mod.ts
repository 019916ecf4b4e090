/**
 * LoLDU: Low-Rank Adaptation via Lower-Diag-Upper Decomposition for Parameter-Efficient
 * Fine-Tuning. Shi, Wei, Wu, Ran, Sun, He, Yang. 2024. arXiv:2410.13618. Catalog id P111.
 *
 * The pretrained weight W0 (m x n, out x in) is factorised with partial pivoting as
 * W0 = P L D U (P a permutation, L unit lower-trapezoidal m x k, D = diag(d) k x k, U unit
 * upper-trapezoidal k x n, k = min(m, n)). The top-r parts L_r = L[:, :r], D_r, U_r = U[:r, :]
 * initialise the adapter and stay frozen with P; only the diagonal z (r scalars, z0 = d[:r])
 * is trained, optionally with the scalar scale σ (σ0 = alpha / r). The adapted weight is
 *
 *   W = W_res + σ P L_r diag(z) U_r,   W_res = W0 - σ0 P L_r diag(z0) U_r   (method, Fig. 3)
 *
 * so at initialisation W = W0 exactly. Written as an adapter on the untouched W0 this is
 *
 *   ΔW = P L_r diag(σ z - σ0 z0) U_r,
 *
 * zero at initialisation, computed with two thin matmuls, and mergeable into W0. The
 * factorisation (`ldu`) runs once on the host in float64 (cpu backend). What is not here: the
 * paper's ablated alternatives to the LDU initialisation of z (uniform, normal, constant...).
 */
import { hostValues } from "../../core/linalg/mod.ts";
import type { Linear, Module } from "../../core/nn/mod.ts";
import { tensor } from "../../core/ops/creation.ts";
import type { Tensor } from "../../core/tensor.ts";
import { injectAdapters, LinearAdapter, type TargetModules } from "../lora/mod.ts";

/** W = P L D U of an m x n matrix (row-major float64), k = min(m, n). */
export interface LDUFactors {
  m: number;
  n: number;
  k: number;
  /** Row i of L D U is row perm[i] of W (P has a one at (perm[i], i)). */
  perm: Int32Array;
  /** m x k, unit diagonal, zero above it. */
  L: Float64Array;
  /** The k pivots (diagonal of D). */
  d: Float64Array;
  /** k x n, unit diagonal (rows with a zero pivot are left unscaled), zero below it. */
  U: Float64Array;
}

/**
 * LDU decomposition with partial pivoting (torch.linalg.lu, then D = diag(U), U <- D^-1 U, as
 * the official code does) of a row-major m x n matrix.
 */
export function ldu(w: ArrayLike<number>, m: number, n: number): LDUFactors {
  if (w.length !== m * n) throw new Error(`ldu: expected ${m * n} values, got ${w.length}`);
  const A = Float64Array.from(w), k = Math.min(m, n);
  const perm = Int32Array.from({ length: m }, (_, i) => i);
  for (let j = 0; j < k; j++) {
    let p = j; // pivot: the largest |A[i, j]|, i >= j
    for (let i = j + 1; i < m; i++) if (Math.abs(A[i * n + j]) > Math.abs(A[p * n + j])) p = i;
    if (p !== j) {
      for (let c = 0; c < n; c++) {
        const t = A[j * n + c];
        A[j * n + c] = A[p * n + c];
        A[p * n + c] = t;
      }
      [perm[j], perm[p]] = [perm[p], perm[j]];
    }
    const pivot = A[j * n + j];
    if (pivot === 0) continue; // the column is zero below the diagonal too
    for (let i = j + 1; i < m; i++) {
      const f = (A[i * n + j] /= pivot);
      if (f !== 0) { for (let c = j + 1; c < n; c++) A[i * n + c] -= f * A[j * n + c]; }
    }
  }
  const L = new Float64Array(m * k), U = new Float64Array(k * n), d = new Float64Array(k);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < Math.min(i, k); j++) L[i * k + j] = A[i * n + j];
    if (i < k) L[i * k + i] = 1;
  }
  for (let j = 0; j < k; j++) {
    d[j] = A[j * n + j];
    const s = d[j] === 0 ? 1 : d[j];
    for (let c = j; c < n; c++) U[j * n + c] = A[j * n + c] / s;
  }
  return { m, n, k, perm, L, d, U };
}

export interface LoLDUOptions {
  /**
   * Rank r: how many LDU components are adapted (default: all, k = min(out, in), as the
   * official default configuration's rank 768 on ViT-B / RoBERTa-base).
   */
  r?: number;
  /** σ0 = alpha / r (default 1: the official `from_linear` default lora_alpha = 1). */
  alpha?: number;
  /**
   * Also train the scalar scale σ (default false: the official `get_loldu_params` returns only
   * the diagonal, and the paper's Fig. 3 marks only the diagonal trainable).
   */
  trainScale?: boolean;
}

/** W0 x + x U_r^T diag(σ z - σ0 z0) (P L_r)^T: only z (and σ with trainScale) trains. */
export class LoLDULinear extends LinearAdapter {
  readonly r: number;
  /** σ0 = alpha / r, the scale at initialisation (and throughout without trainScale). */
  readonly sigma0: number;
  /** z: the trainable diagonal, [r], initialised to the pivots d[:r] (z0). */
  vectorZ: Tensor;
  /** σ: the trainable scale, [1] (only with trainScale). */
  scalingFactor: Tensor | null;
  /** z0, frozen: the initial diagonal that the residual compensates. */
  z0: Tensor;
  /** P L_r: [m, r], frozen (non-persistent: recomputed from W0). */
  PL: Tensor;
  /** U_r: [r, n], frozen. */
  Ur: Tensor;

  constructor(base: Linear, o: LoLDUOptions = {}) {
    super(base);
    const m = base.outFeatures, n = base.inFeatures, k = Math.min(m, n);
    const r = o.r ?? k;
    if (!Number.isInteger(r) || r < 1 || r > k) {
      throw new Error(
        `LoLDULinear: r must be an integer in [1, min(out, in) = ${k}], got ${r}`,
      );
    }
    this.r = r;
    this.sigma0 = (o.alpha ?? 1) / r;
    const f = ldu(hostValues("LoLDULinear", base.weight), m, n);
    const PL = new Float32Array(m * r), Ur = new Float32Array(r * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < r; j++) PL[f.perm[i] * r + j] = f.L[i * k + j]; // (P L)[perm[i]] = L[i]
    }
    Ur.set(f.U.subarray(0, r * n));
    const z0 = Float32Array.from(f.d.subarray(0, r));
    this.PL = this.registerBuffer("loldu_PL", tensor(PL, { shape: [m, r] }), {
      persistent: false,
    });
    this.Ur = this.registerBuffer("loldu_U", tensor(Ur, { shape: [r, n] }), {
      persistent: false,
    });
    this.z0 = this.registerBuffer("loldu_z0", tensor(z0), { persistent: false });
    this.vectorZ = this.registerParameter("vector_z", tensor(z0.slice()));
    this.scalingFactor = o.trainScale
      ? this.registerParameter("scaling_factor", tensor([this.sigma0]))
      : null;
  }

  /** σ z - σ0 z0: [r], the scales of the r frozen rank-one directions in ΔW. */
  coefficients(): Tensor {
    const sz = this.scalingFactor
      ? this.vectorZ.mul(this.scalingFactor)
      : this.vectorZ.mul(this.sigma0);
    return sz.sub(this.z0.mul(this.sigma0));
  }

  deltaWeight(): Tensor {
    return this.PL.mul(this.coefficients()).matmul(this.Ur); // (m, r) diag(c) (r, n)
  }

  /** x U_r^T diag(c) (P L_r)^T: never the m x n matrix. */
  override adapterForward(x: Tensor): Tensor {
    return x.matmul(this.Ur.T).mul(this.coefficients()).matmul(this.PL.T);
  }

  override extraRepr(): string {
    return `r=${this.r}, sigma0=${this.sigma0}, trainScale=${this.scalingFactor !== null}`;
  }
}

/**
 * Adds LoLDU to the matched Linear layers (everything else frozen); returns their names. `r`
 * may be a function of the layer's shape (e.g. `(m, n) => Math.min(m, n)` for full rank).
 */
export function applyLoLDU(
  model: Module,
  targetModules: TargetModules,
  o: Omit<LoLDUOptions, "r"> & { r?: number | ((out: number, inp: number) => number) } = {},
): string[] {
  return injectAdapters(model, targetModules, (base) =>
    new LoLDULinear(base, {
      ...o,
      r: typeof o.r === "function" ? o.r(base.outFeatures, base.inFeatures) : o.r,
    }));
}
