/**
 * Adam (Kingma & Ba, 2015, Algorithm 1) and AdamW (Loshchilov & Hutter, 2019), following
 * torch.optim.Adam / AdamW's update exactly:
 *
 *   t = t + 1;  g = ∇ (negated when maximize) [+ λ θ for Adam]   [θ = θ (1 - γ λ) for AdamW]
 *   m = lerp(m, g, 1 - β1);  v = β2 v + (1 - β2) g²;  v̂max = max(v̂max, v) (amsgrad)
 *   θ = θ - (γ / (1 - β1^t)) m / (sqrt(v or v̂max) / sqrt(1 - β2^t) + ε)
 */
import type { AdamStepConstants } from "../backend.ts";
import { fromBuf, type Tensor } from "../tensor.ts";
import { effectiveGrad, lerp, Optimizer, type ParamGroup, type Params } from "./optimizer.ts";

export interface AdamOptions {
  /** Learning rate γ (default 1e-3). */
  lr?: number;
  /** Decay rates (β1, β2) of the moment estimates (default [0.9, 0.999]). */
  betas?: [number, number];
  /** ε added to the denominator (default 1e-8). */
  eps?: number;
  /** λ: an L2 penalty on the gradient (Adam, default 0) or decoupled decay (AdamW, 1e-2). */
  weightDecay?: number;
  /** Use the maximum of past second moments (Reddi et al., 2018). */
  amsgrad?: boolean;
  maximize?: boolean;
}

export class Adam extends Optimizer {
  constructor(params: Params, o: AdamOptions = {}, decoupledWeightDecay = false) {
    super(params, {
      lr: o.lr ?? 1e-3,
      betas: o.betas ?? [0.9, 0.999],
      eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? 0,
      amsgrad: o.amsgrad ?? false,
      maximize: o.maximize ?? false,
      decoupledWeightDecay,
    });
  }

  protected override validate(g: ParamGroup): void {
    super.validate(g);
    const name = this.constructor.name;
    if (!(g.eps >= 0)) throw new Error(`${name}: Invalid epsilon value: ${g.eps}`);
    g.betas.forEach((b: number, i: number) => {
      if (!(b >= 0 && b < 1)) {
        throw new Error(`${name}: Invalid beta parameter at index ${i}: ${b}`);
      }
    });
    if (!(g.weightDecay >= 0)) {
      throw new Error(`${name}: Invalid weight_decay value: ${g.weightDecay}`);
    }
  }

  protected updateGroup(group: ParamGroup): void {
    const { lr, eps, weightDecay, amsgrad, maximize, decoupledWeightDecay } = group;
    const [beta1, beta2] = group.betas as [number, number];
    for (const p of group.params) {
      if (!p.grad) continue;
      const s = this.stateOf(p);
      if (s.step === undefined) {
        s.step = 0;
        s.expAvg = this.newState(p);
        s.expAvgSq = this.newState(p);
        if (amsgrad) s.maxExpAvgSq = this.newState(p);
      }
      const t = (s.step as number) + 1;
      s.step = t;
      const m = s.expAvg as Tensor, v = s.expAvgSq as Tensor;
      const stepSize = lr / (1 - beta1 ** t);
      const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
      const decoupled = decoupledWeightDecay;
      const o = { lr, beta1, beta2, eps, weightDecay, decoupled, maximize, stepSize, bc2Sqrt };
      if (!amsgrad && fusedStep(p, m, v, o)) continue;
      let g: Tensor;
      if (decoupledWeightDecay) {
        if (weightDecay !== 0) p.assign(p.mul(1 - lr * weightDecay));
        g = effectiveGrad(p, maximize, 0);
      } else g = effectiveGrad(p, maximize, weightDecay);
      m.assign(lerp(m, g, 1 - beta1));
      v.assign(v.mul(beta2).add(g.mul(g).mul(1 - beta2)));
      let second = v;
      if (amsgrad) {
        const vmax = s.maxExpAvgSq as Tensor;
        vmax.assign(vmax.maximum(v));
        second = vmax;
      }
      const denom = second.sqrt().div(bc2Sqrt).add(eps);
      p.assign(p.sub(m.div(denom).mul(stepSize)));
    }
  }
}

/**
 * The update as one backend kernel (Backend.adamStep) where the backend has it: the same
 * float32 operations in the same order as updateGroup's ops, in one pass instead of ten.
 */
function fusedStep(p: Tensor, m: Tensor, v: Tensor, o: AdamStepConstants): boolean {
  const be = p._backend, g = p.grad!;
  if (!be.adamStep || p.dtype !== "float32" || g.dtype !== "float32") return false;
  const r = be.adamStep(p._buf, g._buf, m._buf, v._buf, p.numel, o);
  if (!r) return false;
  p.assign(fromBuf(be, r.param, p.shape, "float32"));
  m.assign(fromBuf(be, r.expAvg, m.shape, "float32"));
  v.assign(fromBuf(be, r.expAvgSq, v.shape, "float32"));
  return true;
}

/** Adam with decoupled weight decay (default λ = 1e-2): θ = θ (1 - γ λ) before the step. */
export class AdamW extends Adam {
  constructor(params: Params, o: AdamOptions = {}) {
    super(params, { ...o, weightDecay: o.weightDecay ?? 1e-2 }, true);
  }
}
