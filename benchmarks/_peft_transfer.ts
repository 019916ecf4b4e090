/**
 * The fine-tuning experiment shared by the PEFT benchmarks (nola, loldu): a pretrained
 * backbone of data/backbones gets a fresh task head (nn.Linear on `features(x)`, trainable
 * alongside the adapters: `head.requiresGrad_(true)` after injectAdapters froze the rest) and
 * is adapted to a shifted task by one method (full fine-tuning, head only, or adapters
 * injected into its Linear layers) with AdamW and a cosine schedule. The learning rate is
 * picked per method and task from a grid by validation accuracy on the first seed; the other
 * seeds run at that rate; test accuracy is reported as mean ± std over seeds. Not a benchmark
 * itself (file names starting with "_" are helpers).
 *
 * Transfer tasks: the mlp-digits backbone (pretrained on the upright 8x8 digits) on the digits
 * under a shift it never saw: rotated 90°, mirrored, or translated (`DIGIT_SHIFTS`).
 */
import type { BenchContext, Row } from "./harness/define.ts";
import { countParameters, type TargetModules } from "../algorithms/lora/mod.ts";
import { loadBackbone } from "../data/backbones/mod.ts";
import { loadDigits } from "../data/digits.ts";
import { split } from "../data/loader.ts";
import { Generator, manualSeed, nn, noGrad, optim, scope, type Tensor, tensor } from "../mod.ts";
import { crossEntropy } from "../core/functional.ts";
import { fit } from "../lab/train.ts";
import { accuracy } from "../lab/metrics.ts";
import { meanStd } from "../lab/stats.ts";
import type { Figure } from "../lab/plot.ts";
import type { ResultFile } from "../tools/index_lib.ts";

/** The shifts of the 8x8 digits: each maps an image (row-major, 64 pixels) to another. */
export const DIGIT_SHIFTS = {
  /** Rotated by 90° clockwise: out[r][c] = in[7 - c][r]. */
  rot90: (r: number, c: number, img: ArrayLike<number>) => img[(7 - c) * 8 + r],
  /** Mirrored left-right. */
  flip: (r: number, c: number, img: ArrayLike<number>) => img[r * 8 + 7 - c],
  /** Translated 2 pixels right and 1 down (zeros enter). */
  shift: (r: number, c: number, img: ArrayLike<number>) =>
    r >= 1 && c >= 2 ? img[(r - 1) * 8 + c - 2] : 0,
} as const;
export type DigitShift = keyof typeof DIGIT_SHIFTS;

/** A backbone with the Linear layers adapters go into and its feature width. */
export const BACKBONES = {
  "mlp-digits": { targets: ["body.0", "body.3"], featureDim: 128, oldHead: "head." },
} as const;
export type Backbone = keyof typeof BACKBONES;

/** A task: "<backbone>/<shift>", e.g. "mlp-digits/rot90". */
export type TaskName = `${Backbone}/${DigitShift}`;

interface Split {
  x: Float32Array;
  y: Int32Array;
}

export interface TransferTask {
  name: TaskName;
  backbone: Backbone;
  train: Split;
  val: Split;
  test: Split;
  numClasses: number;
  featureDim: number;
  /** The backbone's Linear layers that adapters go into. */
  targets: TargetModules;
  /** Parameter-name prefix of the pretraining head, frozen and unused here. */
  oldHead: string;
}

export interface TaskSizes {
  train: number;
  val: number;
  test: number;
}

/**
 * Builds a transfer task: the digits under a shift, split (stratified) into train, val and
 * test by `seed` (the same data for every method at a seed).
 */
export function transferTask(name: TaskName, n: TaskSizes, seed: number): TransferTask {
  const [backbone, shift] = name.split("/") as [Backbone, DigitShift];
  if (!(backbone in BACKBONES) || !(shift in DIGIT_SHIFTS)) {
    throw new Error(`transferTask: unknown task "${name}"`);
  }
  const d = loadDigits(), f = DIGIT_SHIFTS[shift];
  const x = new Float32Array(d.x.length);
  for (let i = 0; i < d.y.length; i++) {
    const img = d.x.subarray(i * 64, (i + 1) * 64);
    for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) x[i * 64 + r * 8 + c] = f(r, c, img);
  }
  const total = d.y.length, fr = (k: number) => k / total;
  const s = split({ ...d, x }, {
    train: fr(n.train),
    val: fr(n.val),
    test: fr(n.test),
    seed: 100 + seed,
    stratify: true,
  });
  const part = (p: typeof s.train) => ({ x: p.x as Float32Array, y: p.y as Int32Array });
  const b = BACKBONES[backbone];
  return {
    name,
    backbone,
    train: part(s.train),
    val: part(s.val),
    test: part(s.test),
    numClasses: 10,
    featureDim: b.featureDim,
    targets: [...b.targets],
    oldHead: b.oldHead,
  };
}

/** The learning-rate grid of every PEFT method (the same for all, so none is favoured). */
export const PEFT_LRS = [3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1];

/** The two reference methods: the new head alone, and full fine-tuning (+ head). */
export const HEAD_ONLY: Method = {
  name: "head only",
  kind: "head",
  lrs: [3e-3, 1e-2, 3e-2, 1e-1],
  lr: 1e-2,
};
export const FULL_FT: Method = {
  name: "full FT",
  kind: "full",
  lrs: [1e-4, 3e-4, 1e-3, 3e-3],
  lr: 1e-3,
};

/** The shared profiles: smoke (seconds), quick (one task), full (three tasks, 3 seeds). */
export const PROFILES: Record<"smoke" | "quick" | "full", CompareConfig> = {
  smoke: {
    seeds: [0],
    tasks: ["mlp-digits/rot90"],
    sizes: { train: 200, val: 100, test: 200 },
    steps: 10,
    batchSize: 32,
    evalEvery: 5,
    lrSearch: false,
  },
  quick: {
    seeds: [0, 1, 2],
    tasks: ["mlp-digits/rot90"],
    sizes: { train: 800, val: 200, test: 797 },
    steps: 300,
    batchSize: 32,
    evalEvery: 30,
    lrSearch: true,
  },
  full: {
    seeds: [0, 1, 2],
    tasks: ["mlp-digits/rot90", "mlp-digits/flip", "mlp-digits/shift"],
    sizes: { train: 800, val: 200, test: 797 },
    steps: 300,
    batchSize: 32,
    evalEvery: 30,
    lrSearch: true,
  },
};

/** A fine-tuning method: full, head only, or a PEFT method injected into the targets. */
export interface Method {
  name: string;
  kind: "full" | "head" | "peft";
  /** Injects the adapters (kind "peft"); must freeze everything else (injectAdapters does). */
  apply?: (model: nn.Module, targets: TargetModules) => void;
  /** Learning rates to choose from by validation accuracy. */
  lrs: number[];
  /** The rate used without a search (smoke runs). */
  lr: number;
}

export interface TrainConfig {
  steps: number;
  batchSize: number;
  evalEvery: number;
}

export interface RunResult {
  test: number;
  val: number;
  /** Trainable backbone parameters: the adapters (all weights for full fine-tuning). */
  backboneTrainable: number;
  /** Trainable parameters including the new head. */
  trainable: number;
  /** Validation accuracy over training: [step, accuracy]. */
  curve: [number, number][];
  /** The loss became NaN or infinite (the accuracies are then those of the broken model). */
  diverged: boolean;
  ms: number;
}

/** Accuracy of `logitsOf` on a split, in chunks, without a graph. */
async function evalAccuracy(logitsOf: (x: Tensor) => Tensor, s: Split): Promise<number> {
  const n = s.y.length, w = 64, chunk = 512;
  const scores: number[] = [];
  for (let i = 0; i < n; i += chunk) {
    const k = Math.min(chunk, n - i);
    const out = scope(() =>
      noGrad(() => logitsOf(tensor(s.x.subarray(i * w, (i + k) * w), { shape: [k, w] })))
    );
    scores.push(...await out.data());
    out.dispose();
  }
  return accuracy(scores, s.y);
}

/** Fine-tunes the task's backbone with one method at one learning rate and seed. */
export async function fineTune(
  task: TransferTask,
  method: Method,
  lr: number,
  seed: number,
  c: TrainConfig,
): Promise<RunResult> {
  const t0 = performance.now();
  manualSeed(seed);
  const { model } = await loadBackbone<nn.Module & { features(x: Tensor): Tensor }>(task.backbone);
  if (method.kind === "peft") method.apply!(model, task.targets);
  else model.requiresGrad_(method.kind === "full");
  for (const [n, p] of model.namedParameters()) {
    if (n.startsWith(task.oldHead)) p.requiresGrad_(false);
  }
  const head = new nn.Linear(task.featureDim, task.numClasses);
  head.requiresGrad_(true); // the new task head trains alongside the adapters
  const params = [...model.parameters().filter((p) => p.requiresGrad), ...head.parameters()];
  const backboneTrainable = countParameters(model).trainable;
  const logitsOf = (x: Tensor) => head.forward(model.features(x));
  const opt = new optim.AdamW(params, { lr, weightDecay: 0 });
  const sched = new optim.CosineAnnealingLR(opt, { tMax: c.steps });
  const gen = new Generator(seed + 1), n = task.train.y.length, w = 64;
  const curve: [number, number][] = [];
  let diverged = false;
  try {
    await fit({
      steps: c.steps,
      optimizer: opt,
      logEvery: c.steps,
      loss: () => {
        const idx = Array.from({ length: c.batchSize }, () => gen.int(0, n));
        const xb = new Float32Array(c.batchSize * w);
        idx.forEach((r, i) => xb.set(task.train.x.subarray(r * w, (r + 1) * w), i * w));
        const x = tensor(xb, { shape: [c.batchSize, w] });
        return crossEntropy(logitsOf(x), tensor(Int32Array.from(idx, (r) => task.train.y[r])));
      },
      afterStep: () => sched.step(),
      evalEvery: c.evalEvery,
      evaluate: async (step) => {
        const val = await evalAccuracy(logitsOf, task.val);
        curve.push([step, val]);
        return { val };
      },
    });
  } catch (e) {
    if (!/loss became/.test(String(e))) throw e;
    diverged = true;
  }
  try {
    const val = diverged ? 0 : curve[curve.length - 1][1];
    return {
      test: await evalAccuracy(logitsOf, task.test),
      val,
      backboneTrainable,
      trainable: backboneTrainable + head.numParameters(),
      curve,
      diverged,
      ms: performance.now() - t0,
    };
  } finally {
    opt.zeroGrad();
    model.dispose();
    head.dispose();
  }
}

export interface CompareConfig extends TrainConfig {
  seeds: number[];
  tasks: TaskName[];
  sizes: TaskSizes;
  /** Pick each method's rate from its grid (else use its `lr`). */
  lrSearch: boolean;
}

/**
 * Runs every method on every task: the learning rate is chosen on the first seed by validation
 * accuracy, then the other seeds run at that rate. One row per (task, method), accuracies in %.
 */
export async function compareMethods(
  ctx: BenchContext,
  methods: Method[],
  c: CompareConfig,
): Promise<Row[]> {
  const rows: Row[] = [];
  const grid = (m: Method) => c.lrSearch ? m.lrs : [m.lr];
  const total = c.tasks.length *
    methods.reduce((s, m) => s + grid(m).length + c.seeds.length - 1, 0);
  let done = 0;
  for (const name of c.tasks) {
    for (const m of methods) {
      const runs: RunResult[] = [];
      let best: { lr: number; r: RunResult } | null = null;
      for (const lr of grid(m)) {
        const task = transferTask(name, c.sizes, c.seeds[0]);
        const r = await fineTune(task, m, lr, c.seeds[0], c);
        ctx.progress(++done / total, `${name} ${m.name} lr ${lr}: val ${(100 * r.val).toFixed(1)}`);
        if (!best || r.val > best.r.val) best = { lr, r };
      }
      runs.push(best!.r);
      for (const seed of c.seeds.slice(1)) {
        const r = await fineTune(transferTask(name, c.sizes, seed), m, best!.lr, seed, c);
        runs.push(r);
        ctx.progress(
          ++done / total,
          `${name} ${m.name} seed ${seed}: test ${(100 * r.test).toFixed(1)}`,
        );
      }
      const acc = meanStd(runs.map((r) => 100 * r.test));
      rows.push({
        task: name,
        method: m.name,
        backboneParams: runs[0].backboneTrainable,
        trainable: runs[0].trainable,
        lr: best!.lr,
        accMean: +acc.mean.toFixed(2),
        accStd: +acc.std.toFixed(2),
        valAccMean: +meanStd(runs.map((r) => 100 * r.val)).mean.toFixed(2),
        seeds: runs.length,
        diverged: runs.filter((r) => r.diverged).length,
        timeS: +(runs.reduce((s, r) => s + r.ms, 0) / runs.length / 1000).toFixed(1),
        stepsTo95: Math.round(meanStd(runs.map(stepsTo95)).mean),
      });
    }
  }
  return rows;
}

/** The first evaluated step whose validation accuracy is >= 95% of the final one. */
function stepsTo95(r: RunResult): number {
  return r.curve.find(([, v]) => v >= 0.95 * r.val)?.[0] ?? NaN;
}

/** The row of `method` on `task` (throws when missing, so a check cannot pass vacuously). */
export function rowOf(rows: Row[], task: string, method: string): Row {
  const r = rows.find((x) => x.task === task && x.method === method);
  if (!r) throw new Error(`no row for ${method} on ${task}`);
  return r;
}

/** Test accuracy vs trainable backbone parameters (log x), one figure per task. */
export function transferFigures(r: ResultFile, title: string): Figure[] {
  const rows = r.rows as Row[];
  const tasks = [...new Set(rows.map((x) => String(x.task)))];
  return tasks.map((t) => ({
    data: rows.filter((x) => x.task === t).map((x) => ({
      type: "scatter",
      mode: "markers",
      name: String(x.method),
      x: [Math.max(1, Number(x.backboneParams))],
      y: [Number(x.accMean)],
      error_y: { type: "data", array: [Number(x.accStd)] },
    })),
    layout: {
      title: `${title}: ${t}`,
      xaxis: {
        title: "trainable backbone parameters (head excluded; head only at 1)",
        type: "log",
      },
      yaxis: { title: "test accuracy (%)" },
    },
  }));
}

/** A PEFT method: `apply` adds its adapters; its learning rate is searched over PEFT_LRS. */
export function peftMethod(name: string, apply: Method["apply"], lr: number): Method {
  return { name, kind: "peft", apply, lrs: PEFT_LRS, lr };
}
