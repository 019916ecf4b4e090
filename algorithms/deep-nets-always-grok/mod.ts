/**
 * Deep Networks Always Grok and Here is Why.
 * Humayun, Balestriero, Baraniuk. ICML 2024. arXiv:2402.15555. Catalog id P139.
 *
 * The measurements behind "delayed robustness": a ReLU network is a continuous piecewise-affine
 * spline whose linear regions are cut by one hyperplane per neuron (the zero set of its
 * pre-activation). The local complexity LC(x) (Sec. 3, Fig. 4) estimates how many of these
 * boundaries pass near x: take P orthonormal directions v_p, form the cross-polytope frame
 * V_x = {x ± r v_p}, push its 2P vertices through the network and count, layer by layer, the
 * neurons whose pre-activation sign is not the same at every vertex (their hyperplane cuts the
 * neighbourhood conv(V_x); deeper layers see the image of the frame, as in the paper). Also
 * here: ℓ∞ PGD (Madry et al. 2018) and FGSM, to measure adversarial accuracy over training, and
 * points on the decision boundary (bisection between inputs predicted differently), where LC is
 * measured to see the regions migrate towards the boundary.
 */
import { grad, noGrad } from "../../core/autograd.ts";
import { scope } from "../../core/memory.ts";
import * as F from "../../core/functional.ts";
import { LeakyReLU, ReLU } from "../../core/nn/activations.ts";
import { Sequential } from "../../core/nn/container.ts";
import type { Module } from "../../core/nn/module.ts";
import { rand, tensor, zeros } from "../../core/ops/creation.ts";
import { cat } from "../../core/ops/shape.ts";
import { Generator } from "../../core/random.ts";
import type { Tensor } from "../../core/tensor.ts";

/**
 * P orthonormal directions in R^n from Gaussian draws of the seeded host Generator
 * (Gram-Schmidt): [P, n]. As in the authors' code, one frame serves every point.
 */
export function orthonormalFrame(n: number, P: number, seed = 0): Tensor {
  if (!Number.isInteger(P) || P < 1 || P > n) {
    throw new Error(`orthonormalFrame: need 1 <= P <= n = ${n} directions, got ${P}`);
  }
  const g = new Generator(seed);
  const V = new Float64Array(P * n);
  for (let p = 0; p < P; p++) {
    const v = V.subarray(p * n, (p + 1) * n);
    let norm = 0;
    while (norm < 1e-6) {
      for (let i = 0; i < n; i++) v[i] = g.normal();
      for (let pass = 0; pass < 2; pass++) { // remove earlier directions (twice, for accuracy)
        for (let q = 0; q < p; q++) {
          const u = V.subarray(q * n, (q + 1) * n);
          let dot = 0;
          for (let i = 0; i < n; i++) dot += u[i] * v[i];
          for (let i = 0; i < n; i++) v[i] -= dot * u[i];
        }
      }
      norm = Math.sqrt(v.reduce((s, a) => s + a * a, 0));
    }
    for (let i = 0; i < n; i++) v[i] /= norm;
  }
  return tensor(Float32Array.from(V), { shape: [P, n] });
}

/** The cross-polytope frame V_x = {x + r v_p} ∪ {x - r v_p}: x [N, ...] -> [N, 2P, ...]. */
export function crossPolytope(x: Tensor, frame: Tensor, r: number): Tensor {
  const N = x.shape[0], rest = x.shape.slice(1);
  const n = rest.reduce((a, b) => a * b, 1), P = frame.shape[0];
  if (frame.ndim !== 2 || frame.shape[1] !== n) {
    throw new Error(`crossPolytope: frame must be [P, ${n}], got [${frame.shape}]`);
  }
  if (!(r > 0)) throw new Error(`crossPolytope: radius must be > 0, got ${r}`);
  const rv = frame.mul(r).unsqueeze(0); // (1, P, n)
  const c = x.reshape([N, 1, n]); // (N, 1, n)
  return cat([c.add(rv), c.sub(rv)], 1).reshape([N, 2 * P, ...rest]); // (N, 2P, ...)
}

export interface LocalComplexityOptions {
  /** r, the frame's radius, in input units (the authors' code: 0.005 on normalised CIFAR-10). */
  radius: number;
  /** P, the number of directions (default min(25, n): the 50 vertices of their MNIST runs). */
  directions?: number;
  /** Seed of the frame (default 0). */
  seed?: number;
  /** A ready frame [P, n] (overrides directions and seed). */
  frame?: Tensor;
  /** Which children are the nonlinearities whose inputs are counted (default: ReLU, LeakyReLU). */
  isActivation?: (m: Module) => boolean;
}

export interface LocalComplexity {
  /** Per activation layer, the number of neurons cut inside each point's frame: [N] each. */
  perLayer: Tensor[];
  /** LC(x): the sum over layers, [N]. */
  total: Tensor;
}

/** The leaves of nested Sequentials, in forward order. */
function* leaves(m: Module): IterableIterator<Module> {
  if (m instanceof Sequential) { for (const c of m) yield* leaves(c); }
  else yield m;
}

/**
 * LC at each row of x (Fig. 4): vertices of V_x go through `model` (a Sequential, nested ones
 * flattened); before every activation, a neuron counts when its pre-activation sign differs
 * across the 2P vertices. Runs without gradients.
 */
export function localComplexity(
  model: Sequential,
  x: Tensor,
  o: LocalComplexityOptions,
): LocalComplexity {
  if (!(model instanceof Sequential)) {
    throw new Error("localComplexity: model must be a Sequential (its layers are walked in order)");
  }
  const isAct = o.isActivation ?? ((m: Module) => m instanceof ReLU || m instanceof LeakyReLU);
  const N = x.shape[0], n = x.numel / N;
  return noGrad(() => {
    const frame = o.frame ?? orthonormalFrame(n, o.directions ?? Math.min(25, n), o.seed ?? 0);
    const V = crossPolytope(x, frame, o.radius); // (N, 2P, ...)
    const K = V.shape[1];
    let h = V.reshape([N * K, ...x.shape.slice(1)]); // (N 2P, ...)
    const perLayer: Tensor[] = [];
    for (const m of leaves(model)) {
      if (isAct(m)) {
        const s = h.gt(0).reshape([N, K, -1]); // (N, 2P, neurons): activation pattern
        const cut = s.ne(s.narrow(1, 0, 1)).any(1); // (N, neurons): sign not constant on V_x
        perLayer.push(cut.float().sum(1)); // (N,)
      }
      h = m.forward(h);
    }
    if (!perLayer.length) throw new Error("localComplexity: the model has no activation layer");
    return { perLayer, total: perLayer.reduce((a, b) => a.add(b)) };
  });
}

export interface PGDOptions {
  /** ε, the ℓ∞ budget (default 8/255, the authors' PGD default). */
  eps?: number;
  /** Step size α (default ε / 4). */
  alpha?: number;
  /** Steps (default 10, the authors' CIFAR-10 setting). */
  steps?: number;
  /** Start from a uniform point of the ε-ball (default false, as the authors' code runs). */
  randomStart?: boolean;
  /** Valid input range (default [0, 1]). */
  bounds?: [number, number];
}

/**
 * ℓ∞ PGD on the cross-entropy: x_{t+1} = clip_[lo,hi](x + clip_ε(x_t + α sign ∇_x L - x)).
 * Only the input is differentiated (no parameter gradient accumulates). Returns x_adv.
 */
export function pgdAttack(model: Module, x: Tensor, y: Tensor, o: PGDOptions = {}): Tensor {
  const eps = o.eps ?? 8 / 255, alpha = o.alpha ?? eps / 4, steps = o.steps ?? 10;
  const [lo, hi] = o.bounds ?? [0, 1];
  if (!(eps >= 0) || !(alpha >= 0)) throw new Error("pgdAttack: eps and alpha must be >= 0");
  if (!Number.isInteger(steps) || steps < 1) {
    throw new Error(`pgdAttack: steps must be a positive integer, got ${steps}`);
  }
  const x0 = x.detach();
  const dLdx = grad((z: Tensor) => F.crossEntropy(model.forward(z), y));
  let xa = o.randomStart
    ? noGrad(() => x0.add(rand([...x0.shape]).mul(2 * eps).sub(eps)).clamp(lo, hi))
    : x0;
  for (let t = 0; t < steps; t++) {
    const g = dLdx(xa);
    xa = noGrad(() => x0.add(xa.add(g.sign().mul(alpha)).sub(x0).clamp(-eps, eps)).clamp(lo, hi));
  }
  return xa;
}

/** FGSM (Goodfellow et al. 2015): one PGD step of size ε. */
export function fgsmAttack(model: Module, x: Tensor, y: Tensor, o: PGDOptions = {}): Tensor {
  const eps = o.eps ?? 8 / 255;
  return pgdAttack(model, x, y, { ...o, eps, alpha: eps, steps: 1 });
}

/**
 * Points on the decision boundary: for each pair (a_i, b_i) whose predicted classes differ,
 * bisects the segment a + t (b - a) for `iters` halvings (default 12) of the interval on which
 * the prediction leaves a's class; returns the midpoints [M, ...] (M <= N pairs used).
 */
export async function decisionBoundaryPoints(
  model: Module,
  a: Tensor,
  b: Tensor,
  o: { iters?: number } = {},
): Promise<Tensor> {
  if (a.shape.join() !== b.shape.join()) {
    throw new Error(`decisionBoundaryPoints: a [${a.shape}] and b [${b.shape}] must match`);
  }
  const iters = o.iters ?? 12;
  const differ = scope(() =>
    noGrad(() => model.forward(a).argmax(1).ne(model.forward(b).argmax(1)))
  );
  const mask = await differ.data();
  differ.dispose();
  const kept = Int32Array.from([...mask.keys()].filter((i) => mask[i]));
  if (kept.length === 0) return zeros([0, ...a.shape.slice(1)]);
  return scope(() =>
    noGrad(() => {
      const idx = tensor(kept);
      const xa = a.indexSelect(0, idx), dir = b.indexSelect(0, idx).sub(xa); // (M, ...)
      const M = xa.shape[0], view = [M, ...a.shape.slice(1).map(() => 1)];
      const c = model.forward(xa).argmax(1); // (M,) a's class
      let lo = zeros([M]), hi = zeros([M]).add(1); // prediction is c at lo, not c at hi
      for (let k = 0; k < iters; k++) {
        const t = lo.add(hi).mul(0.5);
        const same = model.forward(xa.add(dir.mul(t.reshape(view)))).argmax(1).eq(c);
        [lo, hi] = [t.where(same, lo), hi.where(same, t)];
      }
      return xa.add(dir.mul(lo.add(hi).mul(0.5).reshape(view))); // (M, ...)
    })
  );
}
