/**
 * Fused softmax, logSoftmax, layerNorm and attention: one backend kernel for the forward pass
 * where the backend has it (Backend.softmax / layerNorm / attention), with backward passes
 * composed from differentiable ops, so double backward still works. Each function returns null
 * where the fused kernel does not apply (no kernel, not float32, not the last dims, empty, or a
 * case the backend declines), and the caller composes the op from primitives instead.
 */
import { isGradEnabled, noGrad, record } from "../autograd.ts";
import { getBackend } from "../backend.ts";
import { scope } from "../memory.ts";
import { fromBuf, type Tensor } from "../tensor.ts";
import { fullOn } from "./creation.ts";
import { where } from "./elementwise.ts";
import { bmmT } from "./matmul.ts";

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
 * softmax(q k^T scale + mask) v over q [..., L, E], k [..., S, E], v [..., S, Ev] with the same
 * batch dims, `mask` (bool: true = may attend; float: added) broadcastable to [..., L, S], and
 * `causal` admitting key s for query l only when s <= l. Rows with no admissible key are zeros.
 * Null (compose instead) for a mask that needs a gradient or needs broadcasting beyond q's
 * batch dims, and where the backend declines. The backward pass recomputes the weights
 * from the saved log-sum-exp (FlashAttention's recomputation), composed from batched products
 * (it holds [..., L, S] matrices, as the composed op's backward does).
 */
export function fusedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  scale: number,
  causal: boolean,
): Tensor | null {
  const be = q._backend;
  if (!be.attention || q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim) return null;
  if ([q, k, v].some((t) => t.dtype !== "float32" || t._backend !== be)) return null;
  const batchShape = q.shape.slice(0, -2);
  if ([k, v].some((t) => t.shape.slice(0, -2).join() !== batchShape.join())) return null;
  const [L, E] = q.shape.slice(-2), [S, Ek] = k.shape.slice(-2), [Sv, Ev] = v.shape.slice(-2);
  if (Ek !== E || Sv !== S || q.numel === 0 || k.numel === 0 || v.numel === 0) return null;
  const batch = batchShape.reduce((a, b) => a * b, 1);
  let m: Tensor | null = null, maskBatched = false;
  if (mask) {
    const target = [...batchShape, L, S];
    if (mask.requiresGrad || mask._backend !== be || mask.ndim > target.length) return null;
    const ms = mask.shape, off = target.length - ms.length;
    if (ms.some((d, i) => d !== 1 && d !== target[i + off])) return null;
    maskBatched = ms.slice(0, Math.max(0, ms.length - 2)).some((d) => d !== 1);
    // As one float32 buffer, [batch, L, S] or [L, S]; the scope frees the intermediates.
    m = noGrad(() =>
      scope(() => {
        const f = mask.dtype === "bool" ? where(mask, 0, -Infinity) : mask.float();
        const r = maskBatched
          ? f.expand(target)
          : f.reshape([1, 1, ...ms].slice(-2)).expand([L, S]);
        return r === mask ? mask._alias() : r;
      })
    );
  }
  const r = be.attention(q._buf, k._buf, v._buf, m?._buf ?? null, {
    batch,
    l: L,
    s: S,
    e: E,
    ev: Ev,
    scale,
    causal,
    maskBatched,
  });
  if (!r) {
    m?.dispose();
    return null;
  }
  const out = fromBuf(be, r.out, [...batchShape, L, Ev], "float32");
  const lse = fromBuf(be, r.lse, [batch, L, 1], "float32");
  const res = record(out, "scaledDotProductAttention", [q, k, v], (g) => {
    const q3 = q.reshape([batch, L, E]), k3 = k.reshape([batch, S, E]);
    const v3 = v.reshape([batch, S, Ev]), g3 = g.reshape([batch, L, Ev]);
    let s = bmmT(q3, k3, false, true).mul(scale);
    if (m) s = s.add(m.reshape(maskBatched ? [batch, L, S] : [1, L, S]));
    if (causal) s = where(fullOn(s, [L, S], "bool", 1).tril(), s, -Infinity);
    // P = exp(s - lse): from the saved lse, or under createGraph (double backward) from a
    // recomputed one, so P is a function of q and k. Dead rows (lse -inf) get P = 0.
    const dead = lse.eq(-Infinity);
    const sSafe = where(dead, 0, s);
    const l = isGradEnabled() ? sSafe.logsumexp(-1, { keepdim: true }) : where(dead, 0, lse);
    const p = where(dead, 0, sSafe.sub(l).exp());
    const dp = bmmT(g3, v3, false, true);
    const rowDot = g3.mul(out.reshape([batch, L, Ev])).sum(-1, { keepdim: true });
    const ds = p.mul(dp.sub(rowDot)).mul(scale);
    return [
      bmmT(ds, k3).reshape(q.shape),
      bmmT(ds, q3, true, false).reshape(k.shape),
      bmmT(p, g3, true, false).reshape(v.shape),
    ];
  });
  if (!res.requiresGrad) {
    lse.dispose();
    m?.dispose();
  }
  return res;
}

/**
 * Runs `f` with the current backend's fused kernels (softmax, layerNorm, attention, adamStep)
 * hidden, so the ops inside compose primitives: for tests and benchmarks that set the two side
 * by side.
 */
export function withoutFusedKernels<T>(f: () => T): T {
  const be = getBackend() as unknown as Record<string, unknown>;
  const names = ["softmax", "layerNorm", "attention", "adamStep"];
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
