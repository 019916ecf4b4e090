/** Tensor creation: from data, constants, ranges and the seeded random generator. */
import { type Backend, getBackend } from "../backend.ts";
import { checkDType, type DType, dtypeOfArray } from "../dtype.ts";
import { takeCounter } from "../random.ts";
import { checkShape, fmtShape, numelOf } from "../shape.ts";
import { fromBuf, type Tensor } from "../tensor.ts";

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

export interface TensorOptions extends CreateOptions {
  /** The shape of flat typed-array data (defaults to [data.length]). */
  shape?: number[];
}

/** Nested arrays of numbers or booleans, or a typed array. */
export type NestedData = number | boolean | NestedData[] | ArrayLike<number>;

function finish(t: Tensor, o: CreateOptions): Tensor {
  if (o.requiresGrad) {
    if (t.dtype !== "float32") {
      throw new Error(`tensor: only float32 tensors can require grad, got ${t.dtype}`);
    }
    t.requiresGrad = true;
  }
  return t;
}

function inferShapeOf(data: NestedData, shape: number[] = []): number[] {
  if (typeof data === "number" || typeof data === "boolean") return shape;
  if (!Array.isArray(data)) return [...shape, (data as ArrayLike<number>).length];
  shape.push(data.length);
  if (data.length) inferShapeOf(data[0], shape);
  return shape;
}

function flattenInto(data: NestedData, shape: number[], depth: number, out: number[]): boolean {
  if (depth === shape.length) {
    if (typeof data === "boolean") {
      out.push(data ? 1 : 0);
      return true;
    }
    if (typeof data !== "number") throw new Error("tensor: ragged nested data (uneven lengths)");
    out.push(data);
    return false;
  }
  const len = Array.isArray(data) ? data.length : (data as ArrayLike<number>).length;
  if (typeof data !== "object" || len !== shape[depth]) {
    throw new Error(
      `tensor: ragged nested data: expected length ${shape[depth]} at depth ${depth}`,
    );
  }
  let bools = true;
  for (let i = 0; i < len; i++) {
    if (!flattenInto((data as ArrayLike<NestedData>)[i], shape, depth + 1, out)) bools = false;
  }
  return bools && len > 0;
}

/**
 * A tensor from numbers, booleans, nested arrays or a typed array (with `shape`). Integer
 * data gives int32 and booleans give bool (as PyTorch infers), except that
 * `requiresGrad: true` without a dtype gives float32.
 */
export function tensor(data: NestedData, o: TensorOptions = {}): Tensor {
  if (o.dtype) checkDType("tensor", o.dtype);
  let flat: ArrayLike<number>, shape: number[], inferred: DType;
  if (ArrayBuffer.isView(data)) {
    flat = data as unknown as ArrayLike<number>;
    shape = o.shape ? checkShape("tensor", o.shape) : [flat.length];
    inferred = dtypeOfArray(flat) === "float32" ? "float32" : "int32";
    if (numelOf(shape) !== flat.length) {
      throw new Error(`tensor: shape ${fmtShape(shape)} does not match ${flat.length} values`);
    }
  } else {
    shape = inferShapeOf(data);
    const out: number[] = [];
    const bools = flattenInto(data, shape, 0, out);
    flat = out;
    inferred = bools ? "bool" : out.every(Number.isInteger) ? "int32" : "float32";
    if (typeof data === "boolean") inferred = "bool";
    if (o.shape) {
      if (numelOf(o.shape) !== out.length) {
        throw new Error(`tensor: shape ${fmtShape(o.shape)} does not match ${out.length} values`);
      }
      shape = [...o.shape];
    }
  }
  const dtype = o.dtype ?? (o.requiresGrad ? "float32" : inferred);
  return finish(fromArrayOn(getBackend(), flat, dtype, shape), o);
}

/** Internal: a tensor of the given values on `on`'s backend (a tensor or a backend). */
export function fromArrayOn(
  on: Tensor | Backend,
  values: ArrayLike<number>,
  dtype: DType = "int32",
  shape: number[] = [values.length],
): Tensor {
  const be = "_backend" in on ? on._backend : on;
  const arr = dtype === "float32"
    ? Float32Array.from(values)
    : dtype === "int32"
    ? Int32Array.from(values)
    : Uint8Array.from(values, (v) => (v ? 1 : 0));
  return fromBuf(be, be.upload(arr, dtype), shape, dtype);
}

/** Internal: a constant tensor on `like`'s backend. */
export function fullOn(like: Tensor, shape: number[], dtype: DType, value: number): Tensor {
  return fromBuf(like._backend, like._backend.full(numelOf(shape), dtype, value), shape, dtype);
}

/** Internal: 0..n-1 (int32) on `like`'s backend. */
export function arangeOn(like: Tensor, n: number): Tensor {
  return fromBuf(like._backend, like._backend.arange(n, 0, 1, "int32"), [n], "int32");
}

export function full(shape: number[], value: number | boolean, o: CreateOptions = {}): Tensor {
  const s = checkShape("full", shape);
  const dtype = o.dtype ?? (typeof value === "boolean" ? "bool" : "float32");
  const be = getBackend();
  return finish(fromBuf(be, be.full(numelOf(s), dtype, Number(value)), s, dtype), o);
}

export const zeros = (shape: number[], o: CreateOptions = {}): Tensor => full(shape, 0, o);
export const ones = (shape: number[], o: CreateOptions = {}): Tensor => full(shape, 1, o);

export function fullLike(x: Tensor, value: number | boolean, o: CreateOptions = {}): Tensor {
  const dtype = o.dtype ?? x.dtype;
  return finish(fullOn(x, [...x.shape], dtype, Number(value)), o);
}
export const zerosLike = (x: Tensor, o: CreateOptions = {}): Tensor => fullLike(x, 0, o);
export const onesLike = (x: Tensor, o: CreateOptions = {}): Tensor => fullLike(x, 1, o);

/**
 * `arange(end)` or `arange(start, end, step)`: int32 when all bounds are integers, else
 * float32 (PyTorch infers int64/float the same way).
 */
export function arange(start: number, end?: number, step = 1, o: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step)) throw new Error(`arange: step must be non-zero`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const ints = [start, end, step].every(Number.isInteger);
  const dtype = o.dtype ?? (ints ? "int32" : "float32");
  const be = getBackend();
  return finish(fromBuf(be, be.arange(n, start, step, dtype), [n], dtype), o);
}

/** `steps` evenly spaced float32 values from start to end inclusive. */
export function linspace(start: number, end: number, steps: number, o: CreateOptions = {}): Tensor {
  if (!Number.isInteger(steps) || steps < 0) {
    throw new Error(`linspace: steps must be a non-negative integer, got ${steps}`);
  }
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  const vals = Array.from({ length: steps }, (_, i) =>
    // From both ends, as PyTorch does, so the last value is exactly `end`.
    i < steps / 2 ? start + i * step : end - (steps - 1 - i) * step);
  return finish(fromArrayOn(getBackend(), vals, o.dtype ?? "float32"), o);
}

export function eye(n: number, m = n, o: CreateOptions = {}): Tensor {
  const vals = new Float32Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) vals[i * m + i] = 1;
  return finish(fromArrayOn(getBackend(), vals, o.dtype ?? "float32", [n, m]), o);
}

function randomOf(kind: "uniform" | "normal", shape: number[], o: CreateOptions): Tensor {
  const s = checkShape(kind === "uniform" ? "rand" : "randn", shape);
  const n = numelOf(s);
  const { key, start } = takeCounter(kind === "normal" ? 2 * n : n);
  const be = getBackend();
  const t = fromBuf(be, be.random(kind, n, key, start), s, "float32");
  return finish(o.dtype && o.dtype !== "float32" ? t.to(o.dtype) : t, o);
}

/** Uniform samples in [0, 1) from the global seeded stream. */
export const rand = (shape: number[], o: CreateOptions = {}): Tensor =>
  randomOf("uniform", shape, o);
/** Standard normal samples from the global seeded stream. */
export const randn = (shape: number[], o: CreateOptions = {}): Tensor =>
  randomOf("normal", shape, o);

/** Integers in [low, high) (int32). */
export function randint(low: number, high: number, shape: number[], o: CreateOptions = {}): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) {
    throw new Error(`randint: expected integers low < high, got ${low} and ${high}`);
  }
  const s = checkShape("randint", shape);
  const n = numelOf(s);
  const { key, start } = takeCounter(n);
  const be = getBackend();
  const t = fromBuf(be, be.random("int", n, key, start, low, high), s, "int32");
  return finish(o.dtype ? t.to(o.dtype) : t, o);
}

/** A random permutation of 0..n-1 (int32): the order that sorts n uniform samples. */
export function randperm(n: number): Tensor {
  if (!Number.isInteger(n) || n < 0) throw new Error(`randperm: n must be >= 0, got ${n}`);
  return rand([n]).argsort();
}

/** 1 with probability p (elementwise when p is a tensor), as float32. */
export function bernoulli(p: Tensor | number, shape?: number[]): Tensor {
  if (typeof p === "number") {
    if (!(p >= 0 && p <= 1)) throw new Error(`bernoulli: p must be in [0, 1], got ${p}`);
    return rand(shape ?? []).lt(p).float();
  }
  return rand([...p.shape]).lt(p).float();
}
