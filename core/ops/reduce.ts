/**
 * Reductions, scans and sorting. Primitives: reduce (sum, prod, max, min), argReduce, scan
 * (cumsum, cumprod) and sortIndices; mean, var, std, logsumexp, norm, all, any, max(dim),
 * topk and friends are composed from them.
 */
import { noGrad, record } from "../autograd.ts";
import type { ReduceOp } from "../backend.ts";
import { normDim, normDims } from "../shape.ts";
import { fromBuf, type Tensor } from "../tensor.ts";

export interface ReduceOptions {
  /** Keep reduced dims with size 1 (default false). */
  keepdim?: boolean;
}

export type Dims = number | number[] | undefined;

/** The shape of `x` with `axes` set to 1 (keepdim) or removed. */
function reducedShape(x: Tensor, axes: number[], keepdim: boolean): number[] {
  const out: number[] = [];
  x.shape.forEach((s, i) => {
    if (!axes.includes(i)) out.push(s);
    else if (keepdim) out.push(1);
  });
  return out;
}

function reducePrim(op: ReduceOp, x: Tensor, dim: Dims, keepdim: boolean): Tensor {
  const name = op === "max" ? "amax" : op === "min" ? "amin" : op;
  const axes = normDims(name, dim, x.ndim);
  if ((op === "max" || op === "min") && axes.some((a) => x.shape[a] === 0)) {
    throw new Error(`${name}: cannot reduce over a zero-size dim (the op has no identity)`);
  }
  const src = x.dtype === "bool" && (op === "sum" || op === "prod") ? x.int() : x;
  const buf = src._backend.reduce(op, src._buf, src.dtype, [...src.shape], axes);
  const keepShape = reducedShape(src, axes, true);
  const out = fromBuf(src._backend, buf, reducedShape(src, axes, keepdim), src.dtype);
  if (src.dtype !== "float32") return out;
  return record(out, name, [src], (g) => {
    const gk = g.reshape(keepShape);
    if (op === "sum") return [gk.expand(src.shape)];
    if (op === "prod") return [prodBackward(src, axes, gk)];
    // amax/amin: the gradient is shared evenly between tied extremes (as PyTorch).
    const mask = src.eq(out.reshape(keepShape)).float();
    return [gk.mul(mask).div(mask.sum(axes, { keepdim: true }))];
  });
}

/** d prod / d x_i = product of the others, computed with exclusive scans (exact at zeros). */
function prodBackward(x: Tensor, axes: number[], gk: Tensor): Tensor {
  const kept = [...x.shape.keys()].filter((i) => !axes.includes(i));
  const perm = [...kept, ...axes];
  const r = axes.reduce((n, a) => n * x.shape[a], 1);
  const flatShape = [...kept.map((i) => x.shape[i]), r];
  const xp = x.permute(perm).reshape(flatShape); // (..kept, R)
  const d = flatShape.length - 1;
  // left[i] = prod_{j<i} x_j, right[i] = prod_{j>i} x_j
  const left = xp.narrow(d, 0, r - 1).pad([1, 0], { value: 1 }).cumprod(d);
  const right = xp.flip(d).narrow(d, 0, r - 1).pad([1, 0], { value: 1 }).cumprod(d).flip(d);
  const gp = gk.permute(perm).reshape([...flatShape.slice(0, -1), 1]);
  const inv = perm.map((_, i) => perm.indexOf(i));
  return left.mul(right).mul(gp).reshape(perm.map((p) => x.shape[p])).permute(inv);
}

export const sum = (x: Tensor, dim?: Dims, o: ReduceOptions = {}): Tensor =>
  reducePrim("sum", x, dim, o.keepdim ?? false);
export const prod = (x: Tensor, dim?: Dims, o: ReduceOptions = {}): Tensor =>
  reducePrim("prod", x, dim, o.keepdim ?? false);
export const amax = (x: Tensor, dim?: Dims, o: ReduceOptions = {}): Tensor =>
  reducePrim("max", x, dim, o.keepdim ?? false);
export const amin = (x: Tensor, dim?: Dims, o: ReduceOptions = {}): Tensor =>
  reducePrim("min", x, dim, o.keepdim ?? false);

function countOf(x: Tensor, dim: Dims, name: string): number {
  return normDims(name, dim, x.ndim).reduce((n, a) => n * x.shape[a], 1);
}

export function mean(x: Tensor, dim?: Dims, o: ReduceOptions = {}): Tensor {
  if (x.dtype !== "float32") {
    throw new Error(`mean: expected a floating point tensor, got ${x.dtype} (use .float())`);
  }
  return x.sum(dim, o).div(countOf(x, dim, "mean"));
}

export interface VarOptions extends ReduceOptions {
  /** Bessel's correction: divide by N - correction (PyTorch default 1). */
  correction?: number;
}

export function variance(x: Tensor, dim?: Dims, o: VarOptions = {}): Tensor {
  const n = countOf(x, dim, "var");
  const c = o.correction ?? 1;
  const xc = x.sub(x.mean(dim, { keepdim: true }));
  return xc.mul(xc).sum(dim, { keepdim: o.keepdim }).div(Math.max(n - c, 0));
}

export const std = (x: Tensor, dim?: Dims, o: VarOptions = {}): Tensor =>
  variance(x, dim, o).sqrt();

/** log(sum(exp(x))) computed stably; the gradient is softmax(x). */
export function logsumexp(x: Tensor, dim: Dims, o: ReduceOptions = {}): Tensor {
  const m0 = noGrad(() => x.amax(dim, { keepdim: true }));
  const m = m0.isinf().where(0, m0); // all -inf (or +inf) rows: shift by 0
  const s = x.sub(m).exp().sum(dim, { keepdim: true }).log().add(m);
  return o.keepdim ? s : s.squeeze(normDims("logsumexp", dim, x.ndim));
}

/** Vector p-norm over `dim` (all dims by default). p = 2 has a zero gradient at 0. */
export function norm(x: Tensor, p: number = 2, dim?: Dims, o: ReduceOptions = {}): Tensor {
  if (p === 2) {
    const out = noGrad(() => x.mul(x).sum(dim, o).sqrt());
    const keepShape = reducedShape(x, normDims("norm", dim, x.ndim), true);
    return record(out, "norm", [x], (g) => {
      const n = out.reshape(keepShape);
      const scale = g.reshape(keepShape).div(n).maskedFill(n.eq(0), 0);
      return [x.mul(scale)];
    });
  }
  const a = x.abs();
  if (p === Infinity) return a.amax(dim, o);
  if (p === -Infinity) return a.amin(dim, o);
  if (p === 1) return a.sum(dim, o);
  if (p === 0) return a.ne(0).float().sum(dim, o);
  return a.pow(p).sum(dim, o).pow(1 / p);
}

export function all(x: Tensor, dim?: Dims, o: ReduceOptions = {}): Tensor {
  if (countOf(x, dim, "all") === 0) return x.bool().sum(dim, o).bool().logicalNot();
  return reducePrim("min", x.bool(), dim, o.keepdim ?? false);
}

export function any(x: Tensor, dim?: Dims, o: ReduceOptions = {}): Tensor {
  if (countOf(x, dim, "any") === 0) return x.bool().sum(dim, o).bool();
  return reducePrim("max", x.bool(), dim, o.keepdim ?? false);
}

/** Index of the max (first occurrence; NaN wins). Without dim, over the flattened tensor. */
export function argReduce(
  op: "argmax" | "argmin",
  x: Tensor,
  dim?: number,
  o: ReduceOptions = {},
): Tensor {
  if (dim === undefined) {
    const flat = x.reshape([-1]);
    const r = argReduce(op, flat, 0);
    return o.keepdim ? r.reshape(x.shape.map(() => 1)) : r;
  }
  const d = normDim(op, dim, x.ndim);
  if (x.ndim > 0 && x.shape[d] === 0) throw new Error(`${op}: cannot reduce a zero-size dim`);
  const shape = x.ndim === 0 ? [1] : [...x.shape];
  const buf = x._backend.argReduce(op, x._buf, x.dtype, shape, x.ndim === 0 ? 0 : d);
  const axes = x.ndim === 0 ? [] : [d];
  return fromBuf(x._backend, buf, reducedShape(x, axes, o.keepdim ?? false), "int32");
}

export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}

/** max/min along a dim: values and the index of the first extreme; the gradient goes there. */
export function extremeAlong(
  op: "max" | "min",
  x: Tensor,
  dim: number,
  o: ReduceOptions = {},
): ValuesIndices {
  const d = normDim(op, dim, x.ndim);
  const idx = argReduce(op === "max" ? "argmax" : "argmin", x, d, { keepdim: true });
  let values = x.gather(d, idx);
  let indices = idx;
  if (!o.keepdim && x.ndim > 0) [values, indices] = [values.squeeze(d), idx.squeeze(d)];
  return { values, indices };
}

function scan(op: "cumsum" | "cumprod", x: Tensor, dim: number): Tensor {
  const d = normDim(op, dim, x.ndim);
  const src = x.dtype === "bool" ? x.int() : x;
  const shape = src.ndim === 0 ? [1] : [...src.shape];
  const buf = src._backend.scan(op, src._buf, src.dtype, shape, src.ndim === 0 ? 0 : d);
  const out = fromBuf(src._backend, buf, src.shape, src.dtype);
  if (src.dtype !== "float32") return out;
  return record(out, op, [src], (g) => {
    if (op === "cumsum") return [g.flip(d).cumsum(d).flip(d)];
    // d cumprod: sum_{k >= i} g_k out_k / x_i (exact when x has no zeros)
    return [g.mul(out).flip(d).cumsum(d).flip(d).div(src)];
  });
}

export const cumsum = (x: Tensor, dim: number): Tensor => scan("cumsum", x, dim);
export const cumprod = (x: Tensor, dim: number): Tensor => scan("cumprod", x, dim);

export interface SortOptions {
  /** Largest first (default false). */
  descending?: boolean;
}

/** Stable sort along `dim`; NaN sorts last (first when descending). */
export function sort(x: Tensor, dim = -1, o: SortOptions = {}): ValuesIndices {
  const indices = argsort(x, dim, o);
  return { values: x.gather(x.ndim === 0 ? 0 : dim, indices), indices };
}

export function argsort(x: Tensor, dim = -1, o: SortOptions = {}): Tensor {
  const d = normDim("argsort", dim, x.ndim);
  const shape = x.ndim === 0 ? [1] : [...x.shape];
  const buf = x._backend.sortIndices(x._buf, x.dtype, shape, x.ndim === 0 ? 0 : d, !!o.descending);
  return fromBuf(x._backend, buf, x.shape, "int32");
}

export interface TopkOptions {
  /** Largest k (default true) or smallest k. */
  largest?: boolean;
}

/** The k largest (or smallest) values along `dim`, sorted, with their indices. */
export function topk(x: Tensor, k: number, dim = -1, o: TopkOptions = {}): ValuesIndices {
  const d = normDim("topk", dim, x.ndim);
  const size = x.ndim === 0 ? 1 : x.shape[d];
  if (!Number.isInteger(k) || k < 0 || k > size) {
    throw new Error(`topk: k = ${k} out of range for a dim of size ${size}`);
  }
  const order = argsort(x, d, { descending: o.largest ?? true });
  const indices = x.ndim === 0 ? order : order.narrow(d, 0, k);
  return { values: x.gather(d, indices), indices };
}
