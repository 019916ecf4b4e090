/**
 * P028 Measuring the Intrinsic Dimension of Objective Landscapes, in miniature: d_int90 of the
 * 8x8 digits for MLPs of widths 50..400 (the paper's MNIST widths) with one or two hidden layers
 * (D from 3.8k to 55k) trained in Fastfood subspaces (and the smallest one in a dense subspace
 * too), and of cart-pole balancing for a 4-16-2 policy trained by evolution strategies in dense
 * subspaces.
 */
import { defineBenchmark, type Row } from "./harness/define.ts";
import {
  makeProjection,
  type Projection,
  type ProjectionKind,
  searchIntrinsicDimension,
  SubspaceModule,
} from "../algorithms/intrinsic-dimension/mod.ts";
import { CARTPOLE, CartPole } from "../data/envs/cartpole.ts";
import { loadDigits } from "../data/digits.ts";
import { split } from "../data/loader.ts";
import { fit } from "../lab/train.ts";
import { meanStd } from "../lab/stats.ts";
import type { Figure } from "../lab/plot.ts";
import type { ResultFile } from "../tools/index_lib.ts";
import { cat, F, manualSeed, nn, noGrad, optim, scope, type Tensor, tensor } from "../mod.ts";
import { Generator } from "../core/random.ts";

interface Config {
  seeds: number[];
  /** Hidden layer sizes of the 64-...-10 MLPs. */
  models: number[][];
  /** Models also searched with a dense projection (the paper: dense and Fastfood agree). */
  denseModels: number[][];
  /** The d grid of the digits search. */
  grid: number[];
  steps: number;
  batch: number;
  /** Adam learning rate in the subspace and in the full space (baseline). */
  lr: number;
  lrBaseline: number;
  cartpole: null | {
    grid: number[];
    hidden: number;
    generations: number;
    /** Antithetic pairs per generation (population 2x). */
    pairs: number;
    episodes: number;
    sigma: number;
    lr: number;
    maxSteps: number;
  };
}

const CARTPOLE_FULL = {
  grid: [1, 2, 4, 8, 16, 32, 64],
  hidden: 16,
  generations: 40,
  pairs: 16,
  episodes: 4,
  sigma: 0.5,
  lr: 0.1,
  maxSteps: 200,
};

// ------------------------------------------------------------------------------- digits
interface Digits {
  xTr: Tensor;
  yTr: Tensor;
  xTe: Tensor;
  yTe: Tensor;
  nTr: number;
}

function loadData(): Digits {
  const { train, test } = split(loadDigits(), { train: 0.8, seed: 0, stratify: true });
  return {
    xTr: tensor(train.x, { shape: train.xShape }),
    yTr: tensor(train.y, { shape: train.yShape }),
    xTe: tensor(test.x, { shape: test.xShape }),
    yTe: tensor(test.y, { shape: test.yShape }),
    nTr: train.yShape[0],
  };
}

/** 64 -> hidden... -> 10 with ReLUs. */
function mlp(hidden: number[]): nn.Sequential {
  const net = new nn.Sequential();
  [64, ...hidden].forEach((n, i) => {
    net.append(new nn.Linear(n, hidden[i] ?? 10));
    if (i < hidden.length) net.append(new nn.ReLU());
  });
  return net;
}

const numParams = (hidden: number[]) =>
  [64, ...hidden].reduce((D, n, i) => D + (n + 1) * (hidden[i] ?? 10), 0);

/** Trains an MLP of width w (d = 0: all D parameters; else a d-dim subspace); test accuracy. */
async function trainDigits(
  data: Digits,
  cfg: Config,
  hidden: number[],
  d: number,
  kind: ProjectionKind,
  seed: number,
): Promise<number> {
  manualSeed(seed); // θ_0 and P depend on the seed only, so every d shares θ_0
  const net = mlp(hidden);
  const model = d === 0 ? net : new SubspaceModule(net, { d, projection: kind });
  const params = d === 0 ? net.parameters() : [(model as SubspaceModule).thetaD];
  const optimizer = new optim.Adam(params, {
    lr: d === 0 ? cfg.lrBaseline : cfg.lr,
    betas: [0.9, 0.99], // the authors' default
  });
  const gen = new Generator(seed + 1000);
  await fit({
    steps: cfg.steps,
    optimizer,
    logEvery: cfg.steps,
    loss: () => {
      const idx = tensor(Int32Array.from({ length: cfg.batch }, () => gen.int(0, data.nTr)));
      return F.crossEntropy(
        model.forward(data.xTr.indexSelect(0, idx)),
        data.yTr.indexSelect(0, idx),
      );
    },
  });
  const acc = noGrad(() =>
    scope(() => model.forward(data.xTe).argmax(1).eq(data.yTe).float().mean().detach())
  );
  const v = (await acc.item()) as number;
  acc.dispose();
  model.dispose();
  return v;
}

// ----------------------------------------------------------------------------- cart-pole
export type CartCfg = NonNullable<Config["cartpole"]>;

/** P = I: the full-space baseline of evolution strategies. */
const identity = (D: number): Projection => ({ D, d: D, project: (t) => t, dispose() {} });

/** Greedy actions of 4-h-2 tanh policies θ [pop, D] (nn.Linear layout) for obs [pop * E, 4]. */
function policyActions(theta: Float32Array, D: number, h: number, obs: Float32Array, E: number) {
  const n = obs.length / 4, out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const t = Math.floor(i / E) * D, o = 4 * i;
    const W2 = t + 5 * h, b2 = W2 + 2 * h; // after W1 [h, 4] and b1 [h]
    let l0 = theta[b2], l1 = theta[b2 + 1];
    for (let j = 0; j < h; j++) {
      let z = theta[t + 4 * h + j];
      for (let k = 0; k < 4; k++) z += theta[t + 4 * j + k] * obs[o + k];
      const a = Math.tanh(z);
      l0 += theta[W2 + j] * a;
      l1 += theta[W2 + h + j] * a;
    }
    out[i] = l1 > l0 ? 1 : 0;
  }
  return out;
}

/** Positions scaled by their termination thresholds (a fixed observation normalisation). */
const OBS_SCALE = [1 / CARTPOLE.xThreshold, 1, 1 / CARTPOLE.thetaThreshold, 1];

/** Mean return of each of the pop policies over E common episodes. */
function rollout(theta: Float32Array, pop: number, D: number, c: CartCfg, E: number, seed: number) {
  const env = new CartPole({ n: pop * E, maxSteps: c.maxSteps, seed });
  for (let i = E; i < pop * E; i++) {
    env.state.set(env.state.subarray(4 * (i % E), 4 * (i % E) + 4), 4 * i); // same starts
  }
  let obs = env.observation();
  while (!env.allDone) {
    for (let i = 0; i < obs.length; i++) obs[i] *= OBS_SCALE[i % 4];
    obs = env.step(policyActions(theta, D, c.hidden, obs, E)).obs;
  }
  const r = env.returns();
  return Array.from(
    { length: pop },
    (_, i) => r.slice(i * E, (i + 1) * E).reduce((a, b) => a + b) / E,
  );
}

/** θ_0 + P θ_d for rows of θ_d ([pop, d]) as host values [pop, D]. */
async function materialise(P: Projection, theta0: Tensor, thetaD: Float32Array, pop: number) {
  const t = scope(() => P.project(tensor(thetaD, { shape: [pop, P.d] })).add(theta0).detach());
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

/** Centred ranks in [-0.5, 0.5]; tied values share their average rank (no spurious signal). */
function centredRanks(R: number[]): Float32Array {
  const order = [...R.keys()].sort((a, b) => R[a] - R[b]);
  const u = new Float32Array(R.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && R[order[j + 1]] === R[order[i]]) j++;
    for (let k = i; k <= j; k++) u[order[k]] = (i + j) / 2 / (R.length - 1) - 0.5;
    i = j + 1;
  }
  return u;
}

/**
 * Evolution strategies (Salimans et al. 2017: antithetic pairs, centred ranks, Adam) on θ_d;
 * returns the final policy's mean return over 20 held-out episodes.
 */
export async function esCartpole(c: CartCfg, d: number | "full", seed: number): Promise<number> {
  manualSeed(seed);
  const net = new nn.Sequential(
    new nn.Linear(4, c.hidden),
    new nn.Tanh(),
    new nn.Linear(c.hidden, 2),
  );
  const theta0 = cat(net.parameters().map((p) => p.reshape([-1]))); // (D,)
  const D = theta0.numel;
  const P = d === "full" ? identity(D) : makeProjection("dense", D, d);
  const dd = P.d, pop = 2 * c.pairs, gen = new Generator(seed + 77);
  // The host policy must match the module it stands for.
  const probe = Float32Array.from({ length: 8 }, () => gen.normal());
  const want = await noGrad(() => net.forward(tensor(probe, { shape: [2, 4] })).argmax(1)).data();
  const got = policyActions((await theta0.data()) as Float32Array, D, c.hidden, probe, 2);
  if (want[0] !== got[0] || want[1] !== got[1]) throw new Error("cartpole: host policy mismatch");
  const x = new Float32Array(dd), m = new Float32Array(dd), v = new Float32Array(dd);
  for (let g = 1; g <= c.generations; g++) {
    const eps = Float32Array.from({ length: c.pairs * dd }, () => gen.normal());
    const members = new Float32Array(pop * dd);
    for (let i = 0; i < pop; i++) {
      const s = i < c.pairs ? 1 : -1, e = (i % c.pairs) * dd;
      for (let k = 0; k < dd; k++) members[i * dd + k] = x[k] + s * c.sigma * eps[e + k];
    }
    const R = rollout(
      await materialise(P, theta0, members, pop),
      pop,
      D,
      c,
      c.episodes,
      seed * 1e4 + g,
    );
    const u = centredRanks(R);
    for (let k = 0; k < dd; k++) {
      let grad = 0;
      for (let j = 0; j < c.pairs; j++) grad += (u[j] - u[j + c.pairs]) * eps[j * dd + k];
      grad /= pop * c.sigma;
      m[k] = 0.9 * m[k] + 0.1 * grad;
      v[k] = 0.999 * v[k] + 0.001 * grad * grad;
      const mh = m[k] / (1 - 0.9 ** g), vh = v[k] / (1 - 0.999 ** g);
      x[k] += (c.lr * mh) / (Math.sqrt(vh) + 1e-8); // gradient ascent on the return
    }
  }
  const final = rollout(await materialise(P, theta0, x, 1), 1, D, c, 20, 999_999 + seed)[0];
  P.dispose();
  theta0.dispose();
  net.dispose();
  return final;
}

// --------------------------------------------------------------------------------- run
interface Search {
  baseline: number[];
  dInt: number[];
  dIntInterp: number[];
  points: Map<number, number[]>;
}

function summaryRow(task: string, model: string, projection: string, D: number, s: Search): Row {
  const b = meanStd(s.baseline);
  const ms = (v: number[], k: string): Row => {
    if (!v.length) return { [k]: null, [`${k}Std`]: null };
    const m = meanStd(v);
    return { [k]: +m.mean.toFixed(1), [`${k}Std`]: +m.std.toFixed(1) };
  };
  const interp = s.dIntInterp.length ? meanStd(s.dIntInterp).mean : NaN;
  return {
    kind: "summary",
    task,
    model,
    projection,
    D,
    baseline: +b.mean.toFixed(4),
    baselineStd: +b.std.toFixed(4),
    ...ms(s.dInt, "dInt90"),
    ...ms(s.dIntInterp, "dInt90Interp"),
    compression: Number.isNaN(interp) ? null : +(D / interp).toFixed(1),
    found: `${s.dInt.length}/${s.baseline.length}`,
  };
}

function sweepRows(task: string, model: string, projection: string, D: number, s: Search): Row[] {
  return [...s.points].sort((a, b) => a[0] - b[0]).map(([d, perf]) => {
    const m = meanStd(perf);
    return {
      kind: "sweep",
      task,
      model,
      projection,
      D,
      d,
      performance: +m.mean.toFixed(4),
      performanceStd: +m.std.toFixed(4),
      n: perf.length,
    };
  });
}

async function search(
  seeds: number[],
  grid: number[],
  baselineOf: (seed: number) => Promise<number>,
  perfOf: (d: number, seed: number) => Promise<number>,
): Promise<Search> {
  const s: Search = { baseline: [], dInt: [], dIntInterp: [], points: new Map() };
  for (const seed of seeds) {
    const base = await baselineOf(seed);
    s.baseline.push(base);
    const r = await searchIntrinsicDimension(grid, (d) => perfOf(d, seed), base);
    for (const p of r.points) s.points.set(p.d, [...(s.points.get(p.d) ?? []), p.performance]);
    if (r.dInt !== null) {
      s.dInt.push(r.dInt);
      s.dIntInterp.push(r.dIntInterpolated!);
    }
  }
  return s;
}

export default defineBenchmark<Config>({
  slug: "intrinsic-dimension",
  table: "Table 1 / Fig. 4: d_int90 across MLP sizes on digits, and for cart-pole",
  profiles: {
    smoke: {
      seeds: [0],
      models: [[50]],
      denseModels: [],
      grid: [64, 256],
      steps: 30,
      batch: 64,
      lr: 0.1,
      lrBaseline: 0.01,
      cartpole: { ...CARTPOLE_FULL, grid: [2], generations: 3, pairs: 4, episodes: 2 },
    },
    quick: {
      seeds: [0],
      models: [[50], [400]],
      denseModels: [],
      grid: [16, 32, 64, 128, 256, 512, 1024],
      steps: 200,
      batch: 128,
      lr: 0.1,
      lrBaseline: 0.01,
      cartpole: { ...CARTPOLE_FULL, generations: 20 },
    },
    full: {
      seeds: [0, 1, 2],
      models: [[50], [100], [200], [400], [200, 200]],
      denseModels: [[50]],
      grid: [16, 32, 64, 128, 256, 512, 1024],
      steps: 400,
      batch: 128,
      lr: 0.1,
      lrBaseline: 0.01,
      cartpole: CARTPOLE_FULL,
    },
  },
  reported: {
    source: "Table 1 (Li et al. 2018)",
    rows: [
      { task: "MNIST", model: "FC 784-200-200-10", D: 199210, dInt90: 750, compression: 260 },
      { task: "MNIST", model: "LeNet", D: 44426, dInt90: 290, compression: 150 },
      { task: "Inverted pendulum", model: "FC policy", D: 562, dInt90: 4, compression: 140 },
    ],
    note: "The paper also reports that d_int90 of MNIST FC networks varies little across " +
      "widths 50-400 and depths 1-5 (Fig. 4) and that dense, sparse and Fastfood projections " +
      "give the same d_int90.",
  },
  async run(ctx, cfg) {
    const data = loadData();
    const jobs = cfg.models.length + cfg.denseModels.length + (cfg.cartpole ? 1 : 0);
    let done = 0;
    const rows: Row[] = [], sweeps: Row[] = [];
    const digits = async (hidden: number[], kind: ProjectionKind) => {
      const t0 = performance.now();
      const model = `MLP ${[64, ...hidden, 10].join("-")}`, D = numParams(hidden);
      const s = await search(
        ctx.seeds,
        cfg.grid,
        (seed) => trainDigits(data, cfg, hidden, 0, kind, seed),
        (d, seed) => {
          ctx.progress(done / jobs, `digits ${model} ${kind} d=${d} seed ${seed}`);
          return trainDigits(data, cfg, hidden, d, kind, seed);
        },
      );
      rows.push({
        ...summaryRow("digits", model, kind, D, s),
        seconds: +((performance.now() - t0) / 1e3).toFixed(1),
      });
      sweeps.push(...sweepRows("digits", model, kind, D, s));
      ctx.progress(++done / jobs, `digits ${model} ${kind} done`);
    };
    for (const h of cfg.models) await digits(h, "fastfood");
    for (const h of cfg.denseModels) await digits(h, "dense");
    if (cfg.cartpole) {
      const c = cfg.cartpole, t0 = performance.now();
      const D = 4 * c.hidden + c.hidden + 2 * c.hidden + 2;
      const s = await search(
        ctx.seeds,
        c.grid,
        (seed) => esCartpole(c, "full", seed),
        (d, seed) => {
          ctx.progress(done / jobs, `cart-pole d=${d} seed ${seed}`);
          return esCartpole(c, d, seed);
        },
      );
      const model = `policy 4-${c.hidden}-2`;
      rows.push({
        ...summaryRow("cartpole", model, "dense", D, s),
        seconds: +((performance.now() - t0) / 1e3).toFixed(1),
      });
      sweeps.push(...sweepRows("cartpole", model, "dense", D, s));
      ctx.progress(++done / jobs, "cart-pole done");
    }
    for (const t of Object.values(data)) if (typeof t === "object") t.dispose();
    return [...rows, ...sweeps];
  },
  check(rows) {
    const sum = rows.filter((r) => r.kind === "summary");
    const mlps = sum.filter((r) => r.task === "digits" && r.projection === "fastfood");
    const cart = sum.find((r) => r.task === "cartpole");
    const complete = sum.every((r) => {
      const [a, b] = String(r.found).split("/");
      return a === b;
    });
    if (!mlps.length || !complete) {
      return { pass: false, summary: "d_int90 was not reached within the d grid for every seed" };
    }
    const dInt = mlps.map((r) => r.dInt90Interp as number), Ds = mlps.map((r) => r.D as number);
    const spread = Math.max(...dInt) / Math.min(...dInt), span = Math.max(...Ds) / Math.min(...Ds);
    const minD = Math.min(...Ds);
    const small = Math.max(...dInt) <= minD / 10;
    const cartOk = !cart || (cart.dInt90Interp as number) < Math.min(...dInt);
    const pass = spread < 2 && span >= 8 && small && cartOk;
    const cartTxt = cart
      ? `; cart-pole d_int90 ${cart.dInt90Interp} vs digits' min ${Math.min(...dInt)}`
      : "";
    return {
      pass,
      summary:
        `digits d_int90 ${dInt.join(", ")} across D ${Ds.join(", ")} (${span.toFixed(1)}x): ` +
        `spread ${spread.toFixed(2)}x (< 2 needed), max ${Math.max(...dInt)} vs D_min/10 = ` +
        `${(minD / 10).toFixed(0)}${cartTxt}.`,
    };
  },
});

/** Performance against d for every model (the paper's Fig. 4 curves) and the mean 90% line. */
export function figures(r: ResultFile): Figure[] {
  const sweep = r.rows.filter((x) => x.kind === "sweep");
  const out: Figure[] = [];
  for (const task of ["digits", "cartpole"]) {
    const rows = sweep.filter((x) => x.task === task);
    if (!rows.length) continue;
    const keys = [...new Set(rows.map((x) => `${x.model} (${x.projection})`))];
    const bases = r.rows.filter((x) => x.kind === "summary" && x.task === task);
    const line = 0.9 * bases.reduce((s, x) => s + (x.baseline as number), 0) / bases.length;
    const ds = rows.map((x) => x.d as number);
    const threshold = {
      type: "scatter",
      mode: "lines",
      name: "90% of baseline (mean)",
      x: [Math.min(...ds), Math.max(...ds)],
      y: [line, line],
      line: { dash: "dot", color: "gray" },
    };
    out.push({
      data: [
        threshold,
        ...keys.map((k) => {
          const rs = rows.filter((x) => `${x.model} (${x.projection})` === k);
          return {
            type: "scatter",
            mode: "lines+markers",
            name: k,
            x: rs.map((x) => x.d),
            y: rs.map((x) => x.performance),
            error_y: { type: "data", array: rs.map((x) => x.performanceStd) },
          };
        }),
      ],
      layout: {
        title: { text: `P028 ${task}: performance in a random d-dim subspace` },
        xaxis: { title: { text: "subspace dimension d" }, type: "log" },
        yaxis: { title: { text: task === "digits" ? "test accuracy" : "mean return" } },
      },
    });
  }
  return out;
}
