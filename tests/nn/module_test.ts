/** Module: registration, names, traversal, modes, state dicts, strict loading, lifetimes. */
import assert from "node:assert/strict";
import { manualSeed, memory, ones, scope, type Tensor, tensor, zeros } from "../../mod.ts";
import * as nn from "../../core/nn/mod.ts";
import { moments } from "./_helpers.ts";

/** A small model with a buffer, a child list and a nested Sequential. */
class Net extends nn.Module {
  scale: Tensor;
  steps: Tensor;
  layers: nn.ModuleList;
  head: nn.Sequential;
  constructor() {
    super();
    this.scale = this.registerParameter("scale", ones([4]));
    this.steps = this.registerBuffer("steps", zeros([1]));
    this.layers = this.registerModule(
      "layers",
      new nn.ModuleList([new nn.Linear(4, 4), new nn.Linear(4, 4, { bias: false })]),
    );
    this.head = this.registerModule("head", new nn.Sequential(new nn.ReLU(), new nn.Linear(4, 2)));
  }
  forward(x: Tensor): Tensor {
    let h = x.mul(this.scale);
    for (const l of this.layers) h = l.forward(h);
    return this.head.forward(h);
  }
}

Deno.test("Module: namedParameters uses PyTorch's dotted names in registration order", () => {
  const m = new Net();
  assert.deepEqual(m.namedParameters().map(([n]) => n), [
    "scale",
    "layers.0.weight",
    "layers.0.bias",
    "layers.1.weight",
    "head.1.weight",
    "head.1.bias",
  ]);
  assert.equal(m.parameters().length, 6);
  assert.ok(m.parameters().every((p) => p.requiresGrad && p.isLeaf));
  assert.equal(m.numParameters(), 4 + 20 + 16 + 10);
  m.dispose();
});

Deno.test("Module: stateDict holds parameters then buffers per module, PyTorch's order", () => {
  const m = new Net();
  assert.deepEqual(Object.keys(m.stateDict()), [
    "scale",
    "steps",
    "layers.0.weight",
    "layers.0.bias",
    "layers.1.weight",
    "head.1.weight",
    "head.1.bias",
  ]);
  assert.deepEqual(m.namedBuffers().map(([n]) => n), ["steps"]);
  m.dispose();
});

Deno.test("Module: non-persistent buffers stay out of the state dict", () => {
  class M extends nn.Module {
    a = this.registerBuffer("a", zeros([2]));
    b = this.registerBuffer("b", zeros([2]), { persistent: false });
    forward() {}
  }
  const m = new M();
  assert.deepEqual(Object.keys(m.stateDict()), ["a"]);
  assert.deepEqual(m.namedBuffers().map(([n]) => n), ["a", "b"]);
  m.dispose();
});

Deno.test("Module: namedModules is pre-order with the root named ''", () => {
  const m = new Net();
  assert.deepEqual(m.namedModules().map(([n, x]) => `${n}:${x.constructor.name}`), [
    ":Net",
    "layers:ModuleList",
    "layers.0:Linear",
    "layers.1:Linear",
    "head:Sequential",
    "head.0:ReLU",
    "head.1:Linear",
  ]);
  assert.deepEqual(m.namedChildren().map(([n]) => n), ["layers", "head"]);
  assert.equal(m.children().length, 2);
  assert.equal(m.modules().length, 7);
  m.dispose();
});

Deno.test("Module: train/eval set the flag recursively and apply visits children first", () => {
  const m = new Net();
  assert.ok(m.modules().every((x) => x.training));
  m.eval();
  assert.ok(m.modules().every((x) => !x.training));
  m.train();
  assert.ok(m.modules().every((x) => x.training));
  const seen: string[] = [];
  m.apply((x) => seen.push(x.constructor.name));
  assert.deepEqual(seen, ["Linear", "Linear", "ModuleList", "ReLU", "Linear", "Sequential", "Net"]);
  m.dispose();
});

Deno.test("Module: stateDict round-trips into a fresh model (same outputs)", async () => {
  manualSeed(1);
  const a = new Net(), b = new Net();
  const x = tensor([[0.5, -1, 2, 0.25]]);
  const ya = await a.forward(x).data(), yb0 = await b.forward(x).data();
  assert.notDeepEqual(ya, yb0, "two random models should differ");
  const res = b.loadStateDict(a.stateDict());
  assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
  assert.deepEqual(await b.forward(x).data(), ya);
  // Loading shares storage, never the objects: updating a leaves b unchanged.
  const before = await b.layers.at(0).stateDict().weight.data();
  scope(() => a.layers.at(0).stateDict().weight.assign(zeros([4, 4])));
  assert.deepEqual(await b.layers.at(0).stateDict().weight.data(), before);
  a.dispose();
  b.dispose();
  x.dispose();
});

Deno.test("Module: strict loading lists missing and unexpected keys and changes nothing", async () => {
  const m = new Net();
  const sd = { ...m.stateDict() };
  const before = await m.scale.data();
  delete sd["head.1.bias"];
  const extra = ones([3]);
  sd["head.2.weight"] = extra;
  sd.scale = zeros([4]);
  assert.throws(
    () => m.loadStateDict(sd),
    (e: Error) =>
      e.message.includes("Missing key(s) in state_dict: head.1.bias.") &&
      e.message.includes("Unexpected key(s) in state_dict: head.2.weight."),
  );
  assert.deepEqual(await m.scale.data(), before, "a failed load must not change parameters");
  const res = m.loadStateDict(sd, { strict: false });
  assert.deepEqual(res, { missingKeys: ["head.1.bias"], unexpectedKeys: ["head.2.weight"] });
  assert.deepEqual([...await m.scale.data()], [0, 0, 0, 0]);
  extra.dispose();
  sd.scale.dispose();
  m.dispose();
});

Deno.test("Module: loading a wrongly shaped tensor throws a size mismatch even when not strict", () => {
  const m = new nn.Linear(3, 2);
  const w = zeros([3, 2]);
  assert.throws(
    () => m.loadStateDict({ weight: w }, { strict: false }),
    /size mismatch for weight: copying a param with shape \[3, 2\] from checkpoint, the shape in current model is \[2, 3\]/,
  );
  w.dispose();
  m.dispose();
});

Deno.test("BatchNorm: num_batches_tracked may be missing from a checkpoint (as PyTorch)", () => {
  const bn = new nn.BatchNorm1d(2);
  const sd = { ...bn.stateDict() };
  delete sd.num_batches_tracked;
  assert.deepEqual(bn.loadStateDict(sd), { missingKeys: [], unexpectedKeys: [] });
  bn.dispose();
});

Deno.test("Module: parameters survive scope() and dispose() frees them all", () => {
  const before = memory();
  const m = scope(() => new Net());
  assert.ok(m.parameters().every((p) => !p.isDisposed));
  assert.ok(memory().tensors > before.tensors);
  m.dispose();
  assert.ok(m.parameters().every((p) => p.isDisposed));
  const after = memory();
  assert.equal(after.tensors, before.tensors, "dispose() must free every parameter and buffer");
  assert.equal(after.bytes, before.bytes);
});

Deno.test("Module: zeroGrad frees or zeroes gradients; requiresGrad_ freezes", async () => {
  const m = new nn.Linear(3, 2);
  scope(() => m.forward(ones([1, 3])).sum().backward());
  assert.ok(m.weight.grad && m.bias!.grad);
  m.zeroGrad({ setToNone: false });
  assert.deepEqual([...await m.weight.grad!.data()], [0, 0, 0, 0, 0, 0]);
  m.zeroGrad();
  assert.equal(m.weight.grad, null);
  m.requiresGrad_(false);
  assert.equal(m.numParameters({ trainableOnly: true }), 0);
  assert.ok(!scope(() => m.forward(ones([1, 3])).requiresGrad));
  m.dispose();
});

Deno.test("Module: tied weights are listed once by parameters() but keyed twice in stateDict", () => {
  class Tied extends nn.Module {
    emb = this.registerModule("emb", new nn.Embedding(5, 3));
    out = this.registerModule("out", new nn.Linear(3, 5, { bias: false }));
    constructor() {
      super();
      this.out.weight.dispose(); // the untied weight it replaces
      this.out.registerParameter("weight", this.emb.weight);
    }
    forward() {}
  }
  const m = new Tied();
  assert.equal(m.out.weight, m.emb.weight, "re-registering updates the field");
  assert.deepEqual(m.namedParameters().map(([n]) => n), ["emb.weight"]);
  assert.deepEqual(Object.keys(m.stateDict()), ["emb.weight", "out.weight"]);
  m.dispose();
});

Deno.test("Module: setSubmodule replaces a child in the registry and in its field", () => {
  const m = new Net();
  const old = m.head;
  const fresh = new nn.Sequential(new nn.Linear(4, 3));
  m.setSubmodule("head", fresh);
  assert.equal(m.head, fresh);
  assert.equal(m.getSubmodule("head.0"), fresh.at(0));
  assert.deepEqual(Object.keys(m.stateDict()).slice(-2), ["head.0.weight", "head.0.bias"]);
  assert.throws(() => m.getSubmodule("layers.7"), /has no child "7"/);
  old.dispose();
  m.dispose();
});

Deno.test("Module: registering a name twice as different kinds throws", () => {
  class Bad extends nn.Module {
    constructor() {
      super();
      this.registerParameter("w", ones([1]));
      this.registerBuffer("w", ones([1]));
    }
    forward() {}
  }
  assert.throws(() => new Bad(), /already registered/);
  assert.throws(() => new nn.Sequential().registerModule("a.b", new nn.ReLU()), /contain no "."/);
});

Deno.test("Dropout: identity in eval, zeroes about p of the elements and rescales in train", async () => {
  manualSeed(3);
  const d = new nn.Dropout(0.25);
  const x = ones([4000]);
  const y = d.forward(x);
  const vals = await y.data();
  const zerosFrac = vals.filter((v) => v === 0).length / vals.length;
  assert.ok(Math.abs(zerosFrac - 0.25) < 0.03, `zero fraction ${zerosFrac}`);
  assert.ok(vals.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
  d.eval();
  assert.equal(d.forward(x), x);
  const { mean } = await moments(y);
  assert.ok(Math.abs(mean - 1) < 0.05, `mean ${mean} should stay ~1`);
  x.dispose();
  y.dispose();
});

Deno.test("Module: toString prints a PyTorch-style tree", () => {
  const m = new nn.Sequential(new nn.Linear(2, 3), new nn.ReLU());
  assert.equal(
    String(m),
    "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=true)\n  (1): ReLU()\n)",
  );
  m.dispose();
});
