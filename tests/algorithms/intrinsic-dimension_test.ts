import assert from "node:assert/strict";
import {
  DenseProjection,
  FastfoodProjection,
  fwht,
  hadamardMatrix,
  intrinsicDimension,
  searchIntrinsicDimension,
  SubspaceModule,
} from "../../algorithms/intrinsic-dimension/mod.ts";
import {
  cat,
  eye,
  F,
  manualSeed,
  nn,
  optim,
  randn,
  scope,
  type Tensor,
  tensor,
} from "../../mod.ts";

async function close(a: Tensor, b: Tensor, tol = 1e-4): Promise<void> {
  assert.deepEqual(a.shape, b.shape);
  const [x, y] = [await a.data(), await b.data()];
  let err = 0;
  for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(x[i] - y[i]));
  assert.ok(err <= tol, `max abs difference ${err} > ${tol}`);
}

const tiny = () => new nn.Sequential(new nn.Linear(5, 7), new nn.ReLU(), new nn.Linear(7, 3));

Deno.test("fwht: equals the Sylvester Hadamard matrix, and H H = L I", async () => {
  manualSeed(0);
  for (const L of [1, 2, 16, 128, 512]) {
    const x = randn([3, L]);
    const H = tensor(hadamardMatrix(L), { shape: [L, L] });
    await close(fwht(x), x.matmul(H), 1e-3 * Math.sqrt(L));
    await close(fwht(fwht(x)), x.mul(L), 1e-3 * L);
  }
  assert.throws(() => fwht(randn([2, 12])), /last dim must be a power of two/);
  assert.throws(() => hadamardMatrix(6), /power of two/);
});

Deno.test("dense projection: unit-norm columns, linear, batched [k, d] -> [k, D]", async () => {
  manualSeed(1);
  const P = new DenseProjection(50, 6);
  await close(P.PT.norm(2, 1), tensor(new Array(6).fill(1)), 1e-5);
  const a = randn([6]), b = randn([6]);
  await close(P.project(a.add(b.mul(2))), P.project(a).add(P.project(b).mul(2)));
  assert.deepEqual(P.project(randn([4, 6])).shape, [4, 50]);
  assert.throws(() => P.project(randn([5])), /expected θ_d of shape \[\.\.\., 6\]/);
  assert.throws(() => new DenseProjection(5, 6), /d must be an integer in \[1, D = 5\]/);
});

Deno.test("fastfood: equals (H G Π H B [θ; 0])[:D] / (sqrt(L ΣG²) sqrt(D/L)) densely", async () => {
  manualSeed(2);
  const D = 20, d = 5, f = new FastfoodProjection(D, d);
  assert.equal(f.L, 32);
  const L = f.L;
  const H = tensor(hadamardMatrix(L), { shape: [L, L] });
  const Pi = Array.from(await f.Pi.data());
  const Pmat = tensor(Pi.flatMap((j) => Array.from({ length: L }, (_, k) => (k === j ? 1 : 0))), {
    shape: [L, L],
  }); // (Π x)_i = x_{Π_i}
  const diag = (v: Tensor) => eye(L).mul(v.reshape([1, L]));
  const G = Array.from(await f.G.data());
  const divisor = Math.sqrt(L * G.reduce((s, g) => s + g * g, 0)) * Math.sqrt(D / L);
  const full = H.matmul(diag(f.G)).matmul(Pmat).matmul(H).matmul(diag(f.B)); // (L, L)
  const P = full.narrow(0, 0, D).narrow(1, 0, d).div(divisor); // (D, d)
  const theta = randn([d]);
  await close(f.project(theta), P.matmul(theta), 1e-4);
  assert.ok((await f.B.data()).every((v) => v === 1 || v === -1));
  assert.deepEqual([...Pi].sort((a, b) => a - b), Array.from({ length: L }, (_, i) => i));
});

Deno.test("fastfood: columns have unit norm on average, and D = 2^k needs no padding", async () => {
  manualSeed(3);
  for (const D of [1000, 1024]) {
    const f = new FastfoodProjection(D, 64);
    assert.equal(f.L, 1024);
    const norms = Array.from(await f.project(eye(64)).norm(2, 1).data()); // column j = P e_j
    const mean = norms.reduce((a, b) => a + b) / norms.length;
    assert.ok(Math.abs(mean - 1) < 0.05, `mean column norm ${mean}`);
    assert.ok(norms.every((n) => n > 0.7 && n < 1.3));
  }
});

Deno.test("subspace: θ_d = 0 reproduces the module; only θ_d is trainable", async () => {
  manualSeed(4);
  const net = tiny();
  const x = randn([4, 5]);
  const before = net.forward(x);
  const sub = new SubspaceModule(net, { d: 6 });
  assert.equal(sub.D, 5 * 7 + 7 + 7 * 3 + 3);
  assert.equal(sub.numParameters({ trainableOnly: true }), 6);
  await close(sub.forward(x), before, 0);
  assert.ok(net.parameters().every((p) => !p.requiresGrad));
});

Deno.test("subspace: output and gradient are those of θ_0 + P θ_d (grad = Pᵀ ∇θ)", async () => {
  for (const projection of ["dense", "fastfood"] as const) {
    manualSeed(5);
    const net = tiny(), twin = tiny();
    twin.loadStateDict(net.stateDict());
    const sub = new SubspaceModule(net, { d: 4, projection });
    sub.thetaD.assign(randn([4]));
    const x = randn([6, 5]), y = tensor([0, 1, 2, 0, 1, 2]);
    // Load θ = θ_0 + P θ_d into the twin and take the full-space gradient.
    const theta = sub.theta();
    let off = 0;
    for (const p of twin.parameters()) {
      p.assign(theta.narrow(0, off, p.numel).reshape([...p.shape]));
      off += p.numel;
    }
    await close(sub.forward(x), twin.forward(x), 1e-5);
    F.crossEntropy(sub.forward(x), y).backward();
    F.crossEntropy(twin.forward(x), y).backward();
    const gFull = cat(twin.parameters().map((p) => p.grad!.reshape([-1]))); // (D,)
    const want = sub.projection.project(eye(4)).matmul(gFull); // Pᵀ ∇θ: row j = P e_j
    await close(sub.thetaD.grad!, want, 1e-4);
    assert.ok(net.parameters().every((p) => p.grad === null), "θ_0 received a gradient");
  }
});

Deno.test("subspace: fields are restored after forward, also when forward throws", () => {
  manualSeed(6);
  const net = tiny();
  const w = (net.at(0) as nn.Linear).weight;
  const sub = new SubspaceModule(net, { d: 3 });
  sub.forward(randn([2, 5]));
  assert.equal((net.at(0) as nn.Linear).weight, w);
  assert.throws(() => sub.forward(randn([2, 4])));
  assert.equal((net.at(0) as nn.Linear).weight, w);
});

class Tied extends nn.Module {
  emb = this.registerModule("emb", new nn.Embedding(6, 4));
  head = this.registerModule("head", new nn.Linear(4, 6, { bias: false }));
  constructor() {
    super();
    this.head.weight = this.head.registerParameter("weight", this.emb.weight); // tied
  }
  forward(i: Tensor): Tensor {
    return this.head.forward(this.emb.forward(i));
  }
}

Deno.test("subspace: works for any module (embedding, tied weights counted once)", async () => {
  manualSeed(7);
  const m = new Tied();
  const sub = new SubspaceModule(m, { d: 5, projection: "fastfood" });
  assert.equal(sub.D, 24);
  sub.thetaD.assign(randn([5]));
  const i = tensor([0, 3, 5], { dtype: "int32" });
  const theta = sub.theta().reshape([6, 4]); // the tied matrix, once
  const want = theta.indexSelect(0, i).matmul(theta.T);
  await close(sub.forward(i), want, 1e-5);
});

class Hidden extends nn.Module {
  #w: Tensor;
  constructor() {
    super();
    this.#w = this.registerParameter("w", randn([3]));
  }
  forward(x: Tensor): Tensor {
    return x.mul(this.#w);
  }
}

Deno.test("subspace: bad d and parameters hidden from fields are clear errors", () => {
  assert.throws(
    () => new SubspaceModule(tiny(), { d: 0 }),
    /d must be an integer in \[1, D = 66\]/,
  );
  assert.throws(() => new SubspaceModule(tiny(), { d: 67 }), /d must be an integer/);
  assert.throws(() => new SubspaceModule(new Hidden(), { d: 1 }), /parameter\(s\) w are not held/);
  assert.throws(
    () => new SubspaceModule(tiny(), { d: 2, projection: new DenseProjection(10, 2) }),
    /maps 2 -> 10, expected 2 -> 66/,
  );
});

Deno.test("subspace: training θ_d reaches a target that lies in the subspace", async () => {
  manualSeed(8);
  const net = new nn.Linear(6, 2);
  const sub = new SubspaceModule(net, { d: 3 });
  const x = randn([32, 6]);
  sub.thetaD.assign(tensor([0.5, -1, 0.8]));
  const y = sub.forward(x).detach(); // targets from θ_0 + P u*
  sub.thetaD.assign(tensor([0, 0, 0]));
  const opt = new optim.Adam([sub.thetaD], { lr: 0.05 });
  for (let s = 0; s < 300; s++) {
    scope(() => {
      opt.zeroGrad();
      F.mseLoss(sub.forward(x), y).backward();
      opt.step();
    });
  }
  await close(sub.thetaD, tensor([0.5, -1, 0.8]), 1e-2);
});

Deno.test("d_int90: first d reaching 90% of baseline, interpolated in log d", () => {
  const pts = [{ d: 10, performance: 0.5 }, { d: 40, performance: 0.95 }, {
    d: 20,
    performance: 0.8,
  }];
  const r = intrinsicDimension(pts, 1);
  assert.equal(r.dInt, 40);
  assert.ok(Math.abs(r.threshold - 0.9) < 1e-12);
  // 0.9 is 2/3 of the way from 0.8 to 0.95: exp(log 20 + 2/3 log 2)
  assert.ok(Math.abs(r.dIntInterpolated! - 20 * 2 ** (2 / 3)) < 1e-9);
  assert.equal(intrinsicDimension(pts, 1, { fraction: 0.5 }).dIntInterpolated, 10);
  assert.equal(intrinsicDimension(pts, 2).dInt, null);
  assert.throws(() => intrinsicDimension(pts, 1, { fraction: 0 }), /fraction must be in/);
  assert.throws(() => intrinsicDimension([], 1), /at least one sweep point/);
});

Deno.test("d_int90 search: binary search agrees with the full sweep using fewer runs", async () => {
  const grid = [1, 2, 4, 8, 16, 32, 64, 128, 256];
  const perf = (d: number) => 1 - Math.exp(-d / 20);
  for (const baseline of [0.3, 1, 0.05]) {
    const calls: number[] = [];
    const r = await searchIntrinsicDimension(grid, (d) => {
      calls.push(d);
      return perf(d);
    }, baseline);
    const full = intrinsicDimension(grid.map((d) => ({ d, performance: perf(d) })), baseline);
    assert.equal(r.dInt, full.dInt);
    assert.equal(r.dIntInterpolated, full.dIntInterpolated);
    assert.ok(calls.length <= 5, `evaluated ${calls}`);
  }
  const never = await searchIntrinsicDimension(grid, () => 0.1, 1);
  assert.equal(never.dInt, null);
  await assert.rejects(() => searchIntrinsicDimension([0, 2], perf, 1), /positive integers/);
});
