/**
 * The WebGPU backend: the primitive kernels of backend.ts as WGSL compute shaders on Deno's
 * `navigator.gpu`. Work is queued and batched (see device.ts); only `read` waits.
 *
 * Differences from the CPU backend, which throws on them: out-of-range indices cannot raise
 * from a shader, so `gather` reads 0 for them and `scatter` leaves them unwritten; duplicate
 * targets of a large `scatter` (assign) keep an unspecified one of the values, as PyTorch on
 * CUDA; overlapping `stridedSet` views (stride 0) likewise.
 */
import type {
  AttentionDims,
  Backend,
  BinaryOp,
  Buf,
  MatmulDims,
  ReduceOp,
  UnaryOp,
} from "../../backend.ts";
import type { DType, TypedArray } from "../../dtype.ts";
import { type Gpu, type GpuBuf, type PoolStats, requestGpu } from "./device.ts";
import { Fusion } from "./fusion.ts";
import { attention } from "./kernels/attention.ts";
import * as B from "./kernels/binary.ts";
import * as C from "./kernels/creation.ts";
import * as E from "./kernels/elementwise.ts";
import * as Fu from "./kernels/fused.ts";
import * as I from "./kernels/indexing.ts";
import * as M from "./kernels/matmul.ts";
import * as R from "./kernels/reduce.ts";
import { sortIndices } from "./kernels/sort.ts";

export class WebGpuBackend implements Backend {
  readonly name = "webgpu";
  /** Lazy elementwise fusion (fusion.ts); `fusion.enabled = false` runs every op eagerly. */
  readonly fusion: Fusion;

  constructor(readonly gpu: Gpu, readonly deviceInfo: string) {
    this.fusion = new Fusion(gpu);
  }

  /** A buffer as kernels read it: a pending (fused) one is computed first. */
  #g(b: Buf): GpuBuf {
    return this.fusion.force(b as GpuBuf);
  }

  /** Buffers created, pooled and submits so far (for tests and diagnostics). */
  poolStats(): PoolStats {
    return this.gpu.stats();
  }

  upload(data: TypedArray, dtype: DType): Buf {
    return this.gpu.upload(data, dtype);
  }
  read(buf: Buf, dtype: DType, size: number): Promise<TypedArray> {
    return this.gpu.read(this.#g(buf), dtype, size);
  }
  free(buf: Buf): void {
    this.fusion.release(buf as GpuBuf);
  }
  full(size: number, dtype: DType, value: number): Buf {
    return this.fusion.full(size, dtype, value) ?? C.full(this.gpu, size, dtype, value);
  }
  arange(size: number, start: number, step: number, dtype: DType): Buf {
    return C.arange(this.gpu, size, start, step, dtype);
  }
  random(
    kind: "uniform" | "normal" | "int",
    size: number,
    key: [number, number],
    start: number,
    low = 0,
    high = 1,
  ): Buf {
    return C.random(this.gpu, kind, size, key, start, low, high);
  }
  cast(x: Buf, from: DType, to: DType, size: number): Buf {
    return this.fusion.cast(x as GpuBuf, from, to, size) ??
      E.cast(this.gpu, this.#g(x), from, to, size);
  }
  unary(op: UnaryOp, x: Buf, dtype: DType, size: number): Buf {
    return this.fusion.unary(op, x as GpuBuf, dtype, size) ??
      E.unary(this.gpu, op, this.#g(x), dtype, size);
  }
  binary(
    op: BinaryOp,
    a: Buf,
    aStrides: number[],
    b: Buf,
    bStrides: number[],
    outShape: number[],
    dtype: DType,
  ): Buf {
    const ga = a as GpuBuf, gb = b as GpuBuf;
    return this.fusion.binary(op, ga, aStrides, gb, bStrides, outShape, dtype) ??
      B.binary(this.gpu, op, this.#g(ga), aStrides, this.#g(gb), bStrides, outShape, dtype);
  }
  where(
    cond: Buf,
    cStrides: number[],
    a: Buf,
    aStrides: number[],
    b: Buf,
    bStrides: number[],
    outShape: number[],
    dtype: DType,
  ): Buf {
    const c = cond as GpuBuf, ga = a as GpuBuf, gb = b as GpuBuf;
    return this.fusion.where(c, cStrides, ga, aStrides, gb, bStrides, outShape, dtype) ??
      B.where(
        this.gpu,
        this.#g(c),
        cStrides,
        this.#g(ga),
        aStrides,
        this.#g(gb),
        bStrides,
        outShape,
        dtype,
      );
  }
  reduce(op: ReduceOp, x: Buf, dtype: DType, shape: number[], axes: number[]): Buf {
    return this.fusion.reduce(op, x as GpuBuf, dtype, shape, axes) ??
      R.reduce(this.gpu, op, this.#g(x), dtype, shape, axes);
  }
  argReduce(op: "argmax" | "argmin", x: Buf, dtype: DType, shape: number[], axis: number): Buf {
    return R.argReduce(this.gpu, op, this.#g(x), dtype, shape, axis);
  }
  scan(op: "cumsum" | "cumprod", x: Buf, dtype: DType, shape: number[], axis: number): Buf {
    return R.scan(this.gpu, op, this.#g(x), dtype, shape, axis);
  }
  sortIndices(x: Buf, dtype: DType, shape: number[], axis: number, descending: boolean): Buf {
    return sortIndices(this.gpu, this.#g(x), dtype, shape, axis, descending);
  }
  matmul(a: Buf, b: Buf, d: MatmulDims): Buf {
    const x: M.MatmulArgs = { ...d, a: this.#g(a), b: this.#g(b) };
    return this.fusion.matmul(x) ?? M.matmul(this.gpu, x);
  }
  strided(x: Buf, dtype: DType, shape: number[], strides: number[], offset: number): Buf {
    return I.strided(this.gpu, this.#g(x), dtype, shape, strides, offset);
  }
  stridedSet(
    base: Buf,
    size: number,
    src: Buf,
    dtype: DType,
    shape: number[],
    strides: number[],
    offset: number,
  ): Buf {
    return I.stridedSet(this.gpu, this.#g(base), size, this.#g(src), dtype, shape, strides, offset);
  }
  softmax(x: Buf, rows: number, cols: number, log: boolean): Buf | null {
    return Fu.softmaxRows(this.gpu, this.#g(x), rows, cols, log);
  }
  layerNorm(
    x: Buf,
    rows: number,
    cols: number,
    eps: number,
    weight: Buf | null,
    bias: Buf | null,
  ): { y: Buf; stats: Buf } | null {
    const w = weight ? this.#g(weight) : null, b = bias ? this.#g(bias) : null;
    return Fu.layerNormRows(this.gpu, this.#g(x), rows, cols, eps, w, b);
  }
  attention(
    q: Buf,
    k: Buf,
    v: Buf,
    mask: Buf | null,
    d: AttentionDims,
  ): { out: Buf; lse: Buf } | null {
    const m = mask ? this.#g(mask) : null;
    return attention(this.gpu, this.#g(q), this.#g(k), this.#g(v), m, d);
  }
  gather(x: Buf, dtype: DType, xShape: number[], dim: number, idx: Buf, idxShape: number[]): Buf {
    return I.gather(this.gpu, this.#g(x), dtype, xShape, dim, this.#g(idx), idxShape);
  }
  scatter(
    base: Buf,
    dtype: DType,
    baseShape: number[],
    dim: number,
    idx: Buf,
    idxShape: number[],
    src: Buf,
    srcShape: number[],
    mode: "assign" | "add",
  ): Buf {
    return I.scatter(
      this.gpu,
      this.#g(base),
      dtype,
      baseShape,
      dim,
      this.#g(idx),
      idxShape,
      this.#g(src),
      srcShape,
      mode,
    );
  }
}

/**
 * Creates the WebGPU backend on the first adapter. Throws when there is no `navigator.gpu` or
 * no adapter; `deviceInfo` is the adapter's description, with " (software)" on a fallback
 * adapter such as llvmpipe.
 */
export async function createWebGpuBackend(): Promise<Backend> {
  const { gpu, info } = await requestGpu();
  return new WebGpuBackend(gpu, info);
}
