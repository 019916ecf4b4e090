/**
 * Model Breadcrumbs: Scaling Multi-Task Model Merging with Sparse Masks.
 * Davari, Belilovsky. ECCV 2024. arXiv:2312.06795. Catalog id P095.
 *
 * A task vector τ_t = θ_t − θ_0 is sparsified layer by layer (per tensor) by a mask that
 * drops both its largest-magnitude entries (the outliers: the top β fraction of |τ_t| in
 * that layer) and its negligible ones (the bottom γ fraction); the kept "breadcrumbs" of all
 * tasks are summed and added to the pretrained model with one scale α:
 *
 *   m_t^l = [ rank of |τ_t^l| among the largest ≥ β n_l  and  among the smallest ≥ γ n_l ]
 *   θ = θ_0 + α Σ_t m_t ⊙ τ_t
 *
 * The paper's point is that (β, γ, α) found on a few tasks can be kept as tasks are added.
 * The letters follow the catalog's summary (β: top outliers, γ: bottom); the defaults here
 * (β = 1%, γ = 85%, i.e. 14% of each layer kept) are this module's, chosen to sit in the
 * sparse region the paper recommends; the benchmark tunes all three on two tasks. Masks are
 * exact rank bands computed with algorithms/task-vectors' `rankMasks` (no readback).
 */
import { noGrad } from "../../core/autograd.ts";
import { scope } from "../../core/memory.ts";
import {
  checkCompatible,
  magnitudeBand,
  type Masks,
  maskTaskVector,
  type TaskVector,
} from "../task-vectors/mod.ts";

/** Options of Model Breadcrumbs. */
export interface BreadcrumbsOptions {
  /** β: fraction of each layer's largest |τ| entries dropped (outliers). Default 0.01. */
  beta?: number;
  /** γ: fraction of each layer's smallest |τ| entries dropped. Default 0.85. */
  gamma?: number;
}

function resolve(o: BreadcrumbsOptions): { beta: number; gamma: number } {
  const beta = o.beta ?? 0.01, gamma = o.gamma ?? 0.85;
  for (const [name, v] of [["beta", beta], ["gamma", gamma]] as const) {
    if (!(v >= 0 && v <= 1)) throw new Error(`breadcrumbs: ${name} must be in [0, 1], got ${v}`);
  }
  if (beta + gamma > 1) {
    throw new Error(`breadcrumbs: beta + gamma must be at most 1, got ${beta} + ${gamma}`);
  }
  return { beta, gamma };
}

/** The per-layer masks m_t of one task vector: drop the top β and the bottom γ of |τ|. */
export function breadcrumbsMasks(tv: TaskVector, o: BreadcrumbsOptions = {}): Masks {
  const { beta, gamma } = resolve(o);
  return magnitudeBand(tv, { from: beta, to: 1 - gamma, granularity: "tensor" });
}

/** The breadcrumbs m_t ⊙ τ_t of one task. */
export function breadcrumbs(tv: TaskVector, o: BreadcrumbsOptions = {}): TaskVector {
  return scope(() => maskTaskVector(tv, breadcrumbsMasks(tv, o)));
}

/**
 * Σ_t m_t ⊙ τ_t over tasks with the same keys; the merged model is
 * `applyTaskVector(θ_0, merged, α)`.
 */
export function breadcrumbsMerging(tvs: TaskVector[], o: BreadcrumbsOptions = {}): TaskVector {
  const keys = checkCompatible("breadcrumbsMerging", tvs);
  return scope(() =>
    noGrad(() => {
      const crumbs = tvs.map((tv) => breadcrumbs(tv, o));
      return Object.fromEntries(
        keys.map((k) => [k, crumbs.map((c) => c[k]).reduce((a, b) => a.add(b))]),
      );
    })
  );
}
