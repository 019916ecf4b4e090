/** Data types of the core and PyTorch's promotion rules between them. */
import type { BinaryOp, UnaryOp } from "./backend.ts";

/** The dtypes a tensor can have. `float16`/`bfloat16` are read from files as float32. */
export type DType = "float32" | "int32" | "bool";

/** The host-side array that holds a dtype's values. */
export type TypedArray = Float32Array | Int32Array | Uint8Array;

const ORDER: Record<DType, number> = { bool: 0, int32: 1, float32: 2 };

/** Throws unless `d` is a known dtype. */
export function checkDType(op: string, d: unknown): DType {
  if (d === "float32" || d === "int32" || d === "bool") return d;
  throw new Error(`${op}: unknown dtype ${JSON.stringify(d)}; expected float32, int32 or bool`);
}

/** A fresh zeroed host array for `n` values of `dtype`. */
export function allocArray(dtype: DType, n: number): TypedArray {
  if (dtype === "float32") return new Float32Array(n);
  if (dtype === "int32") return new Int32Array(n);
  return new Uint8Array(n);
}

/** Bytes per element as stored (bool is one byte on the host, four on the GPU). */
export function bytesPer(dtype: DType): number {
  return dtype === "bool" ? 1 : 4;
}

/** Binary ops whose result is bool whatever their operands' dtype. */
export const BOOL_BINARY: ReadonlySet<BinaryOp> = new Set<BinaryOp>([
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "logicalAnd",
  "logicalOr",
  "logicalXor",
]);

/** Unary ops whose result is bool. */
export const BOOL_UNARY: ReadonlySet<UnaryOp> = new Set<UnaryOp>(["isnan", "isinf", "logicalNot"]);

/** The dtype a backend's binary op gives on operands of `dtype` (div of ints gives floats). */
export function binaryResultDtype(op: BinaryOp, dtype: DType): DType {
  return BOOL_BINARY.has(op) ? "bool" : op === "div" ? "float32" : dtype;
}

/** The result dtype of a binary op between two tensors (PyTorch's category promotion). */
export function promoteTypes(a: DType, b: DType): DType {
  return ORDER[a] >= ORDER[b] ? a : b;
}

/** The dtype category of a JS scalar: booleans are bool, integers int32, others float32. */
export function scalarType(v: number | boolean): DType {
  if (typeof v === "boolean") return "bool";
  return Number.isInteger(v) ? "int32" : "float32";
}

/**
 * Promotion between a tensor and a scalar: a scalar only raises the category
 * (PyTorch: `int_tensor * 2` stays int, `int_tensor * 2.5` becomes float).
 */
export function promoteWithScalar(t: DType, v: number | boolean): DType {
  const s = scalarType(v);
  return ORDER[s] > ORDER[t] ? s : t;
}

export function isFloating(d: DType): boolean {
  return d === "float32";
}

/** The dtype of a typed array given as data. */
export function dtypeOfArray(a: ArrayLike<number>): DType | undefined {
  if (a instanceof Float32Array || a instanceof Float64Array) return "float32";
  if (a instanceof Int32Array || a instanceof Int16Array || a instanceof Int8Array) return "int32";
  if (a instanceof Uint8Array) return "bool";
  return undefined;
}
