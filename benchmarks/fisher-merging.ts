/**
 * P110 Fisher merging in miniature: the mlp-digits backbone fine-tuned on 8 digit tasks
 * (benchmarks/_merging.ts); each fine-tuned body gets its diagonal Fisher (exact expectation
 * over the model's own predictions, on training images of its task). Merged by isotropic
 * averaging and by Fisher-weighted averaging: pairs of tasks (mean over 4 pairs) and all 8
 * tasks, each task evaluated with its own head. Also the paper's ensembling setting: 5
 * fine-tunes of one task (different seeds) merged by averaging and by Fisher merging,
 * against their output ensemble. Mean test accuracy, mean ± std over seeds.
 */
import { diagonalFisher, disposeFishers, fisherMerging } from "../algorithms/fisher-merging/mod.ts";
import {
  averageStateDicts,
  disposeStateDict,
  type StateDict,
} from "../algorithms/task-vectors/mod.ts";
import { tensor } from "../core/ops/creation.ts";
import type { Tensor } from "../core/tensor.ts";
import { meanStd } from "../lab/stats.ts";
import { type Figure, groupTraces } from "../lab/plot.ts";
import type { ResultFile } from "../tools/index_lib.ts";
import { defineBenchmark, type Row } from "./harness/define.ts";
import {
  evalBody,
  evalEnsemble,
  evalSweep,
  prepareSuite,
  prepareSweep,
  r2,
  type Suite,
  SUITE_CONFIGS,
  type Sweep,
  type SweepConfig,
  type TaskData,
  type Workbench,
} from "./_merging.ts";

interface Config {
  seeds: number[];
  suite: keyof typeof SUITE_CONFIGS;
  /** Pairs of task indices merged two at a time. */
  pairs: [number, number][];
  /** The first `group` tasks merged at once. */
  group: number;
  /** Training images per model the Fisher is estimated on. */
  fisherExamples: number;
  /** The ensembling setting: fine-tunes of one task differing only in their seed. */
  ensemble: SweepConfig;
}

const ISO = "isotropic averaging", FISHER = "Fisher merging";

/** F of the parameters `keys` of the workbench model loaded with `sd`, on `n` training rows. */
function fisherOf(
  w: Workbench,
  sd: StateDict,
  t: TaskData,
  n: number,
  logits: (x: Tensor) => Tensor,
  keys: (k: string) => boolean,
): Record<string, Tensor> {
  w.model.loadStateDict(sd, { strict: false });
  const params = Object.fromEntries(w.model.namedParameters().filter(([k]) => keys(k)));
  const m = Math.min(n, t.train.n);
  const x = tensor(t.train.x.slice(0, 64 * m), { shape: [m, 64] });
  const F = diagonalFisher(params, logits, x, { mode: "expected" });
  x.dispose();
  return F;
}

async function meanAcc(s: Suite, body: StateDict, idx: number[]): Promise<number> {
  const a = await evalBody(s, body, idx);
  return (100 * a.test.reduce((p, q) => p + q, 0)) / idx.length;
}

/** Accuracies of isotropic and Fisher merging of the bodies `idx`, averaged over `groups`. */
async function multiTask(s: Suite, F: Record<string, Tensor>[], groups: number[][]) {
  const out = { [ISO]: 0, [FISHER]: 0, "individual fine-tuned": 0, "multi-task": 0 };
  for (const idx of groups) {
    const iso = averageStateDicts(idx.map((i) => s.fts[i]));
    const fis = fisherMerging(idx.map((i) => s.fts[i]), idx.map((i) => F[i]));
    out[ISO] += (await meanAcc(s, iso, idx)) / groups.length;
    out[FISHER] += (await meanAcc(s, fis, idx)) / groups.length;
    const ft = idx.map((i) => s.finetuned.test[i]), mt = idx.map((i) => s.multitaskAccs.test[i]);
    out["individual fine-tuned"] += (100 * ft.reduce((p, q) => p + q) / idx.length) / groups.length;
    out["multi-task"] += (100 * mt.reduce((p, q) => p + q) / idx.length) / groups.length;
    disposeStateDict(iso, fis);
  }
  return out;
}

async function ensembling(sw: Sweep, n: number) {
  const sds = sw.ingredients.map((i) => i.sd);
  const F = sds.map((sd) =>
    fisherOf(sw.w, sd, sw.task, n, (x) => sw.w.model.forward(x), () => true)
  );
  const iso = averageStateDicts(sds), fis = fisherMerging(sds, F);
  const single = await Promise.all(sds.map((sd) => evalSweep(sw, sd)));
  const out = {
    "individual fine-tuned (mean)": 100 * single.reduce((p, q) => p + q.test, 0) / sds.length,
    [ISO]: 100 * (await evalSweep(sw, iso)).test,
    [FISHER]: 100 * (await evalSweep(sw, fis)).test,
    "output ensemble": 100 * (await evalEnsemble(sw, sds)).test,
  };
  disposeStateDict(iso, fis);
  disposeFishers(...F);
  return out;
}

const ensembleConfig = (settings: number, steps: number, perClass: number): SweepConfig => ({
  task: "rot90",
  ood: [],
  perClass,
  steps,
  batchSize: 64,
  settings: Array.from(
    { length: settings },
    () => ({ lr: 1e-3, weightDecay: 0.01, labelSmoothing: 0, augment: false }),
  ),
});

export default defineBenchmark<Config>({
  slug: "fisher-merging",
  table: "Isotropic vs Fisher-weighted merging of fine-tuned mlp-digits models: pairs and 8 " +
    "digit tasks (task heads kept), and 5 same-task fine-tunes vs their output ensemble",
  profiles: {
    smoke: {
      seeds: [0],
      suite: "smoke",
      pairs: [[0, 1], [2, 3]],
      group: 4,
      fisherExamples: 4,
      ensemble: ensembleConfig(2, 10, 5),
    },
    quick: {
      seeds: [0],
      suite: "quick",
      pairs: [[0, 1], [2, 3], [4, 5], [6, 7]],
      group: 8,
      fisherExamples: 64,
      ensemble: ensembleConfig(5, 150, 50),
    },
    full: {
      seeds: [0, 1, 2],
      suite: "full",
      pairs: [[0, 1], [2, 3], [4, 5], [6, 7]],
      group: 8,
      fisherExamples: 128,
      ensemble: ensembleConfig(5, 200, 50),
    },
  },
  reported: {
    source: "Figs. 1-2 and Sec. 3 (robust fine-tuning of ImageNet models; ensembling 5 " +
      "fine-tuned BERT-base models on RTE, MRPC and SST-2)",
    rows: [
      {
        setting: "ensembling (Fig. 2)",
        claim: "Fisher merging beats isotropic merging and comes close to the output " +
          "ensemble at a fifth of its inference cost",
      },
      {
        setting: "robust fine-tuning (Fig. 1)",
        claim: "Fisher-weighted interpolation of the pretrained and fine-tuned models beats " +
          "isotropic interpolation on the shifted test sets",
      },
    ],
    note: "The paper shows these as figures; no numbers were transcribed (the stored seed " +
      "pages hold only the abstract).",
  },
  async run(ctx, c) {
    const per: Record<string, Record<string, number[]>> = {};
    const push = (setting: string, res: Record<string, number>) => {
      for (const [m, v] of Object.entries(res)) ((per[setting] ??= {})[m] ??= []).push(v);
    };
    for (const [k, seed] of c.seeds.entries()) {
      const at = (f: number) => (k + f) / c.seeds.length;
      const s = await prepareSuite(
        seed,
        SUITE_CONFIGS[c.suite],
        (f, m) => ctx.progress(at(0.4 * f), m),
      );
      const F: Record<string, Tensor>[] = [];
      for (const [i, t] of s.tasks.entries()) {
        ctx.progress(at(0.4 + 0.3 * i / s.tasks.length), `seed ${seed}: Fisher of ${t.name}`);
        const head = s.heads[i];
        F.push(
          fisherOf(
            s.w,
            s.fts[i],
            t,
            c.fisherExamples,
            (x) => head.forward(s.w.model.features(x)),
            s.w.isBody,
          ),
        );
      }
      const pairs = await multiTask(s, F, c.pairs);
      push(`pairs (mean of ${c.pairs.length})`, pairs);
      const group = await multiTask(s, F, [[...Array(c.group).keys()]]);
      push(`${c.group} tasks`, group);
      disposeFishers(...F);
      ctx.progress(at(0.75), `seed ${seed}: ensembling`);
      const sw = await prepareSweep(
        seed,
        c.ensemble,
        (f, m) => ctx.progress(at(0.75 + 0.2 * f), m),
      );
      const ens = await ensembling(sw, c.fisherExamples);
      push(`ensemble of ${c.ensemble.settings.length} (${c.ensemble.task})`, ens);
      ctx.log(
        `seed ${seed}: pairs ${pairs[ISO].toFixed(1)} -> ${pairs[FISHER].toFixed(1)}, ` +
          `${c.group} tasks ${group[ISO].toFixed(1)} -> ${group[FISHER].toFixed(1)}, ` +
          `ensemble ${ens[ISO].toFixed(1)} -> ${ens[FISHER].toFixed(1)} (outputs ${
            ens["output ensemble"].toFixed(1)
          })`,
      );
    }
    const rows: Row[] = [];
    for (const [setting, ms] of Object.entries(per)) {
      for (const [method, v] of Object.entries(ms)) {
        const m = meanStd(v);
        rows.push({ setting, method, acc: r2(m.mean), acc_std: r2(m.std), seeds: v.length });
      }
    }
    return rows;
  },
  check(rows) {
    const multi = [...new Set(rows.map((r) => r.setting as string))].filter((s) =>
      !s.startsWith("ensemble")
    );
    const acc = (s: string, m: string) =>
      rows.find((r) => r.setting === s && r.method === m)!.acc as number;
    const gaps = multi.map((s) => acc(s, FISHER) - acc(s, ISO));
    return {
      pass: gaps.length > 0 && gaps.every((g) => g >= 1),
      summary: multi.map((s) =>
        `${s}: Fisher ${acc(s, FISHER).toFixed(2)} vs isotropic ${acc(s, ISO).toFixed(2)}`
      )
        .join("; ") +
        " (Fisher must beat isotropic averaging by >= 1 point in every multi-task setting)",
    };
  },
});

/** Accuracy by merging method in each setting. */
export function figures(r: ResultFile): Figure[] {
  return [{
    data: groupTraces(r.rows, { x: "setting", y: "acc", err: "acc_std", group: "method" }),
    layout: {
      title: { text: `${r.id} Fisher merging vs isotropic averaging (mean test accuracy)` },
      barmode: "group",
      yaxis: { title: { text: "accuracy (%)" } },
    },
  }];
}
