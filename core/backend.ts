/**
 * The backend interface: the few primitive kernels every backend implements, and the
 * registry that picks one. Ops never import a backend; they call these methods.
 *
 * Buffers are opaque handles owned by the backend. Every method returns a new buffer and
 * never waits for the device: only `read` is asynchronous, so a GPU backend can queue work.
 * Shapes given to kernels are row-major; inputs are contiguous unless strides are passed.
 */
import type { DType, TypedArray } from "./dtype.ts";
import { CpuBackend } from "./backends/cpu/mod.ts";

export type Buf = unknown;

export type UnaryOp =
  | "neg"
  | "abs"
  | "sign"
  | "exp"
  | "log"
  | "log1p"
  | "expm1"
  | "sqrt"
  | "sin"
  | "cos"
  | "tanh"
  | "sigmoid"
  | "relu"
  | "erf"
  | "gelu"
  | "floor"
  | "ceil"
  | "round"
  | "trunc"
  | "reciprocal"
  | "isnan"
  | "isinf"
  | "logicalNot";

export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "remainder"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "logicalAnd"
  | "logicalOr"
  | "logicalXor";

export type ReduceOp = "sum" | "prod" | "max" | "min";

/**
 * The sizes of a batched float32 matmul (Backend.matmul): out[b] = op(A[b]) @ op(B[b]) of
 * shape [m, n], op transposing when asked; A[b] starts aBatchStride elements after A[b - 1],
 * B[b] bBatchStride after B[b - 1] (0 broadcasts one operand).
 */
export interface MatmulDims {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  aBatchStride: number;
  bBatchStride: number;
}

/** The primitive kernels. `dtype` arguments name the input dtype unless said otherwise. */
export interface Backend {
  readonly name: string;
  /** A short description of the device (adapter name on GPU). */
  readonly deviceInfo: string;
  upload(data: TypedArray, dtype: DType): Buf;
  read(buf: Buf, dtype: DType, size: number): Promise<TypedArray>;
  free(buf: Buf): void;
  full(size: number, dtype: DType, value: number): Buf;
  arange(size: number, start: number, step: number, dtype: DType): Buf;
  /** uniform [0,1) float32, standard normal float32, or integers in [low, high) (int32). */
  random(
    kind: "uniform" | "normal" | "int",
    size: number,
    key: [number, number],
    start: number,
    low?: number,
    high?: number,
  ): Buf;
  cast(x: Buf, from: DType, to: DType, size: number): Buf;
  /** Elementwise; float ops take float32, `isnan`/`isinf`/`logicalNot` return bool. */
  unary(op: UnaryOp, x: Buf, dtype: DType, size: number): Buf;
  /** Broadcasting binary op: a and b are read through strides (0 on broadcast dims). */
  binary(
    op: BinaryOp,
    a: Buf,
    aStrides: number[],
    b: Buf,
    bStrides: number[],
    outShape: number[],
    dtype: DType,
  ): Buf;
  /** `cond ? a : b` with broadcasting through strides; cond is bool. */
  where(
    cond: Buf,
    cStrides: number[],
    a: Buf,
    aStrides: number[],
    b: Buf,
    bStrides: number[],
    outShape: number[],
    dtype: DType,
  ): Buf;
  /** Reduces the sorted `axes` of a contiguous `shape`; the result has those dims removed. */
  reduce(op: ReduceOp, x: Buf, dtype: DType, shape: number[], axes: number[]): Buf;
  /** Index (int32) of the max/min along `axis` (first occurrence; NaN counts as extreme). */
  argReduce(op: "argmax" | "argmin", x: Buf, dtype: DType, shape: number[], axis: number): Buf;
  /** Inclusive scan along `axis`. */
  scan(op: "cumsum" | "cumprod", x: Buf, dtype: DType, shape: number[], axis: number): Buf;
  /** Stable sort order (int32 indices) along `axis`; NaN sorts as the largest value. */
  sortIndices(x: Buf, dtype: DType, shape: number[], axis: number, descending: boolean): Buf;
  /**
   * Batched float32 matmul: out[b] = op(A[b]) @ op(B[b]) of shape [m, n], where op transposes
   * when asked. A is read as [m, k] (or [k, m] when transA), B as [k, n] (or [n, k]);
   * batch strides may be 0 to broadcast one operand.
   */
  matmul(a: Buf, b: Buf, d: MatmulDims): Buf;
  /** Contiguous copy of the strided view (shape, strides, offset) of x; strides may be <= 0. */
  strided(x: Buf, dtype: DType, shape: number[], strides: number[], offset: number): Buf;
  /** A copy of `base` (size elements) with the strided view (shape, strides, offset) set to src. */
  stridedSet(
    base: Buf,
    size: number,
    src: Buf,
    dtype: DType,
    shape: number[],
    strides: number[],
    offset: number,
  ): Buf;
  /** out[p] = x[p with dim replaced by idx[p]]; out has idxShape. */
  gather(x: Buf, dtype: DType, xShape: number[], dim: number, idx: Buf, idxShape: number[]): Buf;
  /** A copy of base with src[p] written (or added) at base[p with dim replaced by idx[p]]. */
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
  ): Buf;

  // Optional fused kernels. Where a backend lacks one, or returns null (a case it does not
  // take, e.g. rows too long), the op is composed from the primitives above (same results
  // within float32 rounding); see core/ops/fused.ts.

  /** Softmax, or log-softmax, over each row of a float32 [rows, cols]. */
  softmax?(x: Buf, rows: number, cols: number, log: boolean): Buf | null;
  /**
   * LayerNorm over each row of a float32 [rows, cols]: (x - mean) / sqrt(var + eps) * w + b
   * (biased variance; w, b of cols floats, or null for 1 and 0). Also returns stats, float32
   * [rows, 2]: each row's mean and 1 / sqrt(var + eps), for the backward pass.
   */
  layerNorm?(
    x: Buf,
    rows: number,
    cols: number,
    eps: number,
    weight: Buf | null,
    bias: Buf | null,
  ): { y: Buf; stats: Buf } | null;
  /**
   * Attention over float32 q [batch, L, E], k [batch, S, E], v [batch, S, Ev]:
   * out = softmax(q k^T scale + mask) v, [batch, L, Ev], where `mask` (float32, added to the
   * scores) is [L, S], or [batch, L, S] when `d.maskBatched`, and `d.causal` admits key s for
   * query l only when s <= l. A row with no admissible key is zeros. Also returns each row's
   * log-sum-exp of the admissible scores, float32 [batch, L] (-Infinity for such rows), for
   * the backward pass.
   */
  attention?(
    q: Buf,
    k: Buf,
    v: Buf,
    mask: Buf | null,
    d: AttentionDims,
  ): { out: Buf; lse: Buf } | null;
  /**
   * One Adam/AdamW update of n float32 values (torch.optim's rule, without amsgrad; see
   * core/optim/adam.ts), returning new buffers for the parameter and both moments.
   */
  adamStep?(
    param: Buf,
    grad: Buf,
    expAvg: Buf,
    expAvgSq: Buf,
    n: number,
    o: AdamStepConstants,
  ): { param: Buf; expAvg: Buf; expAvgSq: Buf } | null;
  /**
   * im2col of a float32 x [rows, h, w]: [rows, K, L] where [rows, k, l] is x at kernel tap
   * k = (i, j) of window l = (y, z), input position (y sh + i dh - pt, z sw + j dw - pl), or
   * `padValue` where that lies outside x.
   */
  im2col?(x: Buf, rows: number, h: number, w: number, win: Windows, padValue: number): Buf | null;
  /** col2im, im2col's adjoint: cols [rows, K, L] summed into [rows, h, w] (taps outside dropped). */
  col2im?(cols: Buf, rows: number, h: number, w: number, win: Windows): Buf | null;
}

/** Sliding windows over a 2-D plane (im2col, col2im): K = kh kw taps, L = oh ow windows. */
export interface Windows {
  kernel: number[]; // [kh, kw]
  stride: number[];
  dilation: number[];
  pads: [number, number, number, number]; // [top, bottom, left, right]
  out: number[]; // [oh, ow]
}

/** The sizes and flags of Backend.attention. */
export interface AttentionDims {
  batch: number;
  l: number;
  s: number;
  e: number;
  ev: number;
  scale: number;
  causal: boolean;
  maskBatched: boolean;
}

/** The scalars of one Adam step, as adam.ts computes them. */
export interface AdamStepConstants {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: decay the parameter by (1 - lr weightDecay); else add weightDecay p to the grad. */
  decoupled: boolean;
  maximize: boolean;
  /** lr / (1 - beta1^t). */
  stepSize: number;
  /** sqrt(1 - beta2^t). */
  bc2Sqrt: number;
}

const registry = new Map<string, () => Promise<Backend> | Backend>();
const ready = new Map<string, Backend>();
let current: Backend | undefined;

/** Makes a backend available under `name` (its factory runs on first use). */
export function registerBackend(name: string, factory: () => Promise<Backend> | Backend): void {
  registry.set(name, factory);
}

/** The names of registered backends. */
export function listBackends(): string[] {
  return [...registry.keys()];
}

/** Resolves "auto" and env defaults: WebGPU only on a hardware adapter, else CPU. */
async function resolve(name: string): Promise<Backend> {
  if (name === "auto") {
    // Probe the adapter only (no device): a software adapter (llvmpipe) means the CPU.
    const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    if (registry.has("webgpu") && gpu) {
      try {
        const a = await gpu.requestAdapter() as
          | { info?: { isFallbackAdapter?: boolean; description?: string } }
          | null;
        const soft = !a || a.info?.isFallbackAdapter ||
          /llvmpipe|swiftshader|software|lavapipe/i.test(a.info?.description ?? "");
        if (!soft) return await init("webgpu");
      } catch { /* no usable adapter: fall back to the CPU */ }
    }
    return init("cpu");
  }
  return init(name);
}

async function init(name: string): Promise<Backend> {
  const have = ready.get(name);
  if (have) return have;
  const factory = registry.get(name);
  if (!factory) {
    throw new Error(
      `setBackend: unknown backend "${name}"; available: ${listBackends().join(", ")}, auto`,
    );
  }
  const b = await factory();
  ready.set(name, b);
  return b;
}

/**
 * Selects the backend for new tensors: "cpu", "webgpu" or "auto" (WebGPU on a hardware
 * adapter, CPU otherwise). Resolves once the backend is ready.
 */
export async function setBackend(name: string): Promise<Backend> {
  current = await resolve(name);
  return current;
}

/**
 * The backend given by $PAPERLAB_BACKEND ("cpu", "webgpu" or "auto"), or "auto" when unset or
 * when the environment cannot be read (no --allow-env).
 */
export function envBackend(): string {
  try {
    return Deno.env.get("PAPERLAB_BACKEND") || "auto";
  } catch {
    return "auto";
  }
}

/**
 * The backend new tensors are created on. Importing mod.ts selects $PAPERLAB_BACKEND or
 * "auto"; modules imported on their own start on the CPU until `setBackend` is called.
 */
export function getBackend(): Backend {
  if (current) return current;
  const cpu = ready.get("cpu") ?? (registry.get("cpu")?.() as Backend | undefined);
  if (!cpu || cpu instanceof Promise) throw new Error("getBackend: the cpu backend is missing");
  ready.set("cpu", cpu);
  current = cpu;
  return cpu;
}

/** A ready backend by name (used to move tensors between backends). */
export function backendByName(name: string): Promise<Backend> {
  return init(name);
}

// The built-in backends. The CPU backend is always there; others load on first use.
registerBackend("cpu", () => new CpuBackend());
registerBackend(
  "webgpu",
  () => import("./backends/webgpu/mod.ts").then((m) => m.createWebGpuBackend()),
);
