/**
 * Algorithmic token-sequence tasks (copy, reverse, sort, parity, majority, associative
 * recall, modular sum) and a `mixture` of them with a task-id token.
 *
 * Vocabulary (the same for every task, so mixtures share it):
 *
 *   0                 PAD  (fills inputs and targets after their end)
 *   1                 SEP  (ends the sequence; in recall, separates the pairs from the query)
 *   2 .. 8            task-id tokens, 2 + index in SEQUENCE_TASKS (used by `mixture`)
 *   9 .. 9 + s - 1    the s content symbols 0..s-1 (`numSymbols`), token = FIRST_SYMBOL + symbol
 *
 * Inputs and targets are Int32Array token ids of fixed width (padded with PAD):
 *
 *   copy      in: a1..aL SEP            out: a1..aL
 *   reverse   in: a1..aL SEP            out: aL..a1
 *   sort      in: a1..aL SEP            out: a1..aL in ascending order
 *   parity    in: bits b1..bL SEP       out: (sum b) mod 2          (symbols 0, 1 only)
 *   majority  in: a1..aL SEP            out: the most frequent symbol (resampled until unique)
 *   recall    in: k1 v1 .. kL vL SEP q  out: the v paired with q    (keys distinct, from the
 *                                           lower half of the symbols; values the upper half)
 *   modsum    in: a1..aL SEP            out: (sum a) mod m          (symbols 0..m-1)
 *
 * L is uniform in [minLength, length] per row (for recall, L is the number of pairs).
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

/** The tasks, in task-id order. */
export const SEQUENCE_TASKS = [
  "copy",
  "reverse",
  "sort",
  "parity",
  "majority",
  "recall",
  "modsum",
] as const;
/** A task name. */
export type SequenceTask = typeof SEQUENCE_TASKS[number];

/** The padding token. */
export const PAD = 0;
/** The separator token. */
export const SEP = 1;
/** Token of the first content symbol. */
export const FIRST_SYMBOL: number = 2 + SEQUENCE_TASKS.length;

/** The task-id token of a task. */
export function taskToken(task: SequenceTask): number {
  return 2 + SEQUENCE_TASKS.indexOf(task);
}

/** The token layout shared by every task (see the module comment). */
export interface SequenceVocab {
  /** PAD. */
  pad: number;
  /** SEP. */
  sep: number;
  /** Task name -> its task-id token. */
  taskTokens: Record<string, number>;
  /** Token of symbol 0; symbol s is firstSymbol + s. */
  firstSymbol: number;
  /** Number of content symbols. */
  numSymbols: number;
  /** firstSymbol + numSymbols. */
  vocabSize: number;
}

/** Description of the vocabulary for `numSymbols` content symbols. */
export function sequenceVocab(numSymbols: number): SequenceVocab {
  return {
    pad: PAD,
    sep: SEP,
    taskTokens: Object.fromEntries(SEQUENCE_TASKS.map((t) => [t, taskToken(t)])),
    firstSymbol: FIRST_SYMBOL,
    numSymbols,
    vocabSize: FIRST_SYMBOL + numSymbols,
  };
}

/** Options shared by every task. */
export interface SequenceOptions {
  /** Number of rows. Default 1000. */
  n?: number;
  /** Maximum sequence length (pairs for recall). Default 8. */
  length?: number;
  /** Minimum length. Default `length` (every row full length). */
  minLength?: number;
  /** Number of content symbols. Default 16. */
  numSymbols?: number;
  /** Modulus of modsum (2..numSymbols). Default numSymbols. */
  modulus?: number;
  /** Seed. Default 0. */
  seed?: number;
}

type Resolved = Required<SequenceOptions>;

function resolve(where: string, o: SequenceOptions, tasks: readonly SequenceTask[]): Resolved {
  const { n = 1000, length = 8, numSymbols = 16, seed = 0 } = o;
  const { minLength = length, modulus = numSymbols } = o;
  checkInt(where, "n", n, 1);
  checkInt(where, "length", length, 1, 4096);
  checkInt(where, "minLength", minLength, 1, length);
  checkInt(where, "numSymbols", numSymbols, 2, 100000);
  checkInt(where, "modulus", modulus, 2, numSymbols);
  checkSeed(where, seed);
  if (tasks.includes("recall") && length > Math.floor(numSymbols / 2)) {
    throw optionError(
      where,
      "length",
      `must be at most numSymbols / 2 = ${Math.floor(numSymbols / 2)} for 'recall' (distinct keys)`,
    );
  }
  return { n, length, minLength, numSymbols, modulus, seed };
}

/** Input and target widths of a task. */
function widths(task: SequenceTask, length: number): [number, number] {
  if (task === "recall") return [2 * length + 2, 1];
  if (task === "copy" || task === "reverse" || task === "sort") return [length + 1, length];
  return [length + 1, 1];
}

const sym = (s: number) => FIRST_SYMBOL + s;

/** One example of `task` with L symbols (pairs for recall), as token lists. */
function example(task: SequenceTask, gen: Generator, L: number, o: Resolved) {
  const draw = (k: number) => Array.from({ length: L }, () => gen.int(0, k));
  switch (task) {
    case "copy":
    case "reverse":
    case "sort": {
      const a = draw(o.numSymbols);
      const t = task === "copy"
        ? a
        : task === "reverse"
        ? [...a].reverse()
        : [...a].sort((p, q) => p - q);
      return { input: [...a.map(sym), SEP], target: t.map(sym), length: L };
    }
    case "parity": {
      const a = draw(2);
      return {
        input: [...a.map(sym), SEP],
        target: [sym(a.reduce((s, v) => s + v, 0) % 2)],
        length: L,
      };
    }
    case "modsum": {
      const a = draw(o.modulus);
      return {
        input: [...a.map(sym), SEP],
        target: [sym(a.reduce((s, v) => s + v, 0) % o.modulus)],
        length: L,
      };
    }
    case "majority": {
      for (let attempt = 0; attempt < 100000; attempt++) {
        const a = draw(o.numSymbols);
        const counts = new Map<number, number>();
        for (const v of a) counts.set(v, (counts.get(v) ?? 0) + 1);
        const best = Math.max(...counts.values());
        const modes = [...counts.entries()].filter(([, c]) => c === best);
        if (modes.length === 1) {
          return { input: [...a.map(sym), SEP], target: [sym(modes[0][0])], length: L };
        }
      }
      throw optionError(
        "majority",
        "numSymbols",
        `is too large for length ${L}: no draw had a unique most frequent symbol`,
      );
    }
    case "recall": {
      const half = Math.floor(o.numSymbols / 2);
      const keys = gen.permutation(half).subarray(0, L);
      const values = Array.from({ length: L }, () => gen.int(half, o.numSymbols));
      const q = gen.int(0, L);
      const input: number[] = [];
      for (let i = 0; i < L; i++) input.push(sym(keys[i]), sym(values[i]));
      input.push(SEP, sym(keys[q]));
      return { input, target: [sym(values[q])], length: L };
    }
  }
}

/** Writes token rows into a padded Int32Array [rows.length, width]. */
function pack(rows: number[][], width: number): Int32Array {
  const out = new Int32Array(rows.length * width); // zeros = PAD
  rows.forEach((r, i) => out.set(r, i * width));
  return out;
}

/**
 * Generates `n` rows of one task. Returns x: Int32Array [n, inWidth] (input tokens), y:
 * Int32Array [n, outWidth] (target tokens, PAD after the end), numClasses = vocabSize, and in
 * `meta`: `vocab` (see sequenceVocab), `lengths` (L per row), `task`, `options`.
 */
export function sequenceTask(
  task: SequenceTask,
  options: SequenceOptions = {},
): TypedDataset<Int32Array, Int32Array> {
  checkChoice("sequenceTask", "task", task, SEQUENCE_TASKS);
  const o = resolve(`sequenceTask(${task})`, options, [task]);
  const gen = new Generator(o.seed);
  const [inW, outW] = widths(task, o.length);
  const inputs: number[][] = [], targets: number[][] = [];
  const lengths = new Int32Array(o.n);
  for (let i = 0; i < o.n; i++) {
    const ex = example(task, gen, gen.int(o.minLength, o.length + 1), o);
    inputs.push(ex.input), targets.push(ex.target), (lengths[i] = ex.length);
  }
  const vocab = sequenceVocab(o.numSymbols);
  return {
    name: `seq-${task}`,
    x: pack(inputs, inW),
    xShape: [o.n, inW],
    y: pack(targets, outW),
    yShape: [o.n, outW],
    numClasses: vocab.vocabSize,
    meta: {
      generator: "sequences",
      task,
      vocab,
      lengths,
      options: { task, ...o },
      perRow: ["lengths"],
    },
  };
}

/** Options of `mixture`. */
export interface MixtureOptions extends SequenceOptions {
  /** Tasks to mix. Default all of SEQUENCE_TASKS. */
  tasks?: SequenceTask[];
  /** Relative sampling weights, one per task. Default equal. */
  weights?: number[];
}

/**
 * Samples a task per row (by `weights`) and prepends its task-id token to the input: x is
 * [TASK, ...input, PAD...] with the widest task's width + 1, y the target padded to the
 * widest target. `meta.taskIds` holds each row's index into SEQUENCE_TASKS.
 */
export function mixture(options: MixtureOptions = {}): TypedDataset<Int32Array, Int32Array> {
  const G = "mixture";
  const tasks = options.tasks ?? [...SEQUENCE_TASKS];
  if (tasks.length === 0) throw optionError(G, "tasks", "must not be empty");
  tasks.forEach((t) => checkChoice(G, "tasks", t, SEQUENCE_TASKS));
  const weights = options.weights ?? tasks.map(() => 1);
  if (weights.length !== tasks.length) {
    throw optionError(
      G,
      "weights",
      `must have one weight per task (${tasks.length}), got ${weights.length}`,
    );
  }
  weights.forEach((w) => checkNumber(G, "weights", w, 0));
  const total = weights.reduce((s, w) => s + w, 0);
  if (!(total > 0)) throw optionError(G, "weights", "must not all be zero");
  const o = resolve(G, options, tasks);

  const gen = new Generator(o.seed);
  let inW = 0, outW = 0;
  for (const t of tasks) {
    const [a, b] = widths(t, o.length);
    inW = Math.max(inW, a + 1), outW = Math.max(outW, b);
  }
  const inputs: number[][] = [], targets: number[][] = [];
  const lengths = new Int32Array(o.n), taskIds = new Int32Array(o.n);
  for (let i = 0; i < o.n; i++) {
    let u = gen.uniform(0, total), j = 0;
    while (j < tasks.length - 1 && u >= weights[j]) u -= weights[j++];
    const ex = example(tasks[j], gen, gen.int(o.minLength, o.length + 1), o);
    inputs.push([taskToken(tasks[j]), ...ex.input]), targets.push(ex.target);
    lengths[i] = ex.length, (taskIds[i] = SEQUENCE_TASKS.indexOf(tasks[j]));
  }
  const vocab = sequenceVocab(o.numSymbols);
  return {
    name: "seq-mixture",
    x: pack(inputs, inW),
    xShape: [o.n, inW],
    y: pack(targets, outW),
    yShape: [o.n, outW],
    numClasses: vocab.vocabSize,
    meta: {
      generator: "sequences.mixture",
      tasks,
      taskIds,
      vocab,
      lengths,
      options: { tasks, weights, ...o },
      perRow: ["lengths", "taskIds"],
    },
  };
}
