/**
 * The plain-array dataset type shared by every loader and generator in data/, and the small
 * helpers they use to validate options and copy rows.
 *
 * A dataset holds no tensors: `x` and `y` are row-major typed arrays whose first dimension is
 * the number of rows `n`. Row-aligned side information (per-row labels of other tasks, clean
 * labels, ...) lives in `meta`; keys listed in `meta.perRow` name such arrays so that
 * `subset`, `split` and `fewShot` (data/loader.ts) slice them together with `x` and `y`.
 */

/** Any typed array a dataset may carry. */
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array;

/** A dataset of `n` rows as plain typed arrays. */
export interface Dataset {
  /** Short name, e.g. "digits" or "shapes". */
  name: string;
  /** Inputs, row-major. */
  x: Float32Array | Int32Array;
  /** Shape of `x`: `[n, ...]`. */
  xShape: number[];
  /** Labels (Int32Array) or targets (Float32Array), row-major. */
  y: Int32Array | Float32Array;
  /** Shape of `y`: `[n]` or `[n, ...]`. */
  yShape: number[];
  /** Number of classes, for classification. */
  numClasses?: number;
  /**
   * Generator options, task names, provenance. `meta.perRow` (a string[]) lists keys whose
   * values are row-aligned typed arrays (row width = length / n), or records of them.
   */
  meta?: Record<string, unknown>;
}

/** A Dataset with its array types narrowed, e.g. `TypedDataset<Float32Array, Int32Array>`. */
export interface TypedDataset<
  X extends Float32Array | Int32Array = Float32Array,
  Y extends Int32Array | Float32Array = Int32Array,
> extends Dataset {
  /** Inputs, row-major. */
  x: X;
  /** Labels or targets, row-major. */
  y: Y;
}

/** Number of rows of a dataset. */
export function numRows(ds: Dataset): number {
  return ds.xShape[0];
}

/** Product of the trailing dimensions of a shape (elements per row). */
export function rowWidth(shape: readonly number[]): number {
  let w = 1;
  for (let i = 1; i < shape.length; i++) w *= shape[i];
  return w;
}

/** Copies rows `indices` of a row-major array with `width` elements per row. */
export function gatherRows<T extends TypedArray>(
  src: T,
  width: number,
  indices: ArrayLike<number>,
): T {
  const Ctor = src.constructor as new (n: number) => T;
  const out = new Ctor(indices.length * width);
  for (let r = 0; r < indices.length; r++) {
    const start = indices[r] * width;
    out.set(src.subarray(start, start + width) as ArrayLike<number> & T, r * width);
  }
  return out;
}

/** True for any typed array (not DataView). */
export function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

// ---------------------------------------------------------------------------------------------
// Option validation. Every error names the generator (`where`) and the option, e.g.
// "modular: option p must be a prime for op 'div', got 12".

/** Throws `Error("<where>: option <name> ...")`. */
export function optionError(where: string, name: string, message: string): Error {
  return new Error(`${where}: option ${name} ${message}`);
}

/** Checks an integer option in [min, max]. */
export function checkInt(
  where: string,
  name: string,
  v: number,
  min: number,
  max = Infinity,
): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
    throw optionError(where, name, `must be an integer ${range}, got ${v}`);
  }
  return v;
}

/** Checks a finite number option in [min, max]. */
export function checkNumber(
  where: string,
  name: string,
  v: number,
  min: number,
  max = Infinity,
): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
    throw optionError(where, name, `must be a finite number ${range}, got ${v}`);
  }
  return v;
}

/** Checks a string option against the allowed values. */
export function checkChoice<T extends string>(
  where: string,
  name: string,
  v: T,
  allowed: readonly T[],
): T {
  if (!allowed.includes(v)) {
    throw optionError(
      where,
      name,
      `must be one of ${allowed.map((a) => `'${a}'`).join(", ")}, got '${v}'`,
    );
  }
  return v;
}

/** Checks a seed: a non-negative integer (what core/random.ts's Generator accepts). */
export function checkSeed(where: string, v: number, name = "seed"): number {
  return checkInt(where, name, v, 0, Number.MAX_SAFE_INTEGER);
}
