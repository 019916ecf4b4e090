/**
 * What learning algorithm is in-context learning? Investigations with linear models.
 * Akyürek, Schuurmans, Andreas, Ma, Zhou. ICLR 2023. arXiv:2211.15661. Catalog id P198.
 *
 * A transformer reads a prompt (x_1, y_1, ..., x_k, y_k) with y_i = w^T x_i + ε and predicts
 * each y_i from the examples before it; the paper asks which learning algorithm that
 * prediction matches. Implemented here, batched over prompts: the reference predictors of
 * Sec. 4 (min-norm least squares, ridge regression, n steps of batch gradient descent from
 * w = 0, and k-nearest neighbours), `prefixPrompts` (every prompt cut after each of its k
 * context lengths, so one call gives every algorithm's prediction at every position), the
 * squared prediction difference SPD (Sec. 4.1), a small causal transformer `ICLTransformer`
 * that returns every layer's hidden states, and a ridge linear probe with R^2 for the
 * Sec. 5 probing experiments (is w decodable from the hidden states?). Not implemented: the
 * Sec. 3 constructions (a transformer whose weights are set by hand to run GD or ridge), the
 * implicit linear weight difference ILWD (it needs d + 1 extra queries per prompt), and MLP
 * probes; see the README.
 */
import * as F from "../../core/functional.ts";
import { lstsq, solve } from "../../core/linalg/mod.ts";
import { LayerNorm, Linear, Module, ModuleList } from "../../core/nn/mod.ts";
import { eye, full, ones, randn, zeros } from "../../core/ops/creation.ts";
import { cat, stack } from "../../core/ops/shape.ts";
import type { Tensor } from "../../core/tensor.ts";

// ------------------------------------------------------------------ prompts and tokens

/**
 * Every prompt cut at every context length (Sec. 4.1: the learner predicts y_i from the i - 1
 * examples before it). From X [n, k, d] and y [n, k] it builds n·k prompts, ordered prompt-
 * major, each keeping all k rows with `mask` marking the examples 1..i-1 that it may use.
 */
export interface PrefixBatch {
  /** The examples [n·k, k, d] (rows at or after the query are zeroed). */
  X: Tensor;
  /** Their targets [n·k, k] (zeroed like X). */
  y: Tensor;
  /** 1 for an example the predictor may use, 0 otherwise, [n·k, k]. */
  mask: Tensor;
  /** The query x_i [n·k, d]. */
  xq: Tensor;
  /** Its target y_i [n·k]. */
  target: Tensor;
}

/** See `PrefixBatch`. */
export function prefixPrompts(X: Tensor, y: Tensor): PrefixBatch {
  if (X.ndim !== 3 || y.ndim !== 2 || X.shape[0] !== y.shape[0] || X.shape[1] !== y.shape[1]) {
    throw new Error(
      `prefixPrompts: expected X [n, k, d] and y [n, k], got [${X.shape}] and [${y.shape}]`,
    );
  }
  const [n, k, d] = X.shape;
  const mask = ones([k, k]).tril(-1); // [i, j] = 1 when j < i
  const M = mask.unsqueeze(0).expand([n, k, k]); // [n, k (query i), k (example j)]
  const Xp = X.unsqueeze(1).mul(M.unsqueeze(-1)).reshape([n * k, k, d]); // [n, k, k, d] -> [n·k, k, d]
  const yp = y.unsqueeze(1).mul(M).reshape([n * k, k]); // [n, k, k] -> [n·k, k]
  return {
    X: Xp,
    y: yp,
    mask: M.reshape([n * k, k]), // [n, k, k] -> [n·k, k]
    xq: X.reshape([n * k, d]), // [n, k, d] -> [n·k, d]
    target: y.reshape([n * k]), // [n, k] -> [n·k]
  };
}

/**
 * The transformer's input: for each example an x-token (x_i, 0, 0) that queries y_i, then a
 * y-token (x_i, y_i, 1) that carries the whole example. X [n, k, d], y [n, k] ->
 * [n, 2k, d + 2]. (The paper feeds x_i and y_i as separate tokens; repeating x_i in the
 * y-token spares the learner the copy step it would otherwise have to learn first; see the
 * README.)
 */
export function promptTokens(X: Tensor, y: Tensor): Tensor {
  const [n, k, d] = X.shape;
  const xTok = cat([X, zeros([n, k, 2])], -1); // [n, k, d + 2]
  const yTok = cat([X, y.unsqueeze(-1), ones([n, k, 1])], -1); // [n, k, d + 2]
  return stack([xTok, yTok], 2).reshape([n, 2 * k, d + 2]); // [n, k, 2, d + 2] -> [n, 2k, d + 2]
}

// ------------------------------------------------------------------ reference algorithms

/** Zeroes the examples that `mask` [B, k] leaves out (none when absent). */
function masked(X: Tensor, y: Tensor, mask?: Tensor): [Tensor, Tensor] {
  return mask ? [X.mul(mask.unsqueeze(-1)), y.mul(mask)] : [X, y];
}

/**
 * Least squares, minimum-norm when under-determined: w = X^+ y (Sec. 4, "OLS"; the Bayes
 * estimator for noiseless data with w ~ N(0, I)). X [B, k, d], y [B, k] -> w [B, d].
 */
export function leastSquares(X: Tensor, y: Tensor, mask?: Tensor): Tensor {
  const [Xm, ym] = masked(X, y, mask);
  return lstsq(Xm, ym).solution; // zeroed rows do not change the min-norm solution
}

/** Options of `ridge`. */
export interface RidgeOptions {
  /** λ; the Bayes estimator has λ = σ² / τ² (noise over prior variance). Default 0.1. */
  lambda?: number;
  mask?: Tensor;
}

/** Ridge regression: w = (X^T X + λ I)^{-1} X^T y (Sec. 4). X [B, k, d], y [B, k] -> w [B, d]. */
export function ridge(X: Tensor, y: Tensor, o: RidgeOptions = {}): Tensor {
  const { lambda = 0.1 } = o;
  if (!(lambda > 0)) throw new Error(`ridge: lambda must be > 0, got ${lambda}`);
  const [Xm, ym] = masked(X, y, o.mask);
  const d = X.shape[2];
  const A = Xm.mT.matmul(Xm).add(eye(d).mul(lambda)); // [B, d, d]
  return solve(A, Xm.mT.matmul(ym.unsqueeze(-1))).squeeze(-1); // [B, d, 1] -> [B, d]
}

/** Options of `gradientDescent`. */
export interface GradientDescentOptions {
  /** Number of steps t. Default 1 (the paper's "one step of GD"). */
  steps?: number;
  /** Step size η on the mean squared loss. Default 1. */
  lr?: number;
  mask?: Tensor;
}

/**
 * Batch gradient descent on L(w) = (1 / 2n) Σ_i (w^T x_i - y_i)^2 from w_0 = 0:
 * w_{t+1} = w_t - (η / n) X^T (X w_t - y), n = number of examples used (Sec. 3.1).
 * X [B, k, d], y [B, k] -> w [B, d].
 */
export function gradientDescent(X: Tensor, y: Tensor, o: GradientDescentOptions = {}): Tensor {
  const { steps = 1, lr = 1 } = o;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new Error(`gradientDescent: steps must be a positive integer, got ${steps}`);
  }
  const [Xm, ym] = masked(X, y, o.mask);
  const [B, k, d] = X.shape;
  const n = (o.mask ? o.mask.sum(-1) : full([B], k)).clamp(1).unsqueeze(-1); // [B, 1]
  let w = zeros([B, d]);
  for (let t = 0; t < steps; t++) {
    const r = Xm.matmul(w.unsqueeze(-1)).squeeze(-1).sub(ym); // X w - y: [B, k]
    w = w.sub(Xm.mT.matmul(r.unsqueeze(-1)).squeeze(-1).mul(lr).div(n)); // [B, d]
  }
  return w;
}

/** Options of `nearestNeighbours`. */
export interface NearestNeighboursOptions {
  /** Number of neighbours averaged. Default 3. */
  k?: number;
  mask?: Tensor;
}

/**
 * k-nearest-neighbour regression: the mean of the y_j of the k examples nearest to x_q in L2
 * (all available ones when fewer; 0 with none). X [B, k, d], y [B, k], xq [B, d] -> [B].
 */
export function nearestNeighbours(
  X: Tensor,
  y: Tensor,
  xq: Tensor,
  o: NearestNeighboursOptions = {},
): Tensor {
  const K = Math.min(o.k ?? 3, X.shape[1]);
  if (!Number.isInteger(K) || K < 1) {
    throw new Error(`nearestNeighbours: k must be a positive integer, got ${o.k}`);
  }
  const mask = o.mask ?? ones([...y.shape]);
  const dist = X.sub(xq.unsqueeze(1)).square().sum(-1) // ||x_j - x_q||^2: [B, k]
    .add(mask.rsub(1).mul(1e30)); // excluded examples are never nearest
  const idx = dist.topk(K, -1, { largest: false }).indices; // [B, K]
  const used = mask.gather(1, idx); // [B, K]
  return y.gather(1, idx).mul(used).sum(-1).div(used.sum(-1).clamp(1));
}

/** A reference learner: predicts each query of a `PrefixBatch`, [B]. */
export type Predictor = (p: PrefixBatch) => Tensor;

/** A linear learner's predictor: ŷ = w^T x_q with w from `weights(X, y, mask)`. */
export function linearPredictor(
  weights: (X: Tensor, y: Tensor, mask: Tensor) => Tensor,
): Predictor {
  return (p) => weights(p.X, p.y, p.mask).mul(p.xq).sum(-1);
}

/** The paper's reference learners (Sec. 4), with their options. */
export const predictors = {
  leastSquares: (): Predictor => linearPredictor((X, y, mask) => leastSquares(X, y, mask)),
  ridge: (lambda: number): Predictor =>
    linearPredictor((X, y, mask) => ridge(X, y, { lambda, mask })),
  gradientDescent: (steps: number, lr: number): Predictor =>
    linearPredictor((X, y, mask) => gradientDescent(X, y, { steps, lr, mask })),
  nearestNeighbours: (k = 3): Predictor => (p) =>
    nearestNeighbours(p.X, p.y, p.xq, { k, mask: p.mask }),
};

/**
 * Squared prediction difference per context length (Sec. 4.1): SPD_i = mean over prompts of
 * (a_i - b_i)^2, for predictions a, b [n, k] -> [k].
 */
export function squaredPredictionDifference(a: Tensor, b: Tensor): Tensor {
  if (a.shape.join() !== b.shape.join()) {
    throw new Error(`squaredPredictionDifference: shapes differ, [${a.shape}] vs [${b.shape}]`);
  }
  return a.float().sub(b.float()).square().mean(0);
}

// ------------------------------------------------------------------ the learner

/** Options of `ICLTransformer`. */
export interface ICLTransformerOptions {
  /** Input dimension d of x. */
  d: number;
  /** Most examples per prompt (the sequence holds 2k tokens). */
  k: number;
  /** Hidden size. Default 64 (the paper searches 16..512). */
  dModel?: number;
  /** Number of layers. Default 4 (the paper searches 1..16). */
  layers?: number;
  /** Attention heads. Default 4 (the paper searches 1..8). */
  heads?: number;
}

/** A pre-LayerNorm causal block: x += Attn(LN(x)); x += MLP(LN(x)) (GPT-2 order). */
class Block extends Module {
  ln1: LayerNorm;
  qkv: Linear;
  proj: Linear;
  ln2: LayerNorm;
  fc1: Linear;
  fc2: Linear;
  constructor(readonly D: number, readonly H: number) {
    super();
    this.ln1 = this.registerModule("ln1", new LayerNorm(D));
    this.qkv = this.registerModule("qkv", new Linear(D, 3 * D));
    this.proj = this.registerModule("proj", new Linear(D, D));
    this.ln2 = this.registerModule("ln2", new LayerNorm(D));
    this.fc1 = this.registerModule("fc1", new Linear(D, 4 * D));
    this.fc2 = this.registerModule("fc2", new Linear(4 * D, D));
  }
  forward(x: Tensor, causal: Tensor): Tensor {
    const [n, T, D] = x.shape, H = this.H, dh = D / H;
    const qkv = this.qkv.forward(this.ln1.forward(x)).reshape([n, T, 3, H, dh]) // [n, T, 3, H, dh]
      .permute([2, 0, 3, 1, 4]); // [3, n, H, T, dh]
    const [q, k, v] = [qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2)];
    const a = F.softmax(q.matmul(k.mT).mul(1 / Math.sqrt(dh)).add(causal), -1); // [n, H, T, T]
    const o = a.matmul(v).permute([0, 2, 1, 3]).reshape([n, T, D]); // [n, T, H, dh] -> [n, T, D]
    x = x.add(this.proj.forward(o));
    return x.add(this.fc2.forward(this.fc1.forward(this.ln2.forward(x)).relu()));
  }
}

/**
 * The in-context learner: a causal transformer over `promptTokens` that reads its prediction
 * of y_i at the x-token of example i. `forward` returns the predictions [n, k] and the
 * residual stream after the embedding and after every layer ([n, 2k, dModel] each) for probes.
 */
export class ICLTransformer extends Module {
  readonly d: number;
  readonly k: number;
  readonly dModel: number;
  readonly embed: Linear;
  readonly pos: Tensor;
  readonly blocks: Block[];
  readonly lnf: LayerNorm;
  readonly head: Linear;
  private causal: Tensor;

  constructor(o: ICLTransformerOptions) {
    super();
    const { d, k, dModel = 64, layers = 4, heads = 4 } = o;
    for (const [name, v] of Object.entries({ d, k, dModel, layers, heads })) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(`ICLTransformer: ${name} must be a positive integer, got ${v}`);
      }
    }
    if (dModel % heads !== 0) {
      throw new Error(`ICLTransformer: dModel ${dModel} must be divisible by heads ${heads}`);
    }
    [this.d, this.k, this.dModel] = [d, k, dModel];
    this.embed = this.registerModule("embed", new Linear(d + 2, dModel));
    this.pos = this.registerParameter("pos", randn([2 * k, dModel]).mul(0.02));
    this.blocks = Array.from({ length: layers }, () => new Block(dModel, heads));
    this.registerModule("blocks", new ModuleList(this.blocks));
    this.lnf = this.registerModule("lnf", new LayerNorm(dModel));
    this.head = this.registerModule("head", new Linear(dModel, 1));
    this.causal = full([2 * k, 2 * k], -Infinity).triu(1); // additive mask: j > i is -inf
    this.registerBuffer("causal", this.causal, { persistent: false });
  }

  /** tokens [n, 2k', d + 2] with k' <= k -> predictions ŷ [n, k'] and hidden states. */
  forward(tokens: Tensor): { yHat: Tensor; hidden: Tensor[] } {
    const [n, T, w] = tokens.shape;
    if (tokens.ndim !== 3 || w !== this.d + 2 || T % 2 !== 0 || T > 2 * this.k) {
      throw new Error(
        `ICLTransformer: expected tokens [n, 2k', ${this.d + 2}] with k' <= ${this.k}, ` +
          `got [${tokens.shape}]`,
      );
    }
    const causal = T === 2 * this.k ? this.causal : this.causal.narrow(0, 0, T).narrow(1, 0, T);
    let h = this.embed.forward(tokens).add(this.pos.narrow(0, 0, T)); // [n, T, D]
    const hidden = [h];
    for (const b of this.blocks) hidden.push(h = b.forward(h, causal));
    const out = this.head.forward(this.lnf.forward(h)).squeeze(-1); // [n, T]
    return { yHat: out.reshape([n, T / 2, 2]).select(2, 0), hidden }; // x-token positions
  }
}

// ------------------------------------------------------------------ probes

/** A linear probe t ≈ [h, 1] W fitted by ridge regression (Sec. 5). */
export interface LinearProbe {
  /** [D + 1, m]: the weights and, last, the bias. */
  W: Tensor;
}

/** Fits W = argmin ||[H 1] W - T||^2 + λ n ||W||^2 for states H [n, D], targets T [n, m]. */
export function fitLinearProbe(H: Tensor, T: Tensor, o: { lambda?: number } = {}): LinearProbe {
  const { lambda = 1e-3 } = o;
  const [n, D] = H.shape;
  const A = cat([H, ones([n, 1])], -1); // [n, D + 1]
  const G = A.T.matmul(A).add(eye(D + 1).mul(lambda * n)); // [D + 1, D + 1]
  return { W: solve(G, A.T.matmul(T)) };
}

/** The probe's predictions for states H [n, D] -> [n, m]. */
export function applyProbe(p: LinearProbe, H: Tensor): Tensor {
  return cat([H, ones([H.shape[0], 1])], -1).matmul(p.W);
}

/** R^2 = 1 - Σ (t - p)^2 / Σ (t - mean t)^2, pooled over every output column; a scalar. */
export function r2Score(pred: Tensor, target: Tensor): Tensor {
  const ssRes = target.sub(pred).square().sum();
  const ssTot = target.sub(target.mean(0, { keepdim: true })).square().sum();
  return ssRes.div(ssTot).rsub(1);
}
