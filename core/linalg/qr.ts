/**
 * Householder QR of a row-major m x n Float64Array matrix, following LAPACK's dgeqrf + dorgqr
 * so that signs agree with torch.linalg.qr (which calls those routines): reflector j is
 * H_j = I - tau_j v_j v_j^T with v_j[j] = 1, and R's diagonal entry is beta_j =
 * -sign(alpha_j) * ||x_j|| (so R's diagonal may be negative). When the part of column j below
 * the diagonal is already zero, H_j = I (tau_j = 0) and R[j,j] keeps the sign of A[j,j].
 */

import { checkMatrix } from "./util.ts";

/** Packed Householder factorisation: R on and above the diagonal, v_j below it, plus tau. */
export interface HouseholderQR {
  /** m x n row-major; upper triangle is R, column j below the diagonal holds v_j[j+1:]. */
  packed: Float64Array;
  /** The k = min(m, n) reflector scalars tau_j. */
  tau: Float64Array;
}

/** dgeqrf: factors A (m x n) as Q R with Q = H_0 H_1 ... H_{k-1}. Does not modify `a`. */
export function householder(a: ArrayLike<number>, m: number, n: number): HouseholderQR {
  const A = Float64Array.from(a);
  const k = Math.min(m, n);
  const tau = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    // dlarfg on x = A[j:, j]: alpha = x[0], xnorm = ||x[1:]||.
    const alpha = A[j * n + j];
    let xnorm = 0;
    for (let i = j + 1; i < m; i++) xnorm = Math.hypot(xnorm, A[i * n + j]);
    if (xnorm === 0) continue; // H_j = I, tau_j = 0.
    const beta = alpha >= 0 ? -Math.hypot(alpha, xnorm) : Math.hypot(alpha, xnorm);
    tau[j] = (beta - alpha) / beta;
    const scale = 1 / (alpha - beta);
    for (let i = j + 1; i < m; i++) A[i * n + j] *= scale; // v_j[i] for i > j
    A[j * n + j] = beta;
    // Apply H_j to the trailing columns: A[j:, c] -= tau v (v^T A[j:, c]).
    for (let c = j + 1; c < n; c++) {
      let w = A[j * n + c];
      for (let i = j + 1; i < m; i++) w += A[i * n + j] * A[i * n + c];
      w *= tau[j];
      A[j * n + c] -= w;
      for (let i = j + 1; i < m; i++) A[i * n + c] -= w * A[i * n + j];
    }
  }
  return { packed: A, tau };
}

/**
 * dorgqr: the first `qCols` columns of Q = H_0 ... H_{k-1} as an m x qCols matrix
 * (k <= qCols <= m). Built backwards, Q := H_j Q, starting from the identity's columns.
 */
export function formQ(f: HouseholderQR, m: number, n: number, qCols: number): Float64Array {
  const { packed: A, tau } = f;
  const Q = new Float64Array(m * qCols);
  for (let i = 0; i < Math.min(m, qCols); i++) Q[i * qCols + i] = 1;
  for (let j = tau.length - 1; j >= 0; j--) {
    const t = tau[j];
    if (t === 0) continue;
    for (let c = 0; c < qCols; c++) {
      let w = Q[j * qCols + c];
      for (let i = j + 1; i < m; i++) w += A[i * n + j] * Q[i * qCols + c];
      w *= t;
      Q[j * qCols + c] -= w;
      for (let i = j + 1; i < m; i++) Q[i * qCols + c] -= w * A[i * n + j];
    }
  }
  return Q;
}

/** Result of {@link qr}: Q is m x qCols and R is qCols x n, both row-major. */
export interface QRResult {
  q: Float64Array;
  r: Float64Array;
  /** Columns of Q = rows of R: min(m, n) for "reduced", m for "complete". */
  qCols: number;
}

/**
 * torch.linalg.qr(A, mode) for a single row-major m x n matrix.
 *
 * - "reduced": Q is m x k, R is k x n with k = min(m, n).
 * - "complete": Q is m x m, R is m x n (rows below k are zero).
 *
 * Throws "linalg.qr: ..." when `a` does not hold m * n values or the mode is unknown.
 */
export function qr(
  a: ArrayLike<number>,
  m: number,
  n: number,
  mode: "reduced" | "complete" = "reduced",
): QRResult {
  checkMatrix("linalg.qr", "input", a, m, n);
  if (mode !== "reduced" && mode !== "complete") {
    throw new Error(`linalg.qr: mode must be "reduced" or "complete", got ${String(mode)}`);
  }
  const f = householder(a, m, n);
  const qCols = mode === "complete" ? m : Math.min(m, n);
  const q = formQ(f, m, n, qCols);
  const r = new Float64Array(qCols * n);
  for (let i = 0; i < Math.min(qCols, m); i++) {
    for (let j = i; j < n; j++) r[i * n + j] = f.packed[i * n + j];
  }
  return { q, r, qCols };
}
