/**
 * Modular arithmetic tables, the grokking task (Power et al. 2022): `c = a op b (mod p)` for
 * op in add, sub, mul, div (a times the inverse of b, b != 0, p prime).
 *
 * Vocabulary: tokens 0..p-1 are the residues, token p is `=`, token p+1 is the operation
 * symbol. Inputs are `[a, b]` ("pair"), `[a, b, =]` ("equals") or `[a, op, b, =]` ("full");
 * the label is the residue c (numClasses = p).
 *
 * The table (all p^2 pairs, or p(p-1) for div, or a sample of `numPairs` of them) is shuffled
 * and split into train and test by `trainFraction`. Optional label corruption replaces the
 * label of exactly round(corruption * rows) rows of the chosen split by a different residue
 * drawn uniformly.
 */

import { Generator } from "../../core/random.ts";
import {
  checkChoice,
  checkInt,
  checkNumber,
  checkSeed,
  optionError,
  type TypedDataset,
} from "../dataset.ts";
import { subset } from "../loader.ts";

/** The operations: a + b, a - b, a * b, a * b^-1 (mod p). */
export const MODULAR_OPS = ["add", "sub", "mul", "div"] as const;
/** An operation. */
export type ModularOp = typeof MODULAR_OPS[number];
/** Input layouts: [a, b], [a, b, =], [a, op, b, =]. */
export const MODULAR_FORMATS = ["pair", "equals", "full"] as const;
/** An input layout. */
export type ModularFormat = typeof MODULAR_FORMATS[number];

/** Options of `modular`. */
export interface ModularOptions {
  /** Modulus (a prime for div). Default 97. At most 2048. */
  p?: number;
  /** Operation. Default "add". */
  op?: ModularOp;
  /** Input layout: [a, b], [a, b, =] or [a, op, b, =]. Default "pair". */
  format?: ModularFormat;
  /** Use a random sample of this many pairs instead of the whole table. Default: all. */
  numPairs?: number;
  /** Fraction of rows in the train split (rounded). Default 0.5. */
  trainFraction?: number;
  /** Fraction of rows of `corruptSplit` whose label is replaced by a wrong one. Default 0. */
  corruption?: number;
  /** Which rows may be corrupted: the train split or all rows. Default "train". */
  corruptSplit?: "train" | "all";
  /** Seed. Default 0. */
  seed?: number;
}

/** The result: the whole table (train rows first, then test rows) and the two splits. */
export interface ModularData {
  /** Every row: the train rows, then the test rows. */
  all: TypedDataset<Int32Array, Int32Array>;
  /** The first round(trainFraction * rows) rows of `all`. */
  train: TypedDataset<Int32Array, Int32Array>;
  /** The other rows of `all`. */
  test: TypedDataset<Int32Array, Int32Array>;
}

/** b^e mod p for p < 2^26 (products stay exact in doubles). */
function powMod(b: number, e: number, p: number): number {
  let r = 1;
  b %= p;
  while (e > 0) {
    if (e & 1) r = (r * b) % p;
    b = (b * b) % p;
    e = Math.floor(e / 2);
  }
  return r;
}

function isPrime(p: number): boolean {
  if (p < 2) return false;
  for (let d = 2; d * d <= p; d++) if (p % d === 0) return false;
  return true;
}

/** The true label of a op b mod p. */
export function modularLabel(a: number, b: number, op: ModularOp, p: number): number {
  switch (op) {
    case "add":
      return (a + b) % p;
    case "sub":
      return (((a - b) % p) + p) % p;
    case "mul":
      return (a * b) % p;
    case "div":
      return (a * powMod(b, p - 2, p)) % p; // Fermat: b^(p-2) is b's inverse mod prime p
  }
}

/**
 * Builds the table. Each of `all`, `train`, `test` has x: Int32Array [rows, 2 | 3 | 4],
 * y: Int32Array [rows], numClasses p, and in `meta`: `a`, `b` (operands), `clean` (true
 * labels), `corrupted` (Uint8Array, 1 where the label was replaced), `vocabSize` (p + 2),
 * `tokens` ({ equals: p, op: p + 1 }), `options`, and `perRow` naming the row arrays.
 * `all.meta.trainIndices` / `testIndices` give the split as row indices of `all`.
 */
export function modular(options: ModularOptions = {}): ModularData {
  const G = "modular";
  const {
    p = 97,
    op = "add",
    format = "pair",
    numPairs,
    trainFraction = 0.5,
    corruption = 0,
    corruptSplit = "train",
    seed = 0,
  } = options;
  checkInt(G, "p", p, 2, 2048);
  checkChoice(G, "op", op, MODULAR_OPS);
  checkChoice(G, "format", format, MODULAR_FORMATS);
  if (op === "div" && !isPrime(p)) {
    throw optionError(G, "p", `must be a prime for op 'div', got ${p}`);
  }
  checkNumber(G, "trainFraction", trainFraction, 0, 1);
  checkNumber(G, "corruption", corruption, 0, 1);
  checkChoice(G, "corruptSplit", corruptSplit, ["train", "all"] as const);
  checkSeed(G, seed);
  const bCount = op === "div" ? p - 1 : p; // div excludes b = 0
  const total = p * bCount;
  const rows = numPairs === undefined ? total : checkInt(G, "numPairs", numPairs, 1, total);

  const gen = new Generator(seed);
  const order = gen.permutation(total); // table position -> (a, b), shuffled
  const width = format === "pair" ? 2 : format === "equals" ? 3 : 4;
  const x = new Int32Array(rows * width);
  const a = new Int32Array(rows), b = new Int32Array(rows);
  const clean = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    a[i] = Math.floor(order[i] / bCount);
    b[i] = (order[i] % bCount) + (op === "div" ? 1 : 0);
    clean[i] = modularLabel(a[i], b[i], op, p);
    const row = format === "pair" ? [a[i], b[i]] : format === "equals" ? [a[i], b[i], p] : [
      a[i],
      p + 1,
      b[i],
      p,
    ];
    x.set(row, i * width);
  }

  // Corruption: exactly round(fraction * candidates) rows get a different label.
  const nTrain = Math.round(trainFraction * rows);
  const candidates = corruptSplit === "train" ? nTrain : rows;
  const nCorrupt = Math.round(corruption * candidates);
  const y = Int32Array.from(clean);
  const corrupted = new Uint8Array(rows);
  const pick = gen.permutation(candidates);
  for (let j = 0; j < nCorrupt; j++) {
    const i = pick[j];
    y[i] = (clean[i] + gen.int(1, p)) % p; // shift by 1..p-1: always wrong, uniform
    corrupted[i] = 1;
  }

  const all: TypedDataset<Int32Array, Int32Array> = {
    name: `modular-${op}-${p}`,
    x,
    xShape: [rows, width],
    y,
    yShape: [rows],
    numClasses: p,
    meta: {
      generator: "modular",
      a,
      b,
      clean,
      corrupted,
      vocabSize: p + 2,
      tokens: { equals: p, op: p + 1 },
      options: { p, op, format, numPairs: rows, trainFraction, corruption, corruptSplit, seed },
      perRow: ["a", "b", "clean", "corrupted"],
    },
  };
  const trainIdx = Int32Array.from({ length: nTrain }, (_, i) => i);
  const testIdx = Int32Array.from({ length: rows - nTrain }, (_, i) => nTrain + i);
  const train = subset(all, trainIdx);
  const test = subset(all, testIdx);
  train.name = `${all.name}-train`;
  test.name = `${all.name}-test`;
  all.meta!.trainIndices = trainIdx;
  all.meta!.testIndices = testIdx;
  return { all, train, test };
}
