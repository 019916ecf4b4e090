import assert from "node:assert/strict";
import { F, manualSeed, nn, noGrad, optim, scope, type Tensor, tensor } from "../../mod.ts";
import { gaussianMixture, loadDigits, sequenceTask, subset } from "../../data/mod.ts";
import { accuracy } from "../../lab/metrics.ts";

async function train(
  model: nn.Module & { forward(x: Tensor): Tensor },
  x: Tensor,
  y: Tensor,
  steps: number,
  lr: number,
): Promise<number[]> {
  const opt = new optim.AdamW(model.parameters(), { lr, weightDecay: 0 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const l = scope(() => {
      opt.zeroGrad();
      const loss = F.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
      return loss.detach();
    });
    if (s === 0 || s === steps - 1) losses.push((await l.item()) as number);
    l.dispose();
  }
  opt.zeroGrad();
  return losses;
}

Deno.test("training: a small CNN learns 8x8 digits", async () => {
  manualSeed(0);
  const d = subset(loadDigits(), Array.from({ length: 256 }, (_, i) => i));
  const x = tensor(d.x, { shape: [256, 1, 8, 8] }), y = tensor(d.y as Int32Array);
  const cnn = new nn.Sequential(
    new nn.Conv2d(1, 8, 3, { padding: 1 }),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Flatten(),
    new nn.Linear(8 * 4 * 4, 10),
  );
  const [first, last] = await train(cnn, x, y, 60, 0.01);
  const logits = scope(() => noGrad(() => cnn.forward(x)));
  const acc = accuracy(await logits.data(), d.y);
  assert.ok(last < first / 3, `loss ${first} -> ${last}`);
  assert.ok(acc > 0.9, `train accuracy ${acc}`);
  [x, y, logits].forEach((t) => t.dispose());
  cnn.dispose();
});

class TinyTransformer extends nn.Module {
  emb: nn.Embedding;
  layer: nn.TransformerEncoderLayer;
  head: nn.Linear;
  constructor(vocab: number, d: number, classes: number) {
    super();
    this.emb = this.registerModule("emb", new nn.Embedding(vocab, d));
    this.layer = this.registerModule(
      "layer",
      new nn.TransformerEncoderLayer(d, 2, { dimFeedforward: 64, dropout: 0, batchFirst: true }),
    );
    this.head = this.registerModule("head", new nn.Linear(d, classes));
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(this.layer.forward(this.emb.forward(x)).mean(1)); // (N, classes)
  }
}

Deno.test("training: a small transformer learns the majority-symbol task", async () => {
  manualSeed(1);
  const ds = sequenceTask("majority", { n: 256, length: 6, numSymbols: 4, seed: 3 });
  const x = tensor(ds.x as Int32Array, { shape: [...ds.xShape] });
  const y = tensor(ds.y as Int32Array, { shape: [256] });
  const model = new TinyTransformer(ds.numClasses!, 32, ds.numClasses!);
  const [first, last] = await train(model, x, y, 80, 0.01);
  assert.ok(last < first / 2, `loss ${first} -> ${last}`);
  [x, y].forEach((t) => t.dispose());
  model.dispose();
});

Deno.test("training: an MLP separates a Gaussian mixture with SGD and a schedule", async () => {
  manualSeed(2);
  const ds = gaussianMixture({ n: 200, k: 3, dim: 2, seed: 5 });
  const x = tensor(ds.x as Float32Array, { shape: [...ds.xShape] }), y = tensor(ds.y as Int32Array);
  const mlp = new nn.MLP(2, [16, 3]);
  const opt = new optim.SGD(mlp.parameters(), { lr: 0.5, momentum: 0.9 });
  const sched = new optim.StepLR(opt, { stepSize: 50, gamma: 0.5 });
  let last = Infinity;
  for (let s = 0; s < 150; s++) {
    const l = scope(() => {
      opt.zeroGrad();
      const loss = F.crossEntropy(mlp.forward(x), y);
      loss.backward();
      opt.step();
      sched.step();
      return loss.detach();
    });
    if (s === 149) last = (await l.item()) as number;
    l.dispose();
  }
  assert.ok(last < 0.3, `final loss ${last}`);
  assert.ok(Math.abs(sched.getLastLr()[0] - 0.5 * 0.5 ** 3) < 1e-12);
  [x, y].forEach((t) => t.dispose());
  mlp.dispose();
});
