/**
 * Batched float32 matmul on the host: out[b] = op(A[b]) @ op(B[b]) (see Backend.matmul).
 * Runs a system BLAS where one is installed and may be loaded (./blas.ts), else the
 * WebAssembly SIMD kernel of ./wasm/ (multi-threaded when large; it beats the scalar loop from
 * 2 x 2 x 2 up, measured), and the scalar loop below only where Wasm SIMD is unavailable or
 * the problem does not fit the kernel's memory.
 */
import type { MatmulDims } from "../../backend.ts";
import { blasMatmul } from "./blas.ts";
import { poolSgemm } from "./wasm/elementwise.ts";
import { THREAD_MIN_FLOPS, wasmMatmul } from "./wasm/mod.ts";

export function matmulKernel(
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
  d: MatmulDims,
): void {
  // Through the system BLAS where there is one: large products split over the pool's threads.
  const large = 2 * d.batch * d.m * d.n * d.k >= THREAD_MIN_FLOPS;
  if (large && poolSgemm(A, B, out, d)) return;
  if (blasMatmul(A, B, out, d)) return;
  if (wasmMatmul(A, B, out, d)) return;
  scalarMatmul(A, B, out, d);
}

/**
 * The scalar reference: each transpose case walks memory contiguously in its innermost loop.
 * Accumulates in float64.
 */
export function scalarMatmul(
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
  d: MatmulDims,
): void {
  const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = d;
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
