/**
 * Symmetric eigendecomposition A = V diag(w) V^T by the cyclic Jacobi method (Golub & Van Loan,
 * Matrix Computations, Alg. 8.5.3): sweep over all off-diagonal pairs (p, q), each time applying
 * the plane rotation J(p, q, theta) that zeroes A[p,q], until no off-diagonal entry is large
 * relative to its diagonal pair. Jacobi is slower than tridiagonal QL for large n (about
 * 6-10 sweeps of O(n^3) each) but short, robust, and accurate to a few ulps in the eigenvalues.
 */

import { checkMatrix, EPS } from "./util.ts";

/** Result of {@link eigh}: eigenvalues ascending, eigenvectors as the columns of `vectors`. */
export interface EighResult {
  /** The n eigenvalues, ascending. */
  values: Float64Array;
  /** n x n row-major; column j is the unit eigenvector of values[j] (sign arbitrary). */
  vectors: Float64Array;
}

/**
 * torch.linalg.eigh(A) for one row-major n x n matrix. Like torch (UPLO="L") only the lower
 * triangle of `a` is read; the upper triangle is assumed to mirror it.
 *
 * Eigenvector signs (and the basis within repeated eigenvalues) are arbitrary, as in torch:
 * compare vectors up to sign per column, or compare V diag(w) V^T with A.
 *
 * Throws "linalg.eigh: ..." when `a` does not hold n * n values or contains NaN/Infinity.
 */
export function eigh(a: ArrayLike<number>, n: number): EighResult {
  checkMatrix("linalg.eigh", "input", a, n, n);
  // Symmetric working copy built from the lower triangle.
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = a[i * n + j];
      if (!Number.isFinite(v)) throw new Error(`linalg.eigh: input has a non-finite entry ${v}`);
      A[i * n + j] = v;
      A[j * n + i] = v;
    }
  }
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;

  for (let sweep = 0; sweep < 100; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        const app = A[p * n + p];
        const aqq = A[q * n + q];
        // Skip pairs already diagonal to working precision (relative to their diagonal).
        if (Math.abs(apq) <= EPS * Math.sqrt(Math.abs(app * aqq)) || apq === 0) {
          A[p * n + q] = A[q * n + p] = 0;
          continue;
        }
        rotated = true;
        // tan(theta) = t is the smaller root of t^2 + 2 t zeta - 1 = 0 (GVL Alg. 8.5.1).
        const zeta = (aqq - app) / (2 * apq);
        const t = Math.abs(zeta) > 1e150
          ? 0.5 / zeta
          : (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = t * c;
        // A := J^T A J, touching rows/columns p and q only.
        for (let r = 0; r < n; r++) {
          if (r === p || r === q) continue;
          const arp = A[r * n + p];
          const arq = A[r * n + q];
          A[r * n + p] = A[p * n + r] = c * arp - s * arq;
          A[r * n + q] = A[q * n + r] = s * arp + c * arq;
        }
        A[p * n + p] = app - t * apq;
        A[q * n + q] = aqq + t * apq;
        A[p * n + q] = A[q * n + p] = 0;
        // V := V J accumulates the eigenvectors as columns.
        for (let r = 0; r < n; r++) {
          const vrp = V[r * n + p];
          const vrq = V[r * n + q];
          V[r * n + p] = c * vrp - s * vrq;
          V[r * n + q] = s * vrp + c * vrq;
        }
      }
    }
    if (!rotated) break;
  }

  // Sort ascending and permute the eigenvector columns alongside.
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((i, j) => A[i * n + i] - A[j * n + j]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = A[src * n + src];
    for (let r = 0; r < n; r++) vectors[r * n + dst] = V[r * n + src];
  });
  return { values, vectors };
}
