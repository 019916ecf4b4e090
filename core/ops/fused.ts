/**
 * Fused softmax, logSoftmax and layerNorm: one backend kernel for the forward pass where the
 * backend has it (Backend.softmax / Backend.layerNorm), with backward passes composed from
 * differentiable ops, so double backward still works. Each function returns null where the
 * fused kernel does not apply (no kernel, not float32, not the last dims, empty, or a case the
 * backend declines), and the caller composes the op from primitives instead.
 */
import { isGradEnabled, record } from "../autograd.ts";
import { getBackend } from "../backend.ts";
import { fromBuf, type Tensor } from "../tensor.ts";

/** softmax(x) or logSoftmax(x) over the last dim. */
export function fusedSoftmax(x: Tensor, log: boolean): Tensor | null {
  const be = x._backend;
  if (!be.softmax || x.dtype !== "float32" || x.ndim === 0 || x.numel === 0) return null;
  const cols = x.shape[x.ndim - 1], rows = x.numel / cols;
  const yb = be.softmax(x._buf, rows, cols, log);
  if (!yb) return null;
  const y = fromBuf(be, yb, x.shape, "float32");
  return record(y, log ? "logSoftmax" : "softmax", [x], (g) => {
    if (log) return [g.sub(y.exp().mul(g.sum(-1, { keepdim: true })))];
    return [y.mul(g.sub(g.mul(y).sum(-1, { keepdim: true })))];
  });
}

/**
 * layerNorm over the last `k` dims (their product `cols`), with optional weight and bias of
 * that shape. The backward pass uses the saved row statistics; under createGraph (double
 * backward) it recomputes them from x with differentiable ops instead.
 */
export function fusedLayerNorm(
  x: Tensor,
  k: number,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Tensor | null {
  const be = x._backend;
  if (!be.layerNorm || x.dtype !== "float32" || x.numel === 0) return null;
  if ((weight && weight.dtype !== "float32") || (bias && bias.dtype !== "float32")) return null;
  const normShape = x.shape.slice(x.ndim - k);
  const cols = normShape.reduce((a, b) => a * b, 1), rows = x.numel / cols;
  for (const p of [weight, bias]) {
    if (p && (p.numel !== cols || p.shape.join() !== normShape.join())) return null;
  }
  const r = be.layerNorm(x._buf, rows, cols, eps, weight?._buf ?? null, bias?._buf ?? null);
  if (!r) return null;
  const { y: yb, stats: sb } = r;
  const y = fromBuf(be, yb, x.shape, "float32");
  const stats = fromBuf(be, sb, [rows, 2], "float32");
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const out = record(y, "layerNorm", inputs, (g) => {
    const g2 = g.reshape([rows, cols]);
    let xhat: Tensor, rstd: Tensor;
    if (isGradEnabled()) {
      // Double backward: statistics as functions of x.
      const x2 = x.reshape([rows, cols]);
      const xc = x2.sub(x2.mean(-1, { keepdim: true }));
      rstd = xc.mul(xc).mean(-1, { keepdim: true }).add(eps).rsqrt();
      xhat = xc.mul(rstd);
    } else {
      const [mean, r] = stats.split(1, 1);
      rstd = r;
      xhat = x.reshape([rows, cols]).sub(mean).mul(rstd);
    }
    const gx = weight ? g2.mul(weight.reshape([1, cols])) : g2;
    const dx = gx.sub(gx.mean(-1, { keepdim: true }))
      .sub(xhat.mul(gx.mul(xhat).mean(-1, { keepdim: true })))
      .mul(rstd);
    const grads: (Tensor | null)[] = [dx.reshape(x.shape)];
    if (weight) grads.push(g2.mul(xhat).sum(0).reshape(normShape));
    if (bias) grads.push(g2.sum(0).reshape(normShape));
    return grads;
  });
  if (!out.requiresGrad) stats.dispose();
  return out;
}

/**
 * Runs `f` with the current backend's fused kernels (softmax, layerNorm, adamStep) hidden, so
 * the ops inside compose primitives: for tests and benchmarks that set the two side by side.
 */
export function withoutFusedKernels<T>(f: () => T): T {
  const be = getBackend() as unknown as Record<string, unknown>;
  const names = ["softmax", "layerNorm", "adamStep"];
  const saved = names.map((n) => Object.getOwnPropertyDescriptor(be, n));
  for (const n of names) be[n] = undefined;
  try {
    return f();
  } finally {
    names.forEach((n, i) => {
      const d = saved[i];
      if (d) Object.defineProperty(be, n, d);
      else delete be[n];
    });
  }
}
