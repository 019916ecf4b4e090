/**
 * Small helpers shared by the dense linear-algebra kernels: size checks and a few matrix
 * utilities on row-major Float64Array matrices. Not part of the public surface of core/linalg
 * beyond what dense.ts re-exports.
 */

/** Machine epsilon of float64 (2^-52). */
export const EPS = 2.220446049250313e-16;

/** Throws `${op}: ...` unless `d` is a non-negative integer. */
export function checkDim(op: string, name: string, d: number): void {
  if (!Number.isInteger(d) || d < 0) {
    throw new Error(`${op}: ${name} must be a non-negative integer, got ${d}`);
  }
}

/**
 * Checks that `a` holds exactly `rows * cols` elements (a row-major rows x cols matrix) and that
 * both sizes are non-negative integers; otherwise throws an Error naming the op and the argument.
 */
export function checkMatrix(
  op: string,
  name: string,
  a: ArrayLike<number>,
  rows: number,
  cols: number,
): void {
  checkDim(op, `${name} rows`, rows);
  checkDim(op, `${name} columns`, cols);
  if (a.length !== rows * cols) {
    throw new Error(
      `${op}: ${name} has ${a.length} elements but a ${rows}x${cols} matrix needs ${rows * cols}`,
    );
  }
}

/** The n x n identity matrix. */
export function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

/** Transpose of a row-major m x n matrix (returns n x m). */
export function transpose(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) out[j * m + i] = a[i * n + j];
  }
  return out;
}

/** Product of row-major (m x k) and (k x n) matrices, returned as m x n. */
export function matmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aip * b[p * n + j];
    }
  }
  return out;
}
