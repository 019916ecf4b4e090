/**
 * The experiment shared by the model-merging benchmarks (model-soups, fisher-merging,
 * pcb-merging, model-breadcrumbs): one pretrained digits backbone fine-tuned on several tasks
 * once per seed, the task heads, the evaluation, and the shared baselines (individual
 * fine-tuned models, the multi-task model, weight averaging, task arithmetic and TIES, each
 * merge's hyperparameters chosen on validation data).
 *
 * Tasks are variants of the 8x8 digits: input shifts (rotated, inverted, noisy, blurred,
 * mirrored, translated) and new label tasks on clean images (parity, digit > 4). The
 * backbone's own 80/20 split is kept: fine-tuning uses its training rows, validation and test
 * use halves of its held-out rows (stratified, reseeded per seed). Each task has its own
 * linear head on the body's features (`features(x)`, 128-d). In the suite the heads start at
 * random and are trained with the body (AdamW, cosine decay); the body's task vector
 * τ_t = θ_t − θ_pre is what gets merged, and a merged body is evaluated on each task with
 * that task's fine-tuned head (as Fisher merging, RegMean and DARE keep task heads out of
 * the merge). `heads: { init: "probe", train: false }` gives the task-arithmetic protocol
 * instead (frozen "zero-shot" heads: linear probes on the pretrained features); on this
 * backbone every merge then stays at the probes' accuracy, which is why the suite does not
 * use it (see algorithms/pcb-merging/README.md). The reference rows are the pretrained body
 * with the task heads, each fine-tuned model on its own task, and a multi-task model (one
 * body and its own heads trained on all tasks at once). A sweep (model soups, Fisher
 * ensembling) fine-tunes the whole model, from a linear-probe head, on one task with several
 * hyperparameter settings instead.
 *
 * Fine-tuned state dicts are cached in memory for the life of the process: benchmarks run
 * together (`deno task bench`) share them, and each one still runs on its own.
 */
import { loadBackbone, type MLPDigits } from "../data/backbones/mod.ts";
import { loadDigits } from "../data/digits.ts";
import { split, subset } from "../data/loader.ts";
import { crossEntropy } from "../core/functional.ts";
import { keep, scope } from "../core/memory.ts";
import { noGrad } from "../core/autograd.ts";
import { Generator, manualSeed } from "../core/random.ts";
import { tensor } from "../core/ops/creation.ts";
import { Linear } from "../core/nn/mod.ts";
import { AdamW, CosineAnnealingLR } from "../core/optim/mod.ts";
import type { Tensor } from "../core/tensor.ts";
import { accuracy } from "../lab/metrics.ts";
import { fit } from "../lab/train.ts";
import { meanStd } from "../lab/stats.ts";
import { ensembleLogits } from "../algorithms/model-soups/mod.ts";
import {
  applyTaskVector,
  averageStateDicts,
  cloneStateDict,
  disposeStateDict,
  selectKeys,
  type StateDict,
  taskArithmetic,
  type TaskVector,
  taskVector,
  tiesMerging,
} from "../algorithms/task-vectors/mod.ts";

// ------------------------------------------------------------------------------- tasks
type Img = Float32Array; // one 8x8 image, row-major
const S = 8;
const at = (img: Img, r: number, c: number) =>
  r >= 0 && r < S && c >= 0 && c < S ? img[r * S + c] : 0;
const map = (f: (r: number, c: number) => number) =>
  Float32Array.from({ length: S * S }, (_, i) => f(Math.floor(i / S), i % S));

/** Image transforms; `g` is a seeded generator for the random ones. */
export const TRANSFORMS: Record<string, (img: Img, g: Generator) => Img> = {
  rot90: (m) => map((r, c) => at(m, c, S - 1 - r)),
  flip: (m) => map((r, c) => at(m, r, S - 1 - c)),
  invert: (m) => m.map((v) => 1 - v),
  noise: (m, g) => m.map((v) => Math.min(1, Math.max(0, v + g.normal(0, 0.3)))),
  blur: (m) =>
    map((r, c) => {
      let s = 0;
      for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) s += at(m, r + dr, c + dc);
      return s / 9;
    }),
  shift: (m) => map((r, c) => at(m, r - 1, c - 2)),
};

/** Label maps from the digit 0..9. */
const LABELS = {
  digit: { classes: 10, of: (d: number) => d },
  parity: { classes: 2, of: (d: number) => d % 2 },
  gt4: { classes: 2, of: (d: number) => (d > 4 ? 1 : 0) },
};

/** A task: transforms applied in order to every image, and a label map. */
export interface TaskSpec {
  transforms: string[];
  label: keyof typeof LABELS;
}

/** The task zoo: the multi-task suite uses `SUITE` in this order. */
export const TASKS: Record<string, TaskSpec> = {
  rot90: { transforms: ["rot90"], label: "digit" },
  invert: { transforms: ["invert"], label: "digit" },
  noise: { transforms: ["noise"], label: "digit" },
  blur: { transforms: ["blur"], label: "digit" },
  parity: { transforms: [], label: "parity" },
  gt4: { transforms: [], label: "gt4" },
  flip: { transforms: ["flip"], label: "digit" },
  shift: { transforms: ["shift"], label: "digit" },
  "rot90+noise": { transforms: ["rot90", "noise"], label: "digit" },
  "rot90+blur": { transforms: ["rot90", "blur"], label: "digit" },
  "rot90+shift": { transforms: ["rot90", "shift"], label: "digit" },
};
/** The 8 tasks of the multi-task suite (merges of n tasks use the first n). */
export const SUITE = ["rot90", "invert", "noise", "blur", "parity", "gt4", "flip", "shift"];

/** Inputs (a kept tensor [n, 64]) and labels of an evaluation split. */
export interface Split {
  x: Tensor;
  y: Int32Array;
}
/** One task's data: training rows on the host, val and test as tensors. */
export interface TaskData {
  name: string;
  classes: number;
  train: { x: Float32Array; y: Int32Array; n: number };
  val: Split;
  test: Split;
}

function transformRows(x: Float32Array, spec: TaskSpec, seed: number): Float32Array {
  const g = new Generator(seed);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length / 64; i++) {
    let img: Img = x.subarray(i * 64, (i + 1) * 64);
    for (const t of spec.transforms) img = TRANSFORMS[t](img, g);
    out.set(img, i * 64);
  }
  return out;
}

/**
 * The task's data for one seed: the backbone's training rows (optionally `perClass` of each
 * digit) and its held-out rows cut into val and test halves (stratified, seeded).
 */
export function makeTask(name: string, seed: number, o: { perClass?: number } = {}): TaskData {
  const spec = TASKS[name];
  if (!spec) throw new Error(`makeTask: unknown task "${name}"`);
  const { train: pool, test: held } = split(loadDigits(), {
    train: 0.8,
    test: 0.2,
    seed: 0,
    stratify: true,
  });
  const { train: val, test } = split(held, {
    train: 0.5,
    test: 0.5,
    seed: 100 + seed,
    stratify: true,
  });
  let tr = pool;
  if (o.perClass) {
    const g = new Generator(200 + seed), rows: number[] = [];
    const byDigit = Array.from({ length: 10 }, () => [] as number[]);
    g.permutation(pool.y.length).forEach((i) => byDigit[pool.y[i]].push(i));
    byDigit.forEach((r) => rows.push(...r.slice(0, o.perClass)));
    tr = subset(pool, g.shuffle(rows));
  }
  const lab = LABELS[spec.label];
  const relabel = (y: Int32Array) => y.map(lab.of);
  const evalSplit = (d: typeof val, k: number): Split => ({
    x: keep(
      tensor(transformRows(d.x as Float32Array, spec, 1000 * seed + k), {
        shape: [d.y.length, 64],
      }),
    ),
    y: relabel(d.y as Int32Array),
  });
  return {
    name,
    classes: lab.classes,
    train: {
      x: transformRows(tr.x as Float32Array, spec, 1000 * seed + 1),
      y: relabel(tr.y as Int32Array),
      n: tr.y.length,
    },
    val: evalSplit(val, 2),
    test: evalSplit(test, 3),
  };
}

// -------------------------------------------------------------------------- training
/** Fine-tuning hyperparameters (AdamW with cosine decay, as the backbones were trained). */
export interface FinetuneConfig {
  steps: number;
  lr: number;
  batchSize: number;
  weightDecay: number;
  labelSmoothing?: number;
  /** Random ±1 pixel shifts and N(0, 0.1) pixel noise on training batches. */
  augment?: boolean;
  /** Also train the head (whole model); otherwise the head is frozen. */
  trainHead?: boolean;
  /** Seed of the batch order and augmentation. */
  seed: number;
}

/** Draws shuffled batches forever (a new order each epoch), optionally augmented. */
function batchStream(t: TaskData, bs: number, g: Generator, augment: boolean) {
  let order = g.permutation(t.train.n), pos = 0;
  return () => {
    const x = new Float32Array(bs * 64), y = new Int32Array(bs);
    for (let b = 0; b < bs; b++) {
      if (pos === order.length) (order = g.permutation(t.train.n)), (pos = 0);
      const i = order[pos++];
      let img: Img = t.train.x.subarray(i * 64, (i + 1) * 64);
      if (augment) {
        const dr = g.int(-1, 2), dc = g.int(-1, 2), src = img;
        img = map((r, c) => at(src, r - dr, c - dc) + g.normal(0, 0.1));
      }
      x.set(img, b * 64);
      y[b] = t.train.y[i];
    }
    return { x: tensor(x, { shape: [bs, 64] }), y: tensor(y) };
  };
}

/** The working model and the task heads; `forward(t, x)` = head_t(features(x)). */
export interface Workbench {
  model: MLPDigits;
  /** Pretrained state dict of the whole model (a private copy). */
  pre: StateDict;
  /** Keys of the shared body ("body.*"). */
  isBody: (key: string) => boolean;
}

export async function workbench(backbone = "mlp-digits"): Promise<Workbench> {
  const { model } = await loadBackbone<MLPDigits>(backbone);
  return { model, pre: cloneStateDict(model.stateDict()), isBody: (k) => k.startsWith("body.") };
}

/** A linear probe on the pretrained features: the frozen "zero-shot" head of a task. */
export async function fitProbe(w: Workbench, t: TaskData, seed: number): Promise<Linear> {
  manualSeed(seed);
  w.model.loadStateDict(w.pre);
  const head = new Linear(w.model.head.inFeatures, t.classes);
  const feats = scope(() =>
    noGrad(() => w.model.features(tensor(t.train.x, { shape: [t.train.n, 64] })))
  );
  const y = tensor(t.train.y);
  const opt = new AdamW(head.parameters(), { lr: 1e-2, weightDecay: 1e-3 });
  await fit({
    steps: 200,
    optimizer: opt,
    logEvery: 200,
    loss: () => crossEntropy(head.forward(feats), y),
  });
  opt.zeroGrad();
  feats.dispose(), y.dispose();
  head.requiresGrad_(false);
  return head;
}

/**
 * Fine-tunes from the pretrained model on the given tasks (several = the multi-task model,
 * one loss per task per step) and returns the trained state dict (body only, or the whole
 * model with `trainHead`, the head being `model.head` loaded with `heads[0]`).
 */
export async function finetune(
  w: Workbench,
  tasks: TaskData[],
  heads: Linear[],
  c: FinetuneConfig,
): Promise<StateDict> {
  const m = w.model;
  m.loadStateDict(w.pre);
  manualSeed(c.seed);
  const g = new Generator(c.seed);
  const streams = tasks.map((t) => batchStream(t, c.batchSize, g, !!c.augment));
  let forward = (i: number, x: Tensor) => heads[i].forward(m.features(x));
  let params = [
    ...m.body.parameters(),
    ...heads.flatMap((h) => h.parameters().filter((p) => p.requiresGrad)),
  ];
  if (c.trainHead) {
    m.head.loadStateDict(heads[0].stateDict());
    params = m.parameters();
    forward = (_i, x) => m.forward(x);
  }
  const opt = new AdamW(params, { lr: c.lr, weightDecay: c.weightDecay });
  const sched = new CosineAnnealingLR(opt, { tMax: c.steps });
  m.train();
  await fit({
    steps: c.steps,
    optimizer: opt,
    logEvery: c.steps,
    loss: () =>
      streams.map((next, i) => {
        const b = next();
        return crossEntropy(forward(i, b.x), b.y, { labelSmoothing: c.labelSmoothing ?? 0 });
      }).reduce((a, l) => a.add(l)).div(tasks.length),
    afterStep: () => sched.step(),
  });
  m.eval();
  opt.zeroGrad();
  const sd = m.stateDict();
  return cloneStateDict(c.trainHead ? sd : selectKeys(sd, w.isBody));
}

// ------------------------------------------------------------------------ evaluation
/** Logits of split `s` for a state dict (body only: `head` given; whole model: no head). */
export function logitsOf(w: Workbench, sd: StateDict, s: Split, head?: Linear): Tensor {
  w.model.loadStateDict(sd, { strict: false });
  return scope(() =>
    noGrad(() => head ? head.forward(w.model.features(s.x)) : w.model.forward(s.x))
  );
}

/** Accuracy of a state dict on a split. */
export async function accuracyOf(w: Workbench, sd: StateDict, s: Split, head?: Linear) {
  const l = logitsOf(w, sd, s, head);
  const acc = accuracy(await l.data(), s.y);
  l.dispose();
  return acc;
}

// ---------------------------------------------------------------- the multi-task suite
/** What `prepareSuite` fine-tunes. */
export interface SuiteConfig {
  backbone?: string;
  tasks: string[];
  finetune: Omit<FinetuneConfig, "seed">;
  /** Steps of the multi-task model (each step sees one batch of every task). */
  multitaskSteps: number;
  /**
   * Task heads: initialised as a linear probe on the pretrained features or at random, and
   * trained with the body during fine-tuning (then kept per task) or frozen.
   */
  heads: { init: "probe" | "random"; train: boolean };
}

/** Reports the fraction of a build done and what was just done. */
export type Progress = (fraction: number, message: string) => void;

/** Per-task accuracies on val and test. */
export interface Accs {
  val: number[];
  test: number[];
}

/** The fine-tuned suite of one seed. */
export interface Suite {
  seed: number;
  w: Workbench;
  tasks: TaskData[];
  heads: Linear[];
  /** θ_pre and θ_t of the body, and τ_t = θ_t − θ_pre. */
  pre: StateDict;
  fts: StateDict[];
  taus: TaskVector[];
  multitask: StateDict;
  zeroShot: Accs;
  finetuned: Accs;
  multitaskAccs: Accs;
  /** Wall time of building it (ms). */
  buildMs: number;
}

const suites = new Map<string, Promise<Suite>>();

/** The suite every merging benchmark uses, per profile (the same object: one cache entry). */
export const SUITE_CONFIGS: Record<"smoke" | "quick" | "full", SuiteConfig> = {
  smoke: {
    tasks: SUITE.slice(0, 4),
    finetune: { steps: 20, lr: 1e-3, batchSize: 32, weightDecay: 0.01 },
    multitaskSteps: 20,
    heads: { init: "random", train: true },
  },
  quick: {
    tasks: SUITE,
    finetune: { steps: 120, lr: 1e-3, batchSize: 64, weightDecay: 0.01 },
    multitaskSteps: 200,
    heads: { init: "random", train: true },
  },
  full: {
    tasks: SUITE,
    finetune: { steps: 200, lr: 1e-3, batchSize: 64, weightDecay: 0.01 },
    multitaskSteps: 300,
    heads: { init: "random", train: true },
  },
};

/** The suite of one seed, built once per process (and shared by every benchmark). */
export function prepareSuite(
  seed: number,
  cfg: SuiteConfig,
  progress?: Progress,
): Promise<Suite> {
  const key = JSON.stringify([seed, cfg]);
  if (!suites.has(key)) suites.set(key, buildSuite(seed, cfg, progress));
  return suites.get(key)!;
}

/** A copy of a head, trainable or frozen. */
function copyHead(h: Linear, trainable: boolean): Linear {
  const c = new Linear(h.inFeatures, h.outFeatures);
  c.loadStateDict(h.stateDict());
  return c.requiresGrad_(trainable);
}

async function buildSuite(seed: number, cfg: SuiteConfig, progress?: Progress) {
  const t0 = performance.now();
  const w = await workbench(cfg.backbone);
  const tasks = cfg.tasks.map((n) => makeTask(n, seed));
  const init: Linear[] = [];
  for (const [i, t] of tasks.entries()) {
    if (cfg.heads.init === "probe") init.push(await fitProbe(w, t, 10_000 * seed + i));
    else {
      manualSeed(10_000 * seed + i);
      init.push(new Linear(w.model.head.inFeatures, t.classes).requiresGrad_(false));
    }
  }
  const pre = cloneStateDict(selectKeys(w.pre, w.isBody));
  const heads = init.map((h) => copyHead(h, cfg.heads.train));
  const fts: StateDict[] = [];
  for (const [i, t] of tasks.entries()) {
    const c = { ...cfg.finetune, seed: 10_000 * seed + 100 + i };
    fts.push(await finetune(w, [t], [heads[i]], c));
    heads[i].requiresGrad_(false);
    progress?.((i + 1) / (tasks.length + 2), `seed ${seed}: fine-tuned ${t.name}`);
  }
  const mtHeads = init.map((h) => copyHead(h, cfg.heads.train));
  const multitask = await finetune(w, tasks, mtHeads, {
    ...cfg.finetune,
    steps: cfg.multitaskSteps,
    seed: 10_000 * seed + 99,
  });
  mtHeads.forEach((h) => h.requiresGrad_(false));
  const none = () => ({ val: [], test: [] });
  const s: Suite = {
    seed,
    w,
    tasks,
    heads,
    pre,
    fts,
    taus: fts.map((ft) => taskVector(pre, ft)),
    multitask,
    zeroShot: none(),
    finetuned: none(),
    multitaskAccs: none(),
    buildMs: 0,
  };
  s.zeroShot = await evalBody(s, pre);
  s.multitaskAccs = await evalBody(s, multitask, undefined, mtHeads);
  for (const [i, ft] of fts.entries()) {
    const a = await evalBody(s, ft, [i]);
    s.finetuned.val.push(a.val[0]), s.finetuned.test.push(a.test[0]);
  }
  s.buildMs = performance.now() - t0;
  return s;
}

/** Accuracies of a body on the tasks `idx` (default all), each with its own head. */
export async function evalBody(
  s: Suite,
  body: StateDict,
  idx?: number[],
  heads = s.heads,
): Promise<Accs> {
  const ids = idx ?? s.tasks.map((_, i) => i);
  const out: Accs = { val: [], test: [] };
  for (const i of ids) {
    out.val.push(await accuracyOf(s.w, body, s.tasks[i].val, heads[i]));
    out.test.push(await accuracyOf(s.w, body, s.tasks[i].test, heads[i]));
  }
  return out;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** Mean over tasks of acc_t(merged) / acc_t(fine-tuned on t) (the papers' normalised accuracy). */
export function normalized(s: Suite, idx: number[], test: number[]): number {
  return mean(test.map((a, j) => a / s.finetuned.test[idx[j]]));
}

/** A merge candidate: its hyperparameters and how to build its body. */
export interface Candidate {
  params: Record<string, number | string>;
  build: () => StateDict;
}

/** The outcome of one merge on a set of tasks: chosen hyperparameters and accuracies. */
export interface MergeResult {
  params: Record<string, number | string>;
  /** Mean validation accuracy of the chosen candidate. */
  val: number;
  test: number[];
  meanTest: number;
  normalized: number;
}

/**
 * Chooses the candidate with the best mean validation accuracy over tasks `idx` (ties: the
 * first) and reports its test accuracies.
 */
export async function tuneOnVal(s: Suite, idx: number[], cands: Candidate[]): Promise<MergeResult> {
  let best: { c: Candidate; acc: Accs; val: number } | undefined;
  for (const c of cands) {
    const body = c.build();
    const acc = await evalBody(s, body, idx);
    disposeStateDict(body);
    const val = mean(acc.val);
    if (!best || val > best.val) best = { c, acc, val };
  }
  const test = best!.acc.test;
  return {
    params: best!.c.params,
    val: best!.val,
    test,
    meanTest: mean(test),
    normalized: normalized(s, idx, test),
  };
}

/** A fixed body (no hyperparameters) as a MergeResult. */
export function fixedResult(s: Suite, idx: number[], body: StateDict): Promise<MergeResult> {
  return tuneOnVal(s, idx, [{ params: {}, build: () => cloneStateDict(body) }]);
}

/** Scaling coefficients searched for task arithmetic (Ilharco et al. search 0..1 on val). */
export const LAMBDAS_TA = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
/** λ and k searched for TIES (Yadav et al. search λ in 0.8..1.8 and k in 10..30%). */
export const LAMBDAS_TIES = [0.4, 0.6, 0.8, 1, 1.2, 1.5, 2];
export const DENSITIES_TIES = [0.1, 0.2, 0.3];

/** Task arithmetic on tasks `idx`, λ chosen on validation. */
export function taskArithmeticCandidates(
  s: Suite,
  idx: number[],
  lambdas = LAMBDAS_TA,
): Candidate[] {
  const taus = idx.map((i) => s.taus[i]);
  return lambdas.map((lambda) => ({
    params: { lambda },
    build: () => scope(() => applyTaskVector(s.pre, taskArithmetic(taus, lambda))),
  }));
}

/** TIES on tasks `idx`; the merged τ_m of each density is computed once. */
export async function tiesResult(
  s: Suite,
  idx: number[],
  lambdas = LAMBDAS_TIES,
  densities = DENSITIES_TIES,
): Promise<MergeResult> {
  const taus = idx.map((i) => s.taus[i]);
  const merged = densities.map((density) => tiesMerging(taus, { density }));
  const cands = densities.flatMap((density, d) =>
    lambdas.map((lambda) => ({
      params: { density, lambda },
      build: () => applyTaskVector(s.pre, merged[d], lambda),
    }))
  );
  const r = await tuneOnVal(s, idx, cands);
  disposeStateDict(...merged);
  return r;
}

/** The shared baselines on tasks `idx`: pretrained, fine-tuned, multi-task, averaging, TA, TIES. */
export async function baselines(s: Suite, idx: number[]): Promise<Record<string, MergeResult>> {
  const pick = (a: Accs): MergeResult => {
    const test = idx.map((i) => a.test[i]);
    return {
      params: {},
      val: mean(idx.map((i) => a.val[i])),
      test,
      meanTest: mean(test),
      normalized: normalized(s, idx, test),
    };
  };
  const avg = averageStateDicts(idx.map((i) => s.fts[i]));
  const out: Record<string, MergeResult> = {
    "pretrained body (task heads)": pick(s.zeroShot),
    "individual fine-tuned": pick(s.finetuned),
    "multi-task": pick(s.multitaskAccs),
    "weight averaging": await fixedResult(s, idx, avg),
    "task arithmetic": await tuneOnVal(s, idx, taskArithmeticCandidates(s, idx)),
    "TIES-Merging": await tiesResult(s, idx),
  };
  disposeStateDict(avg);
  return out;
}

// -------------------------------------------------------------------------- summaries
/** Mean ± std over seeds of `acc` (in %), with the most frequently chosen hyperparameters. */
export function summarize(results: MergeResult[], field: "meanTest" | "normalized" = "meanTest") {
  const m = meanStd(results.map((r) => 100 * r[field]));
  const chosen = new Map<string, number>();
  for (const r of results) {
    const k = Object.entries(r.params).map(([a, b]) => `${a}=${b}`).join(" ");
    chosen.set(k, (chosen.get(k) ?? 0) + 1);
  }
  const params = [...chosen.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) =>
    results.length > 1 && k ? `${k} (${n}/${results.length})` : k
  ).join("; ");
  return { mean: m.mean, std: m.std, params };
}

/** Rounds to 2 decimals (rows stay readable in the CSV). */
export const r2 = (x: number) => Math.round(100 * x) / 100;

// ---------------------------------------------------------- a sweep on one task (soups)
/** One hyperparameter setting of a sweep. */
export interface Setting {
  lr: number;
  weightDecay: number;
  labelSmoothing: number;
  augment: boolean;
}

/** What `prepareSweep` fine-tunes: the whole model on one task, once per setting. */
export interface SweepConfig {
  backbone?: string;
  /** The in-distribution task (digit labels) and its shifted test tasks. */
  task: string;
  ood: string[];
  /** Training images per digit. */
  perClass: number;
  steps: number;
  batchSize: number;
  settings: Setting[];
}

/** A fine-tuned model of a sweep and its in-distribution validation accuracy. */
export interface Ingredient {
  setting: Setting;
  sd: StateDict;
  val: number;
}

/** The sweep of one seed. */
export interface Sweep {
  seed: number;
  w: Workbench;
  task: TaskData;
  ood: TaskData[];
  /** The pretrained body with the probe head (the "zero-shot" model the sweep starts from). */
  zeroShot: StateDict;
  ingredients: Ingredient[];
  buildMs: number;
}

const sweeps = new Map<string, Promise<Sweep>>();

/** The sweep of one seed, built once per process. */
export function prepareSweep(
  seed: number,
  cfg: SweepConfig,
  progress?: Progress,
): Promise<Sweep> {
  const key = JSON.stringify([seed, cfg]);
  if (!sweeps.has(key)) sweeps.set(key, buildSweep(seed, cfg, progress));
  return sweeps.get(key)!;
}

async function buildSweep(seed: number, cfg: SweepConfig, progress?: Progress) {
  const t0 = performance.now();
  const w = await workbench(cfg.backbone);
  const task = makeTask(cfg.task, seed, { perClass: cfg.perClass });
  if (task.classes !== w.model.head.outFeatures) {
    throw new Error(`prepareSweep: task ${cfg.task} must have the backbone head's classes`);
  }
  const probe = await fitProbe(w, task, 20_000 + seed);
  const zeroShot = cloneStateDict({
    ...w.pre,
    "head.weight": probe.weight,
    "head.bias": probe.bias!,
  });
  const ingredients: Ingredient[] = [];
  for (const [i, st] of cfg.settings.entries()) {
    const sd = await finetune(w, [task], [probe], {
      ...st,
      steps: cfg.steps,
      batchSize: cfg.batchSize,
      trainHead: true,
      seed: 30_000 + 100 * seed + i,
    });
    ingredients.push({ setting: st, sd, val: await accuracyOf(w, sd, task.val) });
    progress?.((i + 1) / cfg.settings.length, `seed ${seed}: ingredient ${i + 1}`);
  }
  const ood = cfg.ood.map((n) => makeTask(n, seed, { perClass: cfg.perClass }));
  return { seed, w, task, ood, zeroShot, ingredients, buildMs: performance.now() - t0 };
}

/** In-distribution val/test and shifted-test accuracies of a whole-model state dict. */
export async function evalSweep(sw: Sweep, sd: StateDict) {
  const ood: number[] = [];
  for (const t of sw.ood) ood.push(await accuracyOf(sw.w, sd, t.test));
  return {
    val: await accuracyOf(sw.w, sd, sw.task.val),
    test: await accuracyOf(sw.w, sd, sw.task.test),
    ood: mean(ood),
  };
}

/** The same for the output ensemble of several state dicts (mean logits). */
export async function evalEnsemble(sw: Sweep, sds: StateDict[]) {
  const acc = async (s: Split) => {
    const ls = sds.map((sd) => logitsOf(sw.w, sd, s));
    const l = ensembleLogits(ls);
    ls.forEach((t) => t.dispose());
    const a = accuracy(await l.data(), s.y);
    l.dispose();
    return a;
  };
  const ood: number[] = [];
  for (const t of sw.ood) ood.push(await acc(t.test));
  return { val: await acc(sw.task.val), test: await acc(sw.task.test), ood: mean(ood) };
}
