/**
 * Optimisers against torch.optim: 20-step parameter trajectories on a fixed loss
 * (tests/fixtures/nn_optim.json), parameter groups, state dicts, options, and a training loop
 * whose memory stays flat.
 */
import assert from "node:assert/strict";
import { F, keep, manualSeed, memory, randn, scope, type Tensor } from "../../mod.ts";
import * as nn from "../../core/nn/mod.ts";
import * as optim from "../../core/optim/mod.ts";
import { assertCloseEnc, type Enc, fromEnc, nnFixture } from "../nn/_helpers.ts";

const fx = await nnFixture();
const [H, Tgt, U] = ["H", "Tgt", "U"].map((k) => keep(fromEnc(fx.loss[k])));

/** The fixture's loss: 0.5 sum(H (w - Tgt)^2) + 0.25 sum((b - U)^4) + sum(w) mean(b). */
function loss(w: Tensor, b: Tensor): Tensor {
  const d = w.sub(Tgt), e = b.sub(U);
  return H.mul(d).mul(d).sum().mul(0.5).add(e.pow(4).sum().mul(0.25))
    .add(w.sum().mul(b.mean()));
}

const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const camelKeys = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));

const CLASSES: Record<string, new (p: optim.Params, o: any) => optim.Optimizer> = {
  SGD: optim.SGD,
  Adam: optim.Adam,
  AdamW: optim.AdamW,
  RMSprop: optim.RMSprop,
  Adagrad: optim.Adagrad,
};

interface OptCase {
  name: string;
  options: Record<string, any>;
  w0: Enc;
  b0: Enc;
  z0: Enc;
  trajectory: { w: Enc; b: Enc; z: Enc }[];
}

for (const c of fx.optimizers as OptCase[]) {
  const cls = c.name.split("(")[0];
  Deno.test(`${c.name}: 20 steps match torch.optim.${cls}`, async () => {
    const params = { w: c.w0, b: c.b0, z: c.z0 };
    const p = Object.fromEntries(
      Object.entries(params).map(([k, e]) => [k, keep(fromEnc(e, { requiresGrad: true }))]),
    ) as Record<"w" | "b" | "z", Tensor>;
    const { groups, ...rest } = c.options;
    const arg = groups
      ? groups.map((g: any) => ({ ...camelKeys(g), params: g.params.map((n: "w") => p[n]) }))
      : [p.w, p.b, p.z];
    const opt = new CLASSES[cls](arg, camelKeys(rest));
    for (const [i, want] of c.trajectory.entries()) {
      opt.zeroGrad();
      scope(() => loss(p.w, p.b).backward());
      opt.step();
      for (const k of ["w", "b", "z"] as const) {
        await assertCloseEnc(p[k], want[k], `${c.name} step ${i + 1} ${k}`, {
          rtol: 1e-4,
          atol: 1e-5,
        });
      }
    }
    if (cls !== "Adagrad") assert.ok(!opt.state.has(p.z), "a parameter without grad gets no state");
    opt.zeroGrad();
    opt.dispose();
    for (const t of Object.values(p)) t.dispose();
  });
}

/** Fresh copies of three parameters and an optimiser over them. */
function setup(make: (ps: Tensor[]) => optim.Optimizer, seed = 0) {
  manualSeed(seed);
  const ps = [randn([3, 4]), randn([4]), randn([2])].map((t) => keep(t.requiresGrad_()));
  return { ps, opt: make(ps) };
}
function run(ps: Tensor[], opt: optim.Optimizer, steps: number) {
  for (let i = 0; i < steps; i++) {
    opt.zeroGrad();
    scope(() => loss(ps[0], ps[1]).backward());
    opt.step();
  }
}

Deno.test("Adam: stateDict has PyTorch's structure and resuming from it continues exactly", async () => {
  const make = (ps: Tensor[]) => new optim.Adam(ps, { lr: 0.05, amsgrad: true, weightDecay: 0.1 });
  const a = setup(make), b = setup(make);
  run(a.ps, a.opt, 10);
  const sd = a.opt.stateDict();
  assert.deepEqual(Object.keys(sd.state), ["0", "1"]);
  assert.deepEqual(Object.keys(sd.state["0"]), ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]);
  assert.equal(sd.state["0"].step, 10);
  assert.deepEqual(sd.param_groups[0].params, [0, 1, 2]);
  assert.equal(sd.param_groups[0].weight_decay, 0.1);
  assert.deepEqual(sd.param_groups[0].betas, [0.9, 0.999]);
  // b takes a's parameters and optimiser state, then both run 10 more steps.
  scope(() => b.ps.forEach((p, i) => p.assign(a.ps[i])));
  b.opt.loadStateDict(sd);
  run(a.ps, a.opt, 10);
  run(b.ps, b.opt, 10);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await b.ps[i].data(), await a.ps[i].data(), `parameter ${i}`);
  }
  for (const { ps, opt } of [a, b]) {
    opt.zeroGrad();
    opt.dispose();
    ps.forEach((p) => p.dispose());
  }
});

Deno.test("Optimizer: zeroGrad frees gradients by default, or zeroes them", async () => {
  const { ps, opt } = setup((ps) => new optim.SGD(ps, { lr: 0.1 }));
  scope(() => loss(ps[0], ps[1]).backward());
  opt.zeroGrad({ setToNone: false });
  assert.ok((await ps[0].grad!.data()).every((v) => v === 0));
  opt.zeroGrad();
  assert.equal(ps[0].grad, null);
  ps.forEach((p) => p.dispose());
});

Deno.test("Optimizer: invalid options and parameters throw PyTorch's errors", () => {
  const p = keep(randn([2]).requiresGrad_());
  assert.throws(() => new optim.SGD([p], { lr: -1 }), /Invalid learning rate/);
  assert.throws(() => new optim.SGD([p], { nesterov: true }), /Nesterov momentum requires/);
  assert.throws(
    () => new optim.Adam([p], { betas: [1, 0.9] }),
    /Invalid beta parameter at index 0/,
  );
  assert.throws(() => new optim.SGD([]), /empty parameter list/);
  assert.throws(
    () => new optim.SGD([{ params: [p] }, { params: [p] }]),
    /more than one group/,
  );
  p.dispose();
});

Deno.test("Optimizer: memory stays flat over 200 steps of each optimiser", () => {
  const makers: [string, (ps: Tensor[]) => optim.Optimizer][] = [
    ["SGD", (ps) => new optim.SGD(ps, { lr: 0.01, momentum: 0.9, nesterov: true })],
    ["Adam", (ps) => new optim.Adam(ps, { lr: 1e-3, amsgrad: true })],
    ["AdamW", (ps) => new optim.AdamW(ps, { lr: 1e-3 })],
    ["RMSprop", (ps) => new optim.RMSprop(ps, { momentum: 0.9, centered: true })],
    ["Adagrad", (ps) => new optim.Adagrad(ps, { lrDecay: 0.01 })],
  ];
  for (const [name, make] of makers) {
    manualSeed(1);
    const start = memory();
    const model = new nn.MLP(4, [16, 1]);
    const x = keep(randn([32, 4]));
    const y = keep(scope(() => x.sum(1, { keepdim: true }).sin()));
    const opt = make(model.parameters());
    const sched = new optim.StepLR(opt, { stepSize: 50 });
    let baseline = memory();
    for (let step = 0; step < 200; step++) {
      scope(() => F.mseLoss(model.forward(x), y).backward());
      optim.clipGradNorm(model.parameters(), 1).dispose();
      opt.step();
      opt.zeroGrad();
      sched.step();
      if (step === 5) baseline = memory();
    }
    const end = memory();
    assert.equal(end.tensors, baseline.tensors, `${name}: live tensors grew`);
    assert.equal(end.bytes, baseline.bytes, `${name}: live bytes grew`);
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
    assert.equal(memory().tensors, start.tensors, `${name}: dispose() left tensors behind`);
  }
});

Deno.test("Adam: trains an MLP to fit a smooth function", async () => {
  manualSeed(2);
  const model = new nn.MLP(2, [32, 32, 1], { activationLayer: () => new nn.Tanh() });
  const x = keep(randn([128, 2]));
  const y = keep(scope(() => x.select(1, 0).mul(x.select(1, 1)).unsqueeze(1)));
  const opt = new optim.Adam(model.parameters(), { lr: 1e-2 });
  const losses: number[] = [];
  for (let step = 0; step < 300; step++) {
    const l = scope(() => {
      const l = F.mseLoss(model.forward(x), y);
      l.backward();
      return l.detach();
    });
    opt.step();
    opt.zeroGrad();
    if (step % 100 === 0 || step === 299) losses.push((await l.item()) as number);
    l.dispose();
  }
  assert.ok(losses[losses.length - 1] < 0.1 * losses[0], `loss did not fall 10x: ${losses}`);
  opt.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
});

Deno.test("Optimizer: addParamGroup after construction (Adagrad creates its state) and closures", async () => {
  const { ps, opt } = setup((ps) => new optim.Adagrad(ps.slice(0, 2), { lr: 0.1 }));
  const extra = keep(randn([3]).requiresGrad_());
  opt.addParamGroup({ params: [extra], lr: 0.5 });
  assert.equal(opt.paramGroups[1].lr, 0.5);
  assert.equal(opt.paramGroups[1].lrDecay, 0, "defaults fill the options a group leaves out");
  assert.ok(opt.state.get(extra)?.sum, "Adagrad state for the new group");
  const before = await extra.data();
  const l = opt.step(() =>
    scope(() => {
      const l = loss(ps[0], ps[1]).add(extra.square().sum());
      l.backward();
      return l.detach();
    })
  );
  assert.ok(l && l.numel === 1, "step returns the closure's loss");
  const after = await extra.data();
  // First Adagrad step: θ - lr g / (|g| + eps) = θ - lr sign(g), with g = 2 θ.
  after.forEach((v, i) => assert.ok(Math.abs(v - (before[i] - 0.5 * Math.sign(before[i]))) < 1e-5));
  l!.dispose();
  opt.zeroGrad();
  opt.dispose();
  [...ps, extra].forEach((p) => p.dispose());
});
