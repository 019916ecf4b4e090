/**
 * P217 CutMix in miniature: a small CNN on a 500-image split of the 8x8 digits, trained with
 * the baseline augmentation (random ±1 pixel shifts) alone or plus Cutout, Mixup or CutMix;
 * clean test error and error under a random 4x4 occlusion (a quarter of the image), mean ± std
 * over seeds: the paper's classification tables (top-1 error on ImageNet and CIFAR) and its
 * robustness-to-occlusion study in one small table.
 */
import {
  cutmix,
  cutout,
  type MixedBatch,
  mixedCrossEntropy,
  mixup,
} from "../algorithms/cutmix/mod.ts";
import { defineBenchmark, type Row } from "./harness/define.ts";
import { loadDigits } from "../data/digits.ts";
import { epochBatchIndices, split } from "../data/loader.ts";
import { fit } from "../lab/train.ts";
import { meanStd } from "../lab/stats.ts";
import type { Figure } from "../lab/plot.ts";
import type { ResultFile } from "../tools/index_lib.ts";
import { F, Generator, manualSeed, nn, noGrad, optim, scope, type Tensor, tensor } from "../mod.ts";

const METHODS = ["baseline", "cutout", "mixup", "cutmix"] as const;
type Method = typeof METHODS[number];

interface Config {
  seeds: number[];
  /** Training images (a stratified split of the 1,797 digits). */
  nTrain: number;
  /** Test images (the rest of the split, at most 1,797 - nTrain). */
  nTest: number;
  epochs: number;
  batchSize: number;
  /** Channels of the two 3x3 conv layers. */
  channels: [number, number];
}

/** conv3x3 - ReLU - conv3x3 - ReLU - maxpool 2 - linear: a CNN small enough for 2 CPU cores. */
class SmallCNN extends nn.Module {
  conv1: nn.Conv2d;
  conv2: nn.Conv2d;
  fc: nn.Linear;
  constructor([c1, c2]: [number, number]) {
    super();
    this.conv1 = this.registerModule("conv1", new nn.Conv2d(1, c1, 3, { padding: 1 }));
    this.conv2 = this.registerModule("conv2", new nn.Conv2d(c1, c2, 3, { padding: 1 }));
    this.fc = this.registerModule("fc", new nn.Linear(c2 * 16, 10));
  }
  forward(x: Tensor): Tensor {
    const h = this.conv2.forward(this.conv1.forward(x).relu()).relu();
    return this.fc.forward(F.maxPool2d(h, 2).flatten(1)); // (N, c2 * 4 * 4) -> (N, 10)
  }
}

/** Rows `idx` of 8x8 images, each shifted by a random (dy, dx) in {-1, 0, 1}^2, zero-filled. */
function shiftedBatch(x: Float32Array, idx: ArrayLike<number>, g: Generator): Float32Array {
  const out = new Float32Array(idx.length * 64);
  for (let b = 0; b < idx.length; b++) {
    const dy = g.int(-1, 2), dx = g.int(-1, 2), src = idx[b] * 64;
    for (let r = 0; r < 8; r++) {
      const sr = r - dy;
      if (sr < 0 || sr > 7) continue;
      for (let c = 0; c < 8; c++) {
        const sc = c - dx;
        if (sc >= 0 && sc <= 7) out[b * 64 + r * 8 + c] = x[src + sr * 8 + sc];
      }
    }
  }
  return out;
}

/** Test error (%) of `model` on x [n, 1, 8, 8], in chunks, without gradients. */
async function testError(model: SmallCNN, x: Tensor, y: Int32Array): Promise<number> {
  const pred = noGrad(() => scope(() => model.forward(x).argmax(1)));
  const p = await pred.data();
  pred.dispose();
  let wrong = 0;
  for (let i = 0; i < y.length; i++) if (p[i] !== y[i]) wrong++;
  return (100 * wrong) / y.length;
}

async function trainOne(
  method: Method,
  seed: number,
  c: Config,
  onProgress: (f: number) => void,
): Promise<{ clean: number; occluded: number; seconds: number; params: number }> {
  const digits = loadDigits();
  const { train, test } = split(digits, {
    train: c.nTrain / 1797,
    test: c.nTest / 1797,
    stratify: true,
    seed,
  });
  const xTr = train.x as Float32Array, yTr = train.y as Int32Array;
  const n = yTr.length, stepsPerEpoch = Math.floor(n / c.batchSize);
  const steps = c.epochs * stepsPerEpoch;
  manualSeed(seed); // model init and every augmentation draw
  const model = new SmallCNN(c.channels);
  const opt = new optim.SGD(model.parameters(), {
    lr: 0.05,
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
  });
  const sched = new optim.CosineAnnealingLR(opt, { tMax: steps });
  const g = new Generator(1000 + seed); // batch order and shifts: the same for every method
  const batchIndices = epochBatchIndices(n, c.batchSize, g);
  const t0 = performance.now();
  await fit({
    steps,
    optimizer: opt,
    afterStep: () => sched.step(),
    logEvery: 100,
    onProgress: (f) => onProgress(f),
    loss: (step) => {
      const idx = batchIndices(step);
      const x = tensor(shiftedBatch(xTr, idx, g), { shape: [idx.length, 1, 8, 8] });
      const y = tensor(Int32Array.from(idx, (i) => yTr[i]));
      let b: MixedBatch;
      if (method === "cutmix") b = cutmix(x, y, { alpha: 1, prob: 0.5 });
      else if (method === "mixup") b = mixup(x, y, { alpha: 1 });
      else {
        const xa = method === "cutout" ? cutout(x, { size: 4 }) : x;
        b = { x: xa, yA: y, yB: y, lam: 1, index: new Int32Array() };
      }
      return mixedCrossEntropy(model.forward(b.x), b);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const nTe = (test.y as Int32Array).length;
  const xTe = tensor(test.x as Float32Array, { shape: [nTe, 1, 8, 8] });
  const clean = await testError(model, xTe, test.y as Int32Array);
  // The same occlusions for every method: a 4x4 zero square per image from a fixed generator.
  const xOcc = noGrad(() => cutout(xTe, { size: 4, generator: new Generator(5000 + seed) }));
  const occluded = await testError(model, xOcc, test.y as Int32Array);
  const params = model.parameters().reduce((s, p) => s + p.numel, 0);
  xTe.dispose(), xOcc.dispose(), model.dispose();
  return { clean, occluded, seconds, params };
}

export default defineBenchmark<Config>({
  slug: "cutmix",
  table: "Top-1 test error (%) of a small CNN on 500 8x8 digits: baseline, Cutout, Mixup, CutMix",
  profiles: {
    smoke: { seeds: [0], nTrain: 100, nTest: 100, epochs: 2, batchSize: 50, channels: [8, 8] },
    quick: {
      seeds: [0, 1],
      nTrain: 500,
      nTest: 500,
      epochs: 12,
      batchSize: 50,
      channels: [16, 16],
    },
    full: {
      seeds: [0, 1, 2],
      nTrain: 500,
      nTest: 1297,
      epochs: 50,
      batchSize: 50,
      channels: [16, 16],
    },
  },
  reported: {
    source: "Table 1 (ImageNet, ResNet-50) and the CIFAR-100 table (PyramidNet-200), top-1 error %",
    rows: [
      { dataset: "ImageNet", method: "baseline", top1_err: 23.68 },
      { dataset: "ImageNet", method: "cutout", top1_err: 22.93 },
      { dataset: "ImageNet", method: "mixup", top1_err: 22.58 },
      { dataset: "ImageNet", method: "cutmix", top1_err: 21.40 },
      { dataset: "CIFAR-100", method: "baseline", top1_err: 16.45 },
      { dataset: "CIFAR-100", method: "cutout", top1_err: 16.53 },
      { dataset: "CIFAR-100", method: "mixup (α=1)", top1_err: 15.63 },
      { dataset: "CIFAR-100", method: "cutmix", top1_err: 14.47 },
    ],
    note: "Transcribed from the paper's tables (the stored seed pages hold only the abstract). " +
      "Occlusion robustness is shown as curves (Fig. 7), without a table.",
  },
  async run(ctx, c) {
    const rows: Row[] = [];
    const total = METHODS.length * c.seeds.length;
    let done = 0;
    for (const method of METHODS) {
      const clean: number[] = [], occ: number[] = [], secs: number[] = [];
      let params = 0;
      for (const seed of c.seeds) {
        const r = await trainOne(
          method,
          seed,
          c,
          (f) => ctx.progress((done + f) / total, `${method} seed ${seed}`),
        );
        clean.push(r.clean), occ.push(r.occluded), secs.push(r.seconds), params = r.params;
        done++;
        ctx.log(
          `${method} seed ${seed}: clean ${r.clean.toFixed(2)}%, occluded ${
            r.occluded.toFixed(2)
          }% (${r.seconds.toFixed(1)} s)`,
        );
      }
      const a = meanStd(clean), b = meanStd(occ);
      rows.push({
        method,
        params,
        clean_err: +a.mean.toFixed(2),
        clean_err_std: +a.std.toFixed(2),
        occluded_err: +b.mean.toFixed(2),
        occluded_err_std: +b.std.toFixed(2),
        seeds: c.seeds.length,
        train_s: +(secs.reduce((s, v) => s + v, 0) / secs.length).toFixed(1),
      });
    }
    return rows;
  },
  check(rows) {
    const get = (m: Method) => rows.find((r) => r.method === m)!;
    const [base, co, mu, cm] = METHODS.map(get);
    const e = (r: Row, k: string) => r[k] as number;
    const cleanOk = ["baseline", "cutout", "mixup"].every((m) =>
      e(cm, "clean_err") < e(get(m as Method), "clean_err")
    );
    const occOk = e(cm, "occluded_err") < e(base, "occluded_err");
    const f = (r: Row, k: string) => `${r.method} ${e(r, k).toFixed(2)}`;
    return {
      pass: cleanOk && occOk,
      summary: `clean error: ${[cm, base, co, mu].map((r) => f(r, "clean_err")).join(", ")}; ` +
        `occluded: ${[cm, base].map((r) => f(r, "occluded_err")).join(", ")} ` +
        `(CutMix must beat the baseline, Cutout and Mixup clean, and the baseline occluded)`,
    };
  },
});

/** Clean and occluded error by method, with the std over seeds as error bars. */
export function figures(r: ResultFile): Figure[] {
  const bar = (k: string, name: string) => ({
    type: "bar",
    name,
    x: r.rows.map((row) => row.method),
    y: r.rows.map((row) => row[k]),
    error_y: { type: "data", array: r.rows.map((row) => row[`${k}_std`]) },
  });
  return [{
    data: [bar("clean_err", "clean"), bar("occluded_err", "4x4 occlusion")],
    layout: {
      title: { text: `${r.id} CutMix: test error by augmentation (mean ± std over seeds)` },
      barmode: "group",
      yaxis: { title: { text: "top-1 error (%)" } },
    },
  }];
}
