/**
 * The contract every PEFT method joins (as PEFT's shared test matrix): one call registers
 * the generic tests for a method that turns the Linear layers of a model into adapters.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  adapterParameters,
  countParameters,
  mergeAdapters,
  unmergeAdapters,
} from "../../algorithms/lora/mod.ts";
import { F, manualSeed, nn, noGrad, randn, scope, type Tensor } from "../../mod.ts";

export interface PeftCase {
  /** The method's name in test titles. */
  name: string;
  /** Adds the method's adapters to the Linear layers named "0" and "2" of the model. */
  apply(model: nn.Module): void;
  /** Trainable parameters the method should have on the reference model (see `tinyModel`). */
  expectedTrainable: number;
  /** Whether the paper's initialisation leaves the model unchanged (ΔW = 0). */
  zeroDeltaAtInit: boolean;
}

/** The reference model: Linear(8, 16) -> ReLU -> Linear(16, 4), seeded. */
export function tinyModel(seed = 0): nn.Sequential {
  manualSeed(seed);
  return new nn.Sequential(new nn.Linear(8, 16), new nn.ReLU(), new nn.Linear(16, 4));
}

async function maxDiff(a: Tensor, b: Tensor): Promise<number> {
  const [x, y] = [await a.data(), await b.data()];
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

/** Moves every adapter parameter away from its initial value (so ΔW != 0). */
function perturb(model: nn.Module): void {
  noGrad(() => {
    for (const [, p] of adapterParameters(model)) p.assign(p.add(randn([...p.shape]).mul(0.1)));
  });
}

export function peftContract(c: PeftCase): void {
  const x = () => (manualSeed(123), randn([5, 8]));

  Deno.test(`${c.name}: trainable parameters are the adapter's and number ${c.expectedTrainable}`, () => {
    const m = tinyModel();
    c.apply(m);
    assert.equal(countParameters(m).trainable, c.expectedTrainable);
    const adapterNames = new Set(adapterParameters(m).map(([n]) => n));
    for (const [n, p] of m.namedParameters()) assert.equal(p.requiresGrad, adapterNames.has(n), n);
    m.dispose();
  });

  if (c.zeroDeltaAtInit) {
    Deno.test(`${c.name}: ΔW is zero at initialisation, so outputs are unchanged`, async () => {
      const base = tinyModel(), m = tinyModel();
      c.apply(m);
      const d = await maxDiff(base.forward(x()), m.forward(x()));
      assert.ok(d < 1e-6, `outputs changed by ${d}`);
      base.dispose();
      m.dispose();
    });
  }

  Deno.test(`${c.name}: merge and unmerge preserve the function and the base weights`, async () => {
    const m = tinyModel();
    c.apply(m);
    perturb(m);
    const w0 = (m.getSubmodule("0.base_layer") as nn.Linear).weight.clone();
    const before = m.forward(x());
    mergeAdapters(m);
    assert.ok((await maxDiff(before, m.forward(x()))) < 1e-5, "merged output differs");
    const merged = (m.getSubmodule("0.base_layer") as nn.Linear).weight;
    assert.ok((await maxDiff(w0, merged)) > 1e-4, "merge did not change the base weight");
    unmergeAdapters(m);
    assert.ok((await maxDiff(w0, (m.getSubmodule("0.base_layer") as nn.Linear).weight)) < 1e-5);
    assert.ok((await maxDiff(before, m.forward(x()))) < 1e-5, "unmerged output differs");
    m.dispose();
  });

  Deno.test(`${c.name}: gradients reach only the adapter parameters`, () => {
    const m = tinyModel();
    c.apply(m);
    perturb(m);
    scope(() => F.crossEntropy(m.forward(x()), randn([5]).gt(0).int()).backward());
    const adapterNames = new Set(adapterParameters(m).map(([n]) => n));
    for (const [n, p] of m.namedParameters()) {
      if (adapterNames.has(n)) assert.ok(p.grad, `${n} got no gradient`);
      else assert.equal(p.grad, null, `${n} is frozen but got a gradient`);
    }
    m.dispose();
  });

  Deno.test(`${c.name}: adapters saved to safetensors load into a fresh model`, async () => {
    const { saveAdapters, loadAdapters } = await import("../../algorithms/lora/mod.ts");
    const a = tinyModel();
    c.apply(a);
    perturb(a);
    const path = join(await Deno.makeTempDir(), "adapter.safetensors");
    await saveAdapters(path, a);
    const b = tinyModel();
    c.apply(b);
    await loadAdapters(path, b);
    assert.ok((await maxDiff(a.forward(x()), b.forward(x()))) < 1e-6);
    a.dispose();
    b.dispose();
  });
}
