/**
 * Dense linear-algebra kernels on row-major Float64Array matrices, with PyTorch (torch.linalg)
 * semantics. Sizes are passed explicitly; batching is the caller's job (loop over matrices).
 * No dependency on the Tensor class: core/ops wraps these for tensors and autograd.
 *
 * This file holds the LU family (luFactor, luSolve, solve, inv, det, slogdet), cholesky and
 * lstsq, and re-exports qr (qr.ts), eigh (eigh.ts) and svd (svd.ts).
 */

import { formQ, householder } from "./qr.ts";
import { svd } from "./svd.ts";
import { checkDim, checkMatrix, EPS, identity } from "./util.ts";

export { qr, type QRResult } from "./qr.ts";
export { eigh, type EighResult } from "./eigh.ts";
export { svd, type SVDResult } from "./svd.ts";

/** LU factorisation with partial pivoting, P A = L U (LAPACK dgetrf layout). */
export interface LUFactor {
  /** n x n: U on and above the diagonal, the multipliers of unit-lower L below it. */
  lu: Float64Array;
  /** At step i, row i was swapped with row pivots[i] (0-based; LAPACK's ipiv minus one). */
  pivots: Int32Array;
  /** det(P) = (-1)^(number of actual swaps). */
  sign: 1 | -1;
  /** Index of the first exactly-zero pivot U[i,i], or -1 when A is nonsingular. */
  singularAt: number;
}

/**
 * LU with partial pivoting of one n x n matrix (torch.linalg.lu_factor). Like LAPACK it
 * completes the factorisation even when a pivot is exactly zero and reports the first one
 * in `singularAt`. Throws "linalg.lu_factor: ..." on a size mismatch.
 */
export function luFactor(a: ArrayLike<number>, n: number, op = "linalg.lu_factor"): LUFactor {
  checkMatrix(op, "input", a, n, n);
  const A = Float64Array.from(a);
  const pivots = new Int32Array(n);
  let sign: 1 | -1 = 1;
  let singularAt = -1;
  for (let k = 0; k < n; k++) {
    // Pivot: largest |A[i,k]| for i >= k.
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(A[i * n + k]) > Math.abs(A[p * n + k])) p = i;
    pivots[k] = p;
    if (p !== k) {
      sign = -sign as 1 | -1;
      for (let j = 0; j < n; j++) {
        const t = A[k * n + j];
        A[k * n + j] = A[p * n + j];
        A[p * n + j] = t;
      }
    }
    const pivot = A[k * n + k];
    if (pivot === 0) {
      if (singularAt < 0) singularAt = k;
      continue; // column already zero below the diagonal: nothing to eliminate
    }
    for (let i = k + 1; i < n; i++) {
      const l = (A[i * n + k] /= pivot);
      if (l === 0) continue;
      for (let j = k + 1; j < n; j++) A[i * n + j] -= l * A[k * n + j];
    }
  }
  return { lu: A, pivots, sign, singularAt };
}

/**
 * Solves A X = B given A's LU factors (torch.linalg.lu_solve); B is n x k, returns X (n x k).
 * Assumes A is nonsingular (check `singularAt` first).
 */
export function luSolve(f: LUFactor, b: ArrayLike<number>, n: number, k: number): Float64Array {
  checkMatrix("linalg.lu_solve", "B", b, n, k);
  const { lu, pivots } = f;
  const X = Float64Array.from(b);
  for (let i = 0; i < n; i++) { // X := P B
    const p = pivots[i];
    if (p === i) continue;
    for (let j = 0; j < k; j++) {
      const t = X[i * k + j];
      X[i * k + j] = X[p * k + j];
      X[p * k + j] = t;
    }
  }
  for (let i = 0; i < n; i++) { // L Y = P B (unit diagonal)
    for (let r = 0; r < i; r++) {
      const l = lu[i * n + r];
      if (l !== 0) { for (let j = 0; j < k; j++) X[i * k + j] -= l * X[r * k + j]; }
    }
  }
  for (let i = n - 1; i >= 0; i--) { // U X = Y
    for (let r = i + 1; r < n; r++) {
      const u = lu[i * n + r];
      if (u !== 0) { for (let j = 0; j < k; j++) X[i * k + j] -= u * X[r * k + j]; }
    }
    const d = lu[i * n + i];
    for (let j = 0; j < k; j++) X[i * k + j] /= d;
  }
  return X;
}

function singularError(op: string, f: LUFactor): Error {
  const i = f.singularAt;
  return new Error(
    `${op}: matrix is singular (U[${i},${i}] of its LU factorisation is exactly zero), ` +
      `so the system has no unique solution`,
  );
}

/**
 * torch.linalg.solve(A, B): X with A X = B for n x n A and n x k B (a vector b is k = 1).
 * Throws "linalg.solve: ..." on bad sizes or when A is singular (an exactly zero pivot,
 * which is when LAPACK, and so torch, reports singularity).
 */
export function solve(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  k: number,
): Float64Array {
  checkMatrix("linalg.solve", "A", a, n, n);
  checkMatrix("linalg.solve", "B", b, n, k);
  const f = luFactor(a, n, "linalg.solve");
  if (f.singularAt >= 0) throw singularError("linalg.solve", f);
  return luSolve(f, b, n, k);
}

/** torch.linalg.inv(A) for n x n A. Throws "linalg.inv: ..." when A is singular. */
export function inv(a: ArrayLike<number>, n: number): Float64Array {
  const f = luFactor(a, n, "linalg.inv");
  if (f.singularAt >= 0) throw singularError("linalg.inv", f);
  return luSolve(f, identity(n), n, n);
}

/** torch.linalg.det(A) via LU: sign(P) * prod(U[i,i]); 0 for a singular matrix, 1 for n = 0. */
export function det(a: ArrayLike<number>, n: number): number {
  const { lu, sign } = luFactor(a, n, "linalg.det");
  let d: number = sign;
  for (let i = 0; i < n; i++) d *= lu[i * n + i];
  return d;
}

/**
 * torch.linalg.slogdet(A): det(A) = sign * exp(logabsdet), without overflow for large n.
 * A singular matrix gives { sign: 0, logabsdet: -Infinity } as in torch.
 */
export function slogdet(a: ArrayLike<number>, n: number): { sign: number; logabsdet: number } {
  const { lu, sign: s } = luFactor(a, n, "linalg.slogdet");
  let sign: number = s;
  let logabsdet = 0;
  for (let i = 0; i < n; i++) {
    const d = lu[i * n + i];
    if (d === 0) return { sign: 0, logabsdet: -Infinity };
    if (d < 0) sign = -sign;
    logabsdet += Math.log(Math.abs(d));
  }
  return { sign, logabsdet };
}

/**
 * torch.linalg.cholesky(A): lower-triangular L with A = L L^T for symmetric positive-definite
 * n x n A. Reads only the lower triangle of A (like torch). Throws
 * "linalg.cholesky: matrix is not positive-definite (leading minor k)" with the 1-based order
 * k of the first leading minor that is not positive-definite.
 */
export function cholesky(a: ArrayLike<number>, n: number): Float64Array {
  checkMatrix("linalg.cholesky", "input", a, n, n);
  const L = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let p = 0; p < j; p++) d -= L[j * n + p] * L[j * n + p];
    if (!(d > 0)) { // also catches NaN
      throw new Error(`linalg.cholesky: matrix is not positive-definite (leading minor ${j + 1})`);
    }
    const ljj = Math.sqrt(d);
    L[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let p = 0; p < j; p++) s -= L[i * n + p] * L[j * n + p];
      L[i * n + j] = s / ljj;
    }
  }
  return L;
}

/** Result of {@link lstsq}. */
export interface LstsqResult {
  /** n x k minimiser of ||A X - B||_F (the minimum-norm one when it is not unique). */
  solution: Float64Array;
  /** Numerical rank of A used for the solve. */
  rank: number;
}

/**
 * torch.linalg.lstsq(A, B).solution for m x n A and m x k B.
 *
 * - m >= n and A numerically full rank: Householder QR, X = R^{-1} Q^T B.
 * - otherwise (underdetermined or rank-deficient): the minimum-norm solution
 *   X = V diag(1/S_i for S_i > rcond * S_max) U^T B from the SVD.
 *
 * `rcond` defaults to eps * max(m, n), torch's default. Throws "linalg.lstsq: ..." on bad sizes.
 */
export function lstsq(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
  rcond = EPS * Math.max(m, n),
): LstsqResult {
  checkMatrix("linalg.lstsq", "A", a, m, n);
  checkDim("linalg.lstsq", "k", k);
  if (b.length !== m * k) {
    throw new Error(
      `linalg.lstsq: B has ${b.length} elements but A has ${m} rows, so B must be ${m}x${k}`,
    );
  }
  if (m >= n) {
    const f = householder(a, m, n);
    let dmax = 0, dmin = Infinity;
    for (let i = 0; i < n; i++) {
      const d = Math.abs(f.packed[i * n + i]);
      dmax = Math.max(dmax, d);
      dmin = Math.min(dmin, d);
    }
    if (n === 0 || dmin > rcond * dmax) {
      // Q^T B with the thin Q (m x n), then back-substitute R X = Q^T B.
      const Q = formQ(f, m, n, n);
      const X = new Float64Array(n * k);
      for (let i = 0; i < m; i++) {
        for (let r = 0; r < n; r++) {
          const q = Q[i * n + r];
          for (let j = 0; j < k; j++) X[r * k + j] += q * b[i * k + j];
        }
      }
      for (let i = n - 1; i >= 0; i--) {
        for (let r = i + 1; r < n; r++) {
          const u = f.packed[i * n + r];
          for (let j = 0; j < k; j++) X[i * k + j] -= u * X[r * k + j];
        }
        for (let j = 0; j < k; j++) X[i * k + j] /= f.packed[i * n + i];
      }
      return { solution: X, rank: n };
    }
  }
  // Minimum-norm solution from the reduced SVD: U is m x p, Vh is p x n, p = min(m, n).
  const p = Math.min(m, n);
  const { u, s, vh } = svd(a, m, n, false);
  const cutoff = rcond * (p > 0 ? s[0] : 0);
  const X = new Float64Array(n * k);
  let rank = 0;
  for (let r = 0; r < p; r++) {
    if (!(s[r] > cutoff)) continue;
    rank++;
    for (let j = 0; j < k; j++) {
      let c = 0; // (U^T B)[r, j] / S_r
      for (let i = 0; i < m; i++) c += u[i * p + r] * b[i * k + j];
      c /= s[r];
      for (let i = 0; i < n; i++) X[i * k + j] += vh[r * n + i] * c;
    }
  }
  return { solution: X, rank };
}
