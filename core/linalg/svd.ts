/**
 * Singular value decomposition A = U diag(S) Vh by one-sided Jacobi (Hestenes 1958; Demmel &
 * Veselic 1992): rotate pairs of columns of W = A (and of V = I alongside) until every pair is
 * orthogonal to working precision. Then S_j = ||W[:, j]||, U[:, j] = W[:, j] / S_j and
 * A V = W, so A = U diag(S) V^T. Wide matrices (m < n) are handled through A^T.
 * Accurate (high relative accuracy even for tiny singular values); O(m n^2) per sweep.
 */

import { formQ, householder } from "./qr.ts";
import { checkMatrix, EPS, transpose } from "./util.ts";

/** Result of {@link svd}; with k = min(m, n), row-major throughout. */
export interface SVDResult {
  /** m x k (reduced) or m x m (full). Column signs are arbitrary. */
  u: Float64Array;
  /** The k singular values, descending, non-negative. */
  s: Float64Array;
  /** k x n (reduced) or n x n (full): rows are the right singular vectors. */
  vh: Float64Array;
}

/**
 * torch.linalg.svd(A, full_matrices) for one row-major m x n matrix. Singular vectors are
 * determined only up to sign (and up to rotation within repeated singular values), as in
 * torch; compare reconstructions U diag(S) Vh, or vectors up to sign per column.
 *
 * Throws "linalg.svd: ..." on a size mismatch or a non-finite entry.
 */
export function svd(
  a: ArrayLike<number>,
  m: number,
  n: number,
  fullMatrices = true,
): SVDResult {
  checkMatrix("linalg.svd", "input", a, m, n);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new Error(`linalg.svd: input has a non-finite entry ${a[i]}`);
  }
  if (m >= n) return tallSvd(a, m, n, fullMatrices);
  // A^T = U' S V'^T (n x m, tall)  =>  A = V' S U'^T: U = V', Vh = U'^T.
  const t = tallSvd(transpose(a, m, n), n, m, fullMatrices);
  const uCols = fullMatrices ? n : m;
  return { u: transpose(t.vh, m, m), s: t.s, vh: transpose(t.u, n, uCols) };
}

/** SVD of a tall matrix (m >= n): U is m x n (or m x m when full), Vh is n x n. */
function tallSvd(a: ArrayLike<number>, m: number, n: number, full: boolean): SVDResult {
  // Column-major working copies make the column rotations contiguous: W[j*m + i] = A[i, j].
  const W = transpose(a, m, n);
  const V = new Float64Array(n * n); // V[j*n + i] = V[i, j]
  for (let j = 0; j < n; j++) V[j * n + j] = 1;

  for (let sweep = 0; sweep < 100; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        // alpha = ||w_p||^2, beta = ||w_q||^2, gamma = w_p . w_q
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < m; i++) {
          const wp = W[p * m + i], wq = W[q * m + i];
          alpha += wp * wp;
          beta += wq * wq;
          gamma += wp * wq;
        }
        if (gamma === 0 || Math.abs(gamma) <= EPS * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        // Rotation that makes the two columns orthogonal (the 2x2 symmetric Jacobi step on
        // [[alpha, gamma], [gamma, beta]]).
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.abs(zeta) > 1e150
          ? 0.5 / zeta
          : (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotate(W, p * m, q * m, m, c, s);
        rotate(V, p * n, q * n, n, c, s);
      }
    }
    if (!rotated) break;
  }

  // S_j = ||w_j||, sorted descending.
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let ss = 0;
    for (let i = 0; i < m; i++) ss = Math.hypot(ss, W[j * m + i]);
    norms[j] = ss;
  }
  const order = Array.from({ length: n }, (_, j) => j).sort((i, j) => norms[j] - norms[i]);

  const uCols = full ? m : n;
  const U = new Float64Array(m * uCols);
  const S = new Float64Array(n);
  const Vh = new Float64Array(n * n);
  let rank = 0; // columns of U filled from W; the rest come from an orthonormal completion
  order.forEach((src, dst) => {
    S[dst] = norms[src];
    for (let i = 0; i < n; i++) Vh[dst * n + i] = V[src * n + i];
    if (norms[src] > 0) {
      for (let i = 0; i < m; i++) U[i * uCols + dst] = W[src * m + i] / norms[src];
      rank = dst + 1;
    }
  });
  if (rank < uCols) completeColumns(U, m, uCols, rank);
  return { u: U, s: S, vh: Vh };
}

/** [x; y] := [c x - s y; s x + c y] on two length-len slices of `a`. */
function rotate(a: Float64Array, xo: number, yo: number, len: number, c: number, s: number) {
  for (let i = 0; i < len; i++) {
    const x = a[xo + i], y = a[yo + i];
    a[xo + i] = c * x - s * y;
    a[yo + i] = s * x + c * y;
  }
}

/**
 * Fills columns r..cols-1 of the m x cols matrix U (whose first r columns are orthonormal) with
 * an orthonormal basis of their complement: the trailing columns of the complete Q of
 * U[:, :r] = Q R are orthogonal to span(U[:, :r]).
 */
function completeColumns(U: Float64Array, m: number, cols: number, r: number): void {
  const head = new Float64Array(m * r);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < r; j++) head[i * r + j] = U[i * cols + j];
  }
  const Q = formQ(householder(head, m, r), m, r, m); // m x m
  for (let i = 0; i < m; i++) {
    for (let j = r; j < cols; j++) U[i * cols + j] = Q[i * m + j];
  }
}
