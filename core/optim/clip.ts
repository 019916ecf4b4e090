/**
 * Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_), in place with
 * `assign` and without reading back: the total norm comes back as a tensor.
 */
import { noGrad } from "../autograd.ts";
import { scope } from "../memory.ts";
import { fullLike, zeros } from "../ops/creation.ts";
import { stack } from "../ops/shape.ts";
import type { Tensor } from "../tensor.ts";

function gradsOf(params: Iterable<Tensor> | Tensor): Tensor[] {
  const list = "shape" in params ? [params as Tensor] : [...(params as Iterable<Tensor>)];
  return list.flatMap((p) => (p.grad ? [p.grad] : []));
}

/**
 * Scales the gradients so that their joint `normType`-norm (default 2; Infinity for the max)
 * is at most `maxNorm`: g = g * min(1, maxNorm / (total + 1e-6)). Returns the total norm
 * before clipping (a 0-d tensor the caller owns). PyTorch's errorIfNonfinite would need a
 * readback and is not offered; check the returned norm when you read it.
 */
export function clipGradNorm(
  params: Iterable<Tensor> | Tensor,
  maxNorm: number,
  o: { normType?: number } = {},
): Tensor {
  const p = o.normType ?? 2;
  const grads = gradsOf(params);
  if (!grads.length) return zeros([]);
  return scope(() =>
    noGrad(() => {
      const norms = stack(grads.map((g) => g.norm(p))); // (P)
      const total = norms.norm(p);
      const coef = fullLike(total, maxNorm).div(total.add(1e-6)).clamp(null, 1);
      for (const g of grads) g.assign(g.mul(coef));
      return total;
    })
  );
}

/** Clamps every gradient element to [-clipValue, clipValue]. */
export function clipGradValue(params: Iterable<Tensor> | Tensor, clipValue: number): void {
  const grads = gradsOf(params);
  scope(() => noGrad(() => grads.forEach((g) => g.assign(g.clamp(-clipValue, clipValue)))));
}
