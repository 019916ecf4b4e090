/**
 * Batched float32 matmul on the host. Each transpose case walks memory contiguously in its
 * innermost loop, so backward passes (transposed operands) cost the same as forward.
 * Accumulates in float64. (A SIMD/Wasm kernel is the planned replacement; see issue 7.)
 */
export function matmulKernel(
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  aBatchStride: number,
  bBatchStride: number,
): void {
  const acc = new Float64Array(m * n);
  for (let bt = 0; bt < batch; bt++) {
    const ao = bt * aBatchStride, bo = bt * bBatchStride, oo = bt * m * n;
    acc.fill(0);
    if (!transA && !transB) {
      // out[i, :] += A[i, p] * B[p, :]
      for (let i = 0; i < m; i++) {
        const row = i * n;
        for (let p = 0; p < k; p++) {
          const a = A[ao + i * k + p];
          const bp = bo + p * n;
          for (let j = 0; j < n; j++) acc[row + j] += a * B[bp + j];
        }
      }
    } else if (!transA && transB) {
      // out[i, j] = A[i, :] . B[j, :]
      for (let i = 0; i < m; i++) {
        const ai = ao + i * k;
        for (let j = 0; j < n; j++) {
          const bj = bo + j * k;
          let s = 0;
          for (let p = 0; p < k; p++) s += A[ai + p] * B[bj + p];
          acc[i * n + j] = s;
        }
      }
    } else if (transA && !transB) {
      // out[i, :] += A[p, i] * B[p, :]
      for (let p = 0; p < k; p++) {
        const ap = ao + p * m, bp = bo + p * n;
        for (let i = 0; i < m; i++) {
          const a = A[ap + i];
          const row = i * n;
          for (let j = 0; j < n; j++) acc[row + j] += a * B[bp + j];
        }
      }
    } else {
      // out[i, j] = sum_p A[p, i] * B[j, p]
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          const bj = bo + j * k;
          let s = 0;
          for (let p = 0; p < k; p++) s += A[ao + p * m + i] * B[bj + p];
          acc[i * n + j] = s;
        }
      }
    }
    for (let i = 0; i < m * n; i++) out[oo + i] = acc[i];
  }
}
