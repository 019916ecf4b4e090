/**
 * Reductions, scans and sorting. Primitives: reduce (sum, prod, max, min), argReduce, scan
 * (cumsum, cumprod) and sortIndices; mean, var, std, logsumexp, norm, all, any, max(dim),
 * topk and friends are composed from them.
 */
import { noGrad, record } from "../autograd.ts";
import type { ReduceOp } from "../backend.ts";
import { normDim, normDims } from "../shape.ts";
import { fromBuf, live, type Tensor } from "../tensor.ts";
import { where } from "./elementwise.ts";

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
  live(name, x);
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
  const n = countOf(x, dim, "mean"); // first, so a bad dim is reported as mean's
  return x.sum(dim, o).div(n);
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
  const m = where(m0.isinf(), 0, m0); // all -inf (or +inf) rows: shift by 0
  const s = x.sub(m).exp().sum(dim, { keepdim: true }).log().add(m);
  return o.keepdim ? s : s.squeeze(normDims("logsumexp", dim, x.ndim));
}

/**
 * Vector p-norm over `dim` (all dims by default). The gradient is PyTorch's: zero where the
 * norm is 0 (p > 1), zero everywhere for p = 0, shared evenly between ties for p = ±inf.
 */
export function norm(x: Tensor, p: number = 2, dim?: Dims, o: ReduceOptions = {}): Tensor {
  if (p === Infinity) return x.abs().amax(dim, o);
  if (p === -Infinity) return x.abs().amin(dim, o);
  if (p === 1) return x.abs().sum(dim, o);
  const out = noGrad(() =>
    p === 0
      ? x.ne(0).float().sum(dim, o)
      : p === 2
      ? x.mul(x).sum(dim, o).sqrt()
      : x.abs().pow(p).sum(dim, o).pow(1 / p)
  );
  const keepShape = reducedShape(x, normDims("norm", dim, x.ndim), true);
  return record(out, "norm", [x], (g) => {
    if (p === 0) return [x.zerosLike()];
    const n = out.reshape(keepShape);
    const gk = g.reshape(keepShape);
    if (p === 2) return [x.mul(gk.div(n).maskedFill(n.eq(0), 0))];
    const xs = x.sign().mul(x.abs().pow(p - 1)); // sign(x) |x|^(p-1)
    // p < 1: xs n^(1-p) g, zero where x = 0; else xs g / n^(p-1), zero where the norm is 0.
    if (p < 1) return [xs.maskedFill(x.eq(0), 0).mul(gk).mul(n.pow(1 - p))];
    return [xs.mul(gk.div(n.pow(p - 1)).maskedFill(n.eq(0), 0))];
  });
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
  live(op, x);
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
  live(op, x);
  const d = normDim(op, dim, x.ndim);
  const src = x.dtype === "bool" ? x.int() : x;
  const shape = src.ndim === 0 ? [1] : [...src.shape];
  const buf = src._backend.scan(op, src._buf, src.dtype, shape, src.ndim === 0 ? 0 : d);
  const out = fromBuf(src._backend, buf, src.shape, src.dtype);
  if (src.dtype !== "float32") return out;
  return record(out, op, [src], (g) => {
    if (op === "cumsum") return [g.flip(d).cumsum(d).flip(d)];
    return [cumprodBackward(src, out, g, d)];
  });
}

/**
 * d cumprod: dx_i = sum_{k >= i} g_k prod_{j <= k, j != i} x_j, exact with zeros. With z the
 * first zero along d: for i < z it is sum_{k >= i} g_k out_k / x_i (x_i != 0 there); for
 * i = z it is out_{z-1} sum_{k >= z} g_k prod_{z < j <= k} x_j; for i > z every term holds x_z,
 * so it is 0.
 */
function cumprodBackward(x: Tensor, out: Tensor, g: Tensor, d: number): Tensor {
  if (x.ndim === 0 || x.shape[d] <= 1) return g; // d x_0 / d x_0 = 1
  const n = x.shape[d];
  const revCumsum = (t: Tensor) => t.flip(d).cumsum(d).flip(d);
  const zeros = x.eq(0);
  const seen = zeros.cumsum(d); // zeros at or before i
  const before = seen.eq(0); // i < z
  const atZ = zeros.logicalAnd(seen.eq(1)); // i = z
  const early = revCumsum(g.mul(out)).div(where(before, x, 1));
  // prod_{z < j <= k} x_j: the cumprod of x with every entry up to z set to 1
  const tail = where(seen.eq(0).logicalOr(atZ), 1, x).cumprod(d);
  const prefix = out.narrow(d, 0, n - 1).pad(padSpec(x.ndim, d), { value: 1 }); // out_{i-1}
  const atZero = prefix.mul(revCumsum(g.mul(tail)));
  return where(before, early, where(atZ, atZero, 0));
}

/** Pads for one leading element on dim d (F.pad order: last dim first). */
function padSpec(ndim: number, d: number): number[] {
  const pads = new Array(2 * (ndim - d)).fill(0);
  pads[2 * (ndim - 1 - d)] = 1;
  return pads;
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
  live("argsort", x);
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
