/**
 * How each backbone is pretrained: data, model, steps, optimiser, seed. Training is
 * deterministic (seeded data, init and batches), so `deno task pretrain` reproduces the
 * committed weights up to floating-point summation order.
 */
import { noGrad } from "../../core/autograd.ts";
import { scope } from "../../core/memory.ts";
import { manualSeed } from "../../core/random.ts";
import type { Module } from "../../core/nn/mod.ts";
import { crossEntropy } from "../../core/functional.ts";
import { tensor } from "../../core/ops/creation.ts";
import { AdamW, CosineAnnealingLR } from "../../core/optim/mod.ts";
import type { Tensor } from "../../core/tensor.ts";
import { fit } from "../../lab/train.ts";
import { accuracy } from "../../lab/metrics.ts";
import { loadDigits } from "../digits.ts";
import type { Dataset } from "../dataset.ts";
import { batches, split } from "../loader.ts";
import { SHAPE_TASKS, shapes } from "../synthetic/shapes.ts";
import { mixture, sequenceVocab } from "../synthetic/sequences.ts";
import { CNNDigits, MLPDigits, SeqTransformer, SHAPES_HEADS, TinyViT } from "./models.ts";

export type BackboneName = "mlp-digits" | "cnn-digits" | "vit-shapes" | "transformer-seq";
export const BACKBONE_NAMES: BackboneName[] = [
  "mlp-digits",
  "cnn-digits",
  "vit-shapes",
  "transformer-seq",
];

export interface TrainedBackbone {
  model: Module;
  /** Held-out metrics after training. */
  metrics: Record<string, number>;
  data: Record<string, unknown>;
  steps: number;
  batchSize: number;
  lr: number;
}

export interface Recipe {
  description: string;
  build(): Module;
  /** Trains a fresh model; `scale` < 1 shortens training (tests). */
  train(
    seed: number,
    scale: number,
    onProgress?: (f: number, m: string) => void,
  ): Promise<TrainedBackbone>;
}

/** An endless stream of shuffled batches (a new epoch order each pass). */
function batchStream(ds: Dataset, batchSize: number, seed: number) {
  let epoch = 0;
  let it = batches(ds, { batchSize, shuffle: true, seed, dropLast: true });
  return () => {
    let b = it.next();
    if (b.done) {
      it = batches(ds, { batchSize, shuffle: true, seed: seed + ++epoch, dropLast: true });
      b = it.next();
    }
    return b.value!;
  };
}

/** Accuracy of `logits(x)` over a dataset, in chunks, with no graph. */
async function evalAccuracy(
  logitsOf: (x: Tensor) => Tensor,
  ds: Dataset,
  label = (y: Int32Array) => y,
): Promise<number> {
  const x = tensor(ds.x, { shape: [...ds.xShape] });
  const logits = scope(() => noGrad(() => logitsOf(x)));
  const acc = accuracy(await logits.data(), label(ds.y as Int32Array));
  x.dispose();
  logits.dispose();
  return acc;
}

async function trainClassifier(
  model: Module & { forward(x: Tensor): Tensor },
  train: Dataset,
  test: Dataset,
  o: {
    steps: number;
    batchSize: number;
    lr: number;
    seed: number;
    onProgress?: (f: number, m: string) => void;
  },
): Promise<number> {
  const next = batchStream(train, o.batchSize, o.seed);
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: 0.01 });
  const sched = new CosineAnnealingLR(opt, { tMax: o.steps });
  model.train();
  await fit({
    steps: o.steps,
    optimizer: opt,
    loss: () => {
      const b = next();
      return crossEntropy(
        model.forward(tensor(b.x, { shape: b.xShape })),
        tensor(b.y, { shape: b.yShape }),
      );
    },
    afterStep: () => sched.step(),
    onProgress: o.onProgress,
  });
  model.eval();
  opt.zeroGrad();
  return evalAccuracy((x) => model.forward(x), test);
}

function digitsSplits() {
  const d = loadDigits();
  const { train, test } = split(d, { train: 0.8, test: 0.2, seed: 0, stratify: true });
  return { train, test };
}

/** A digits classifier trained on the 80/20 stratified split with AdamW (batch 64, lr 3e-3). */
function digitsRecipe(
  description: string,
  build: () => Module & { forward(x: Tensor): Tensor },
  fullSteps: number,
): Recipe {
  return {
    description,
    build,
    async train(seed, scale, onProgress) {
      manualSeed(seed);
      const { train, test } = digitsSplits();
      const model = build();
      const steps = Math.max(1, Math.round(fullSteps * scale)), batchSize = 64, lr = 3e-3;
      const acc = await trainClassifier(model, train, test, {
        steps,
        batchSize,
        lr,
        seed,
        onProgress,
      });
      const data = { dataset: "digits", split: "80/20 stratified, seed 0" };
      return { model, metrics: { testAccuracy: acc }, data, steps, batchSize, lr };
    },
  };
}

export const RECIPES: Record<BackboneName, Recipe> = {
  "mlp-digits": digitsRecipe(
    "MLP 64-128-128-10 on the 8x8 digits (80/20 stratified split, seed 0)",
    () => new MLPDigits(),
    1500,
  ),
  "cnn-digits": digitsRecipe(
    "CNN (conv 16, conv 32, max-pool, 64 hidden) on the 8x8 digits (80/20 stratified split, seed 0)",
    () => new CNNDigits(),
    1200,
  ),
  "vit-shapes": {
    description:
      "Tiny ViT (4x4 patches, dim 64, 2 pre-norm layers, 4 heads) on shapes, one head per task",
    build: () => new TinyViT(),
    async train(seed, scale, onProgress) {
      manualSeed(seed);
      const n = 4096;
      const train = shapes({ n, seed: 1000 + seed }), test = shapes({ n: 1024, seed: 2000 + seed });
      const labels = (ds: Dataset, t: string) => (ds.meta!.labels as Record<string, Int32Array>)[t];
      const model = new TinyViT();
      const steps = Math.max(1, Math.round(1000 * scale)), batchSize = 64, lr = 2e-3;
      const opt = new AdamW(model.parameters(), { lr, weightDecay: 0.05 });
      const sched = new CosineAnnealingLR(opt, { tMax: steps });
      const next = batchStream(train, batchSize, seed);
      const trainLabels = train.meta!.labels as Record<string, Int32Array>;
      await fit({
        steps,
        optimizer: opt,
        loss: () => {
          const b = next();
          const logits = model.forwardAll(tensor(b.x, { shape: b.xShape }));
          const rows: number[] = Array.from(b.indices as Int32Array);
          return SHAPE_TASKS.map((t, i) =>
            crossEntropy(logits[i], tensor(rows.map((r) => trainLabels[t][r])))
          )
            .reduce((a, l) => a.add(l));
        },
        afterStep: () => sched.step(),
        onProgress,
      });
      model.eval();
      opt.zeroGrad();
      const metrics: Record<string, number> = {};
      const x = tensor(test.x, { shape: [...test.xShape] });
      const all = scope(() => noGrad(() => model.forwardAll(x)));
      for (const [i, t] of SHAPE_TASKS.entries()) {
        metrics[`${t}Accuracy`] = accuracy(await all[i].data(), labels(test, t));
      }
      [x, ...all].forEach((t) => t.dispose());
      return {
        model,
        metrics,
        data: { dataset: "shapes", n, seed: 1000 + seed, heads: SHAPES_HEADS },
        steps,
        batchSize,
        lr,
      };
    },
  },
  "transformer-seq": {
    description:
      "Transformer encoder (dim 128, 4 pre-norm layers, 4 heads) on the mixture of sequence tasks",
    build: () => buildSeq(),
    async train(seed, scale, onProgress) {
      manualSeed(seed);
      const model = buildSeq();
      const steps = Math.max(1, Math.round(800 * scale)), batchSize = 64, lr = 1e-3;
      const opt = new AdamW(model.parameters(), { lr, weightDecay: 0.01 });
      const sched = new CosineAnnealingLR(opt, { tMax: steps });
      const lossOf = (b: { x: Int32Array; xShape: number[]; y: Int32Array; yShape: number[] }) => {
        const logits = model.forward(tensor(b.x, { shape: b.xShape })); // (N, T, V)
        const w = b.yShape[1];
        return crossEntropy(
          logits.narrow(1, 0, w).reshape([-1, model.vocab]),
          tensor(b.y, { shape: [b.y.length] }),
          { ignoreIndex: 0 },
        );
      };
      await fit({
        steps,
        optimizer: opt,
        loss: (s) => {
          const ds = mixture({ n: batchSize, seed: 10_000 * (seed + 1) + s, ...SEQ_DATA });
          return lossOf(ds as never);
        },
        afterStep: () => sched.step(),
        onProgress,
      });
      model.eval();
      opt.zeroGrad();
      const test = mixture({ n: 1024, seed: 999_999, ...SEQ_DATA });
      const logits = scope(() =>
        noGrad(() => model.forward(tensor(test.x, { shape: [...test.xShape] })))
      );
      const w = test.yShape[1], v = model.vocab, t = test.xShape[1];
      const all = await logits.data();
      logits.dispose();
      let hit = 0, total = 0;
      for (let i = 0; i < test.yShape[0]; i++) {
        for (let j = 0; j < w; j++) {
          const y = test.y[i * w + j];
          if (y === 0) continue;
          let best = 0;
          const base = (i * t + j) * v;
          for (let c = 1; c < v; c++) if (all[base + c] > all[base + best]) best = c;
          total++;
          if (best === y) hit++;
        }
      }
      return {
        model,
        metrics: { tokenAccuracy: hit / total },
        data: { dataset: "seq-mixture", ...SEQ_DATA },
        steps,
        batchSize,
        lr,
      };
    },
  },
};

/** The sequence mixture the transformer is pretrained on. */
export const SEQ_DATA = { length: 8, minLength: 4, numSymbols: 16 };

function buildSeq(): SeqTransformer {
  const vocab = sequenceVocab(SEQ_DATA.numSymbols).vocabSize;
  return new SeqTransformer(vocab, 2 * SEQ_DATA.length + 3);
}
