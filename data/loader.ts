/**
 * Dataset utilities on plain arrays: `subset`, `split` (optionally stratified), `fewShot`
 * (k examples per class) and `batches` (a mini-batch iterator). All are seeded with the
 * host-side Generator of core/random.ts: same seed, same rows in the same order.
 *
 * Every result is a copy: rows of `x`, `y` and of the row-aligned arrays named in
 * `meta.perRow` are gathered into new arrays; other `meta` entries are shared shallowly.
 */

import { Generator } from "../core/random.ts";
import {
  checkInt,
  checkNumber,
  checkSeed,
  type Dataset,
  gatherRows,
  isTypedArray,
  numRows,
  optionError,
  rowWidth,
  type TypedArray,
  type TypedDataset,
} from "./dataset.ts";

/** Gathers a row-aligned meta value: a typed array or a record of typed arrays. */
function gatherMeta(v: unknown, n: number, idx: ArrayLike<number>, key: string): unknown {
  if (isTypedArray(v)) {
    if (n > 0 && v.length % n !== 0) {
      throw new Error(`subset: meta.${key} has ${v.length} elements, not a multiple of ${n} rows`);
    }
    return gatherRows(v, n > 0 ? v.length / n : 0, idx);
  }
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, w] of Object.entries(v)) out[k] = gatherMeta(w, n, idx, `${key}.${k}`);
    return out;
  }
  throw new Error(`subset: meta.${key} is listed in meta.perRow but is not a typed array`);
}

/**
 * The rows `indices` of `ds` (in that order, repeats allowed), as a new plain Dataset. Fields
 * beyond the Dataset interface (e.g. RegressionDataset's `w`) are not carried over; their
 * row-aligned copies in `meta.perRow` are.
 */
export function subset<D extends Dataset>(
  ds: D,
  indices: ArrayLike<number>,
): TypedDataset<D["x"], D["y"]> {
  const n = numRows(ds);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i];
    if (!Number.isInteger(r) || r < 0 || r >= n) {
      throw new Error(`subset: index ${r} at position ${i} is out of range for ${n} rows`);
    }
  }
  let meta = ds.meta;
  const perRow = ds.meta?.perRow;
  if (Array.isArray(perRow) && perRow.length > 0) {
    meta = { ...ds.meta };
    for (const key of perRow as string[]) meta[key] = gatherMeta(ds.meta![key], n, indices, key);
  }
  const m = indices.length;
  const out: TypedDataset<D["x"], D["y"]> = {
    name: ds.name,
    x: gatherRows(ds.x, rowWidth(ds.xShape), indices),
    xShape: [m, ...ds.xShape.slice(1)],
    y: gatherRows(ds.y, rowWidth(ds.yShape), indices),
    yShape: [m, ...ds.yShape.slice(1)],
  };
  if (ds.numClasses !== undefined) out.numClasses = ds.numClasses;
  if (meta !== undefined) out.meta = meta;
  return out;
}

/** Class labels of a classification dataset (y: Int32Array [n]), or an Error naming `where`. */
function classLabels(ds: Dataset, where: string): Int32Array {
  if (!(ds.y instanceof Int32Array) || ds.yShape.length !== 1) {
    throw new Error(
      `${where}: needs integer class labels y: Int32Array [n] (dataset '${ds.name}')`,
    );
  }
  return ds.y;
}

/** Row indices grouped by class, each group in the order of `order`. */
function byClass(labels: Int32Array, order: Int32Array): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (const i of order) {
    const c = labels[i];
    if (!groups.has(c)) groups.set(c, []);
    groups.get(c)!.push(i);
  }
  return new Map([...groups.entries()].sort((a, b) => a[0] - b[0]));
}

/** Options of `split`: fractions of rows; `test` defaults to the rest. */
export interface SplitOptions {
  /** Fraction in train. */
  train: number;
  /** Fraction in validation. Default 0. */
  val?: number;
  /** Fraction in test. Default 1 - train - val. */
  test?: number;
  /** Seed of the shuffle. Default 0. */
  seed?: number;
  /** Apply the fractions within each class (needs y: Int32Array [n]). Default false. */
  stratify?: boolean;
}

/**
 * Shuffles the rows and cuts them into train, val and test at positions round(train * m),
 * round((train + val) * m) and round((train + val + test) * m) (or m when the fractions sum
 * to 1). With `stratify` the rows of each class are cut this way separately, so each part
 * holds each class's fraction to within one row.
 * The three parts never share a row; rows beyond train+val+test (when it is below 1) are
 * left out. Each part's rows are in random order.
 */
export function split(
  ds: Dataset,
  options: SplitOptions,
): { train: Dataset; val: Dataset; test: Dataset } {
  const W = "split";
  const { train, val = 0, seed = 0, stratify = false } = options;
  checkNumber(W, "train", train, 0, 1);
  checkNumber(W, "val", val, 0, 1);
  const test = options.test ?? Math.max(0, 1 - train - val);
  checkNumber(W, "test", test, 0, 1);
  if (train + val + test > 1 + 1e-9) {
    throw optionError(W, "train/val/test", `must sum to at most 1, got ${train + val + test}`);
  }
  checkSeed(W, seed);
  const toEnd = Math.abs(train + val + test - 1) < 1e-9; // test takes every remaining row

  const gen = new Generator(seed);
  const order = gen.permutation(numRows(ds));
  const parts: number[][] = [[], [], []];
  const cut = (rows: ArrayLike<number>) => {
    const m = rows.length;
    const b1 = Math.round(train * m);
    const b2 = Math.max(b1, Math.round((train + val) * m));
    const b3 = toEnd ? m : Math.max(b2, Math.min(m, Math.round((train + val + test) * m)));
    for (let j = 0; j < b3; j++) parts[j < b1 ? 0 : j < b2 ? 1 : 2].push(rows[j]);
  };
  if (stratify) {
    for (const rows of byClass(classLabels(ds, W), order).values()) cut(rows);
    for (const part of parts) gen.shuffle(part); // mix the classes within each part
  } else {
    cut(order);
  }
  return { train: subset(ds, parts[0]), val: subset(ds, parts[1]), test: subset(ds, parts[2]) };
}

/** Options of `fewShot`. */
export interface FewShotOptions {
  /** Examples per class in the support set. */
  perClass: number;
  /** Seed. Default 0. */
  seed?: number;
  /** Classes to draw from. Default every class present in y. */
  classes?: number[];
}

/**
 * Draws `perClass` random rows of each class (the support set); every other row of those
 * classes goes to the query set. Both are in random order. Throws if a class has fewer than
 * `perClass` rows.
 */
export function fewShot(
  ds: Dataset,
  options: FewShotOptions,
): { support: Dataset; query: Dataset } {
  const W = "fewShot";
  const { perClass, seed = 0 } = options;
  checkInt(W, "perClass", perClass, 1);
  checkSeed(W, seed);
  const gen = new Generator(seed);
  const groups = byClass(classLabels(ds, W), gen.permutation(numRows(ds)));
  const classes = options.classes ?? [...groups.keys()];
  const support: number[] = [], query: number[] = [];
  for (const c of classes) {
    const rows = groups.get(c) ?? [];
    if (rows.length < perClass) {
      throw optionError(
        W,
        "perClass",
        `is ${perClass} but class ${c} has only ${rows.length} rows`,
      );
    }
    support.push(...rows.slice(0, perClass));
    query.push(...rows.slice(perClass));
  }
  gen.shuffle(support);
  gen.shuffle(query);
  return { support: subset(ds, support), query: subset(ds, query) };
}

/** One mini-batch: copies of the rows, in batch order, and their row indices in `ds`. */
export interface Batch {
  /** The batch's inputs, row-major. */
  x: Float32Array | Int32Array;
  /** `[rows in batch, ...ds.xShape.slice(1)]`. */
  xShape: number[];
  /** The batch's labels or targets. */
  y: Int32Array | Float32Array;
  /** `[rows in batch, ...ds.yShape.slice(1)]`. */
  yShape: number[];
  /** Row indices in `ds`, in batch order. */
  indices: Int32Array;
}

/** Options of `batches`. */
export interface BatchOptions {
  /** Rows per batch. */
  batchSize: number;
  /** Visit rows in a random order. Default false (row order). */
  shuffle?: boolean;
  /** Seed of the shuffle; use e.g. `base + epoch` for a new order each epoch. Default 0. */
  seed?: number;
  /** Skip a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
}

/** One epoch of mini-batches: every row once (except a dropped remainder). */
export function* batches(ds: Dataset, options: BatchOptions): IterableIterator<Batch> {
  const W = "batches";
  const { batchSize, shuffle = false, seed = 0, dropLast = false } = options;
  checkInt(W, "batchSize", batchSize, 1);
  checkSeed(W, seed);
  const n = numRows(ds);
  const order = shuffle
    ? new Generator(seed).permutation(n)
    : Int32Array.from({ length: n }, (_, i) => i);
  const xw = rowWidth(ds.xShape), yw = rowWidth(ds.yShape);
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    if (dropLast && end - start < batchSize) return;
    const indices = order.slice(start, end);
    yield {
      x: gatherRows(ds.x as TypedArray, xw, indices) as Float32Array | Int32Array,
      xShape: [end - start, ...ds.xShape.slice(1)],
      y: gatherRows(ds.y as TypedArray, yw, indices) as Int32Array | Float32Array,
      yShape: [end - start, ...ds.yShape.slice(1)],
      indices,
    };
  }
}

/**
 * Row indices of step `s`'s mini-batch when every epoch visits the n rows in a fresh order
 * drawn from `gen` (the first order is drawn now, each later one at its epoch's first step);
 * a remainder smaller than a batch is dropped. For loops that share `gen` with other draws.
 */
export function epochBatchIndices(
  n: number,
  batchSize: number,
  gen: Generator,
): (step: number) => Int32Array {
  checkInt("epochBatchIndices", "batchSize", batchSize, 1, n);
  const perEpoch = Math.floor(n / batchSize);
  let order = gen.permutation(n);
  return (step) => {
    const k = step % perEpoch;
    if (k === 0 && step > 0) order = gen.permutation(n);
    return order.subarray(k * batchSize, (k + 1) * batchSize);
  };
}
