/**
 * nn.init and the layers' default initialisations: bounds, means and variances of large
 * samples against PyTorch's formulas. Variances must agree within 2% (4-8 standard errors
 * at these sample sizes, with fixed seeds), so a wrong gain or fan (>= 10% off) fails.
 */
import assert from "node:assert/strict";
import { manualSeed, memory, scope, type Tensor, zeros } from "../../mod.ts";
import * as nn from "../../core/nn/mod.ts";
import { moments } from "./_helpers.ts";

const { init } = nn;

/** Asserts |x - want| <= relTol * |want| (+ absTol). */
function near(x: number, want: number, what: string, relTol = 0.02, absTol = 0): void {
  assert.ok(
    Math.abs(x - want) <= relTol * Math.abs(want) + absTol,
    `${what}: got ${x}, expected ${want} (tolerance ${relTol * 100}%)`,
  );
}

async function checkUniform(t: Tensor, bound: number, what: string): Promise<void> {
  const d = await t.data();
  let lo = Infinity, hi = -Infinity;
  for (const v of d) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  assert.ok(lo >= -bound && hi <= bound, `${what}: samples in [${lo}, ${hi}] exceed ±${bound}`);
  near(hi, bound, `${what} max`, 0.02);
  near(lo, -bound, `${what} min`, 0.02);
  const { mean, variance } = await moments(t);
  near(mean, 0, `${what} mean`, 0, 0.01 * bound);
  near(variance, bound * bound / 3, `${what} variance`);
}

async function checkNormal(t: Tensor, std: number, what: string, mean0 = 0): Promise<void> {
  const { mean, variance } = await moments(t);
  near(mean, mean0, `${what} mean`, 0, 0.02 * std);
  near(variance, std * std, `${what} variance`);
}

Deno.test("init.calculateGain: PyTorch's gains", () => {
  near(init.calculateGain("linear"), 1, "linear", 0);
  near(init.calculateGain("conv2d"), 1, "conv2d", 0);
  near(init.calculateGain("sigmoid"), 1, "sigmoid", 0);
  near(init.calculateGain("tanh"), 5 / 3, "tanh", 0);
  near(init.calculateGain("relu"), Math.SQRT2, "relu", 0);
  near(init.calculateGain("leaky_relu"), Math.sqrt(2 / (1 + 0.01 ** 2)), "leaky default", 1e-12);
  near(init.calculateGain("leaky_relu", Math.sqrt(5)), Math.sqrt(1 / 3), "leaky sqrt5", 1e-12);
  near(init.calculateGain("selu"), 0.75, "selu", 0);
});

Deno.test("init.calculateFanInAndFanOut: receptive field times channels", () => {
  assert.deepEqual(init.calculateFanInAndFanOut([32, 16, 3, 3]), { fanIn: 144, fanOut: 288 });
  assert.deepEqual(init.calculateFanInAndFanOut([5, 7]), { fanIn: 7, fanOut: 5 });
  assert.throws(() => init.calculateFanInAndFanOut([5]), /fewer than 2 dimensions/);
});

Deno.test("init.kaimingUniform: samples lie within the bound and have the expected variance", async () => {
  manualSeed(0);
  const w = init.kaimingUniform(zeros([256, 512]));
  await checkUniform(w, Math.sqrt(6 / 512), "kaimingUniform(relu gain, fan_in)");
  init.kaimingUniform(w, { a: 0.2, mode: "fan_out", nonlinearity: "leaky_relu" });
  await checkUniform(w, Math.sqrt(3) * Math.sqrt(2 / 1.04) / Math.sqrt(256), "fan_out, a=0.2");
  w.dispose();
});

Deno.test("init.kaimingNormal: std = gain / sqrt(fan)", async () => {
  manualSeed(1);
  const w = init.kaimingNormal(zeros([128, 64, 3, 3]), { mode: "fan_out", nonlinearity: "relu" });
  await checkNormal(w, Math.SQRT2 / Math.sqrt(128 * 9), "kaimingNormal(fan_out, relu)");
  w.dispose();
});

Deno.test("init.xavierUniform and xavierNormal: std = gain sqrt(2 / (fan_in + fan_out))", async () => {
  manualSeed(2);
  const w = init.xavierUniform(zeros([300, 200]));
  await checkUniform(w, Math.sqrt(6 / 500), "xavierUniform");
  init.xavierNormal(w, 2);
  await checkNormal(w, 2 * Math.sqrt(2 / 500), "xavierNormal(gain 2)");
  w.dispose();
});

Deno.test("init.normal, uniform, constant, zeros, ones: in place, right moments", async () => {
  manualSeed(3);
  const w = zeros([200, 500]);
  const same = init.normal(w, 0.5, 2);
  assert.equal(same, w, "initialisers return the tensor they fill");
  await checkNormal(w, 2, "normal(0.5, 2)", 0.5);
  init.uniform(w, -3, 1);
  const { mean, variance } = await moments(w);
  near(mean, -1, "uniform mean", 0.01);
  near(variance, 16 / 12, "uniform variance");
  init.constant(w, 0.25);
  assert.ok((await w.data()).every((v) => v === 0.25));
  init.ones(w);
  assert.ok((await w.data()).every((v) => v === 1));
  init.zeros(w);
  assert.ok((await w.data()).every((v) => v === 0));
  w.dispose();
});

Deno.test("init.truncNormal: samples lie in [a, b] with the truncated normal's moments", async () => {
  manualSeed(4);
  const w = init.truncNormal(zeros([100000]));
  const d = await w.data();
  assert.ok(d.every((v) => v >= -2 && v <= 2), "samples outside [-2, 2]");
  // Var of N(0, 1) truncated to [-2, 2]: 1 - 2 * 2 phi(2) / (Phi(2) - Phi(-2)).
  const phi2 = Math.exp(-2) / Math.sqrt(2 * Math.PI);
  await checkNormal(w, Math.sqrt(1 - 4 * phi2 / 0.9544997361036416), "truncNormal std 1");
  init.truncNormal(w, 0, 0.02); // ViT's init: effectively untruncated
  await checkNormal(w, 0.02, "truncNormal(0, 0.02)");
  init.truncNormal(w, 0, 1, 0, Infinity); // half-normal: mean sqrt(2/pi), var 1 - 2/pi
  const hn = await moments(w);
  assert.ok((await w.data()).every((v) => v >= 0), "half-normal samples below 0");
  near(hn.mean, Math.sqrt(2 / Math.PI), "half-normal mean", 0.01);
  near(hn.variance, 1 - 2 / Math.PI, "half-normal variance");
  w.dispose();
});

async function gram(w: Tensor, rows: boolean): Promise<Float32Array> {
  const m = w.reshape([w.shape[0], -1]);
  const g = scope(() => (rows ? m.matmul(m.T) : m.T.matmul(m)));
  const d = (await g.data()) as Float32Array;
  g.dispose();
  return d;
}

Deno.test("init.orthogonal: rows or columns are orthonormal (times gain)", async () => {
  manualSeed(5);
  for (
    const [shape, rows, gain] of [[[6, 10], true, 1], [[10, 6], false, 2], [
      [8, 2, 3, 3],
      true,
      1,
    ]] as const
  ) {
    const w = init.orthogonal(zeros([...shape]), gain);
    const n = rows ? shape[0] : shape[1];
    const g = await gram(w, rows);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const want = i === j ? gain * gain : 0;
        assert.ok(
          Math.abs(g[i * n + j] - want) < 1e-5,
          `[${shape}] gram[${i},${j}] = ${g[i * n + j]}`,
        );
      }
    }
    w.dispose();
  }
});

Deno.test("init: initialisers leave no temporary tensors behind", () => {
  const w = zeros([20, 30]);
  const before = memory().tensors;
  init.kaimingUniform(w);
  init.truncNormal(w);
  init.orthogonal(w);
  init.xavierNormal(w);
  assert.equal(memory().tensors, before);
  w.dispose();
});

Deno.test("Linear: default init is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias", async () => {
  manualSeed(6);
  const m = new nn.Linear(400, 300);
  await checkUniform(m.weight, 1 / Math.sqrt(400), "Linear.weight");
  const b = await m.bias!.data();
  assert.ok(b.every((v) => Math.abs(v) <= 1 / Math.sqrt(400)));
  near(Math.max(...b), 1 / Math.sqrt(400), "Linear.bias max", 0.05);
  m.dispose();
});

Deno.test("Conv2d and ConvTranspose2d: default bound 1/sqrt(fan_in) from their layouts", async () => {
  manualSeed(7);
  const c = new nn.Conv2d(64, 128, 3);
  await checkUniform(c.weight, 1 / Math.sqrt(64 * 9), "Conv2d.weight");
  const t = new nn.ConvTranspose2d(96, 32, 4, { groups: 2 });
  assert.deepEqual([...t.weight.shape], [96, 16, 4, 4]);
  await checkUniform(t.weight, 1 / Math.sqrt(16 * 16), "ConvTranspose2d.weight");
  const c1 = new nn.Conv1d(8, 4, 5, { groups: 4 });
  assert.deepEqual([...c1.weight.shape], [4, 2, 5]);
  for (const m of [c, t, c1]) m.dispose();
});

Deno.test("Embedding, Bilinear, MultiheadAttention, BatchNorm: PyTorch's default inits", async () => {
  manualSeed(8);
  const e = new nn.Embedding(1000, 64, { paddingIdx: 3 });
  await checkNormal(e.weight, 1, "Embedding.weight");
  const row3 = await e.weight.slice(0, 3, 4).data();
  assert.ok(row3.every((v) => v === 0), "the padding row starts at zero");

  const bl = new nn.Bilinear(50, 30, 40);
  await checkUniform(bl.weight, 1 / Math.sqrt(50), "Bilinear.weight");

  const mha = new nn.MultiheadAttention(128, 4);
  await checkUniform(mha.inProjWeight!, Math.sqrt(6 / (128 + 384)), "in_proj_weight (xavier)");
  await checkUniform(mha.outProj.weight, 1 / Math.sqrt(128), "out_proj.weight (Linear)");
  assert.ok((await mha.inProjBias!.data()).every((v) => v === 0));
  assert.ok((await mha.outProj.bias!.data()).every((v) => v === 0));

  const bn = new nn.BatchNorm2d(4);
  const sd = bn.stateDict();
  assert.deepEqual([...await sd.weight.data()], [1, 1, 1, 1]);
  assert.deepEqual([...await sd.bias.data()], [0, 0, 0, 0]);
  assert.deepEqual([...await sd.running_mean.data()], [0, 0, 0, 0]);
  assert.deepEqual([...await sd.running_var.data()], [1, 1, 1, 1]);
  assert.equal(sd.num_batches_tracked.dtype, "int32");
  for (const m of [e, bl, mha, bn]) m.dispose();
});
