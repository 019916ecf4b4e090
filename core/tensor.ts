/**
 * The Tensor: a shape, a dtype and reference-counted storage on one backend, plus its place
 * in the autograd graph. Methods are thin wrappers over the op functions in core/ops/, with
 * PyTorch's names in camelCase and options in a trailing object.
 */
import type { Backend, Buf } from "./backend.ts";
import { type BackwardOptions, type Node, runBackward } from "./autograd.ts";
import { checkDType, type DType, type TypedArray } from "./dtype.ts";
import { Storage, TENSOR, track, type Tracked, untrack } from "./memory.ts";
import { fmtShape, numelOf } from "./shape.ts";
import * as C from "./ops/creation.ts";
import * as E from "./ops/elementwise.ts";
import * as I from "./ops/indexing.ts";
import * as M from "./ops/matmul.ts";
import * as R from "./ops/reduce.ts";
import * as S from "./ops/shape.ts";

type TL = E.TensorLike;
type Dims = R.Dims;
type Nested = number | boolean | Nested[];

/** Internal: throws, naming `op`, when one of the given tensors was disposed. */
export function live(op: string, ...xs: unknown[]): void {
  for (const x of xs) {
    if (x instanceof Tensor && x.isDisposed) {
      throw new Error(`${op}: a tensor of shape ${fmtShape(x.shape)} was used after dispose()`);
    }
  }
}

/** Internal: wraps a backend buffer as a new tensor (no grad). */
export function fromBuf(
  backend: Backend,
  buf: Buf,
  shape: readonly number[],
  dtype: DType,
): Tensor {
  return new Tensor(new Storage(backend, buf, dtype, numelOf(shape)), [...shape], dtype);
}

export class Tensor implements Tracked {
  readonly [TENSOR] = true as const;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Whether gradients are computed for this tensor. */
  requiresGrad = false;
  /** The accumulated gradient of a leaf after `backward()`. */
  grad: Tensor | null = null;
  /** Internal: the op that produced this tensor, if recorded. */
  _node: Node | null = null;
  /** Internal: set by `retainGrad()` on non-leaf tensors. */
  _retainsGrad = false;
  #storage: Storage | null;

  /** Internal; use `tensor(...)` and the other creation functions. */
  constructor(storage: Storage, shape: number[], dtype: DType) {
    this.#storage = storage;
    this.shape = Object.freeze(shape);
    this.dtype = dtype;
    track(this);
  }

  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return numelOf(this.shape);
  }
  /** The backend's name: "cpu" or "webgpu". */
  get device(): string {
    return this._backend.name;
  }
  /** True for tensors not produced by a recorded op. */
  get isLeaf(): boolean {
    return this._node === null;
  }
  get isDisposed(): boolean {
    return this.#storage === null;
  }
  /** Internal: the storage, or a clear error after dispose. */
  get _storage(): Storage {
    if (!this.#storage) {
      throw new Error(`tensor of shape [${this.shape}] was used after dispose()`);
    }
    return this.#storage;
  }
  get _backend(): Backend {
    return this._storage.backend;
  }
  get _buf(): Buf {
    return this._storage.buf;
  }

  /** Internal: a new tensor sharing this storage with another shape of the same size. */
  _view(shape: number[]): Tensor {
    return new Tensor(this._storage.retain(), shape, this.dtype);
  }
  /** Internal: a new tensor object sharing this storage (for ownership hand-offs). */
  _alias(): Tensor {
    return this._view([...this.shape]);
  }

  /** Frees the storage once no other tensor shares it. Idempotent. */
  dispose(): void {
    if (!this.#storage) return;
    untrack(this);
    this.#storage.release();
    this.#storage = null;
    if (this.grad) this.grad.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ------------------------------------------------------------------ readback (async)
  /** The values as a flat typed array (Float32Array, Int32Array, or Uint8Array for bool). */
  data(): Promise<TypedArray> {
    live("data", this);
    return this._backend.read(this._buf, this.dtype, this.numel);
  }
  /** The values as nested arrays (booleans for bool tensors). */
  async toArray(): Promise<Nested> {
    const d = await this.data();
    const conv = this.dtype === "bool" ? (v: number) => v !== 0 : (v: number) => v;
    const build = (dim: number, off: number): Nested => {
      if (dim === this.ndim) return conv(d[off]);
      const step = numelOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * step));
    };
    return build(0, 0);
  }
  /** The single value of a one-element tensor. */
  async item(): Promise<number | boolean> {
    if (this.numel !== 1) {
      throw new Error(`item: expected a tensor with one element, got shape [${this.shape}]`);
    }
    const v = (await this.data())[0];
    return this.dtype === "bool" ? v !== 0 : v;
  }
  toString(): string {
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ------------------------------------------------------------------------- autograd
  /** Backpropagates from this tensor into the `.grad` of every leaf that requires grad. */
  backward(grad?: Tensor, opts: BackwardOptions = {}): void {
    runBackward(this, grad, { ...opts, inputs: undefined });
  }
  /** Keep `.grad` on this non-leaf tensor during backward. */
  retainGrad(): this {
    this._retainsGrad = true;
    return this;
  }
  /** A tensor sharing the values, cut from the graph. */
  detach(): Tensor {
    return this._alias();
  }
  /** Sets requiresGrad in place (leaves only, float32 only). */
  requiresGrad_(flag = true): this {
    if (flag && this.dtype !== "float32") {
      throw new Error(`requiresGrad_: only float32 tensors can require grad, got ${this.dtype}`);
    }
    if (!this.isLeaf && !flag) {
      throw new Error(
        "requiresGrad_: cannot turn off requiresGrad on a non-leaf tensor; use detach()",
      );
    }
    this.requiresGrad = flag;
    return this;
  }
  /**
   * Replaces the values in place with those of `src` (same shape; cast to this dtype), without
   * recording it. For optimiser updates and loading weights; `src` may be disposed after.
   */
  assign(src: Tensor): this {
    if (src.shape.join() !== this.shape.join()) {
      throw new Error(`assign: shape [${src.shape}] does not match [${this.shape}]`);
    }
    const s = src.to(this.dtype);
    const next = s._storage.retain();
    if (s !== src) s.dispose();
    this._storage.release();
    this.#storage = next;
    return this;
  }

  // ---------------------------------------------------------------------------- dtype
  /** Casts to a dtype (returns this tensor when it already has it). */
  to(dtype: DType): Tensor {
    checkDType("to", dtype);
    live("to", this);
    if (dtype === this.dtype) return this;
    const buf = this._backend.cast(this._buf, this.dtype, dtype, this.numel);
    return fromBuf(this._backend, buf, this.shape, dtype);
  }
  float(): Tensor {
    return this.to("float32");
  }
  int(): Tensor {
    return this.to("int32");
  }
  bool(): Tensor {
    return this.to("bool");
  }
  /** A copy (differentiable). */
  clone(): Tensor {
    return this.mul(1).to(this.dtype);
  }

  // ---------------------------------------------------------------------- elementwise
  add(o: TL, opts?: { alpha?: number }): Tensor {
    return E.binary(
      "add",
      this,
      opts?.alpha !== undefined && typeof o === "object" ? o.mul(opts.alpha) : o,
    );
  }
  sub(o: TL, opts?: { alpha?: number }): Tensor {
    return E.binary(
      "sub",
      this,
      opts?.alpha !== undefined && typeof o === "object" ? o.mul(opts.alpha) : o,
    );
  }
  /** o - this. */
  rsub(o: TL): Tensor {
    return E.binary("sub", o, this);
  }
  mul(o: TL): Tensor {
    return E.binary("mul", this, o);
  }
  div(o: TL): Tensor {
    return E.binary("div", this, o);
  }
  pow(o: TL): Tensor {
    return E.binary("pow", this, o);
  }
  remainder(o: TL): Tensor {
    return E.binary("remainder", this, o);
  }
  maximum(o: TL): Tensor {
    return E.binary("maximum", this, o);
  }
  minimum(o: TL): Tensor {
    return E.binary("minimum", this, o);
  }
  eq(o: TL): Tensor {
    return E.binary("eq", this, o);
  }
  ne(o: TL): Tensor {
    return E.binary("ne", this, o);
  }
  lt(o: TL): Tensor {
    return E.binary("lt", this, o);
  }
  le(o: TL): Tensor {
    return E.binary("le", this, o);
  }
  gt(o: TL): Tensor {
    return E.binary("gt", this, o);
  }
  ge(o: TL): Tensor {
    return E.binary("ge", this, o);
  }
  logicalAnd(o: TL): Tensor {
    return E.binary("logicalAnd", this, o);
  }
  logicalOr(o: TL): Tensor {
    return E.binary("logicalOr", this, o);
  }
  logicalXor(o: TL): Tensor {
    return E.binary("logicalXor", this, o);
  }
  logicalNot(): Tensor {
    return E.unary("logicalNot", this);
  }
  neg(): Tensor {
    return E.unary("neg", this);
  }
  abs(): Tensor {
    return E.unary("abs", this);
  }
  sign(): Tensor {
    return E.unary("sign", this);
  }
  exp(): Tensor {
    return E.unary("exp", this);
  }
  log(): Tensor {
    return E.unary("log", this);
  }
  log1p(): Tensor {
    return E.unary("log1p", this);
  }
  expm1(): Tensor {
    return E.unary("expm1", this);
  }
  sqrt(): Tensor {
    return E.unary("sqrt", this);
  }
  rsqrt(): Tensor {
    return E.unary("sqrt", this).reciprocal();
  }
  square(): Tensor {
    return this.mul(this);
  }
  reciprocal(): Tensor {
    return E.unary("reciprocal", this);
  }
  sin(): Tensor {
    return E.unary("sin", this);
  }
  cos(): Tensor {
    return E.unary("cos", this);
  }
  tanh(): Tensor {
    return E.unary("tanh", this);
  }
  sigmoid(): Tensor {
    return E.unary("sigmoid", this);
  }
  relu(): Tensor {
    return E.unary("relu", this);
  }
  erf(): Tensor {
    return E.unary("erf", this);
  }
  floor(): Tensor {
    return E.unary("floor", this);
  }
  ceil(): Tensor {
    return E.unary("ceil", this);
  }
  /** Round half to even (as PyTorch). */
  round(): Tensor {
    return E.unary("round", this);
  }
  trunc(): Tensor {
    return E.unary("trunc", this);
  }
  isnan(): Tensor {
    return E.unary("isnan", this);
  }
  isinf(): Tensor {
    return E.unary("isinf", this);
  }
  isfinite(): Tensor {
    return this.isnan().logicalOr(this.isinf()).logicalNot();
  }
  leakyRelu(negativeSlope = 0.01): Tensor {
    return E.leakyRelu(this, negativeSlope);
  }
  elu(alpha = 1): Tensor {
    return E.elu(this, alpha);
  }
  gelu(opts: { approximate?: "none" | "tanh" } = {}): Tensor {
    return E.gelu(this, opts.approximate);
  }
  silu(): Tensor {
    return E.silu(this);
  }
  softplus(opts: { beta?: number; threshold?: number } = {}): Tensor {
    return E.softplus(this, opts.beta, opts.threshold);
  }
  clamp(min?: TL | null, max?: TL | null): Tensor {
    return E.clamp(this, min, max);
  }
  /** `cond ? this : other` elementwise (PyTorch's `Tensor.where(condition, other)`). */
  where(cond: TL, other: TL): Tensor {
    return E.where(cond, this, other);
  }

  // ------------------------------------------------------------------------ reductions
  sum(dim?: Dims, o?: R.ReduceOptions): Tensor {
    return R.sum(this, dim, o);
  }
  mean(dim?: Dims, o?: R.ReduceOptions): Tensor {
    return R.mean(this, dim, o);
  }
  prod(dim?: Dims, o?: R.ReduceOptions): Tensor {
    return R.prod(this, dim, o);
  }
  amax(dim?: Dims, o?: R.ReduceOptions): Tensor {
    return R.amax(this, dim, o);
  }
  amin(dim?: Dims, o?: R.ReduceOptions): Tensor {
    return R.amin(this, dim, o);
  }
  /** Without dim: the max over all elements. With dim: `{ values, indices }`. */
  max(): Tensor;
  max(dim: number, o?: R.ReduceOptions): R.ValuesIndices;
  max(dim?: number, o?: R.ReduceOptions): Tensor | R.ValuesIndices {
    return dim === undefined ? R.amax(this) : R.extremeAlong("max", this, dim, o);
  }
  min(): Tensor;
  min(dim: number, o?: R.ReduceOptions): R.ValuesIndices;
  min(dim?: number, o?: R.ReduceOptions): Tensor | R.ValuesIndices {
    return dim === undefined ? R.amin(this) : R.extremeAlong("min", this, dim, o);
  }
  argmax(dim?: number, o?: R.ReduceOptions): Tensor {
    return R.argReduce("argmax", this, dim, o);
  }
  argmin(dim?: number, o?: R.ReduceOptions): Tensor {
    return R.argReduce("argmin", this, dim, o);
  }
  var(dim?: Dims, o?: R.VarOptions): Tensor {
    return R.variance(this, dim, o);
  }
  std(dim?: Dims, o?: R.VarOptions): Tensor {
    return R.std(this, dim, o);
  }
  logsumexp(dim: Dims, o?: R.ReduceOptions): Tensor {
    return R.logsumexp(this, dim, o);
  }
  /** Vector p-norm (default 2) over dim (default all). */
  norm(p: number = 2, dim?: Dims, o?: R.ReduceOptions): Tensor {
    return R.norm(this, p, dim, o);
  }
  cumsum(dim: number): Tensor {
    return R.cumsum(this, dim);
  }
  cumprod(dim: number): Tensor {
    return R.cumprod(this, dim);
  }
  all(dim?: Dims, o?: R.ReduceOptions): Tensor {
    return R.all(this, dim, o);
  }
  any(dim?: Dims, o?: R.ReduceOptions): Tensor {
    return R.any(this, dim, o);
  }
  sort(dim = -1, o?: R.SortOptions): R.ValuesIndices {
    return R.sort(this, dim, o);
  }
  argsort(dim = -1, o?: R.SortOptions): Tensor {
    return R.argsort(this, dim, o);
  }
  topk(k: number, dim = -1, o?: R.TopkOptions): R.ValuesIndices {
    return R.topk(this, k, dim, o);
  }

  // ----------------------------------------------------------------------------- shape
  reshape(shape: readonly number[]): Tensor {
    return S.reshape(this, shape);
  }
  view(shape: readonly number[]): Tensor {
    return S.reshape(this, shape);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return S.flatten(this, startDim, endDim);
  }
  unflatten(dim: number, sizes: number[]): Tensor {
    return S.unflatten(this, dim, sizes);
  }
  squeeze(dim?: number | number[]): Tensor {
    return S.squeeze(this, dim);
  }
  unsqueeze(dim: number): Tensor {
    return S.unsqueeze(this, dim);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return S.transpose(this, dim0, dim1);
  }
  permute(dims: number[]): Tensor {
    return S.permute(this, dims);
  }
  /** All dims reversed (a matrix transpose for 2-D). */
  get T(): Tensor {
    return S.permute(this, [...this.shape.keys()].reverse());
  }
  /** The last two dims swapped. */
  get mT(): Tensor {
    if (this.ndim < 2) throw new Error(`mT: expected at least 2 dims, got ${this.ndim}`);
    return S.transpose(this, -2, -1);
  }
  expand(shape: readonly number[]): Tensor {
    return S.expand(this, shape);
  }
  expandAs(other: Tensor): Tensor {
    return S.expand(this, other.shape);
  }
  broadcastTo(shape: readonly number[]): Tensor {
    return S.expand(this, shape);
  }
  /** Tensors are always contiguous here: returns this tensor. */
  contiguous(): Tensor {
    return this;
  }
  slice(dim: number, start = 0, end?: number, step = 1): Tensor {
    return S.slice(this, dim, start, end, step);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return S.narrow(this, dim, start, length);
  }
  select(dim: number, index: number): Tensor {
    return S.select(this, dim, index);
  }
  split(size: number | number[], dim = 0): Tensor[] {
    return S.split(this, size, dim);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return S.chunk(this, chunks, dim);
  }
  repeat(reps: number[]): Tensor {
    return S.repeat(this, reps);
  }
  tile(reps: number[]): Tensor {
    return S.tile(this, reps);
  }
  flip(dims: number | number[]): Tensor {
    return S.flip(this, dims);
  }
  roll(shifts: number | number[], dims?: number | number[]): Tensor {
    return S.roll(this, shifts, dims);
  }
  pad(pads: number[], o?: S.PadOptions): Tensor {
    return S.pad(this, pads, o);
  }
  tril(diagonal = 0): Tensor {
    return S.tril(this, diagonal);
  }
  triu(diagonal = 0): Tensor {
    return S.triu(this, diagonal);
  }
  /** A copy of the strided view (non-overlapping) of this tensor's values. */
  asStrided(shape: number[], strides: number[], offset = 0): Tensor {
    return S.asStrided(this, shape, strides, offset);
  }

  // -------------------------------------------------------------------------- indexing
  gather(dim: number, index: Tensor): Tensor {
    return I.gather(this, dim, index);
  }
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    return I.scatter(this, dim, index, src);
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return I.scatterAdd(this, dim, index, src);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return I.indexSelect(this, dim, index);
  }
  take(index: Tensor): Tensor {
    return I.take(this, index);
  }
  maskedFill(mask: Tensor, value: number | boolean | Tensor): Tensor {
    return I.maskedFill(this, mask, value);
  }
  /** Asynchronous: the result's length depends on the mask's values. */
  maskedSelect(mask: Tensor): Promise<Tensor> {
    return I.maskedSelect(this, mask);
  }
  /** Asynchronous: the result's length depends on the values. */
  nonzero(): Promise<Tensor> {
    return I.nonzero(this);
  }

  // ---------------------------------------------------------------------------- linalg
  matmul(o: Tensor): Tensor {
    return M.matmul(this, o);
  }
  mm(o: Tensor): Tensor {
    return M.mm(this, o);
  }
  bmm(o: Tensor): Tensor {
    return M.bmm(this, o);
  }
  dot(o: Tensor): Tensor {
    return M.dot(this, o);
  }
  outer(o: Tensor): Tensor {
    return M.outer(this, o);
  }

  // ---------------------------------------------------------------------------- likes
  zerosLike(): Tensor {
    return C.zerosLike(this);
  }
  onesLike(): Tensor {
    return C.onesLike(this);
  }
}
