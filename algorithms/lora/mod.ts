/**
 * LoRA: Low-Rank Adaptation of Large Language Models.
 * Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang, Chen. ICLR 2022. arXiv:2106.09685.
 *
 * Not a catalog paper: the shared building block every parameter-efficient fine-tuning (PEFT)
 * module of paperlab builds on, and the baseline they are compared with. A frozen Linear
 * W0 (d_out x d_in) gets a trainable low-rank update
 *
 *   h = W0 x + (alpha / r) B A x          (Eq. 3; A: r x d_in, B: d_out x r)
 *
 * with A ~ kaiming-uniform and B = 0, so ΔW = (alpha / r) B A is zero at initialisation
 * (Sec. 4.1); rsLoRA (Kalajdzievski 2023, arXiv:2312.03732) scales by alpha / sqrt(r) instead.
 * After training ΔW merges into W0 (no inference latency, Sec. 4.1).
 *
 * What lives here, for every adapter paper to reuse: `LinearAdapter` (the generic "adapter on
 * a Linear": forward = base + delta, merge/unmerge, its own parameters), `injectAdapters`
 * (replace the Linear layers whose `namedModules` names match a pattern), freezing,
 * trainable-parameter counts and adapter save/load as safetensors.
 */
import { noGrad } from "../../core/autograd.ts";
import { loadSafetensors, saveSafetensors } from "../../core/io/safetensors.ts";
import { Dropout, init, Linear, Module } from "../../core/nn/mod.ts";
import { zeros } from "../../core/ops/creation.ts";
import type { Tensor } from "../../core/tensor.ts";

/**
 * An adapter wrapping a frozen Linear (registered as `base_layer`, PEFT's name). Subclasses
 * register their own parameters and define ΔW; the forward pass adds the adapter's output to
 * the base layer's unless the delta has been merged into the base weight.
 */
export abstract class LinearAdapter extends Module {
  readonly base: Linear;
  /** True after `merge()`: ΔW lives in the base weight and the forward skips the adapter. */
  merged = false;

  constructor(base: Linear) {
    super();
    this.base = this.registerModule("base_layer", base);
  }

  get inFeatures(): number {
    return this.base.inFeatures;
  }
  get outFeatures(): number {
    return this.base.outFeatures;
  }

  /** ΔW, shape [out, in], such that the adapted layer computes x (W0 + ΔW)^T + b. */
  abstract deltaWeight(): Tensor;

  /** The adapter's contribution for input x; the default is x ΔW^T (override when cheaper). */
  adapterForward(x: Tensor): Tensor {
    return x.matmul(this.deltaWeight().T);
  }

  forward(x: Tensor): Tensor {
    const y = this.base.forward(x);
    return this.merged ? y : y.add(this.adapterForward(x));
  }

  /** W0 <- W0 + ΔW (no gradient); the forward then costs what the base layer costs. */
  merge(): void {
    if (this.merged) return;
    noGrad(() => this.base.weight.assign(this.base.weight.add(this.deltaWeight())));
    this.merged = true;
  }

  /** Undoes `merge` (W0 <- W0 - ΔW), so the adapter can be trained further or swapped. */
  unmerge(): void {
    if (!this.merged) return;
    noGrad(() => this.base.weight.assign(this.base.weight.sub(this.deltaWeight())));
    this.merged = false;
  }

  /** The adapter's own parameters (everything but the base layer's), with local names. */
  adapterParameters(): [string, Tensor][] {
    return this.namedParameters().filter(([n]) => !n.startsWith("base_layer."));
  }
}

export interface LoRAOptions {
  /** Rank r of the update (default 8). */
  r?: number;
  /** alpha: the update is scaled by alpha / r (default 8, i.e. scale 1 at r = 8). */
  alpha?: number;
  /** Dropout on the adapter's input (default 0). */
  dropout?: number;
  /** rsLoRA: scale by alpha / sqrt(r) instead of alpha / r (default false). */
  useRsLora?: boolean;
}

/** h = W0 x + s B A dropout(x), s = alpha / r (Eq. 3). */
export class LoRALinear extends LinearAdapter {
  readonly r: number;
  readonly scaling: number;
  /** A: r x d_in, kaiming-uniform(a = sqrt 5) as PEFT initialises it. */
  loraA: Tensor;
  /** B: d_out x r, zero so that ΔW = 0 at initialisation. */
  loraB: Tensor;
  dropout: Dropout;

  constructor(base: Linear, o: LoRAOptions = {}) {
    super(base);
    const r = o.r ?? 8, alpha = o.alpha ?? 8;
    if (!Number.isInteger(r) || r < 1) {
      throw new Error(`LoRALinear: r must be a positive integer, got ${r}`);
    }
    this.r = r;
    this.scaling = o.useRsLora ? alpha / Math.sqrt(r) : alpha / r;
    this.loraA = this.registerParameter("lora_A", zeros([r, base.inFeatures]));
    this.loraB = this.registerParameter("lora_B", zeros([base.outFeatures, r]));
    this.dropout = this.registerModule("lora_dropout", new Dropout(o.dropout ?? 0));
    init.kaimingUniform(this.loraA, { a: Math.sqrt(5) });
  }

  deltaWeight(): Tensor {
    return this.loraB.matmul(this.loraA).mul(this.scaling); // (d_out, d_in)
  }

  /** x A^T B^T s: two thin matmuls, never the full d_out x d_in matrix. */
  override adapterForward(x: Tensor): Tensor {
    return this.dropout.forward(x).matmul(this.loraA.T).matmul(this.loraB.T).mul(this.scaling);
  }
}

/** Which Linear layers to adapt: names (exact, or suffixes after a ".") or a RegExp. */
export type TargetModules = string[] | RegExp;

function matches(name: string, target: TargetModules): boolean {
  if (target instanceof RegExp) return target.test(name);
  return target.some((t) => name === t || name.endsWith(`.${t}`));
}

/**
 * Replaces every Linear whose `namedModules` name matches `targetModules` by `create(linear,
 * name)`, freezes all other parameters and returns the replaced names. Throws when nothing
 * matches (a typo in the pattern should not silently train nothing).
 */
export function injectAdapters(
  model: Module,
  targetModules: TargetModules,
  create: (base: Linear, name: string) => LinearAdapter,
): string[] {
  const targets = model.namedModules().filter(([name, m]) =>
    name && m instanceof Linear && matches(name, targetModules)
  );
  if (!targets.length) {
    const linears = model.namedModules().filter(([, m]) => m instanceof Linear).map(([n]) => n);
    throw new Error(
      `injectAdapters: no Linear matches ${String(targetModules)}; Linear layers: ${
        linears.join(", ")
      }`,
    );
  }
  model.requiresGrad_(false);
  for (const [name, m] of targets) {
    const adapter = create(m as Linear, name);
    model.setSubmodule(name, adapter);
  }
  for (const [, p] of adapterParameters(model)) p.requiresGrad_(true);
  return targets.map(([n]) => n);
}

/** Adds LoRA to the matched Linear layers of `model` (frozen otherwise); returns their names. */
export function applyLoRA(
  model: Module,
  targetModules: TargetModules,
  o: LoRAOptions = {},
): string[] {
  return injectAdapters(model, targetModules, (base) => new LoRALinear(base, o));
}

/** The adapters in a model with their dotted names. */
export function adapters(model: Module): [string, LinearAdapter][] {
  return model.namedModules().filter(([, m]) => m instanceof LinearAdapter) as [
    string,
    LinearAdapter,
  ][];
}

/** Every adapter parameter of a model, with full dotted names ("layers.0.linear1.lora_A"). */
export function adapterParameters(model: Module): [string, Tensor][] {
  return adapters(model).flatMap(([prefix, a]) =>
    a.adapterParameters().map(([n, p]) => [prefix ? `${prefix}.${n}` : n, p] as [string, Tensor])
  );
}

/** Trainable and total parameter counts (PEFT's print_trainable_parameters). */
export function countParameters(model: Module): { trainable: number; total: number } {
  let trainable = 0, total = 0;
  for (const p of model.parameters()) {
    total += p.numel;
    if (p.requiresGrad) trainable += p.numel;
  }
  return { trainable, total };
}

export function mergeAdapters(model: Module): void {
  for (const [, a] of adapters(model)) a.merge();
}

export function unmergeAdapters(model: Module): void {
  for (const [, a] of adapters(model)) a.unmerge();
}

/** Writes only the adapter parameters (small files: the base model is stored once). */
export async function saveAdapters(path: string, model: Module): Promise<void> {
  await saveSafetensors(path, Object.fromEntries(adapterParameters(model)), {
    format: "paperlab-adapter",
  });
}

/** Loads adapter parameters saved by `saveAdapters` into a model with the same adapters. */
export async function loadAdapters(path: string, model: Module): Promise<void> {
  const saved = await loadSafetensors(path);
  const own = new Map(adapterParameters(model));
  const missing = [...own.keys()].filter((k) => !(k in saved));
  const unexpected = Object.keys(saved).filter((k) => !own.has(k));
  if (missing.length || unexpected.length) {
    Object.values(saved).forEach((t) => t.dispose());
    throw new Error(
      `loadAdapters: ${path} does not fit the model's adapters (missing: ${
        missing.join(", ") || "none"
      }; ` +
        `unexpected: ${unexpected.join(", ") || "none"})`,
    );
  }
  for (const [k, p] of own) {
    if (saved[k].shape.join() !== p.shape.join()) {
      throw new Error(
        `loadAdapters: ${k} has shape [${saved[k].shape}] in ${path}, the model has [${p.shape}]`,
      );
    }
    p.assign(saved[k]);
    saved[k].dispose();
  }
}
