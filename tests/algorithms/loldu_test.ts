import assert from "node:assert/strict";
import { applyLoLDU, ldu, LoLDULinear } from "../../algorithms/loldu/mod.ts";
import { countParameters } from "../../algorithms/lora/mod.ts";
import { F, linalg, manualSeed, nn, noGrad, randn, scope, type Tensor } from "../../mod.ts";
import { peftContract, tinyModel } from "./_peft_contract.ts";

// r per layer (the diagonal only): 3 + 3
peftContract({
  name: "LoLDU",
  apply: (m) => applyLoLDU(m, ["0", "2"], { r: 3 }),
  expectedTrainable: 3 + 3,
  zeroDeltaAtInit: true,
});

// with the scalar scale σ trained too: (r + 1) per layer
peftContract({
  name: "LoLDU (trainScale)",
  apply: (m) => applyLoLDU(m, ["0", "2"], { r: 3, trainScale: true }),
  expectedTrainable: 4 + 4,
  zeroDeltaAtInit: true,
});

async function maxDiff(a: Tensor, b: Tensor): Promise<number> {
  const [x, y] = [await a.data(), await b.data()];
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

Deno.test("LoLDU: ldu gives W = P L D U with unit-triangular L, U and |L| <= 1", () => {
  manualSeed(0);
  for (const [m, n] of [[5, 5], [7, 4], [3, 6]]) {
    const w = Float64Array.from({ length: m * n }, () => Math.random() * 2 - 1);
    const { k, perm, L, d, U } = ldu(w, m, n);
    assert.equal(k, Math.min(m, n));
    assert.deepEqual([...perm].sort((a, b) => a - b), [...Array(m).keys()]);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < k; j++) {
        if (j > i) assert.equal(L[i * k + j], 0);
        if (j === i) assert.equal(L[i * k + j], 1);
        assert.ok(Math.abs(L[i * k + j]) <= 1 + 1e-12, "partial pivoting bounds L");
      }
    }
    for (let j = 0; j < k; j++) {
      assert.ok(Math.abs(U[j * n + j] - 1) < 1e-12);
      for (let c = 0; c < j; c++) assert.equal(U[j * n + c], 0);
    }
    for (let i = 0; i < m; i++) {
      for (let c = 0; c < n; c++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += L[i * k + j] * d[j] * U[j * n + c];
        assert.ok(Math.abs(s - w[perm[i] * n + c]) < 1e-10, `W[${perm[i]},${c}]`);
      }
    }
  }
  assert.throws(() => ldu([1, 2, 3], 2, 2), /expected 4 values, got 3/);
});

Deno.test("LoLDU: at full rank σ0 P L D U = σ0 W0, so z = 0 removes σ0 W0", async () => {
  manualSeed(2);
  const base = new nn.Linear(6, 4);
  const w0 = base.weight.clone(), b = base.bias!.clone();
  const a = new LoLDULinear(base);
  assert.equal(a.r, 4);
  assert.equal(a.sigma0, 1 / 4);
  noGrad(() => a.vectorZ.assign(a.vectorZ.mul(0)));
  assert.ok((await maxDiff(a.deltaWeight(), w0.mul(-0.25))) < 1e-5, "ΔW = -σ0 W0 when z = 0");
  noGrad(() => a.vectorZ.assign(a.z0.mul(2)));
  assert.ok((await maxDiff(a.deltaWeight(), w0.mul(0.25))) < 1e-5, "ΔW = σ0 W0 when z = 2 z0");
  // σ0 = 1 (alpha = r): the whole weight lives in the LDU part; z = 0 leaves only the bias
  const c = new LoLDULinear(base, { alpha: 4 });
  noGrad(() => c.vectorZ.assign(c.vectorZ.mul(0)));
  const x = randn([3, 6]);
  assert.ok((await maxDiff(c.forward(x), b.unsqueeze(0).expand([3, 4]))) < 1e-5);
});

Deno.test("LoLDU: ΔW has rank <= r and lies in the frozen P L_r, U_r factors", async () => {
  manualSeed(3);
  const a = new LoLDULinear(new nn.Linear(10, 12), { r: 3 });
  noGrad(() => a.vectorZ.assign(randn([3])));
  const s = await linalg.svdvals(a.deltaWeight()).data();
  assert.ok(s[2] > 1e-4 && s[3] < 1e-5, `singular values ${Array.from(s)}`);
  const x = randn([5, 10]);
  assert.ok((await maxDiff(a.adapterForward(x), x.matmul(a.deltaWeight().T))) < 1e-5);
});

Deno.test("LoLDU: only z (and σ) train, r (+ 1) per layer whatever its shape", () => {
  const m = tinyModel();
  applyLoLDU(m, ["0", "2"], { r: (o, i) => Math.min(o, i) });
  assert.equal(countParameters(m).trainable, 8 + 4);
  const a = new LoLDULinear(new nn.Linear(64, 128).requiresGrad_(false), {
    r: 16,
    trainScale: true,
  });
  assert.deepEqual(a.adapterParameters().map(([n, p]) => [n, p.numel]), [
    ["vector_z", 16],
    ["scaling_factor", 1],
  ]);
  manualSeed(4);
  scope(() => {
    a.forward(randn([2, 64])).square().sum().backward();
  });
  assert.ok(a.vectorZ.grad && a.scalingFactor!.grad);
  assert.equal(a.base.weight.grad, null);
});

Deno.test("LoLDU: training z changes the function (a step of AdamW moves the loss)", async () => {
  manualSeed(6);
  const m = tinyModel();
  applyLoLDU(m, ["0", "2"], { r: 4 });
  const x = randn([16, 8]), y = randn([16]).gt(0).int();
  const ps = m.parameters().filter((p) => p.requiresGrad);
  const { AdamW } = await import("../../core/optim/mod.ts");
  const opt = new AdamW(ps, { lr: 0.5 });
  const loss = () => F.crossEntropy(m.forward(x), y);
  const before = Number(await loss().item());
  for (let i = 0; i < 5; i++) {
    scope(() => {
      opt.zeroGrad();
      loss().backward();
      opt.step();
    });
  }
  assert.ok(Number(await loss().item()) < before);
});

Deno.test("LoLDU: bad ranks are clear errors", () => {
  assert.throws(
    () => new LoLDULinear(new nn.Linear(4, 3), { r: 4 }),
    /r must be an integer in \[1, min\(out, in\) = 3\]/,
  );
  assert.throws(() => new LoLDULinear(new nn.Linear(4, 3), { r: 0 }), /r must be an integer/);
});
