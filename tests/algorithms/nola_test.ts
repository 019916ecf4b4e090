import assert from "node:assert/strict";
import { join } from "node:path";
import { countParameters, loadAdapters, saveAdapters } from "../../algorithms/lora/mod.ts";
import {
  applyNOLA,
  layerSeed,
  loadNola,
  nolaLayers,
  NOLALinear,
  saveNola,
} from "../../algorithms/nola/mod.ts";
import {
  F,
  loadSafetensors,
  manualSeed,
  nn,
  noGrad,
  randn,
  scope,
  type Tensor,
} from "../../mod.ts";
import { peftContract, tinyModel } from "./_peft_contract.ts";

// k + l per layer, whatever the layer's shape and the rank: 2 * (5 + 3)
peftContract({
  name: "NOLA",
  apply: (m) => applyNOLA(m, ["0", "2"], { r: 2, k: 5, l: 3 }),
  expectedTrainable: 2 * (5 + 3),
  zeroDeltaAtInit: true,
});

async function maxDiff(a: Tensor, b: Tensor): Promise<number> {
  const [x, y] = [await a.data(), await b.data()];
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

function perturbed(base: nn.Linear, o: ConstructorParameters<typeof NOLALinear>[1]): NOLALinear {
  const a = new NOLALinear(base, o);
  noGrad(() => {
    a.nolaAlpha.assign(randn([a.k]));
    a.nolaBeta.assign(randn([a.l]));
  });
  return a;
}

Deno.test("NOLA: ΔW = s (Σ α_i A_i)(Σ β_j B_j) with the frozen bases", async () => {
  manualSeed(1);
  const a = perturbed(new nn.Linear(5, 4), { r: 3, k: 6, l: 7, alpha: 6 });
  const [al, be] = [await a.nolaAlpha.data(), await a.nolaBeta.data()];
  const [bA, bB] = [await a.basisA.data(), await a.basisB.data()];
  const m = 4, n = 5, r = 3;
  const A = new Float64Array(m * r), B = new Float64Array(r * n);
  for (let i = 0; i < 6; i++) for (let e = 0; e < m * r; e++) A[e] += al[i] * bA[i * m * r + e];
  for (let j = 0; j < 7; j++) for (let e = 0; e < r * n; e++) B[e] += be[j] * bB[j * r * n + e];
  const dW = await a.deltaWeight().data();
  for (let p = 0; p < m; p++) {
    for (let q = 0; q < n; q++) {
      let s = 0;
      for (let c = 0; c < r; c++) s += A[p * r + c] * B[c * n + q];
      assert.ok(Math.abs(dW[p * n + q] - 2 * s) < 1e-5, `ΔW[${p},${q}]`);
    }
  }
  const x = randn([3, 5]);
  assert.ok((await maxDiff(a.adapterForward(x), x.matmul(a.deltaWeight().T))) < 1e-5);
});

Deno.test("NOLA: trainable count is k + l, independent of the rank and the layer's shape", () => {
  for (const [inp, out, r] of [[8, 16, 1], [8, 16, 16], [64, 32, 4]]) {
    const a = new NOLALinear(new nn.Linear(inp, out), { r, k: 10, l: 20 });
    assert.equal(a.adapterParameters().reduce((s, [, p]) => s + p.numel, 0), 30);
  }
  const m = tinyModel();
  applyNOLA(m, ["0", "2"], { r: 4, k: (o, i) => o + i, l: 2 });
  // layer 0: 16 + 8 bases for A, layer 2: 4 + 16
  assert.equal(countParameters(m).trainable, 24 + 2 + 20 + 2);
});

Deno.test("NOLA: at initialisation A = 0, so only α gets a gradient (β's is zero)", async () => {
  const m = tinyModel();
  applyNOLA(m, ["0", "2"], { r: 2, k: 4 });
  manualSeed(5);
  scope(() => F.crossEntropy(m.forward(randn([6, 8])), randn([6]).gt(0).int()).backward());
  for (const [, a] of nolaLayers(m)) {
    assert.ok(Number(await a.nolaAlpha.grad!.abs().sum().item()) > 0, "α has no gradient");
    assert.equal(await a.nolaBeta.grad!.abs().sum().item(), 0);
  }
});

Deno.test("NOLA: bases come from the seed alone and are neither parameters nor state", async () => {
  const mk = (seed: number) => new NOLALinear(new nn.Linear(6, 5), { r: 2, k: 3, seed });
  const [a, b, c] = [mk(7), mk(7), mk(8)];
  assert.equal(await maxDiff(a.basisA, b.basisA), 0);
  assert.equal(await maxDiff(a.basisB, b.basisB), 0);
  assert.ok((await maxDiff(a.basisA, c.basisA)) > 1e-3);
  assert.deepEqual(
    Object.keys(a.stateDict()).sort(),
    ["base_layer.bias", "base_layer.weight", "nola_alpha", "nola_beta"],
  );
  // β = 1: B = Σ_j B_j has LoRA's kaiming variance 1 / (3 n) whatever l
  const big = new NOLALinear(new nn.Linear(400, 2), { r: 8, k: 2, l: 50 });
  const B = Array.from(await big.factorB().data());
  const v = B.reduce((s, x) => s + x * x, 0) / B.length;
  assert.ok(Math.abs(v * 3 * 400 - 1) < 0.1, `variance ${v}`);
  // applyNOLA gives every layer its own seed
  assert.notEqual(layerSeed(0, "0"), layerSeed(0, "2"));
  assert.notEqual(layerSeed(0, "0"), layerSeed(1, "0"));
});

Deno.test("NOLA: saveNola stores only k + l coefficients and a seed per layer", async () => {
  const a = tinyModel();
  applyNOLA(a, ["0", "2"], { r: 2, k: 5, l: 3, seed: 11 });
  for (const [, l] of nolaLayers(a)) {
    noGrad(() => l.nolaAlpha.assign(randn([5])));
  }
  const path = join(await Deno.makeTempDir(), "nola.safetensors");
  await saveNola(path, a);
  const saved = await loadSafetensors(path);
  assert.deepEqual(Object.keys(saved).sort(), [
    "0.nola_alpha",
    "0.nola_beta",
    "0.nola_seed",
    "2.nola_alpha",
    "2.nola_beta",
    "2.nola_seed",
  ]);
  assert.equal(Object.values(saved).reduce((s, t) => s + t.numel, 0), 2 * (5 + 3 + 1));
  assert.equal(saved["0.nola_seed"].dtype, "int32");
  Object.values(saved).forEach((t) => t.dispose());

  // A model built with another seed has other bases: the coefficients alone do not fit it,
  // the saved seeds make it regenerate the right ones.
  const x = (manualSeed(3), randn([4, 8]));
  const b = tinyModel();
  applyNOLA(b, ["0", "2"], { r: 2, k: 5, l: 3, seed: 99 });
  const plain = join(await Deno.makeTempDir(), "plain.safetensors");
  await saveAdapters(plain, a);
  await loadAdapters(plain, b);
  assert.ok((await maxDiff(a.forward(x), b.forward(x))) > 1e-4);
  await loadNola(path, b);
  assert.ok((await maxDiff(a.forward(x), b.forward(x))) < 1e-6);
  assert.deepEqual(nolaLayers(b).map(([, l]) => l.seed), nolaLayers(a).map(([, l]) => l.seed));
});

Deno.test("NOLA: loadNola rejects a file made for other sizes", async () => {
  const a = tinyModel();
  applyNOLA(a, ["0", "2"], { r: 2, k: 5, l: 3 });
  const path = join(await Deno.makeTempDir(), "nola.safetensors");
  await saveNola(path, a);
  const b = tinyModel();
  applyNOLA(b, ["0", "2"], { r: 2, k: 6, l: 3 });
  await assert.rejects(() => loadNola(path, b), /0 has k=5, l=3 .* the model has k=6, l=3/);
  const c = tinyModel();
  applyNOLA(c, ["0"], { r: 2, k: 5, l: 3 });
  await assert.rejects(() => loadNola(path, c), /unexpected: 2.nola_alpha/);
  await assert.rejects(() => saveNola(path, tinyModel()), /no NOLA layers/);
});

Deno.test("NOLA: bad options are clear errors", () => {
  const lin = () => new nn.Linear(4, 4);
  assert.throws(() => new NOLALinear(lin(), { r: 0 }), /r must be a positive integer/);
  assert.throws(() => new NOLALinear(lin(), { k: 2.5 }), /k must be a positive integer/);
  assert.throws(() => new NOLALinear(lin(), { l: -1 }), /l must be a positive integer/);
  assert.throws(() => new NOLALinear(lin(), { seed: -3 }), /seed must be an integer/);
});
