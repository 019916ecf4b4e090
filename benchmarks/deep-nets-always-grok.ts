/**
 * P139 Deep Networks Always Grok, in miniature: a 4-layer ReLU MLP trained with AdamW on 1,000
 * 8x8 digits far past interpolation; at log-spaced checkpoints, train / test / ℓ∞-PGD accuracy
 * and the local complexity (LC) at training, test, random and decision-boundary points. The
 * claim: adversarial accuracy rises long after the training set is fitted ("delayed
 * robustness") while LC falls at the training points and not at the decision boundary.
 */
import { defineBenchmark, type Row } from "./harness/define.ts";
import {
  decisionBoundaryPoints,
  localComplexity,
  orthonormalFrame,
  pgdAttack,
} from "../algorithms/deep-nets-always-grok/mod.ts";
import { loadDigits } from "../data/digits.ts";
import { split } from "../data/loader.ts";
import { meanStd } from "../lab/stats.ts";
import type { Figure } from "../lab/plot.ts";
import type { ResultFile } from "../tools/index_lib.ts";
import {
  F,
  keep,
  manualSeed,
  nn,
  noGrad,
  oneHot,
  optim,
  scope,
  type Tensor,
  tensor,
} from "../mod.ts";
import { Generator } from "../core/random.ts";

export interface Config {
  seeds: number[];
  trainPoints: number;
  width: number;
  steps: number;
  batch: number;
  lr: number;
  weightDecay: number;
  /** Points per set (train, test, random, boundary pairs) at which LC is measured. */
  lcPoints: number;
  /** LC frame: radius r (the checked one first) and number of directions P. */
  radii: number[];
  directions: number;
  /** ℓ∞ PGD: ε, steps (α = ε / 4) and number of test points attacked. */
  eps: number;
  pgdSteps: number;
  pgdPoints: number;
}

/** 0, then 1-2-5 per decade, then tenths of the run: the evaluation steps. */
export function checkpoints(T: number): number[] {
  const s = new Set([0, T]);
  for (let k = 1; k < T; k *= 10) for (const m of [1, 2, 5]) if (m * k < T) s.add(m * k);
  for (let i = 1; i < 10; i++) s.add(Math.round((i * T) / 10));
  return [...s].sort((a, b) => a - b);
}

/** Depth 4 as in the paper's code: 4 Linear layers, ReLU between them. */
const mlp = (w: number) =>
  new nn.Sequential(
    new nn.Linear(64, w),
    new nn.ReLU(),
    new nn.Linear(w, w),
    new nn.ReLU(),
    new nn.Linear(w, w),
    new nn.ReLU(),
    new nn.Linear(w, 10),
  );

type Metrics = Record<string, number>;

async function accuracy(model: nn.Sequential, x: Tensor, y: Tensor): Promise<number> {
  const a = noGrad(() => scope(() => model.forward(x).argmax(1).eq(y).float().mean().detach()));
  const v = (await a.item()) as number;
  a.dispose();
  return v;
}

async function meanOf(t: Tensor): Promise<number> {
  const v = (await t.mean().item()) as number;
  return v;
}

/** One training run; returns the metrics at every checkpoint. */
export async function runSeed(
  cfg: Config,
  seed: number,
  onStep: (f: number) => void,
): Promise<Metrics[]> {
  manualSeed(seed);
  const ds = loadDigits();
  const { train, test } = split(ds, { train: cfg.trainPoints / 1797, seed, stratify: true });
  const xTr = keep(tensor(train.x, { shape: train.xShape })), yTr = keep(tensor(train.y));
  const xTe = keep(tensor(test.x, { shape: test.xShape })), yTe = keep(tensor(test.y));
  const tTr = keep(oneHot(yTr, 10).float());
  const nTr = train.yShape[0], nTe = test.yShape[0];
  const g = new Generator(seed + 1);
  const pick = (n: number, k: number) => tensor(g.permutation(n).slice(0, Math.min(n, k)));
  const lcTrain = keep(xTr.indexSelect(0, pick(nTr, cfg.lcPoints)));
  const lcTest = keep(xTe.indexSelect(0, pick(nTe, cfg.lcPoints)));
  const lcRand = keep(tensor(Float32Array.from({ length: cfg.lcPoints * 64 }, () => g.uniform()), {
    shape: [cfg.lcPoints, 64],
  })); // uniform in [0, 1]^64, the paper's "random" points
  const pairA = keep(xTe.indexSelect(0, pick(nTe, cfg.lcPoints)));
  const pairB = keep(xTe.indexSelect(0, pick(nTe, cfg.lcPoints)));
  const advIdx = pick(nTe, cfg.pgdPoints);
  const xAdv = keep(xTe.indexSelect(0, advIdx)), yAdv = keep(yTe.indexSelect(0, advIdx));
  const frame = keep(orthonormalFrame(64, cfg.directions, seed));

  const model = mlp(cfg.width);
  const opt = new optim.AdamW(model.parameters(), { lr: cfg.lr, weightDecay: cfg.weightDecay });
  const evalAt = new Set(checkpoints(cfg.steps));
  const out: Metrics[] = [];
  let order = g.permutation(nTr), pos = 0;

  const evaluate = async (step: number) => {
    model.eval();
    const m: Metrics = { step };
    m.trainAcc = await accuracy(model, xTr, yTr);
    m.testAcc = await accuracy(model, xTe, yTe);
    const adv = scope(() =>
      pgdAttack(model, xAdv, yAdv, {
        eps: cfg.eps,
        alpha: cfg.eps / 4,
        steps: cfg.pgdSteps,
      })
    );
    m.pgdAcc = await accuracy(model, adv, yAdv);
    adv.dispose();
    const boundary = await decisionBoundaryPoints(model, pairA, pairB);
    const sets: [string, Tensor][] = [["Train", lcTrain], ["Test", lcTest], ["Random", lcRand]];
    if (boundary.shape[0] > 0) sets.push(["Boundary", boundary]);
    for (const [ri, r] of cfg.radii.entries()) {
      for (const [name, pts] of sets) {
        const lc = scope(() => localComplexity(model, pts, { radius: r, frame }).total);
        m[`lc${name}${ri === 0 ? "" : `R${r}`}`] = await meanOf(lc);
        lc.dispose();
      }
    }
    boundary.dispose();
    model.train();
    out.push(m);
  };

  for (let step = 0; step <= cfg.steps; step++) {
    if (evalAt.has(step)) await evaluate(step);
    if (step === cfg.steps) break;
    if (pos + cfg.batch > nTr) [order, pos] = [g.permutation(nTr), 0]; // reshuffle each epoch
    const idx = tensor(order.slice(pos, pos + cfg.batch));
    pos += cfg.batch;
    scope(() => {
      opt.zeroGrad();
      F.mseLoss(model.forward(xTr.indexSelect(0, idx)), tTr.indexSelect(0, idx)).backward();
      opt.step();
    });
    idx.dispose();
    if (step % 250 === 0) onStep(step / cfg.steps);
  }
  for (
    const t of [xTr, yTr, xTe, yTe, tTr, lcTrain, lcTest, lcRand, pairA, pairB, xAdv, yAdv, frame]
  ) {
    t.dispose();
  }
  model.dispose();
  return out;
}

/** Per-seed read-out of the claim (see check). */
function seedSummary(seed: number, ms: Metrics[]): Row {
  const t = ms.findIndex((m) => m.trainAcc >= 0.9995);
  const last = ms[ms.length - 1];
  const peak = Math.max(...ms.map((m) => m.lcTrain));
  const at = t >= 0 ? ms[t] : null;
  const pgdGain = at ? 100 * (last.pgdAcc - at.pgdAcc) : null;
  const lcRatio = last.lcTrain / peak;
  const bAt = at?.lcBoundary ?? null, bEnd = last.lcBoundary ?? null;
  const r4 = (v: number | null) => (v === null ? null : +v.toFixed(4));
  return {
    kind: "seed",
    seed,
    interpolationStep: at ? at.step : null,
    testAccAtInterp: r4(at?.testAcc ?? null),
    testAccFinal: r4(last.testAcc),
    pgdAccAtInterp: r4(at?.pgdAcc ?? null),
    pgdAccFinal: r4(last.pgdAcc),
    pgdGainPoints: pgdGain === null ? null : +pgdGain.toFixed(1),
    lcTrainPeak: r4(peak),
    lcTrainFinal: r4(last.lcTrain),
    lcTrainFinalOverPeak: r4(lcRatio),
    lcBoundaryAtInterp: r4(bAt),
    lcBoundaryFinal: r4(bEnd),
    delayedRobustness: pgdGain !== null && pgdGain >= 10,
    lcTrainHalved: lcRatio <= 0.5,
    lcBoundaryHeld: bAt !== null && bEnd !== null && bEnd >= bAt,
  };
}

export default defineBenchmark<Config>({
  slug: "deep-nets-always-grok",
  table: "Fig. 1-3: delayed robustness and local complexity over a long training run",
  profiles: {
    smoke: {
      seeds: [0],
      trainPoints: 200,
      width: 32,
      steps: 40,
      batch: 50,
      lr: 1e-3,
      weightDecay: 0.1,
      lcPoints: 20,
      radii: [0.1],
      directions: 8,
      eps: 0.1,
      pgdSteps: 3,
      pgdPoints: 50,
    },
    quick: {
      seeds: [0],
      trainPoints: 1000,
      width: 100,
      steps: 3000,
      batch: 100,
      lr: 1e-3,
      weightDecay: 0.1,
      lcPoints: 100,
      radii: [0.1, 0.5],
      directions: 16,
      eps: 0.1,
      pgdSteps: 10,
      pgdPoints: 300,
    },
    full: {
      seeds: [0, 1, 2],
      trainPoints: 1000,
      width: 100,
      steps: 10000,
      batch: 100,
      lr: 1e-3,
      weightDecay: 0.1,
      lcPoints: 100,
      radii: [0.1, 0.5],
      directions: 16,
      eps: 0.1,
      pgdSteps: 10,
      pgdPoints: 300,
    },
  },
  reported: {
    source: "Humayun et al. 2024, Fig. 1-3 and Sec. 4 (qualitative)",
    rows: [
      {
        setting: "ResNet18 / CIFAR-10, CNN / CIFAR-10, MLP / MNIST (1K samples)",
        finding: "adversarial accuracy keeps rising for ~10^4-10^5 steps after train accuracy " +
          "reaches 100%; LC at train and test points rises, then falls (second descent) as " +
          "linear regions migrate to the decision boundary",
      },
    ],
    note: "The paper reports curves, not a table; no numbers are copied here.",
  },
  async run(ctx, cfg) {
    const runs: Metrics[][] = [];
    for (const [i, seed] of ctx.seeds.entries()) {
      runs.push(
        await runSeed(cfg, seed, (f) => {
          ctx.progress(
            (i + f) / ctx.seeds.length,
            `seed ${seed}: step ${Math.round(f * cfg.steps)}`,
          );
        }),
      );
    }
    const curve: Row[] = runs[0].map((m0, k) => {
      const row: Row = { kind: "curve", step: m0.step };
      for (const key of Object.keys(m0).filter((key) => key !== "step")) {
        const vals = runs.map((r) => r[k][key]).filter((v) => v !== undefined);
        if (!vals.length) continue;
        const s = meanStd(vals);
        row[key] = +s.mean.toFixed(4);
        row[`${key}Std`] = +s.std.toFixed(4);
      }
      return row;
    });
    return [...runs.map((r, i) => seedSummary(ctx.seeds[i], r)), ...curve];
  },
  check(rows) {
    const seeds = rows.filter((r) => r.kind === "seed");
    const ok = (r: Row) => r.delayedRobustness && r.lcTrainHalved && r.lcBoundaryHeld;
    const pass = seeds.length > 0 && seeds.every(ok);
    const txt = seeds.map((r) =>
      `seed ${r.seed}: interp@${r.interpolationStep}, PGD +${r.pgdGainPoints} pts, ` +
      `LC_train ${r.lcTrainFinalOverPeak}x peak, LC_boundary ${r.lcBoundaryAtInterp}->` +
      `${r.lcBoundaryFinal}`
    );
    return {
      pass,
      summary: `${seeds.filter(ok).length}/${seeds.length} seeds show PGD gain >= 10 pts after ` +
        `interpolation, LC at train <= 50% of peak, boundary LC not falling (${txt.join("; ")}).`,
    };
  },
});

/** Accuracy and LC curves over training (the paper's Fig. 1-3 layout, log step axis). */
export function figures(r: ResultFile): Figure[] {
  const c = r.rows.filter((x) => x.kind === "curve");
  const x = c.map((row) => Math.max(1, row.step as number));
  const line = (key: string, name: string) => ({
    type: "scatter",
    mode: "lines+markers",
    name,
    x,
    y: c.map((row) => row[key]),
    error_y: { type: "data", array: c.map((row) => row[`${key}Std`]) },
  });
  const xaxis = { title: { text: "optimisation step" }, type: "log" };
  return [
    {
      data: [line("trainAcc", "train"), line("testAcc", "test"), line("pgdAcc", "PGD (test)")],
      layout: {
        title: { text: "P139: accuracy over training" },
        xaxis,
        yaxis: { title: { text: "accuracy" } },
      },
    },
    {
      data: ["Train", "Test", "Random", "Boundary"].map((s) => line(`lc${s}`, s.toLowerCase())),
      layout: {
        title: { text: "P139: local complexity (neurons cut near a point)" },
        xaxis,
        yaxis: { title: { text: "LC" } },
      },
    },
  ];
}
