/**
 * NOLA: Compressing LoRA using Linear Combination of Random Basis.
 * Koohpayegani, Navaneet, Nooralinejad, Kolouri, Pirsiavash. ICLR 2024. arXiv:2310.02556.
 * Catalog id P067.
 *
 * LoRA's update of a frozen Linear W0 (m x n, out x in) is ΔW = A B with A: m x r and
 * B: r x n. NOLA re-parameterises both factors as linear combinations of frozen random
 * matrices and trains only the mixture coefficients:
 *
 *   ΔW = s (Σ_{i=1}^k α_i A_i) (Σ_{j=1}^l β_j B_j),   s = alpha / r     (the method section)
 *
 * so a layer trains k + l scalars whatever its shape and rank (LoRA trains r (m + n) >= m + n).
 * The bases A_i (m x r) and B_j (r x n) are regenerated from one integer seed per layer and never
 * stored: `saveNola` writes only the k + l coefficients and the seed of each layer, and
 * `loadNola` regenerates the bases from the saved seeds. Initialisation: α = 0 (A = 0, like
 * LoRA's zero factor, so ΔW = 0 and the model starts at the pretrained function) and β_j = 1;
 * the bases are uniform with bound 1 / sqrt(fan_in · count), so that with unit coefficients
 * Σ_j β_j B_j has the variance of LoRA's kaiming-initialised factor whatever l (the official
 * code likewise scales U(-1, 1) bases by 1 / sqrt(number of bases)). After training ΔW merges
 * into W0 like LoRA's (`merge`, from LinearAdapter).
 */
import { noGrad } from "../../core/autograd.ts";
import { loadSafetensors, saveSafetensors } from "../../core/io/safetensors.ts";
import type { Linear, Module } from "../../core/nn/mod.ts";
import { ones, tensor, zeros } from "../../core/ops/creation.ts";
import { Generator, mix32 } from "../../core/random.ts";
import type { Tensor } from "../../core/tensor.ts";
import { adapters, injectAdapters, LinearAdapter, type TargetModules } from "../lora/mod.ts";

export interface NOLAOptions {
  /** Rank r of A (m x r) and B (r x n) (default 8, the paper's GPT-2 setting). */
  r?: number;
  /** k: number of random bases A_i of the up-projection A (default 1024). */
  k?: number;
  /** l: number of random bases B_j of the down-projection B (default: k). */
  l?: number;
  /** alpha: ΔW is scaled by alpha / r (default 8, scale 1 at r = 8, as LoRALinear). */
  alpha?: number;
  /** The seed the bases are generated from (default 0); `applyNOLA` derives one per layer. */
  seed?: number;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new Error(`NOLALinear: ${name} must be a positive integer, got ${v}`);
  }
  return v;
}

/**
 * `count` random matrices of shape rows x cols, uniform in ±1 / sqrt(cols · count) (kaiming
 * bound over the number of bases), generated from `seed` alone: [count, rows · cols].
 */
export function randomBasis(seed: number, count: number, rows: number, cols: number): Tensor {
  const gen = new Generator(seed);
  const bound = 1 / Math.sqrt(cols * count);
  const v = new Float32Array(count * rows * cols);
  for (let i = 0; i < v.length; i++) v[i] = gen.uniform(-bound, bound);
  return tensor(v, { shape: [count, rows * cols] });
}

/** The two basis seeds of a layer seed (A's and B's bases come from independent streams). */
function basisSeeds(seed: number): [number, number] {
  return [mix32(seed ^ 0x41) & 0x7fffffff, mix32(seed ^ 0x42) & 0x7fffffff];
}

/** h = W0 x + s A B x with A = Σ α_i A_i, B = Σ β_j B_j; only α and β train. */
export class NOLALinear extends LinearAdapter {
  readonly r: number;
  readonly k: number;
  readonly l: number;
  readonly scaling: number;
  /** The layer's seed: the only thing needed, with k, l, r and the shape, to rebuild the bases. */
  seed: number;
  /** α: k coefficients of the bases A_i, zero at initialisation (ΔW = 0). */
  nolaAlpha: Tensor;
  /** β: l coefficients of the bases B_j, one at initialisation. */
  nolaBeta: Tensor;
  /** The frozen bases A_i, [k, m · r] (a non-persistent buffer: regenerated, never saved). */
  basisA!: Tensor;
  /** The frozen bases B_j, [l, r · n] (a non-persistent buffer). */
  basisB!: Tensor;

  constructor(base: Linear, o: NOLAOptions = {}) {
    super(base);
    this.r = positiveInt("r", o.r ?? 8);
    this.k = positiveInt("k", o.k ?? 1024);
    this.l = positiveInt("l", o.l ?? this.k);
    this.scaling = (o.alpha ?? 8) / this.r;
    this.nolaAlpha = this.registerParameter("nola_alpha", zeros([this.k]));
    this.nolaBeta = this.registerParameter("nola_beta", ones([this.l]));
    this.seed = 0;
    this.reseed(o.seed ?? 0);
  }

  /** Regenerates the bases from `seed` (what `loadNola` does with a saved layer's seed). */
  reseed(seed: number): void {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0x7fffffff) {
      throw new Error(`NOLALinear: seed must be an integer in [0, 2^31), got ${seed}`);
    }
    const old = [this.basisA, this.basisB];
    const [sa, sb] = basisSeeds(seed);
    const m = this.outFeatures, n = this.inFeatures, r = this.r;
    this.basisA = this.registerBuffer("nola_basis_A", randomBasis(sa, this.k, m, r), {
      persistent: false,
    });
    this.basisB = this.registerBuffer("nola_basis_B", randomBasis(sb, this.l, r, n), {
      persistent: false,
    });
    old.forEach((t) => t?.dispose());
    this.seed = seed;
  }

  /** A = Σ_i α_i A_i: [m, r]. */
  factorA(): Tensor {
    return this.nolaAlpha.unsqueeze(0).matmul(this.basisA) // (1, m · r)
      .reshape([this.outFeatures, this.r]); // (m, r)
  }

  /** B = Σ_j β_j B_j: [r, n]. */
  factorB(): Tensor {
    return this.nolaBeta.unsqueeze(0).matmul(this.basisB) // (1, r · n)
      .reshape([this.r, this.inFeatures]); // (r, n)
  }

  deltaWeight(): Tensor {
    return this.factorA().matmul(this.factorB()).mul(this.scaling); // (m, n): s A B
  }

  /** s x B^T A^T: two thin matmuls after combining the bases. */
  override adapterForward(x: Tensor): Tensor {
    return x.matmul(this.factorB().T).matmul(this.factorA().T).mul(this.scaling);
  }

  override extraRepr(): string {
    return `r=${this.r}, k=${this.k}, l=${this.l}, seed=${this.seed}`;
  }
}

/** FNV-1a hash of a layer name, for per-layer seeds. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The seed of layer `name` under base seed `seed` (deterministic, in [0, 2^31)). */
export function layerSeed(seed: number, name: string): number {
  return mix32((seed >>> 0) ^ mix32(hashName(name))) & 0x7fffffff;
}

/**
 * Adds NOLA to the matched Linear layers (everything else frozen) and returns their names.
 * `k` and `l` may be functions of the layer's shape (to give each layer a share of a budget).
 */
export function applyNOLA(
  model: Module,
  targetModules: TargetModules,
  o: Omit<NOLAOptions, "k" | "l"> & {
    k?: number | ((out: number, inp: number) => number);
    l?: number | ((out: number, inp: number) => number);
  } = {},
): string[] {
  const seed = o.seed ?? 0;
  return injectAdapters(model, targetModules, (base, name) => {
    const at = (v: number | ((a: number, b: number) => number) | undefined) =>
      typeof v === "function" ? v(base.outFeatures, base.inFeatures) : v;
    const k = at(o.k);
    return new NOLALinear(base, { ...o, k, l: at(o.l) ?? k, seed: layerSeed(seed, name) });
  });
}

/** The NOLA layers of a model with their dotted names. */
export function nolaLayers(model: Module): [string, NOLALinear][] {
  return adapters(model).filter(([, a]) => a instanceof NOLALinear) as [string, NOLALinear][];
}

/**
 * Writes a NOLA adapter as the paper stores it: per layer only its k + l coefficients
 * ("<layer>.nola_alpha", "<layer>.nola_beta") and its seed ("<layer>.nola_seed", int32); no
 * basis. k, l, r and alpha are recorded in the metadata.
 */
export async function saveNola(path: string, model: Module): Promise<void> {
  const layers = nolaLayers(model);
  if (!layers.length) throw new Error("saveNola: the model has no NOLA layers");
  const out = new Map<string, Tensor>();
  const seeds: Tensor[] = [];
  for (const [name, a] of layers) {
    out.set(`${name}.nola_alpha`, a.nolaAlpha);
    out.set(`${name}.nola_beta`, a.nolaBeta);
    const s = tensor([a.seed], { dtype: "int32" });
    seeds.push(s);
    out.set(`${name}.nola_seed`, s);
  }
  const meta = Object.fromEntries(
    layers.map(([n, a]) => [n, `r=${a.r},k=${a.k},l=${a.l},scaling=${a.scaling}`]),
  );
  try {
    await saveSafetensors(path, out, { format: "paperlab-nola", ...meta });
  } finally {
    seeds.forEach((s) => s.dispose());
  }
}

/**
 * Loads a file written by `saveNola` into a model with NOLA layers of the same names and
 * sizes: each layer regenerates its bases from the saved seed, then takes the coefficients.
 */
export async function loadNola(path: string, model: Module): Promise<void> {
  const saved = await loadSafetensors(path);
  try {
    const layers = nolaLayers(model);
    const expected = new Set(
      layers.flatMap(([n]) => [`${n}.nola_alpha`, `${n}.nola_beta`, `${n}.nola_seed`]),
    );
    const missing = [...expected].filter((k) => !(k in saved));
    const unexpected = Object.keys(saved).filter((k) => !expected.has(k));
    if (missing.length || unexpected.length) {
      throw new Error(
        `loadNola: ${path} does not fit the model's NOLA layers (missing: ${
          missing.join(", ") || "none"
        }; unexpected: ${unexpected.join(", ") || "none"})`,
      );
    }
    for (const [n, a] of layers) {
      const [al, be] = [saved[`${n}.nola_alpha`], saved[`${n}.nola_beta`]];
      if (al.numel !== a.k || be.numel !== a.l) {
        throw new Error(
          `loadNola: ${n} has k=${al.numel}, l=${be.numel} in ${path}, the model has k=${a.k}, l=${a.l}`,
        );
      }
    }
    for (const [n, a] of layers) {
      const seed = (await saved[`${n}.nola_seed`].data())[0];
      if (seed !== a.seed) a.reseed(seed);
      noGrad(() => {
        a.nolaAlpha.assign(saved[`${n}.nola_alpha`]);
        a.nolaBeta.assign(saved[`${n}.nola_beta`]);
      });
    }
  } finally {
    Object.values(saved).forEach((t) => t.dispose());
  }
}
