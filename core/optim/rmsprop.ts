/**
 * RMSprop (Hinton's lecture 6e; centered variant of Graves, 2013), following
 * torch.optim.RMSprop's update exactly:
 *
 *   g = ∇ (negated when maximize) + λ θ;   v = α v + (1 - α) g²
 *   centered: ḡ = lerp(ḡ, g, 1 - α), d = sqrt(v - ḡ²) + ε;   else d = sqrt(v) + ε
 *   momentum: b = μ b + g / d, θ = θ - γ b;   else θ = θ - γ g / d
 */
import type { Tensor } from "../tensor.ts";
import { effectiveGrad, lerp, Optimizer, type ParamGroup, type Params } from "./optimizer.ts";

export interface RMSpropOptions {
  /** Learning rate γ (default 1e-2). */
  lr?: number;
  /** Smoothing constant α (default 0.99). */
  alpha?: number;
  /** ε added to the denominator (default 1e-8). */
  eps?: number;
  /** L2 penalty λ (default 0). */
  weightDecay?: number;
  /** Momentum μ (default 0). */
  momentum?: number;
  /** Normalise by the estimated variance instead of the second moment (default false). */
  centered?: boolean;
  maximize?: boolean;
}

export class RMSprop extends Optimizer {
  constructor(params: Params, o: RMSpropOptions = {}) {
    super(params, {
      lr: o.lr ?? 1e-2,
      alpha: o.alpha ?? 0.99,
      eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? 0,
      momentum: o.momentum ?? 0,
      centered: o.centered ?? false,
      maximize: o.maximize ?? false,
    });
  }

  protected override validate(g: ParamGroup): void {
    super.validate(g);
    if (!(g.eps >= 0)) throw new Error(`RMSprop: Invalid epsilon value: ${g.eps}`);
    if (!(g.momentum >= 0)) throw new Error(`RMSprop: Invalid momentum value: ${g.momentum}`);
    if (!(g.alpha >= 0)) throw new Error(`RMSprop: Invalid alpha value: ${g.alpha}`);
    if (!(g.weightDecay >= 0)) {
      throw new Error(`RMSprop: Invalid weight_decay value: ${g.weightDecay}`);
    }
  }

  protected updateGroup(group: ParamGroup): void {
    const { lr, alpha, eps, weightDecay, momentum, centered, maximize } = group;
    for (const p of group.params) {
      if (!p.grad) continue;
      const s = this.stateOf(p);
      if (s.step === undefined) {
        s.step = 0;
        s.squareAvg = this.newState(p);
        if (momentum > 0) s.momentumBuffer = this.newState(p);
        if (centered) s.gradAvg = this.newState(p);
      }
      s.step = (s.step as number) + 1;
      const g = effectiveGrad(p, maximize, weightDecay);
      const v = s.squareAvg as Tensor;
      v.assign(v.mul(alpha).add(g.mul(g).mul(1 - alpha)));
      let d: Tensor;
      if (centered) {
        const ga = s.gradAvg as Tensor;
        ga.assign(lerp(ga, g, 1 - alpha));
        d = v.sub(ga.mul(ga)).sqrt();
      } else d = v.sqrt();
      d = d.add(eps);
      if (momentum > 0) {
        const buf = s.momentumBuffer as Tensor;
        buf.assign(buf.mul(momentum).add(g.div(d)));
        p.assign(p.sub(buf.mul(lr)));
      } else p.assign(p.sub(g.div(d).mul(lr)));
    }
  }
}
