/**
 * P198 "What learning algorithm is in-context learning?", in miniature: Fig. 3 (squared
 * prediction difference between a trained in-context learner and reference algorithms, as a
 * function of the number of in-context examples) and Fig. 5 (probing the learner's hidden
 * states for the weight vector w).
 *
 * Per seed a causal transformer (`ICLTransformer`) is trained on freshly drawn noiseless
 * prompts y = w^T x, w ~ N(0, I_d), x ~ N(0, I_d) (data/synthetic/regression.ts). On held-out
 * prompts its prediction of y_i from the i - 1 examples before it is compared with least
 * squares (min-norm), ridge, one and five steps of gradient descent (step size tuned on other
 * prompts) and 3-nearest neighbours, by the paper's SPD. A ridge linear probe then decodes w
 * from the last token's hidden state after each layer.
 */
import {
  applyProbe,
  fitLinearProbe,
  ICLTransformer,
  predictors,
  prefixPrompts,
  promptTokens,
  r2Score,
  squaredPredictionDifference,
} from "../algorithms/icl-learning-algorithm/mod.ts";
import { manualSeed, noGrad, optim, scope, stack, type Tensor, tensor } from "../mod.ts";
import { linearRegression } from "../data/mod.ts";
import { fit } from "../lab/train.ts";
import { meanStd } from "../lab/stats.ts";
import type { Figure } from "../lab/plot.ts";
import type { ResultFile } from "../tools/index_lib.ts";
import { defineBenchmark, type Row } from "./harness/define.ts";

interface Config {
  seeds: number[];
  /** Input dimension d and examples per prompt k. */
  d: number;
  k: number;
  dModel: number;
  /** Depths of the learners trained (the check reads the deepest). */
  layers: number[];
  heads: number;
  batch: number;
  steps: number;
  lr: number;
  /** Held-out prompts for SPD, and train/test prompts for the probes. */
  evalPrompts: number;
  probeTrain: number;
  probeTest: number;
}

/** Prompts as tensors: X [n, k, d], y [n, k], w [n, d]. */
function draw(n: number, c: Config, seed: number) {
  const ds = linearRegression({ n, k: c.k, d: c.d, seed }); // w ~ N(0, I);
  return {
    X: tensor(ds.x, { shape: [n, c.k, c.d] }),
    y: tensor(ds.y, { shape: [n, c.k] }),
    w: tensor(ds.w, { shape: [n, c.d] }),
  };
}

const GD_GRID = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1];

/** Runs `fn` in a scope (no gradient), reads its result back and frees every tensor it made. */
async function read(fn: () => Tensor): Promise<Float32Array> {
  const t = scope(() => noGrad(fn));
  const v = await t.data() as Float32Array;
  t.dispose();
  return v;
}

/**
 * t steps of GD with the step size tuned per number of examples i (the paper tunes GD's step
 * size; one size for every i would let the small-i prompts diverge): for each i the size in
 * GD_GRID with the lowest error on the `tune` prompts. Returns its predictions on `ev`,
 * [n·k] row-major, and the chosen sizes.
 */
async function tunedGD(
  steps: number,
  tune: { X: Tensor; y: Tensor },
  ev: { X: Tensor; y: Tensor },
): Promise<{ pred: Float32Array; lrs: number[] }> {
  const [n, k] = ev.y.shape;
  const best = Array.from({ length: k }, () => ({ lr: GD_GRID[0], err: Infinity }));
  const evPred: Float32Array[] = [];
  for (const lr of GD_GRID) {
    const p = predictors.gradientDescent(steps, lr);
    const err = await read(() =>
      squaredPredictionDifference(tune.y, p(prefixPrompts(tune.X, tune.y)).reshape(tune.y.shape))
    ); // [k]
    for (let i = 0; i < k; i++) if (err[i] < best[i].err) best[i] = { lr, err: err[i] };
    evPred.push(await read(() => p(prefixPrompts(ev.X, ev.y)))); // [n·k]
  }
  const pred = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) pred[r * k + i] = evPred[GD_GRID.indexOf(best[i].lr)][r * k + i];
  }
  return { pred, lrs: best.map((b) => b.lr) };
}

type Metrics = Record<string, number>;

async function runDepth(
  c: Config,
  L: number,
  seed: number,
  onProgress: (f: number, msg: string) => void,
): Promise<Metrics> {
  manualSeed(seed);
  const model = new ICLTransformer({ d: c.d, k: c.k, dModel: c.dModel, layers: L, heads: c.heads });
  const opt = new optim.Adam(model.parameters(), { lr: c.lr });
  // Linear warm-up over 5% of the steps, then cosine decay to 10% of the rate.
  const warm = Math.max(1, Math.round(c.steps / 20));
  const sched = new optim.LambdaLR(
    opt,
    (t) => Math.min(1, (t + 1) / warm) * (0.55 + 0.45 * Math.cos((Math.PI * t) / c.steps)),
  );
  const t0 = performance.now();
  await fit({
    steps: c.steps,
    optimizer: opt,
    logEvery: 100,
    loss: (step) => {
      const { X, y } = draw(c.batch, c, 1_000_003 * (seed + 1) + step); // fresh tasks
      return model.forward(promptTokens(X, y)).yHat.sub(y).square().mean();
    },
    afterStep: () => sched.step(),
    onProgress: (f, m) => onProgress(0.9 * f, `L=${L} seed ${seed}: ${m}`),
  });
  const trainS = (performance.now() - t0) / 1000;
  onProgress(0.9, `L=${L} seed ${seed}: evaluating`);
  const out: Metrics = { train_s: trainS };
  const [n, k] = [c.evalPrompts, c.k];

  // SPD between the learner and each reference algorithm, per number of examples i.
  const tune = draw(256, c, 2_000_000 + seed);
  const ev = draw(c.evalPrompts, c, 3_000_000 + seed);
  const gd1 = await tunedGD(1, tune, ev), gd5 = await tunedGD(5, tune, ev);
  const onEval = (p: (b: ReturnType<typeof prefixPrompts>) => Tensor) => () =>
    p(prefixPrompts(ev.X, ev.y));
  const preds: [string, Float32Array][] = [
    ["least squares", await read(onEval(predictors.leastSquares()))],
    ["ridge (λ=0.1)", await read(onEval(predictors.ridge(0.1)))],
    ["GD, 1 step", gd1.pred],
    ["GD, 5 steps", gd5.pred],
    ["3-NN", await read(onEval(predictors.nearestNeighbours(3)))],
    ["transformer", await read(() => model.forward(promptTokens(ev.X, ev.y)).yHat)],
  ];
  const tHat = preds[preds.length - 1][1], y = await ev.y.data();
  for (const [name, pred] of preds) {
    for (let i = 0; i < k; i++) {
      let spd = 0, err = 0;
      for (let r = 0; r < n; r++) {
        spd += (tHat[r * k + i] - pred[r * k + i]) ** 2; // SPD (Sec. 4.1)
        err += (y[r * k + i] - pred[r * k + i]) ** 2;
      }
      [out[`${name}|spd|${i}`], out[`${name}|err|${i}`]] = [spd / n, err / n];
    }
  }
  gd1.lrs.forEach((lr, i) => out[`GD, 1 step|lr|${i}`] = lr);
  gd5.lrs.forEach((lr, i) => out[`GD, 5 steps|lr|${i}`] = lr);

  // Linear probes for w after each layer (Sec. 5), at the last query token x_k (it has seen
  // k - 1 >= d examples, so w_OLS = w) and at the last token y_k (all k examples).
  const [ptr, pte] = [
    draw(c.probeTrain, c, 4_000_000 + seed),
    draw(c.probeTest, c, 5_000_000 + seed),
  ];
  for (const [where, pos] of [["x", 2 * k - 2], ["y", 2 * k - 1]] as const) {
    const states = (p: { X: Tensor; y: Tensor }) =>
      model.forward(promptTokens(p.X, p.y)).hidden.map((h) => h.select(1, pos)); // [n, D] each
    const r2 = await read(() => {
      const [htr, hte] = [states(ptr), states(pte)];
      return stack(
        htr.map((h, l) =>
          r2Score(applyProbe(fitLinearProbe(h, ptr.w, { lambda: 1e-3 }), hte[l]), pte.w)
        ),
      );
    }); // [L + 1]
    r2.forEach((v, l) => out[`probe|${where}|${l}`] = v);
  }
  for (const t of [tune, ev, ptr, pte].flatMap((p) => [p.X, p.y, p.w])) t.dispose();
  opt.dispose();
  model.dispose();
  return out;
}

export default defineBenchmark<Config>({
  slug: "icl-learning-algorithm",
  table:
    "Fig. 3 / Fig. 5: prediction difference (SPD) to reference learners vs number of examples, " +
    "and linear probes for w per layer (d = 2, k = 6, noiseless)",
  profiles: {
    smoke: {
      seeds: [0],
      d: 3,
      k: 4,
      dModel: 16,
      layers: [1],
      heads: 2,
      batch: 8,
      steps: 10,
      lr: 2e-3,
      evalPrompts: 32,
      probeTrain: 64,
      probeTest: 32,
    },
    quick: {
      seeds: [0],
      d: 2,
      k: 6,
      dModel: 32,
      layers: [4],
      heads: 2,
      batch: 32,
      steps: 300,
      lr: 3e-3,
      evalPrompts: 256,
      probeTrain: 512,
      probeTest: 256,
    },
    full: {
      seeds: [0, 1, 2],
      d: 2,
      k: 6,
      dModel: 32,
      layers: [1, 4],
      heads: 2,
      batch: 32,
      steps: 600,
      lr: 3e-3,
      evalPrompts: 512,
      probeTrain: 1024,
      probeTest: 512,
    },
  },
  reported: {
    source: "Sec. 4.3 / Fig. 3 and Sec. 5 / Fig. 5 (read off the figures; approximate)",
    note: "Paper: d = 8, up to 40 examples, 16-layer 512-wide learner trained long. Its SPD to " +
      "least squares/ridge is near 0 across context lengths while SPD to 1-step GD and 3-NN is " +
      "large; probes decode w (and X^T y) from late layers, best with non-linear probes.",
    rows: [
      { quantity: "SPD(transformer, least squares), noiseless", value: "≈ 0 (all i)" },
      { quantity: "SPD(transformer, 1-step GD)", value: "≫ SPD to least squares" },
      { quantity: "SPD(transformer, 3-NN)", value: "largest of the references" },
      { quantity: "probe R² for w, late layers", value: "high (non-linear probe)" },
    ],
  },
  async run(ctx, c) {
    const per = new Map<number, Metrics[]>();
    const jobs = c.layers.flatMap((L) => c.seeds.map((seed) => ({ L, seed })));
    for (const [j, { L, seed }] of jobs.entries()) {
      const m = await runDepth(
        c,
        L,
        seed,
        (f, msg) => ctx.progress((j + f) / jobs.length, msg),
      );
      per.set(L, [...(per.get(L) ?? []), m]);
    }
    const rows: Row[] = [];
    const ms = (ms: Metrics[], key: string) => meanStd(ms.map((m) => m[key]));
    for (const L of c.layers) {
      const runs = per.get(L)!;
      const train = ms(runs, "train_s");
      for (
        const ref of ["least squares", "ridge (λ=0.1)", "GD, 1 step", "GD, 5 steps", "3-NN"]
      ) {
        // SPD averaged over the context lengths i = 1..k-1 (i = 0: every learner predicts 0).
        const avg = meanStd(runs.map((m) => {
          let s = 0;
          for (let i = 1; i < c.k; i++) s += m[`${ref}|spd|${i}`];
          return s / (c.k - 1);
        }));
        const row: Row = { table: "spd", layers: L, reference: ref };
        row.spd_mean = +avg.mean.toFixed(4);
        row.spd_std = +avg.std.toFixed(4);
        for (let i = 0; i < c.k; i++) {
          row[`spd_i${i}`] = +ms(runs, `${ref}|spd|${i}`).mean.toFixed(4);
        }
        // GD's tuned step size per i (mean over seeds).
        row.gd_lr = ref.startsWith("GD")
          ? Array.from({ length: c.k }, (_, i) => +ms(runs, `${ref}|lr|${i}`).mean.toFixed(2))
            .join("/")
          : null;
        row.train_s = +train.mean.toFixed(1);
        rows.push(row);
      }
      for (const who of ["transformer", "least squares", "GD, 1 step", "3-NN"]) {
        const row: Row = { table: "error", layers: L, reference: who };
        for (let i = 0; i < c.k; i++) {
          row[`err_i${i}`] = +ms(runs, `${who}|err|${i}`).mean.toFixed(4);
        }
        rows.push(row);
      }
      for (const where of ["x", "y"]) {
        for (let l = 0; l <= L; l++) {
          const r2 = ms(runs, `probe|${where}|${l}`);
          rows.push({
            table: "probe",
            layers: L,
            reference: `w from layer ${l} at the last ${where}-token`,
            probe_token: where,
            probe_layer: l,
            r2_mean: +r2.mean.toFixed(4),
            r2_std: +r2.std.toFixed(4),
          });
        }
      }
    }
    ctx.progress(1, "done");
    return rows;
  },
  check(rows) {
    const L = Math.max(...rows.map((r) => r.layers as number));
    const spd = (ref: string) =>
      rows.find((r) => r.table === "spd" && r.layers === L && r.reference === ref)!
        .spd_mean as number;
    const near = Math.min(spd("least squares"), spd("ridge (λ=0.1)"));
    const far = Math.min(spd("GD, 1 step"), spd("3-NN"));
    // The probe is read where the learner forms its prediction: the last query token x_k.
    const probes = rows.filter((r) =>
      r.table === "probe" && r.layers === L && r.probe_token === "x"
    );
    const r2 = (l: number) => probes.find((r) => r.probe_layer === l)!.r2_mean as number;
    const ratio = far / near;
    const pass = ratio >= 5 && r2(L) >= 0.8 && r2(L) > r2(0);
    return {
      pass,
      summary: `${L}-layer learner: SPD to least squares/ridge ${near.toFixed(3)} vs to 1-step ` +
        `GD/3-NN ${far.toFixed(3)} (${ratio.toFixed(1)}x, need >= 5x); probe R² for w ` +
        `${r2(L).toFixed(2)} at layer ${L} vs ${r2(0).toFixed(2)} at layer 0 (need >= 0.8).`,
    };
  },
});

/** SPD vs number of in-context examples per reference (Fig. 3), and probe R² per layer. */
export function figures(r: ResultFile): Figure[] {
  const rows = r.rows as Row[];
  const L = Math.max(...rows.map((x) => x.layers as number));
  const spdRows = rows.filter((x) => x.table === "spd" && x.layers === L);
  const ks = Object.keys(spdRows[0] ?? {}).filter((key) => /^spd_i\d+$/.test(key));
  const probeDepths = [...new Set(rows.filter((x) => x.table === "probe").map((x) => x.layers))];
  return [
    {
      data: spdRows.map((x) => ({
        type: "scatter",
        mode: "lines+markers",
        name: x.reference,
        x: ks.map((key) => Number(key.slice(5))),
        y: ks.map((key) => x[key]),
      })),
      layout: {
        title: `SPD(${L}-layer transformer, reference) vs number of in-context examples`,
        xaxis: { title: "examples seen i" },
        yaxis: { title: "squared prediction difference", type: "log" },
      },
    },
    {
      data: probeDepths.map((Ld) => {
        const ps = rows.filter((x) =>
          x.table === "probe" && x.layers === Ld && x.probe_token === "x"
        );
        return {
          type: "scatter",
          mode: "lines+markers",
          name: `${Ld}-layer learner`,
          x: ps.map((x) => x.probe_layer),
          y: ps.map((x) => x.r2_mean),
          error_y: { type: "data", array: ps.map((x) => x.r2_std), visible: true },
        };
      }),
      layout: {
        title: "Linear probe R² for w from the last query token x_k, per layer",
        xaxis: { title: "layer (0 = embedding)" },
        yaxis: { title: "R² (held-out prompts)" },
      },
    },
  ];
}
