/**
 * Measuring the Intrinsic Dimension of Objective Landscapes.
 * Li, Farkhoor, Liu, Yosinski. ICLR 2018. arXiv:1804.08838. Catalog id P028.
 *
 * Training in a random subspace: the D native parameters θ^(D) of any network are tied to d
 * trainable coordinates θ^(d) through a fixed random projection,
 *
 *   θ^(D) = θ_0^(D) + P θ^(d)          (Eq. 2; θ_0 a random initialisation, θ^(d) = 0 at start)
 *
 * and only θ^(d) is optimised. Sweeping d, the intrinsic dimension d_int90 is the smallest d
 * whose solution reaches 90% of the full-space baseline's performance (Sec. 2). Implemented:
 * the dense projection (P ~ N(0, 1), columns normalised to unit length, Sec. 2), the Fastfood
 * projection (Le, Sarlós & Smola 2013; the paper's appendix): P θ = (H G Π H B pad(θ))[:D] /
 * (sqrt(L Σ G²) sqrt(D / L)) with Walsh-Hadamard transforms H of size L = 2^ceil(log2 D), so
 * columns have unit norm in expectation and nothing of size D x d is stored; `SubspaceModule`,
 * which wraps any `nn.Module` and substitutes θ_0 + P θ^(d) for its parameters functionally on
 * every forward (gradients reach θ^(d) only); and the d_int90 read-out of a sweep. The sparse
 * projection of the paper is not implemented (dense and Fastfood cover its range here).
 */
import { Module } from "../../core/nn/module.ts";
import { cat } from "../../core/ops/shape.ts";
import { zeros } from "../../core/ops/creation.ts";
import type { Tensor } from "../../core/tensor.ts";
import { makeProjection, type Projection, type ProjectionKind } from "./projections.ts";

export * from "./projections.ts";

export interface SubspaceOptions {
  /** d, the number of trainable coordinates (required; 1 <= d <= D). */
  d: number;
  /** "dense" (the default, the paper's choice for small D), "fastfood", or a ready Projection. */
  projection?: ProjectionKind | Projection;
}

/** Where a native parameter lives: its offset in θ^(D) and every module field holding it. */
interface Slot {
  param: Tensor;
  offset: number;
  holders: [Module, string][];
}

/**
 * Wraps any module so that it trains in a d-dimensional random subspace (Eq. 2). The wrapped
 * module's parameters are frozen and hold θ_0; the only trainable parameter is `thetaD`
 * ("theta_d", zeros at start, so the wrapper computes exactly what the module did). Each
 * forward computes P θ^(d) once, and substitutes θ_0 + (P θ^(d))[slice] for every parameter
 * in the fields that hold it, calls the module's forward, and restores the fields, so
 * gradients flow to θ^(d) only. Parameters are laid out in `namedParameters()` order.
 */
export class SubspaceModule<M extends Module = Module> extends Module {
  readonly module: M;
  /** θ^(d): [d], the trainable coordinates. */
  thetaD: Tensor;
  readonly projection: Projection;
  /** D, the number of native parameters. */
  readonly D: number;
  readonly #slots: Slot[];

  constructor(module: M, o: SubspaceOptions) {
    super();
    const named = module.namedParameters();
    const D = named.reduce((n, [, p]) => n + p.numel, 0);
    if (D === 0) throw new Error("SubspaceModule: the module has no parameters");
    const d = o?.d;
    if (!Number.isInteger(d) || d < 1 || d > D) {
      throw new Error(`SubspaceModule: d must be an integer in [1, D = ${D}], got ${d}`);
    }
    let offset = 0;
    this.#slots = named.map(([, param]) => {
      const s = { param, offset, holders: [] as [Module, string][] };
      offset += param.numel;
      return s;
    });
    const byParam = new Map(this.#slots.map((s) => [s.param, s]));
    for (const m of module.modules()) {
      for (const [k, v] of Object.entries(m)) {
        const s = byParam.get(v as Tensor);
        if (s) s.holders.push([m, k]);
      }
    }
    const hidden = named.filter(([, p]) => !byParam.get(p)!.holders.length).map(([n]) => n);
    if (hidden.length) {
      throw new Error(
        `SubspaceModule: parameter(s) ${hidden.join(", ")} are not held in a public field of ` +
          "their module, so they cannot be substituted functionally",
      );
    }
    this.module = this.registerModule("module", module);
    module.requiresGrad_(false); // θ_0 is fixed
    this.D = D;
    const p = o.projection ?? "dense";
    this.projection = typeof p === "string" ? makeProjection(p, D, d) : p;
    if (this.projection.D !== D || this.projection.d !== d) {
      throw new Error(
        `SubspaceModule: the projection maps ${this.projection.d} -> ${this.projection.D}, ` +
          `expected ${d} -> ${D}`,
      );
    }
    this.thetaD = this.registerParameter("theta_d", zeros([d]));
  }

  get d(): number {
    return this.projection.d;
  }

  /** The offset P θ^(d): [D] (differentiable in θ^(d)). */
  offset(): Tensor {
    return this.projection.project(this.thetaD);
  }

  /** θ^(D) = θ_0 + P θ^(d), flattened in `namedParameters()` order: [D]. */
  theta(): Tensor {
    const delta = this.offset();
    const theta0 = cat(this.#slots.map((s) => s.param.reshape([-1]))); // (D,)
    return theta0.add(delta);
  }

  /** Runs `fn` with every parameter field of the module replaced by θ_0 + P θ^(d). */
  withSubspaceParameters<T>(fn: () => T): T {
    const delta = this.offset();
    const saved: [Module, string, unknown][] = [];
    try {
      for (const s of this.#slots) {
        const slice = delta.narrow(0, s.offset, s.param.numel).reshape([...s.param.shape]);
        const w = s.param.add(slice); // Eq. 2 for this parameter
        for (const [m, k] of s.holders) {
          const rec = m as unknown as Record<string, unknown>;
          saved.push([m, k, rec[k]]);
          rec[k] = w;
        }
      }
      return fn();
    } finally {
      for (const [m, k, v] of saved.reverse()) (m as unknown as Record<string, unknown>)[k] = v;
    }
  }

  forward(...args: any[]): any {
    return this.withSubspaceParameters(() => this.module.forward(...args));
  }

  /** Frees θ^(d), θ_0 and the projection. */
  override dispose(): void {
    super.dispose();
    this.projection.dispose();
  }
}

/** One point of a d sweep: subspace dimension and the performance reached (higher is better). */
export interface SweepPoint {
  d: number;
  performance: number;
}

export interface IntrinsicDimension {
  /** fraction x baseline. */
  threshold: number;
  /** d_int90: the smallest swept d whose performance reaches the threshold (null: none). */
  dInt: number | null;
  /**
   * d_int90 between grid points: log-linear interpolation of performance between the last d
   * below and the first d at or above the threshold (equals dInt when the first d passes).
   */
  dIntInterpolated: number | null;
}

/**
 * d_int90 of a sweep (Sec. 2): the first d (in increasing order) whose performance reaches
 * `fraction` (default 0.9) of the full-space baseline's.
 */
export function intrinsicDimension(
  points: SweepPoint[],
  baseline: number,
  o: { fraction?: number } = {},
): IntrinsicDimension {
  const fraction = o.fraction ?? 0.9;
  if (!(fraction > 0 && fraction <= 1)) {
    throw new Error(`intrinsicDimension: fraction must be in (0, 1], got ${fraction}`);
  }
  if (!points.length) throw new Error("intrinsicDimension: expected at least one sweep point");
  const threshold = fraction * baseline;
  const sorted = [...points].sort((a, b) => a.d - b.d);
  const i = sorted.findIndex((p) => p.performance >= threshold);
  if (i < 0) return { threshold, dInt: null, dIntInterpolated: null };
  const hit = sorted[i];
  if (i === 0) return { threshold, dInt: hit.d, dIntInterpolated: hit.d };
  const lo = sorted[i - 1];
  const t = (threshold - lo.performance) / (hit.performance - lo.performance);
  const logD = Math.log(lo.d) + t * (Math.log(hit.d) - Math.log(lo.d));
  return { threshold, dInt: hit.d, dIntInterpolated: Math.exp(logD) };
}

/** What `searchIntrinsicDimension` found: d_int90 and every point it evaluated. */
export interface IntrinsicDimensionSearch extends IntrinsicDimension {
  points: SweepPoint[];
}

/**
 * Finds d_int90 on a grid of d values by binary search, assuming performance does not fall as
 * d grows (the paper sweeps d upwards; this evaluates about log2(grid) points instead of all).
 * Also evaluates the grid point just below the first passing one, for the interpolated value.
 */
export async function searchIntrinsicDimension(
  grid: number[],
  evaluate: (d: number) => Promise<number> | number,
  baseline: number,
  o: { fraction?: number } = {},
): Promise<IntrinsicDimensionSearch> {
  const ds = [...new Set(grid)].sort((a, b) => a - b);
  if (!ds.length || ds.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`searchIntrinsicDimension: grid must hold positive integers, got [${grid}]`);
  }
  const threshold = (o.fraction ?? 0.9) * baseline;
  const seen = new Map<number, number>();
  const perf = async (i: number) => {
    if (!seen.has(ds[i])) seen.set(ds[i], await evaluate(ds[i]));
    return seen.get(ds[i])!;
  };
  let lo = 0, hi = ds.length; // the first passing index lies in [lo, hi]; hi = none
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((await perf(mid)) >= threshold) hi = mid;
    else lo = mid + 1;
  }
  if (lo > 0 && lo < ds.length) await perf(lo - 1);
  const points = [...seen].map(([d, performance]) => ({ d, performance }));
  return { ...intrinsicDimension(points, baseline, o), points };
}
