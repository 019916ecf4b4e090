/**
 * Indexing. Primitives: gather and scatter (assign or add); indexSelect, take, maskedFill,
 * maskedSelect and oneHot are built from them.
 */
import { record } from "../autograd.ts";
import { fmtShape, normDim } from "../shape.ts";
import { fromBuf, live, type Tensor } from "../tensor.ts";
import { arangeOn, fromArrayOn } from "./creation.ts";
import { scalarTensor, where } from "./elementwise.ts";

function checkIndex(op: string, x: Tensor, d: number, index: Tensor, src?: Tensor): void {
  if (index.dtype !== "int32") {
    throw new Error(`${op}: index must be an int32 tensor, got ${index.dtype}`);
  }
  const xn = Math.max(x.ndim, 1);
  if (Math.max(index.ndim, 1) !== xn) {
    throw new Error(`${op}: index has ${index.ndim} dims but the input has ${x.ndim}`);
  }
  const bad = index.shape.some((s, i) =>
    (i !== d && s > x.shape[i]) || (src !== undefined && s > src.shape[i])
  );
  if (bad) {
    throw new Error(
      `${op}: index ${fmtShape(index.shape)} is larger than input ${fmtShape(x.shape)}` +
        (src ? ` or src ${fmtShape(src.shape)}` : "") + ` outside dim ${d}`,
    );
  }
}

const dims1 = (t: Tensor) => (t.ndim === 0 ? [1] : [...t.shape]);

/** out[i][j] = x[index[i][j]][j] along `dim` (PyTorch's gather). */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  live("gather", x, index);
  const d = normDim("gather", dim, x.ndim);
  checkIndex("gather", x, d, index);
  const buf = x._backend.gather(x._buf, x.dtype, dims1(x), d, index._buf, dims1(index));
  const out = fromBuf(x._backend, buf, index.shape, x.dtype);
  return record(out, "gather", [x], (g) => [x.zerosLike().to(g.dtype).scatterAdd(d, index, g)]);
}

function scatterPrim(
  x: Tensor,
  dim: number,
  index: Tensor,
  src: Tensor | number,
  mode: "assign" | "add",
): Tensor {
  const op = mode === "add" ? "scatterAdd" : "scatter";
  live(op, x, index, src);
  const d = normDim(op, dim, x.ndim);
  const s = typeof src === "number"
    ? scalarTensor(src, x, x.dtype).expand(index.shape)
    : src.to(x.dtype);
  checkIndex(op, x, d, index, s);
  const buf = x._backend.scatter(
    x._buf,
    x.dtype,
    dims1(x),
    d,
    index._buf,
    dims1(index),
    s._buf,
    dims1(s),
    mode,
  );
  const out = fromBuf(x._backend, buf, x.shape, x.dtype);
  return record(out, op, [x, s], (g) => [
    mode === "add" ? g : g.scatter(d, index, 0),
    padTo(g.gather(d, index), s.shape),
  ]);
}

/** Zero-pads the trailing side of every dim of g up to `shape` (src may exceed index). */
function padTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.every((n, i) => n === shape[i])) return g;
  return g.pad([...shape.keys()].reverse().flatMap((i) => [0, shape[i] - g.shape[i]]));
}

/** A copy of x with src[i][j] written at x[index[i][j]][j] along dim. */
export const scatter = (x: Tensor, dim: number, index: Tensor, src: Tensor | number): Tensor =>
  scatterPrim(x, dim, index, src, "assign");

/** A copy of x with src[i][j] added at x[index[i][j]][j] along dim. */
export const scatterAdd = (x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor =>
  scatterPrim(x, dim, index, src, "add");

/** The entries of x at the 1-D `index` along `dim`. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normDim("indexSelect", dim, x.ndim);
  if (index.ndim > 1) {
    throw new Error(`indexSelect: index must be 1-D, got ${fmtShape(index.shape)}`);
  }
  if (x.ndim === 0) return x.reshape([1]).gather(0, index.reshape([-1])).reshape(index.shape);
  const view = x.shape.map((_, i) => (i === d ? index.numel : 1));
  const shape = x.shape.map((s, i) => (i === d ? index.numel : s));
  return x.gather(d, index.reshape(view).expand(shape));
}

/** x viewed as 1-D, at `index` (any shape). */
export function take(x: Tensor, index: Tensor): Tensor {
  return x.reshape([-1]).gather(0, index.reshape([-1])).reshape(index.shape);
}

/** x with `value` where mask is true (mask broadcasts to x). */
export function maskedFill(x: Tensor, mask: Tensor, value: number | boolean | Tensor): Tensor {
  if (mask.dtype !== "bool") throw new Error(`maskedFill: mask must be bool, got ${mask.dtype}`);
  const v = typeof value === "object" ? value.to(x.dtype) : scalarTensor(value, x, x.dtype);
  const out = where(mask, v, x);
  if (out.shape.join() !== x.shape.join()) {
    throw new Error(
      `maskedFill: mask ${fmtShape(mask.shape)} does not broadcast to ${fmtShape(x.shape)}`,
    );
  }
  return out;
}

/**
 * The elements of x where mask is true, as a 1-D tensor. Its length depends on the data, so
 * this reads the mask back: it is asynchronous.
 */
export async function maskedSelect(x: Tensor, mask: Tensor): Promise<Tensor> {
  const m = mask.bool().expand(x.shape);
  const flags = await m.data();
  const idx: number[] = [];
  for (let i = 0; i < flags.length; i++) if (flags[i]) idx.push(i);
  return take(x, fromArrayOn(x, idx));
}

/** Indices of the non-zero elements, shape [count, ndim] (asynchronous: reads x back). */
export async function nonzero(x: Tensor): Promise<Tensor> {
  const v = await x.data();
  const rows: number[] = [];
  const nd = x.ndim;
  for (let i = 0; i < v.length; i++) {
    if (v[i] === 0) continue; // NaN counts as non-zero
    let r = i;
    const coord = new Array(nd);
    for (let d = nd - 1; d >= 0; d--) {
      coord[d] = r % x.shape[d];
      r = Math.floor(r / x.shape[d]);
    }
    rows.push(...coord);
  }
  return fromArrayOn(x, rows, "int32", [rows.length / Math.max(nd, 1), nd]);
}

/** One-hot encoding (int32) with a trailing dim of `numClasses`. */
export function oneHot(index: Tensor, numClasses: number): Tensor {
  if (index.dtype !== "int32") throw new Error(`oneHot: index must be int32, got ${index.dtype}`);
  if (!Number.isInteger(numClasses) || numClasses <= 0) {
    throw new Error(
      `oneHot: numClasses must be a positive integer (inferring it would need a readback), got ${numClasses}`,
    );
  }
  return index.unsqueeze(-1).eq(arangeOn(index, numClasses)).int();
}
