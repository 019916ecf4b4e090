/**
 * The random projections P of "Measuring the Intrinsic Dimension of Objective Landscapes"
 * (Li et al., ICLR 2018, arXiv:1804.08838, P028): dense (Sec. 2) and Fastfood (the paper's
 * appendix), both mapping θ^(d) [..., d] to P θ^(d) [..., D] with columns of unit norm (in
 * expectation for Fastfood), and the fast Walsh-Hadamard transform Fastfood is built on.
 */
import { randn, randperm, tensor } from "../../core/ops/creation.ts";
import type { Tensor } from "../../core/tensor.ts";

/** A fixed random map from the d subspace coordinates to the D native parameters. */
export interface Projection {
  /** Native dimension D (number of parameters). */
  readonly D: number;
  /** Subspace dimension d. */
  readonly d: number;
  /** P θ^(d): [..., d] -> [..., D] (differentiable in θ^(d), P itself is constant). */
  project(thetaD: Tensor): Tensor;
  /** Frees the projection's tensors. */
  dispose(): void;
}

function checkDims(name: string, D: number, d: number): void {
  if (!Number.isInteger(D) || D < 1) {
    throw new Error(`${name}: D must be a positive integer, got ${D}`);
  }
  if (!Number.isInteger(d) || d < 1 || d > D) {
    throw new Error(`${name}: d must be an integer in [1, D = ${D}], got ${d}`);
  }
}

function checkInput(name: string, p: Projection, thetaD: Tensor): void {
  if (thetaD.ndim < 1 || thetaD.shape[thetaD.ndim - 1] !== p.d) {
    throw new Error(`${name}: expected θ_d of shape [..., ${p.d}], got [${thetaD.shape}]`);
  }
}

/**
 * Dense P (D x d), entries N(0, 1) with each column normalised to unit length (Sec. 2), drawn
 * from the global generator (`manualSeed`). Stored transposed as Pᵀ [d, D]: memory and time
 * O(D d), the paper's choice for small networks.
 */
export class DenseProjection implements Projection {
  /** Pᵀ, [d, D], unit-norm rows (the columns of P). */
  readonly PT: Tensor;

  constructor(readonly D: number, readonly d: number) {
    checkDims("DenseProjection", D, d);
    const raw = randn([d, D]);
    this.PT = raw.div(raw.norm(2, 1, { keepdim: true })); // (d, D), rows of unit norm
    raw.dispose();
  }

  project(thetaD: Tensor): Tensor {
    checkInput("DenseProjection", this, thetaD);
    return thetaD.matmul(this.PT); // (..., D)
  }

  dispose(): void {
    this.PT.dispose();
  }
}

/** The Sylvester Hadamard matrix H_n (entries ±1, n a power of two) as a host array. */
export function hadamardMatrix(n: number): Float32Array {
  if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0) {
    throw new Error(`hadamardMatrix: n must be a power of two, got ${n}`);
  }
  const h = new Float32Array(n * n);
  h[0] = 1;
  for (let s = 1; s < n; s *= 2) {
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) {
        const v = h[i * n + j];
        h[i * n + j + s] = v;
        h[(i + s) * n + j] = v;
        h[(i + s) * n + j + s] = -v;
      }
    }
  }
  return h;
}

/**
 * The unnormalised Walsh-Hadamard transform H_L x along the last dim (L a power of two, Sylvester
 * order, H_L H_L = L I). H_L = H_f1 ⊗ ... ⊗ H_fk with factors f ≤ 64: each stage multiplies the
 * last axis by a small H_f and rotates it to the front, so after k stages the axes are back in
 * order; O(L Σ f) work per vector instead of O(L²), differentiable through matmul.
 */
export function fwht(x: Tensor): Tensor {
  const L = x.shape[x.ndim - 1];
  if (!Number.isInteger(L) || L < 1 || (L & (L - 1)) !== 0) {
    throw new Error(`fwht: the last dim must be a power of two, got [${x.shape}]`);
  }
  const lead = x.shape.slice(0, -1);
  const N = lead.reduce((a, b) => a * b, 1);
  let bits = Math.round(Math.log2(L));
  const factors: number[] = [];
  while (bits > 0) {
    const b = Math.min(6, bits);
    factors.push(2 ** b);
    bits -= b;
  }
  let y = x.reshape([N, L]); // (N, L)
  for (const f of factors) {
    const H = tensor(hadamardMatrix(f), { shape: [f, f] });
    y = y.reshape([N * (L / f), f]).matmul(H); // (N L/f, f): H_f on the last axis (H symmetric)
    y = y.reshape([N, L / f, f]).transpose(1, 2).reshape([N, L]); // (N, f, L/f): axis to front
  }
  return y.reshape([...lead, L]); // (..., L)
}

/**
 * Fastfood P (the paper's appendix): P θ = (H G Π H B [θ; 0])[:D] / (sqrt(L Σ_i G_i²)
 * sqrt(D / L)), with B = diag(±1), Π a random permutation, G = diag(N(0, 1)), H the
 * unnormalised Walsh-Hadamard transform and L = 2^ceil(log2 D). The divisor makes every column
 * of the L x L product unit norm; keeping D of its L rows shrinks that by sqrt(D / L), which the
 * second factor undoes, so columns of P have unit norm in expectation (the normalisation of the
 * authors' code). Memory O(L), time O(L log L) per projection. Drawn from the global generator
 * (`manualSeed`).
 */
export class FastfoodProjection implements Projection {
  /** L = 2^ceil(log2 D), the padded size. */
  readonly L: number;
  /** B: [L] of ±1. */
  readonly B: Tensor;
  /** Π: [L] int32 permutation. */
  readonly Pi: Tensor;
  /** G: [L] of N(0, 1). */
  readonly G: Tensor;
  /** sqrt(L Σ G²) sqrt(D / L), a scalar tensor. */
  readonly divisor: Tensor;

  constructor(readonly D: number, readonly d: number) {
    checkDims("FastfoodProjection", D, d);
    this.L = 2 ** Math.ceil(Math.log2(D));
    const L = this.L;
    const u = randn([L]);
    this.B = u.sign().add(u.eq(0).float()); // (L,), ±1 (a zero draw counts as +1)
    u.dispose();
    this.Pi = randperm(L);
    this.G = randn([L]);
    this.divisor = this.G.square().sum().mul(L).sqrt().mul(Math.sqrt(D / L));
  }

  project(thetaD: Tensor): Tensor {
    checkInput("FastfoodProjection", this, thetaD);
    const x = thetaD.pad([0, this.L - this.d]); // (..., L): θ padded with zeros
    const hb = fwht(x.mul(this.B)); // H B θ
    const g = hb.indexSelect(hb.ndim - 1, this.Pi).mul(this.G); // G Π H B θ
    return fwht(g).narrow(-1, 0, this.D).div(this.divisor); // (..., D)
  }

  dispose(): void {
    for (const t of [this.B, this.Pi, this.G, this.divisor]) t.dispose();
  }
}

/** Which projection a `SubspaceModule` builds. */
export type ProjectionKind = "dense" | "fastfood";

/** Builds a projection of the given kind (both draw from the global generator). */
export function makeProjection(kind: ProjectionKind, D: number, d: number): Projection {
  if (kind === "dense") return new DenseProjection(D, d);
  if (kind === "fastfood") return new FastfoodProjection(D, d);
  throw new Error(`makeProjection: kind must be "dense" or "fastfood", got "${kind}"`);
}
