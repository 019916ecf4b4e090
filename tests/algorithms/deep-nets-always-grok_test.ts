import assert from "node:assert/strict";
import {
  crossPolytope,
  decisionBoundaryPoints,
  fgsmAttack,
  localComplexity,
  orthonormalFrame,
  pgdAttack,
} from "../../algorithms/deep-nets-always-grok/mod.ts";
import { eye, F, manualSeed, nn, randn, type Tensor, tensor } from "../../mod.ts";

async function close(a: Tensor, b: Tensor, tol = 1e-5): Promise<void> {
  assert.deepEqual(a.shape, b.shape);
  const [x, y] = [await a.data(), await b.data()];
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= tol, `${x[i]} vs ${y[i]}`);
}

/** A Linear layer with the given weight [out, in] and bias [out]. */
function linear(w: number[][], b: number[]): nn.Linear {
  const l = new nn.Linear(w[0].length, w.length);
  l.weight.assign(tensor(w));
  l.bias!.assign(tensor(b));
  return l;
}

Deno.test("frame: P orthonormal directions, the same for the same seed", async () => {
  const V = orthonormalFrame(10, 6, 3);
  await close(V.matmul(V.T), eye(6), 1e-5);
  await close(orthonormalFrame(10, 6, 3), V, 0);
  assert.notDeepEqual(await orthonormalFrame(10, 6, 4).data(), await V.data());
  assert.throws(() => orthonormalFrame(3, 4), /need 1 <= P <= n = 3/);
});

Deno.test("cross-polytope: 2P vertices x ± r v_p at distance r, in the input's shape", async () => {
  manualSeed(0);
  const x = randn([3, 2, 4]), frame = orthonormalFrame(8, 5, 1);
  const V = crossPolytope(x, frame, 0.3);
  assert.deepEqual(V.shape, [3, 10, 2, 4]);
  const d = V.reshape([3, 10, 8]).sub(x.reshape([3, 1, 8])); // (3, 10, 8)
  await close(d.norm(2, 2), tensor(new Array(30).fill(0.3)).reshape([3, 10]), 1e-5);
  await close(d.narrow(1, 0, 5), d.narrow(1, 5, 5).neg(), 1e-6); // antipodal pairs
  assert.throws(() => crossPolytope(x, orthonormalFrame(6, 2), 0.3), /frame must be \[P, 8\]/);
  assert.throws(() => crossPolytope(x, frame, 0), /radius must be > 0/);
});

Deno.test("LC: counts exactly the hyperplanes that cut the frame's hull", async () => {
  // Neurons x0 = 0, x0 = 0.5, x1 = 2; frame = axes, so the hull is |dx0| + |dx1| <= r.
  const net = new nn.Sequential(linear([[1, 0], [1, 0], [0, 1]], [0, -0.5, -2]), new nn.ReLU());
  const x = tensor([[0.05, 0], [0.45, 1.95], [5, 5], [0.25, 0]]);
  const lc = localComplexity(net, x, { radius: 0.1, frame: eye(2) });
  assert.deepEqual(Array.from(await lc.total.data()), [1, 2, 0, 0]);
  const wide = localComplexity(net, x, { radius: 0.3, frame: eye(2) });
  assert.deepEqual(Array.from(await wide.total.data()), [1, 2, 0, 2]);
});

Deno.test("LC: one count per activation layer, deeper layers see the frame's image", async () => {
  // Layer 2's neuron h0 - 1 = 0 is the input hyperplane x0 = 1 seen through ReLU(x0).
  const net = new nn.Sequential(
    linear([[1, 0]], [0]),
    new nn.ReLU(),
    linear([[1]], [-1]),
    new nn.ReLU(),
    linear([[1]], [0]),
  );
  const lc = localComplexity(net, tensor([[1.02, 0], [0.5, 0], [0.01, 0]]), {
    radius: 0.05,
    frame: eye(2),
  });
  assert.equal(lc.perLayer.length, 2);
  assert.deepEqual(Array.from(await lc.perLayer[0].data()), [0, 0, 1]);
  assert.deepEqual(Array.from(await lc.perLayer[1].data()), [1, 0, 0]);
  assert.deepEqual(Array.from(await lc.total.data()), [1, 0, 1]);
  assert.throws(
    () => localComplexity(new nn.Sequential(new nn.Linear(2, 2)), eye(2), { radius: 1 }),
    /no activation layer/,
  );
  assert.throws(
    () => localComplexity(new nn.Linear(2, 2) as never, eye(2), { radius: 1 }),
    /must be a Sequential/,
  );
});

Deno.test("FGSM on a linear model moves x by ε against the true class's margin", async () => {
  // logits = [0, w.x]; for y = 1, dL/dx = -(1 - p) w, so x_adv = x - ε sign(w) (clipped).
  const net = new nn.Sequential(linear([[0, 0, 0], [1, -2, 0.5]], [0, 0]));
  const x = tensor([[0.5, 0.5, 0.02]]), y = tensor([1]);
  await close(fgsmAttack(net, x, y, { eps: 0.1 }), tensor([[0.4, 0.6, 0]]), 1e-6);
});

Deno.test("PGD: stays in the ε-ball and bounds, raises the loss, leaves params alone", async () => {
  manualSeed(1);
  const net = new nn.Sequential(new nn.Linear(6, 8), new nn.ReLU(), new nn.Linear(8, 3));
  const x = randn([16, 6]).sigmoid(), y = tensor(Array.from({ length: 16 }, (_, i) => i % 3));
  const adv = pgdAttack(net, x, y, { eps: 0.05, steps: 8 });
  const d = await adv.sub(x).abs().amax().item() as number;
  assert.ok(d <= 0.05 + 1e-6, `moved ${d}`);
  const v = await adv.data();
  assert.ok(v.every((t) => t >= 0 && t <= 1));
  const before = await F.crossEntropy(net.forward(x), y).item() as number;
  const after = await F.crossEntropy(net.forward(adv), y).item() as number;
  assert.ok(after > before, `loss ${before} -> ${after}`);
  assert.ok(net.parameters().every((p) => p.grad === null));
  assert.throws(() => pgdAttack(net, x, y, { steps: 0 }), /steps must be a positive integer/);
});

Deno.test("boundary points: bisection lands on the boundary for differing pairs", async () => {
  // Class 1 iff x0 > 0.3.
  const net = new nn.Sequential(linear([[0, 0], [1, 0]], [0, -0.3]));
  const a = tensor([[0, 0], [0, 1], [0.9, 0]]), b = tensor([[1, 0], [1, 1], [1, 1]]);
  const p = await decisionBoundaryPoints(net, a, b, { iters: 14 });
  assert.deepEqual(p.shape, [2, 2]); // the third pair is on one side
  const v = await p.data();
  assert.ok(Math.abs(v[0] - 0.3) < 1e-4 && Math.abs(v[2] - 0.3) < 1e-4);
  assert.deepEqual([v[1], v[3]], [0, 1]);
  const none = await decisionBoundaryPoints(net, a.narrow(0, 2, 1), b.narrow(0, 2, 1));
  assert.deepEqual(none.shape, [0, 2]);
  await assert.rejects(() => decisionBoundaryPoints(net, a, b.narrow(0, 0, 2)), /must match/);
});
