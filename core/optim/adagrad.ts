/**
 * Adagrad (Duchi et al., 2011), following torch.optim.Adagrad's update exactly:
 *
 *   t = t + 1;  g = ∇ (negated when maximize) + λ θ;  γ_t = γ / (1 + (t - 1) η)
 *   s = s + g²;  θ = θ - γ_t g / (sqrt(s) + ε)
 *
 * As in PyTorch, the state (s filled with initialAccumulatorValue, t = 0) is created for every
 * parameter at construction.
 */
import { keep } from "../memory.ts";
import { fullLike } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import { effectiveGrad, Optimizer, type ParamGroup, type Params } from "./optimizer.ts";

export interface AdagradOptions {
  /** Learning rate γ (default 1e-2). */
  lr?: number;
  /** Learning-rate decay η (default 0). */
  lrDecay?: number;
  /** L2 penalty λ (default 0). */
  weightDecay?: number;
  /** Starting value of the accumulator s (default 0). */
  initialAccumulatorValue?: number;
  /** ε added to the denominator (default 1e-10). */
  eps?: number;
  maximize?: boolean;
}

export class Adagrad extends Optimizer {
  constructor(params: Params, o: AdagradOptions = {}) {
    super(params, {
      lr: o.lr ?? 1e-2,
      lrDecay: o.lrDecay ?? 0,
      weightDecay: o.weightDecay ?? 0,
      initialAccumulatorValue: o.initialAccumulatorValue ?? 0,
      eps: o.eps ?? 1e-10,
      maximize: o.maximize ?? false,
    });
    for (const g of this.paramGroups) this.#initState(g);
  }

  #initState(g: ParamGroup): void {
    for (const p of g.params) {
      const s = this.stateOf(p);
      if (s.sum) continue;
      s.step = 0;
      s.sum = keep(fullLike(p, g.initialAccumulatorValue));
    }
  }

  override addParamGroup(group: Parameters<Optimizer["addParamGroup"]>[0]): void {
    super.addParamGroup(group);
    // Groups added after construction get their state here; during super() (state still
    // empty) the private method is not installed yet and the constructor does it instead.
    if (this.state.size) this.#initState(this.paramGroups[this.paramGroups.length - 1]);
  }

  protected override validate(g: ParamGroup): void {
    super.validate(g);
    if (!(g.lrDecay >= 0)) throw new Error(`Adagrad: Invalid lr_decay value: ${g.lrDecay}`);
    if (!(g.weightDecay >= 0)) {
      throw new Error(`Adagrad: Invalid weight_decay value: ${g.weightDecay}`);
    }
    if (!(g.initialAccumulatorValue >= 0)) {
      throw new Error(
        `Adagrad: Invalid initial_accumulator_value value: ${g.initialAccumulatorValue}`,
      );
    }
    if (!(g.eps >= 0)) throw new Error(`Adagrad: Invalid epsilon value: ${g.eps}`);
  }

  protected updateGroup(group: ParamGroup): void {
    const { lr, lrDecay, weightDecay, eps, maximize } = group;
    for (const p of group.params) {
      if (!p.grad) continue;
      const s = this.stateOf(p);
      const t = (s.step as number) + 1;
      s.step = t;
      const g = effectiveGrad(p, maximize, weightDecay);
      const clr = lr / (1 + (t - 1) * lrDecay);
      const sum = s.sum as Tensor;
      sum.assign(sum.add(g.mul(g)));
      p.assign(p.sub(g.div(sum.sqrt().add(eps)).mul(clr)));
    }
  }
}
