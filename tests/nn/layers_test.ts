/**
 * Every nn layer against PyTorch (tests/fixtures/nn_optim.json, made by make_nn_fixtures.py):
 * PyTorch's state dict is loaded with loadStateDict, then each call's outputs, the gradients
 * of sum(output * cot) with respect to the inputs and every parameter, and (BatchNorm) the
 * running statistics must match.
 */
import assert from "node:assert/strict";
import { randn, scope, type Tensor } from "../../mod.ts";
import * as nn from "../../core/nn/mod.ts";
import { assertCloseEnc, type Enc, fromEnc, nnFixture, stateFrom } from "./_helpers.ts";

type Make = () => nn.Module;
const ln = (n: number) => new nn.LayerNorm(n);

/** Our module for each fixture case (same constructor arguments as the Python script). */
const BUILDERS: Record<string, Make> = {
  "Linear": () => new nn.Linear(5, 3),
  "Linear(bias=False)": () => new nn.Linear(5, 3, { bias: false }),
  "Bilinear": () => new nn.Bilinear(3, 4, 2),
  "Embedding(paddingIdx)": () => new nn.Embedding(10, 4, { paddingIdx: 1 }),
  "LayerNorm": () => new nn.LayerNorm([3, 4]),
  "RMSNorm": () => new nn.RMSNorm(4),
  "RMSNorm(eps)": () => new nn.RMSNorm([2, 4], { eps: 1e-3 }),
  "GroupNorm": () => new nn.GroupNorm(2, 4),
  "BatchNorm1d": () => new nn.BatchNorm1d(3),
  "BatchNorm1d(3D)": () => new nn.BatchNorm1d(3, { momentum: 0.3 }),
  "BatchNorm1d(momentum=None)": () => new nn.BatchNorm1d(3, { momentum: null }),
  "BatchNorm2d": () => new nn.BatchNorm2d(3),
  "ReLU": () => new nn.ReLU(),
  "GELU": () => new nn.GELU(),
  "GELU(tanh)": () => new nn.GELU({ approximate: "tanh" }),
  "SiLU": () => new nn.SiLU(),
  "Tanh": () => new nn.Tanh(),
  "Sigmoid": () => new nn.Sigmoid(),
  "LeakyReLU": () => new nn.LeakyReLU(0.2),
  "ELU": () => new nn.ELU(0.5),
  "Softplus": () => new nn.Softplus({ beta: 2, threshold: 5 }),
  "Softmax": () => new nn.Softmax(1),
  "LogSoftmax": () => new nn.LogSoftmax(0),
  "Flatten": () => new nn.Flatten(),
  "Identity": () => new nn.Identity(),
  "Sequential": () => new nn.Sequential(new nn.Linear(4, 6), new nn.Tanh(), new nn.Linear(6, 2)),
  "MLP": () => new nn.MLP(4, [8, 8, 3]),
  "MLP(norm)": () => new nn.MLP(4, [6, 3], { normLayer: ln, activationLayer: () => new nn.GELU() }),
  "MultiheadAttention(self, masks)": () => new nn.MultiheadAttention(8, 2),
  "MultiheadAttention(batchFirst, kdim, vdim)": () =>
    new nn.MultiheadAttention(8, 4, { kdim: 6, vdim: 3, batchFirst: true }),
  "MultiheadAttention(unbatched, no bias)": () => new nn.MultiheadAttention(8, 2, { bias: false }),
  "MultiheadAttention(need_weights=False)": () => new nn.MultiheadAttention(8, 2),
  "TransformerEncoderLayer(post-norm, relu)": () =>
    new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }),
  "TransformerEncoderLayer(pre-norm, gelu, batchFirst)": () =>
    new nn.TransformerEncoderLayer(8, 2, {
      dimFeedforward: 16,
      activation: "gelu",
      normFirst: true,
      batchFirst: true,
    }),
  "TransformerDecoderLayer(post-norm, relu)": () =>
    new nn.TransformerDecoderLayer(8, 2, { dimFeedforward: 16 }),
  "TransformerDecoderLayer(pre-norm, gelu, batchFirst)": () =>
    new nn.TransformerDecoderLayer(8, 2, {
      dimFeedforward: 16,
      activation: "gelu",
      normFirst: true,
      batchFirst: true,
    }),
  "Conv1d": () => new nn.Conv1d(3, 4, 3, { stride: 2, padding: 1 }),
  "Conv2d(groups)": () => new nn.Conv2d(2, 4, 3, { padding: 1, groups: 2 }),
  "Conv2d(reflect, same)": () =>
    new nn.Conv2d(2, 3, [2, 3], { padding: "same", paddingMode: "reflect", bias: false }),
  "Conv2d(circular, stride)": () =>
    new nn.Conv2d(2, 3, 3, { stride: 2, padding: 1, paddingMode: "circular" }),
  "ConvTranspose2d": () =>
    new nn.ConvTranspose2d(4, 2, 3, { stride: 2, padding: 1, outputPadding: 1 }),
  "MaxPool2d": () => new nn.MaxPool2d(2),
  "AvgPool2d": () => new nn.AvgPool2d(3, { stride: 2, padding: 1 }),
  "AdaptiveAvgPool2d": () => new nn.AdaptiveAvgPool2d([2, 3]),
};

const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

interface Call {
  train: boolean;
  inputs: Enc[];
  kwargs: Record<string, Enc | boolean>;
  outputs: (Enc | null)[];
  cot: Enc;
  input_grads: (Enc | null)[];
  param_grads: Record<string, Enc>;
}

interface Case {
  name: string;
  state: Record<string, Enc>;
  calls: Call[];
  state_after?: Record<string, Enc>;
}

const fx = await nnFixture();

Deno.test("nn fixtures: every PyTorch case has a builder", () => {
  const names = (fx.layers as Case[]).map((c) => c.name);
  assert.deepEqual(names.filter((n) => !BUILDERS[n]), []);
});

for (const c of fx.layers as Case[]) {
  Deno.test(`${c.name}: PyTorch weights give PyTorch outputs and gradients`, async () => {
    const m = BUILDERS[c.name]();
    const sd = stateFrom(c.state);
    assert.deepEqual(Object.keys(m.stateDict()), Object.keys(c.state), "state dict keys");
    m.loadStateDict(sd);
    for (const t of Object.values(sd)) t.dispose();
    for (const [i, call] of c.calls.entries()) {
      const what = `${c.name} call ${i}`;
      m.train(call.train);
      m.zeroGrad();
      // The graph is built and differentiated in a scope; only the results survive it.
      const r = scope(() => {
        const inputs = call.inputs.map((e) => fromEnc(e, { requiresGrad: !e.dtype }));
        const kwargs = Object.fromEntries(
          Object.entries(call.kwargs).map((
            [k, v],
          ) => [camel(k), typeof v === "object" ? fromEnc(v) : v]),
        );
        const args: unknown[] = Object.keys(kwargs).length ? [...inputs, kwargs] : inputs;
        const y = m.forward(...args);
        const outs: (Tensor | null)[] = Array.isArray(y) ? y : [y];
        outs[0]!.mul(fromEnc(call.cot)).sum().backward();
        return {
          outs: outs.map((o) => o?.detach() ?? null),
          inputGrads: inputs.map((x) => x.grad?.detach() ?? null),
        };
      });
      assert.equal(r.outs.length, call.outputs.length, `${what}: number of outputs`);
      for (const [j, e] of call.outputs.entries()) {
        if (e === null) assert.equal(r.outs[j], null, `${what}: output ${j} should be null`);
        else await assertCloseEnc(r.outs[j]!, e, `${what} output ${j}`);
      }
      for (const [j, e] of call.input_grads.entries()) {
        if (e) await assertCloseEnc(r.inputGrads[j]!, e, `${what} grad of input ${j}`);
      }
      const params = new Map(m.namedParameters());
      for (const [k, e] of Object.entries(call.param_grads)) {
        const g = params.get(k)?.grad;
        assert.ok(g, `${what}: no gradient for ${k}`);
        await assertCloseEnc(g, e, `${what} grad of ${k}`);
      }
      for (const t of [...r.outs, ...r.inputGrads]) t?.dispose();
    }
    if (c.state_after) {
      const after = m.stateDict();
      for (const [k, e] of Object.entries(c.state_after)) {
        await assertCloseEnc(after[k], e, `${c.name} ${k} after the calls`);
      }
    }
    m.dispose();
  });
}

Deno.test("MultiheadAttention isCausal: the same output with and without weights", async () => {
  const m = new nn.MultiheadAttention(8, 2);
  const x = randn([5, 3, 8]);
  const [a, w] = m.forward(x, x, x, { isCausal: true });
  const [b, none] = m.forward(x, x, x, { isCausal: true, needWeights: false });
  assert.equal(none, null);
  const [da, db] = [await a.data(), await b.data()];
  da.forEach((v, i) => assert.ok(Math.abs(v - db[i]) < 1e-5, `[${i}] ${v} vs ${db[i]}`));
  // The weights are causal: nothing above the diagonal.
  const wd = await w!.data(); // [N, L, S]
  for (let i = 0; i < wd.length; i++) if (i % 5 > Math.floor(i / 5) % 5) assert.equal(wd[i], 0);
  m.dispose();
});
