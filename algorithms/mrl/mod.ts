/**
 * Matryoshka Representation Learning.
 * Kusupati, Bhatt, Rege, Wallingford, Sinha, Ramanujan, Howard-Snyder, Chen, Kakade, Jain,
 * Farhadi. NeurIPS 2022. arXiv:2205.13147. Catalog id P079.
 *
 * A d-dimensional representation z = F(x; θ_F) is trained so that every prefix z_{1:m}, for
 * m in a nested list M = {m_1 < m_2 < ... < d} (the paper's M = {8, 16, ..., 2048}, halving
 * down from d), is a good representation on its own. Each prefix gets a linear classifier
 * W^(m) ∈ R^{L×m}, and the loss is the weighted sum of the per-prefix cross-entropies
 *
 *   min_{ {W^(m)}, θ_F }  (1/N) Σ_i Σ_{m∈M} c_m · L( W^(m) · F(x_i; θ_F)_{1:m} ; y_i )   (Eq. 1)
 *
 * with c_m = 1 by default. MRL-E ("efficient") ties the classifiers: one W ∈ R^{L×d} and
 * W^(m) = W_{:, 1:m} (Sec. 3), which halves the head's memory. Implemented here:
 * `MatryoshkaHead` (both variants, the official code's `MRL_Linear_Layer`), `matryoshkaLoss`
 * (Eq. 1, the official `Matryoshka_CE_Loss`), `nestingList` (the paper's M), `truncate` (the
 * prefix z_{1:m} that deployment uses) and `adaptiveRetrieval` (Sec. 5.3's funnel: shortlist
 * with a short prefix, re-rank the shortlist with a longer one). Not implemented: the backbone
 * (any encoder whose output is z works) and approximate nearest-neighbour indexes (HNSW).
 */
import * as F from "../../core/functional.ts";
import { noGrad } from "../../core/autograd.ts";
import { Linear, Module } from "../../core/nn/mod.ts";
import type { Tensor } from "../../core/tensor.ts";

/** Options of `nestingList`. */
export interface NestingListOptions {
  /** The smallest nesting dimension. Default 8 (the paper's smallest for ImageNet). */
  smallest?: number;
}

/**
 * The paper's nesting list M: d, d/2, d/4, ... down to `smallest`, in increasing order
 * (d = 2048 gives {8, 16, ..., 2048}; Sec. 3). Throws when d is not smallest · 2^j.
 */
export function nestingList(d: number, o: NestingListOptions = {}): number[] {
  const { smallest = 8 } = o;
  if (!Number.isInteger(d) || d < 1) {
    throw new Error(`nestingList: d must be a positive integer, got ${d}`);
  }
  if (!Number.isInteger(smallest) || smallest < 1 || smallest > d) {
    throw new Error(`nestingList: smallest must be an integer in [1, d = ${d}], got ${smallest}`);
  }
  const M: number[] = [];
  let m = d;
  while (m >= smallest) {
    M.unshift(m);
    if (m % 2 !== 0) break;
    m /= 2;
  }
  if (M[0] !== smallest) {
    throw new Error(`nestingList: d = ${d} is not smallest (${smallest}) times a power of two`);
  }
  return M;
}

/** Checks M is strictly increasing positive integers with its last entry at most d. */
function checkNesting(where: string, M: readonly number[], d?: number): void {
  if (!Array.isArray(M) || !M.length) throw new Error(`${where}: nesting list M must not be empty`);
  for (let i = 0; i < M.length; i++) {
    if (!Number.isInteger(M[i]) || M[i] < 1 || (i > 0 && M[i] <= M[i - 1])) {
      throw new Error(
        `${where}: nesting list M must be increasing positive integers, got [${M}]`,
      );
    }
  }
  if (d !== undefined && M[M.length - 1] > d) {
    throw new Error(`${where}: the largest nesting dimension ${M[M.length - 1]} exceeds d = ${d}`);
  }
}

/** z_{1:m}: the first m coordinates of the representation z [..., d] -> [..., m]. */
export function truncate(z: Tensor, m: number): Tensor {
  const d = z.shape[z.ndim - 1];
  if (!Number.isInteger(m) || m < 1 || m > d) {
    throw new Error(`truncate: m must be an integer in [1, ${d}], got ${m}`);
  }
  return m === d ? z : z.narrow(-1, 0, m);
}

/** Options of `MatryoshkaHead`. */
export interface MatryoshkaHeadOptions {
  /** MRL-E: one weight-tied classifier W [L, d], W^(m) = W_{:, 1:m}. Default false (MRL). */
  efficient?: boolean;
  /** Biases on the classifiers (one per prefix; shared under MRL-E). Default true. */
  bias?: boolean;
}

/**
 * The nested linear classifiers {W^(m)}_{m∈M} on z [N, d] (Eq. 1): `forward(z)` returns one
 * logits tensor [N, L] per m, in the order of M. Parameters are named as in the official code
 * (`nesting_classifier_{i}.weight/bias`; MRL-E has only `nesting_classifier_0`, of width d).
 */
export class MatryoshkaHead extends Module {
  readonly M: readonly number[];
  readonly efficient: boolean;
  readonly classifiers: Linear[];

  constructor(M: readonly number[], readonly numClasses: number, o: MatryoshkaHeadOptions = {}) {
    super();
    checkNesting("MatryoshkaHead", M);
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new Error(`MatryoshkaHead: numClasses must be a positive integer, got ${numClasses}`);
    }
    this.M = [...M];
    this.efficient = o.efficient ?? false;
    const bias = o.bias ?? true;
    const d = this.M[this.M.length - 1];
    this.classifiers = this.efficient
      ? [this.registerModule("nesting_classifier_0", new Linear(d, numClasses, { bias }))]
      : this.M.map((m, i) =>
        this.registerModule(`nesting_classifier_${i}`, new Linear(m, numClasses, { bias }))
      );
  }

  /** The logits W^(m) z_{1:m} (+ b) of one nesting dimension m ∈ M, [N, L]. */
  logitsAt(z: Tensor, m: number): Tensor {
    const i = this.M.indexOf(m);
    if (i < 0) throw new Error(`MatryoshkaHead: ${m} is not in the nesting list [${this.M}]`);
    const zm = truncate(z, m); // [N, m]
    if (!this.efficient) return this.classifiers[i].forward(zm);
    const W = this.classifiers[0].weight; // [L, d]
    const Wm = truncate(W, m); // W_{:, 1:m}: [L, m] (MRL-E weight tying, Sec. 3)
    return F.linear(zm, Wm, this.classifiers[0].bias);
  }

  /** One logits tensor [N, L] per m ∈ M (increasing m). z: [N, d] with d >= max(M). */
  forward(z: Tensor): Tensor[] {
    const d = z.shape[z.ndim - 1];
    if (d < this.M[this.M.length - 1]) {
      throw new Error(
        `MatryoshkaHead: z has ${d} features, fewer than the largest nesting dimension ` +
          `${this.M[this.M.length - 1]}`,
      );
    }
    return this.M.map((m) => this.logitsAt(z, m));
  }
}

/** Options of `matryoshkaLoss`. */
export interface MatryoshkaLossOptions {
  /** The relative importances c_m, one per nesting dimension. Default all 1 (the paper's). */
  weights?: readonly number[];
  /** Label smoothing of each cross-entropy. Default 0. */
  labelSmoothing?: number;
}

/** Σ_m c_m · CE(logits_m, y) over the per-prefix logits of `MatryoshkaHead` (Eq. 1). */
export function matryoshkaLoss(
  logits: readonly Tensor[],
  target: Tensor,
  o: MatryoshkaLossOptions = {},
): Tensor {
  if (!logits.length) throw new Error("matryoshkaLoss: expected at least one logits tensor");
  const c = o.weights ?? logits.map(() => 1);
  if (c.length !== logits.length) {
    throw new Error(
      `matryoshkaLoss: got ${c.length} weights c_m for ${logits.length} nesting dimensions`,
    );
  }
  let loss: Tensor | null = null;
  logits.forEach((l, i) => {
    const term = F.crossEntropy(l, target, { labelSmoothing: o.labelSmoothing ?? 0 }).mul(c[i]);
    loss = loss ? loss.add(term) : term;
  });
  return loss!;
}

/** Options of `adaptiveRetrieval`. */
export interface AdaptiveRetrievalOptions {
  /** D_s: the prefix length used to build the shortlist. */
  shortlistDim: number;
  /** K: how many database items the shortlist keeps (Sec. 5.3 uses 200). */
  shortlistSize: number;
  /** D_r: the prefix length used to re-rank the shortlist. Default d (the full vector). */
  rerankDim?: number;
  /** How many neighbours to return (<= shortlistSize). Default 1. */
  topK?: number;
  /** Compare unit-normalised prefixes (cosine). Default true. */
  normalize?: boolean;
}

/** Squared L2 distances between the rows of a [Q, m] and b [B, m]: [Q, B]. */
function sqDist(a: Tensor, b: Tensor): Tensor {
  const aa = a.square().sum(-1, { keepdim: true }); // [Q, 1]
  const bb = b.square().sum(-1).unsqueeze(0); // [1, B]
  return aa.add(bb).sub(a.matmul(b.T).mul(2));
}

/**
 * Adaptive retrieval ("funnel", Sec. 5.3): rank the database by the distance between the
 * D_s-dimensional prefixes, keep the K nearest, and re-rank those with D_r-dimensional
 * prefixes. Costs Q·B·D_s + Q·K·D_r multiply-adds instead of Q·B·d. queries [Q, d],
 * database [B, d]; returns the indices of the topK nearest items per query, [Q, topK] (int32).
 * With shortlistDim = rerankDim = d it is exact nearest-neighbour search.
 */
export function adaptiveRetrieval(
  queries: Tensor,
  database: Tensor,
  o: AdaptiveRetrievalOptions,
): Tensor {
  const d = database.shape[1];
  const { shortlistDim: Ds, shortlistSize: K, rerankDim: Dr = d, topK = 1 } = o;
  if (queries.ndim !== 2 || database.ndim !== 2 || queries.shape[1] !== d) {
    throw new Error(
      `adaptiveRetrieval: expected queries [Q, d] and database [B, d], got ` +
        `[${queries.shape}] and [${database.shape}]`,
    );
  }
  if (!Number.isInteger(K) || K < 1 || K > database.shape[0]) {
    throw new Error(
      `adaptiveRetrieval: shortlistSize must be in [1, ${database.shape[0]}], got ${K}`,
    );
  }
  if (!Number.isInteger(topK) || topK < 1 || topK > K) {
    throw new Error(`adaptiveRetrieval: topK must be in [1, shortlistSize = ${K}], got ${topK}`);
  }
  const prefix = (z: Tensor, m: number) =>
    (o.normalize ?? true) ? F.normalize(truncate(z, m), { dim: -1 }) : truncate(z, m);
  return noGrad(() => {
    const Q = queries.shape[0];
    // Shortlist: the K nearest by D_s-dimensional prefixes.
    const shortlist = sqDist(prefix(queries, Ds), prefix(database, Ds))
      .topk(K, -1, { largest: false }).indices; // [Q, K]
    // Re-rank: distances between D_r-prefixes of each query and its shortlisted items.
    const qr = prefix(queries, Dr); // [Q, Dr]
    const cand = prefix(database, Dr).indexSelect(0, shortlist.reshape([Q * K])).reshape([
      Q,
      K,
      Dr,
    ]); // [Q * K, Dr] -> [Q, K, Dr]
    const dist = cand.sub(qr.unsqueeze(1)).square().sum(-1); // [Q, K]
    const order = dist.topk(topK, -1, { largest: false }).indices; // [Q, topK] into the shortlist
    return shortlist.gather(1, order).int(); // [Q, topK] into the database
  });
}
