/**
 * Task vectors: arithmetic over state dicts, with task arithmetic and TIES-Merging.
 *
 * Editing Models with Task Arithmetic. Ilharco, Ribeiro, Wortsman, Gururangan, Schmidt,
 * Hajishirzi, Farhadi. ICLR 2023. arXiv:2212.04089.
 * TIES-Merging: Resolving Interference When Merging Models. Yadav, Tam, Choshen, Raffel,
 * Bansal. NeurIPS 2023. arXiv:2306.01708.
 *
 * Not a catalog paper: the shared building block every merging module of paperlab imports
 * (model-soups, fisher-merging, pcb-merging, model-breadcrumbs, ...), and the two baselines
 * they are compared with. A task vector is τ = θ_ft − θ_pre over the float tensors of two
 * state dicts with the same keys and shapes (Ilharco et al., Sec. 2); vectors are added,
 * scaled and summed, and applied to a base as θ = θ_pre + λ τ. Task arithmetic merges n tasks
 * as θ_pre + λ Σ_t τ_t. TIES-Merging (Yadav et al., Sec. 3, Algorithm 1) (1) trims each τ_t to
 * its top-k% magnitudes, (2) elects a sign per parameter, γ_m = sgn(Σ_t τ̂_t), and (3) takes
 * the disjoint mean over the tasks that agree with it, then θ = θ_pre + λ τ_m. Per-tensor
 * masks, rank masks over any score (top-k, or a band that also drops the largest entries) and
 * flattening to one vector are exported for the other methods.
 *
 * Everything is tensor ops on the tensors' backend, under `noGrad`, with no readback (the
 * global top-k is an on-device sort). Int and bool tensors (e.g. `num_batches_tracked`) are
 * never part of a task vector: `applyTaskVector` copies them from the base. Every function
 * returns new tensors that the caller owns (dispose them, or run inside a `scope`).
 */
import { noGrad } from "../../core/autograd.ts";
import { scope } from "../../core/memory.ts";
import { cat, stack } from "../../core/ops/shape.ts";
import { zeros } from "../../core/ops/creation.ts";
import type { Tensor } from "../../core/tensor.ts";

/** Name -> tensor with PyTorch's dotted keys (what `Module.stateDict()` returns). */
export type StateDict = Record<string, Tensor>;
/** τ = θ_ft − θ_pre, float tensors only, keyed like the state dicts it came from. */
export type TaskVector = Record<string, Tensor>;
/** One bool tensor per key of a task vector (true = keep). */
export type Masks = Record<string, Tensor>;
/** Where a rank mask is computed: within each tensor, or over the whole flattened model. */
export type Granularity = "tensor" | "model";

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;
/** Runs fn without recording gradients and frees its intermediates (results survive). */
const run = <T>(fn: () => T): T => scope(() => noGrad(fn));

/** Keys of the float32 tensors of a state dict (in its order), optionally filtered. */
export function floatKeys(sd: StateDict, filter?: (key: string) => boolean): string[] {
  return Object.keys(sd).filter((k) => sd[k].dtype === "float32" && (!filter || filter(k)));
}

/**
 * Throws a clear error unless every dict has exactly the keys of the first, with the same
 * shapes and dtypes. `where` names the caller; returns the keys.
 */
export function checkCompatible(where: string, dicts: Record<string, Tensor>[]): string[] {
  if (!dicts.length) throw new Error(`${where}: expected at least one state dict or task vector`);
  const keys = Object.keys(dicts[0]);
  dicts.forEach((d, i) => {
    if (i === 0) return;
    const missing = keys.filter((k) => !(k in d));
    const extra = Object.keys(d).filter((k) => !(k in dicts[0]));
    if (missing.length || extra.length) {
      throw new Error(
        `${where}: dict ${i} does not match dict 0:` +
          (missing.length ? ` missing key(s) ${missing.join(", ")};` : "") +
          (extra.length ? ` unexpected key(s) ${extra.join(", ")};` : ""),
      );
    }
    for (const k of keys) {
      const [a, b] = [dicts[0][k], d[k]];
      if (a.shape.join() !== b.shape.join() || a.dtype !== b.dtype) {
        throw new Error(
          `${where}: key ${k} is ${a.dtype} ${fmt(a.shape)} in dict 0 but ${b.dtype} ` +
            `${fmt(b.shape)} in dict ${i}`,
        );
      }
    }
  });
  return keys;
}

/** Applies fn key by key to task vectors with the same keys and shapes. */
function zipMap(where: string, tvs: TaskVector[], fn: (ts: Tensor[], k: string) => Tensor) {
  const keys = checkCompatible(where, tvs);
  return run(() => Object.fromEntries(keys.map((k) => [k, fn(tvs.map((tv) => tv[k]), k)])));
}

/**
 * τ = θ_ft − θ_pre over the float tensors (Ilharco et al., Sec. 2), optionally only the keys
 * passing `filter` (e.g. leave out task-specific heads). Keys and shapes must match.
 */
export function taskVector(
  pre: StateDict,
  ft: StateDict,
  o: { filter?: (key: string) => boolean } = {},
): TaskVector {
  checkCompatible("taskVector", [pre, ft]);
  const keys = floatKeys(pre, o.filter);
  return run(() => Object.fromEntries(keys.map((k) => [k, ft[k].sub(pre[k])])));
}

/** a + b, key by key. */
export function addTaskVectors(a: TaskVector, b: TaskVector): TaskVector {
  return zipMap("addTaskVectors", [a, b], ([x, y]) => x.add(y));
}

/** λ τ (λ = −1 negates a task, Ilharco et al., Sec. 3). */
export function scaleTaskVector(tv: TaskVector, lambda: number): TaskVector {
  return zipMap("scaleTaskVector", [tv], ([x]) => x.mul(lambda));
}

/** Σ_t w_t τ_t (w_t = 1 by default): the sum task arithmetic adds to the base. */
export function sumTaskVectors(tvs: TaskVector[], weights?: number[]): TaskVector {
  if (weights && weights.length !== tvs.length) {
    throw new Error(`sumTaskVectors: ${weights.length} weights for ${tvs.length} task vectors`);
  }
  return zipMap(
    "sumTaskVectors",
    tvs,
    (ts) => ts.map((t, i) => t.mul(weights?.[i] ?? 1)).reduce((s, t) => s.add(t)),
  );
}

/**
 * θ = θ_base + λ τ for the keys of τ; every other entry of the base (int buffers, heads left
 * out of τ) is copied. Every key of τ must be a float tensor of the base with its shape.
 */
export function applyTaskVector(base: StateDict, tv: TaskVector, lambda = 1): StateDict {
  for (const [k, t] of Object.entries(tv)) {
    const b = base[k];
    if (!b) throw new Error(`applyTaskVector: key ${k} of the task vector is not in the base`);
    if (b.dtype !== "float32" || b.shape.join() !== t.shape.join()) {
      throw new Error(
        `applyTaskVector: key ${k} is ${t.dtype} ${fmt(t.shape)} in the task vector but ` +
          `${b.dtype} ${fmt(b.shape)} in the base`,
      );
    }
  }
  return run(() =>
    Object.fromEntries(
      Object.entries(base).map(([k, b]) => [k, k in tv ? b.add(tv[k].mul(lambda)) : b.clone()]),
    )
  );
}

/** Task arithmetic's merged vector λ Σ_t τ_t (Ilharco et al., Eq. 1 with one λ). */
export function taskArithmetic(tvs: TaskVector[], lambda: number): TaskVector {
  return zipMap("taskArithmetic", tvs, (ts) => ts.reduce((s, t) => s.add(t)).mul(lambda));
}

/**
 * Σ_i w_i θ_i / Σ_i w_i over the float tensors (uniform weights by default: the "uniform
 * soup"); int and bool entries are copied from the first dict.
 */
export function averageStateDicts(sds: StateDict[], weights?: number[]): StateDict {
  const w = weights ?? sds.map(() => 1);
  if (w.length !== sds.length) {
    throw new Error(`averageStateDicts: ${w.length} weights for ${sds.length} state dicts`);
  }
  const total = w.reduce((a, b) => a + b, 0);
  if (!(Math.abs(total) > 0)) throw new Error("averageStateDicts: the weights sum to 0");
  return zipMap(
    "averageStateDicts",
    sds,
    (ts) =>
      ts[0].dtype !== "float32"
        ? ts[0].clone()
        : ts.map((t, i) => t.mul(w[i] / total)).reduce((s, t) => s.add(t)),
  );
}

/** τ ⊙ m, key by key (a key without a mask is kept whole). */
export function maskTaskVector(tv: TaskVector, masks: Masks): TaskVector {
  for (const k of Object.keys(masks)) {
    if (!(k in tv)) throw new Error(`maskTaskVector: mask key ${k} is not in the task vector`);
    if (masks[k].shape.join() !== tv[k].shape.join()) {
      throw new Error(
        `maskTaskVector: mask ${k} has shape ${fmt(masks[k].shape)}, τ ${fmt(tv[k].shape)}`,
      );
    }
  }
  return run(() =>
    Object.fromEntries(
      Object.entries(tv).map(([k, t]) => [k, k in masks ? t.mul(masks[k]) : t.clone()]),
    )
  );
}

/** Concatenates the tensors of a task vector, flattened, in key order: [N]. */
export function flattenTaskVector(tv: TaskVector): Tensor {
  const ts = Object.values(tv);
  if (!ts.length) throw new Error("flattenTaskVector: the task vector is empty");
  return run(() => cat(ts.map((t) => t.reshape([t.numel])))); // (N,)
}

/** The inverse of `flattenTaskVector`: cuts a flat [N] tensor back into `like`'s shapes. */
export function unflattenTaskVector(flat: Tensor, like: Record<string, Tensor>): TaskVector {
  const n = Object.values(like).reduce((s, t) => s + t.numel, 0);
  if (flat.ndim !== 1 || flat.numel !== n) {
    throw new Error(`unflattenTaskVector: expected a flat tensor of ${n}, got ${fmt(flat.shape)}`);
  }
  let at = 0;
  return run(() =>
    Object.fromEntries(
      Object.entries(like).map(([k, t]) => {
        const part = flat.narrow(0, at, t.numel).reshape([...t.shape]); // (like[k].shape)
        at += t.numel;
        return [k, part.contiguous()];
      }),
    )
  );
}

function checkFraction(where: string, name: string, v: number): void {
  if (!(v >= 0 && v <= 1)) throw new Error(`${where}: ${name} must be in [0, 1], got ${v}`);
}

/**
 * Bool mask of the entries of `score` whose rank in descending order (0 = largest; ties by
 * position) is in [from, to): exactly to − from entries. An on-device sort, no readback.
 */
export function rankMask(score: Tensor, from: number, to: number): Tensor {
  const n = score.numel;
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= n)) {
    throw new Error(`rankMask: need integers 0 <= from <= to <= ${n}, got [${from}, ${to})`);
  }
  return run(() => {
    if (to === from) return zeros([...score.shape]).gt(0);
    const order = score.reshape([n]).argsort(0, { descending: true }); // (n,)
    const keep = order.narrow(0, from, to - from);
    return zeros([n]).scatter(0, keep, 1).reshape([...score.shape]).gt(0); // (score.shape)
  });
}

/** Options of `rankMasks`. */
export interface RankMaskOptions {
  /** Keep ranks from round(from · n) (fraction of the largest entries skipped). Default 0. */
  from?: number;
  /** ... to round(to · n), exclusive. Default 1. */
  to?: number;
  /** Rank within each tensor, or over all tensors flattened together. Default "tensor". */
  granularity?: Granularity;
}

/**
 * Per-key masks keeping the entries whose descending rank of `scores` lies in
 * [round(from · n), round(to · n)), with n the tensor's size ("tensor") or the total size
 * ("model"). The magnitude top-k of TIES is `{ from: 0, to: k }` over |τ|.
 */
export function rankMasks(scores: Record<string, Tensor>, o: RankMaskOptions = {}): Masks {
  const { from = 0, to = 1, granularity = "tensor" } = o;
  checkFraction("rankMasks", "from", from);
  checkFraction("rankMasks", "to", to);
  if (from > to) throw new Error(`rankMasks: from (${from}) must not exceed to (${to})`);
  if (granularity !== "tensor" && granularity !== "model") {
    throw new Error(`rankMasks: granularity must be "tensor" or "model", got "${granularity}"`);
  }
  const band = (s: Tensor) => {
    const a = Math.round(from * s.numel);
    return rankMask(s, a, Math.max(a, Math.round(to * s.numel)));
  };
  if (granularity === "tensor") {
    return run(() => Object.fromEntries(Object.entries(scores).map(([k, s]) => [k, band(s)])));
  }
  return run(() => unflattenTaskVector(band(flattenTaskVector(scores)), scores));
}

/**
 * Masks keeping the entries of τ whose rank by |τ| (largest first) lies in
 * [round(from · n), round(to · n)): the top-k of TIES is `{ from: 0, to: k }`; a band with
 * `from > 0` also drops the largest entries (Model Breadcrumbs).
 */
export function magnitudeBand(tv: TaskVector, o: RankMaskOptions = {}): Masks {
  return run(() =>
    rankMasks(Object.fromEntries(Object.entries(tv).map(([k, t]) => [k, t.abs()])), o)
  );
}

/** Masks keeping the top `density` fraction of |τ| (TIES's trim, Sec. 3 step 1). */
export function magnitudeMasks(
  tv: TaskVector,
  density: number,
  o: { granularity?: Granularity } = {},
): Masks {
  checkFraction("magnitudeMasks", "density", density);
  return magnitudeBand(tv, { from: 0, to: density, granularity: o.granularity });
}

/** τ̂: τ with all but its top `density` magnitudes set to zero. */
export function trimTaskVector(
  tv: TaskVector,
  density: number,
  o: { granularity?: Granularity } = {},
): TaskVector {
  return run(() => maskTaskVector(tv, magnitudeMasks(tv, density, o)));
}

/**
 * TIES's elected sign γ_m = sgn(Σ_t τ̂_t) ("mass", the paper's choice) or sgn(Σ_t sgn τ̂_t)
 * ("count"). Where it is 0, the majority sign over the whole model is used, as in the
 * authors' code.
 */
export function electSign(
  tvs: TaskVector[],
  o: { method?: "mass" | "count" } = {},
): Record<string, Tensor> {
  const method = o.method ?? "mass";
  if (method !== "mass" && method !== "count") {
    throw new Error(`electSign: method must be "mass" or "count", got "${method}"`);
  }
  const keys = checkCompatible("electSign", tvs);
  return run(() => {
    const gamma = Object.fromEntries(keys.map((k) => {
      const ts = tvs.map((tv) => (method === "mass" ? tv[k] : tv[k].sign()));
      return [k, ts.reduce((s, t) => s.add(t)).sign()];
    }));
    const majority = stack(keys.map((k) => gamma[k].sum())).sum().sign();
    return Object.fromEntries(keys.map((k) => [k, gamma[k].where(gamma[k].ne(0), majority)]));
  });
}

/**
 * TIES's disjoint merge (Sec. 3 step 3): per parameter, the mean of the τ_t whose sign equals
 * the elected sign γ (zeros never count): Σ_{t∈A} τ_t / max(|A|, 1).
 */
export function disjointMean(tvs: TaskVector[], gamma: Record<string, Tensor>): TaskVector {
  checkCompatible("disjointMean", [...tvs, gamma]);
  return zipMap("disjointMean", tvs, (ts, k) => {
    const agree = ts.map((t) => t.sign().eq(gamma[k]).logicalAnd(t.ne(0)).float());
    const total = ts.map((t, i) => t.mul(agree[i])).reduce((s, t) => s.add(t));
    return total.div(agree.reduce((s, a) => s.add(a)).clamp(1));
  });
}

/** Options of `tiesMerging` (the paper's defaults). */
export interface TiesOptions {
  /** k: fraction of each τ_t kept by magnitude. Default 0.2 (top-20%, Sec. 5). */
  density?: number;
  /** Trim over the whole flattened model (the authors' code) or per tensor. Default "model". */
  granularity?: Granularity;
  /** Sign election. Default "mass". */
  method?: "mass" | "count";
}

/**
 * TIES-Merging's τ_m (trim, elect sign, disjoint mean; Algorithm 1). The merged model is
 * `applyTaskVector(θ_pre, τ_m, λ)` (λ = 1 without validation data, Sec. 5).
 */
export function tiesMerging(tvs: TaskVector[], o: TiesOptions = {}): TaskVector {
  const density = o.density ?? 0.2, granularity = o.granularity ?? "model";
  checkCompatible("tiesMerging", tvs);
  return run(() => {
    const trimmed = tvs.map((tv) => trimTaskVector(tv, density, { granularity }));
    return disjointMean(trimmed, electSign(trimmed, { method: o.method }));
  });
}

/** cos(τ_a, τ_b) over all entries (Ilharco et al., Fig. 3): a scalar tensor. */
export function cosineSimilarity(a: TaskVector, b: TaskVector): Tensor {
  checkCompatible("cosineSimilarity", [a, b]);
  return run(() => {
    const x = flattenTaskVector(a), y = flattenTaskVector(b);
    return x.mul(y).sum().div(x.norm().mul(y.norm()).clamp(1e-12));
  });
}

/** A copy of a state dict (e.g. a snapshot of `model.stateDict()` before training it). */
export function cloneStateDict(sd: StateDict): StateDict {
  return run(() => Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.clone()])));
}

/** The entries of `sd` whose keys pass `filter` (the same tensors, not copies). */
export function selectKeys(sd: StateDict, filter: (key: string) => boolean): StateDict {
  return Object.fromEntries(Object.entries(sd).filter(([k]) => filter(k)));
}

/** Disposes every tensor of the given dicts. */
export function disposeStateDict(...sds: Record<string, Tensor>[]): void {
  for (const sd of sds) for (const t of Object.values(sd)) t.dispose();
}
