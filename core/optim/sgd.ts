/**
 * Stochastic gradient descent with momentum (torch.optim.SGD), following its update exactly:
 *
 *   g = ∇ (negated when maximize) + λ θ
 *   b = g at the first step, else μ b + (1 - τ) g;   g = g + μ b (nesterov) or b
 *   θ = θ - γ g
 */
import type { Tensor } from "../tensor.ts";
import { effectiveGrad, Optimizer, type ParamGroup, type Params } from "./optimizer.ts";

export interface SGDOptions {
  /** Learning rate γ (default 1e-3, as PyTorch). */
  lr?: number;
  /** Momentum μ (default 0). */
  momentum?: number;
  /** Dampening τ of the momentum (default 0). */
  dampening?: number;
  /** L2 penalty λ added to the gradient (default 0). */
  weightDecay?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** Maximise the objective instead (default false). */
  maximize?: boolean;
}

export class SGD extends Optimizer {
  constructor(params: Params, o: SGDOptions = {}) {
    super(params, {
      lr: o.lr ?? 1e-3,
      momentum: o.momentum ?? 0,
      dampening: o.dampening ?? 0,
      weightDecay: o.weightDecay ?? 0,
      nesterov: o.nesterov ?? false,
      maximize: o.maximize ?? false,
    });
  }

  protected override validate(g: ParamGroup): void {
    super.validate(g);
    if (!(g.momentum >= 0)) throw new Error(`SGD: Invalid momentum value: ${g.momentum}`);
    if (!(g.weightDecay >= 0)) throw new Error(`SGD: Invalid weight_decay value: ${g.weightDecay}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
      throw new Error("SGD: Nesterov momentum requires a momentum and zero dampening");
    }
  }

  protected updateGroup(group: ParamGroup): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    for (const p of group.params) {
      if (!p.grad) continue;
      let g = effectiveGrad(p, maximize, weightDecay);
      if (momentum !== 0) {
        const s = this.stateOf(p);
        let buf = s.momentumBuffer as Tensor | undefined;
        if (!buf) buf = s.momentumBuffer = this.newState(p, g);
        else buf.assign(buf.mul(momentum).add(dampening ? g.mul(1 - dampening) : g));
        g = nesterov ? g.add(buf.mul(momentum)) : buf;
      }
      p.assign(p.sub(g.mul(lr)));
    }
  }
}
