/**
 * HiPPO-LegS and its diagonal restriction, on the host in float64 (P032: S4D's explanation of DSS).
 *
 * HiPPO-LegS (Gu et al. 2020) is A_nk = -sqrt(2n+1) sqrt(2k+1) (n > k), -(n+1) (n = k), 0 (n < k),
 * B_n = sqrt(2n+1). It is normal plus low rank, A = A_N - P P^T with P_n = sqrt(n + 1/2), and
 * its normal part is A_N = -1/2 I + S with S skew-symmetric. S4D-LegS keeps only A_N, in its
 * eigenbasis: the diagonal Λ of eigenvalues -1/2 ± iω, with B̃ = V^* B / 2. The S4D paper
 * (the explanation of DSS) shows that the SSM (A_N, B/2) has the same kernel as (A, B) in the
 * limit N -> ∞; `denseKernel` computes both so that the benchmark can measure the gap.
 */
import { eigh } from "../../core/linalg/eigh.ts";
import { luFactor, luSolve } from "../../core/linalg/dense.ts";

/** HiPPO-LegS (N x N, row-major), its input vector, low-rank factor and normal part. */
export interface HippoLegS {
  N: number;
  /** A (N x N). */
  A: Float64Array;
  /** B (N). */
  B: Float64Array;
  /** P (N): A = A_N - P P^T. */
  P: Float64Array;
  /** A_N = A + P P^T (N x N), normal: -1/2 I plus a skew-symmetric matrix. */
  AN: Float64Array;
}

export function hippoLegS(N: number): HippoLegS {
  if (!(Number.isInteger(N) && N >= 1)) {
    throw new Error(`hippoLegS: N must be a positive integer, got ${N}`);
  }
  const A = new Float64Array(N * N), AN = new Float64Array(N * N);
  const B = new Float64Array(N), P = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    B[n] = Math.sqrt(2 * n + 1);
    P[n] = Math.sqrt(n + 0.5);
  }
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < N; k++) {
      A[n * N + k] = n > k ? -B[n] * B[k] : n === k ? -(n + 1) : 0;
      AN[n * N + k] = A[n * N + k] + P[n] * P[k];
    }
  }
  return { N, A, B, P, AN };
}

/** The diagonal restriction of HiPPO-LegS: N/2 modes, one per conjugate pair. */
export interface DiagonalLegS {
  /** Re λ_n: all -1/2 (the normal part's real part). */
  Are: Float64Array;
  /** Im λ_n = ω_n > 0, ascending. */
  Aim: Float64Array;
  /** B̃ = V^* B / 2 (real and imaginary parts). */
  Bre: Float64Array;
  Bim: Float64Array;
  /** The eigenvectors V (N x N/2, row-major), real and imaginary parts: A_N V = V diag(λ). */
  Vre: Float64Array;
  Vim: Float64Array;
}

/**
 * Eigendecomposition of A_N = -1/2 I + S (S skew): S^T S = -S^2 is symmetric with each ω^2
 * twice; for a unit u of that eigenspace, w = S u / ω gives S (u - i w) = iω (u - i w), so
 * v = (u - i w) / sqrt 2 is a unit eigenvector of A_N for λ = -1/2 + iω.
 */
export function diagonalLegS(N: number): DiagonalLegS {
  if (!(Number.isInteger(N) && N >= 2 && N % 2 === 0)) {
    throw new Error(`diagonalLegS: N must be an even integer >= 2, got ${N}`);
  }
  const { AN, B } = hippoLegS(N);
  const S = Float64Array.from(AN);
  for (let n = 0; n < N; n++) S[n * N + n] += 0.5;
  const StS = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let m = 0; m < N; m++) s += S[m * N + i] * S[m * N + j];
      StS[i * N + j] = s;
    }
  }
  const { vectors } = eigh(StS, N); // ascending: the pairs (2k, 2k + 1) share one ω^2
  const M = N / 2;
  const out: DiagonalLegS = {
    Are: new Float64Array(M).fill(-0.5),
    Aim: new Float64Array(M),
    Bre: new Float64Array(M),
    Bim: new Float64Array(M),
    Vre: new Float64Array(N * M),
    Vim: new Float64Array(N * M),
  };
  for (let k = 0; k < M; k++) {
    const u = Float64Array.from({ length: N }, (_, i) => vectors[i * N + 2 * k + 1]);
    const Su = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let m = 0; m < N; m++) s += S[i * N + m] * u[m];
      Su[i] = s;
    }
    const omega = Math.hypot(...Su);
    let uB = 0, wB = 0;
    for (let i = 0; i < N; i++) {
      const w = Su[i] / omega;
      out.Vre[i * M + k] = u[i] / Math.SQRT2;
      out.Vim[i * M + k] = -w / Math.SQRT2;
      uB += u[i] * B[i];
      wB += w * B[i];
    }
    out.Aim[k] = omega;
    // B̃ = v^* B / 2 with v^* = (u + i w)^T / sqrt 2
    out.Bre[k] = uB / (2 * Math.SQRT2);
    out.Bim[k] = wB / (2 * Math.SQRT2);
  }
  return out;
}

/**
 * The basis kernels of a dense SSM x' = A x + B u discretised by the bilinear method with step
 * dt: K[n, l] = (Ā^l B̄)_n for the first `k` state coordinates n and l < L, as a k x L array
 * (the reference that the diagonal kernels and the LegS limit are compared with).
 */
export function denseKernel(
  A: Float64Array,
  B: Float64Array,
  N: number,
  dt: number,
  L: number,
  k = N,
): Float64Array {
  const I = (s: number) => {
    const m = new Float64Array(N * N);
    for (let i = 0; i < N * N; i++) m[i] = s * (dt / 2) * A[i];
    for (let i = 0; i < N; i++) m[i * N + i] += 1;
    return m;
  };
  const minus = luFactor(I(-1), N), plus = I(1); // Ā = (I - dt/2 A)^-1 (I + dt/2 A)
  let x = luSolve(minus, B.map((b) => b * dt), N, 1); // B̄ = (I - dt/2 A)^-1 dt B
  const K = new Float64Array(k * L);
  const y = new Float64Array(N);
  for (let l = 0; l < L; l++) {
    for (let n = 0; n < k; n++) K[n * L + l] = x[n];
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let m = 0; m < N; m++) s += plus[i * N + m] * x[m];
      y[i] = s;
    }
    x = luSolve(minus, y, N, 1);
  }
  return K;
}
