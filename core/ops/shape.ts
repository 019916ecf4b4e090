/**
 * Shape and movement ops. Tensors are always contiguous: reshape shares storage, every other
 * view is one strided copy. Primitives: `asStrided` (a non-overlapping strided read, used by
 * permute, slice, flip, diagonal), `expand` (a read with zero strides) and `stridedSet`
 * (a copy with a strided region overwritten, used by pad, cat and slice's backward).
 */
import { record } from "../autograd.ts";
import { checkShape, fmtShape, normDim, normDims, numelOf, stridesOf } from "../shape.ts";
import { fromBuf, live, type Tensor } from "../tensor.ts";
import { arangeOn, fromArrayOn, fullOn } from "./creation.ts";

/** A copy of the strided view (shape, strides, offset) of x; the view must not overlap. */
export function asStrided(x: Tensor, shape: number[], strides: number[], offset = 0): Tensor {
  live("asStrided", x);
  const buf = x._backend.strided(x._buf, x.dtype, shape, strides, offset);
  const out = fromBuf(x._backend, buf, shape, x.dtype);
  return record(out, "asStrided", [x], (g) => [
    stridedSet(x.zerosLike().to(g.dtype), g, shape, strides, offset),
  ]);
}

/** A copy of `base` with its strided view (shape, strides, offset) replaced by `src`. */
export function stridedSet(
  base: Tensor,
  src: Tensor,
  shape: number[],
  strides: number[],
  offset = 0,
): Tensor {
  live("stridedSet", base, src);
  const s = src.to(base.dtype);
  if (numelOf(shape) !== s.numel) {
    throw new Error(
      `stridedSet: source ${fmtShape(s.shape)} does not fill view ${fmtShape(shape)}`,
    );
  }
  const buf = base._backend.stridedSet(
    base._buf,
    base.numel,
    s._buf,
    base.dtype,
    shape,
    strides,
    offset,
  );
  const out = fromBuf(base._backend, buf, base.shape, base.dtype);
  return record(out, "stridedSet", [base, s], (g) => [
    stridedSet(g, s.zerosLike().to(g.dtype), shape, strides, offset),
    asStrided(g, shape, strides, offset).reshape(s.shape),
  ]);
}

/** Resolves one -1 in a requested shape. */
function inferShape(op: string, shape: readonly number[], numel: number): number[] {
  const free = shape.filter((s) => s === -1).length;
  if (free > 1) throw new Error(`${op}: only one dim can be -1, got ${fmtShape(shape)}`);
  const known = shape.reduce((n, s) => (s === -1 ? n : n * s), 1);
  const out = shape.map((s) => (s === -1 ? (known === 0 ? 0 : numel / known) : s));
  checkShape(op, out.map((s) => (Number.isInteger(s) ? s : -1)));
  if (numelOf(out) !== numel) {
    throw new Error(`${op}: shape ${fmtShape(shape)} is invalid for a tensor of ${numel} elements`);
  }
  return out;
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  live("reshape", x);
  const s = inferShape("reshape", shape, x.numel);
  const out = x._view(s);
  return record(out, "reshape", [x], (g) => [g.reshape(x.shape)]);
}

export function permute(x: Tensor, dims: number[]): Tensor {
  if (dims.length !== x.ndim) {
    throw new Error(`permute: got ${dims.length} dims for a tensor of ${x.ndim} dims`);
  }
  const d = dims.map((v) => normDim("permute", v, x.ndim));
  if (new Set(d).size !== d.length) throw new Error(`permute: repeated dim in ${fmtShape(dims)}`);
  if (d.every((v, i) => v === i)) return x;
  live("permute", x);
  const st = stridesOf(x.shape), shape = d.map((i) => x.shape[i]);
  const buf = x._backend.strided(x._buf, x.dtype, shape, d.map((i) => st[i]), 0);
  const out = fromBuf(x._backend, buf, shape, x.dtype);
  // The gradient is the inverse permutation: one strided read (asStrided's general backward
  // would write g into a zero tensor).
  const inv = new Array<number>(d.length);
  d.forEach((v, i) => inv[v] = i);
  return record(out, "permute", [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  if (x.ndim === 0) return x;
  const a = normDim("transpose", d0, x.ndim), b = normDim("transpose", d1, x.ndim);
  const p = [...x.shape.keys()];
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

/** Broadcasts to `shape` (-1 keeps a dim); the gradient sums over the broadcast dims. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  live("expand", x);
  const lead = shape.length - x.ndim;
  if (lead < 0) {
    throw new Error(`expand: target ${fmtShape(shape)} has fewer dims than ${fmtShape(x.shape)}`);
  }
  const st = stridesOf(x.shape);
  const outShape: number[] = [], strides: number[] = [];
  shape.forEach((s, j) => {
    const i = j - lead;
    const have = i >= 0 ? x.shape[i] : 1;
    const want = s === -1 ? have : s;
    if (i < 0 && s === -1) throw new Error(`expand: -1 is not allowed for new leading dims`);
    if (have !== want && have !== 1) {
      throw new Error(`expand: cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
    }
    outShape.push(want);
    strides.push(i >= 0 && have === want ? st[i] : 0);
  });
  if (outShape.every((s, i) => s === x.shape[i - lead]) && lead === 0) return x;
  const out = fromBuf(
    x._backend,
    x._backend.strided(x._buf, x.dtype, outShape, strides, 0),
    outShape,
    x.dtype,
  );
  return record(out, "expand", [x], (g) => {
    const dims = outShape.map((_, j) => j).filter((j) =>
      j < lead || x.shape[j - lead] !== outShape[j]
    );
    return [g.sum(dims, { keepdim: true }).reshape(x.shape)];
  });
}

/** Elements start, start+step, ... < end along `dim` (Python slice semantics, step > 0). */
export function slice(x: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  const d = normDim("slice", dim, x.ndim);
  const n = x.shape[d];
  if (!Number.isInteger(step) || step <= 0) {
    throw new Error(`slice: step must be a positive integer, got ${step}`);
  }
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s = clampIdx(start), e = Math.max(clampIdx(end ?? n), s);
  const len = Math.ceil((e - s) / step);
  if (s === 0 && len === n && step === 1) return x;
  const st = stridesOf(x.shape);
  const shape = [...x.shape];
  shape[d] = len;
  const strides = [...st];
  strides[d] = st[d] * step;
  return asStrided(x, shape, strides, s * st[d]);
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normDim("narrow", dim, x.ndim);
  const n = x.shape[d];
  const s = start < 0 ? start + n : start;
  if (s < 0 || length < 0 || s + length > n) {
    throw new Error(`narrow: start ${start} + length ${length} exceeds dim ${dim} of size ${n}`);
  }
  return slice(x, d, s, s + length);
}

export function select(x: Tensor, dim: number, index: number): Tensor {
  const d = normDim("select", dim, x.ndim);
  const n = x.shape[d];
  if (index < -n || index >= n) {
    throw new Error(`select: index ${index} out of range for dim ${dim} of size ${n}`);
  }
  return narrow(x, d, index < 0 ? index + n : index, 1).squeeze(d);
}

export function flip(x: Tensor, dims: number | number[]): Tensor {
  const ds = normDims("flip", dims, x.ndim);
  const st = stridesOf(x.shape);
  let offset = 0;
  const strides = st.map((s, i) => {
    if (!ds.includes(i) || x.shape[i] === 0) return s;
    offset += (x.shape[i] - 1) * s;
    return -s;
  });
  return asStrided(x, [...x.shape], strides, offset);
}

export function squeeze(x: Tensor, dim?: number | number[]): Tensor {
  const ds = dim === undefined
    ? [...x.shape.keys()].filter((i) => x.shape[i] === 1)
    : normDims("squeeze", dim, x.ndim).filter((i) => x.shape[i] === 1);
  return reshape(x, x.shape.filter((_, i) => !ds.includes(i)));
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim("unsqueeze", dim, x.ndim + 1);
  const s = [...x.shape];
  s.splice(d, 0, 1);
  return reshape(x, s);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const a = normDim("flatten", startDim, x.ndim), b = normDim("flatten", endDim, x.ndim);
  if (a > b) throw new Error(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  const s = [...x.shape.slice(0, a), numelOf(x.shape.slice(a, b + 1)), ...x.shape.slice(b + 1)];
  return reshape(x, s);
}

export function unflatten(x: Tensor, dim: number, sizes: number[]): Tensor {
  const d = normDim("unflatten", dim, x.ndim);
  const s = [...x.shape];
  s.splice(d, 1, ...inferShape("unflatten", sizes, x.shape[d]));
  return reshape(x, s);
}

/** Concatenates along `dim`; all other dims must match. */
export function cat(tensors: Tensor[], dim = 0): Tensor {
  if (!tensors.length) throw new Error("cat: expected a non-empty list of tensors");
  live("cat", ...tensors);
  const ref = tensors.find((t) => !(t.ndim === 1 && t.numel === 0)) ?? tensors[0];
  const d = normDim("cat", dim, ref.ndim);
  const parts = tensors.filter((t) => !(t.ndim === 1 && t.numel === 0 && ref.ndim !== 1));
  const dtype = parts.map((t) => t.dtype).reduce((
    a,
    b,
  ) => (a === "float32" || b === "float32"
    ? "float32"
    : a === "int32" || b === "int32"
    ? "int32"
    : "bool")
  );
  for (const t of parts) {
    if (t.ndim !== ref.ndim || t.shape.some((s, i) => i !== d && s !== ref.shape[i])) {
      throw new Error(
        `cat: shapes ${parts.map((p) => fmtShape(p.shape)).join(", ")} differ outside dim ${dim}`,
      );
    }
  }
  if (parts.length === 1) return parts[0].to(dtype);
  const shape = [...ref.shape];
  shape[d] = parts.reduce((n, t) => n + t.shape[d], 0);
  const st = stridesOf(shape);
  let out = fullOn(ref, shape, dtype, 0);
  let at = 0;
  for (const t of parts) {
    out = stridedSet(out, t, [...t.shape], st, at * st[d]);
    at += t.shape[d];
  }
  return out;
}

export function stack(tensors: Tensor[], dim = 0): Tensor {
  if (!tensors.length) throw new Error("stack: expected a non-empty list of tensors");
  const d = normDim("stack", dim, tensors[0].ndim + 1);
  for (const t of tensors) {
    if (t.shape.join() !== tensors[0].shape.join()) {
      throw new Error(`stack: all tensors must have the same shape, got ${fmtShape(t.shape)}`);
    }
  }
  return cat(tensors.map((t) => t.unsqueeze(d)), d);
}

/** Splits into pieces of `size` (last may be smaller) or of the listed sizes. */
export function split(x: Tensor, size: number | number[], dim = 0): Tensor[] {
  const d = normDim("split", dim, x.ndim);
  const n = x.shape[d];
  const sizes: number[] = [];
  if (Array.isArray(size)) {
    if (size.reduce((a, b) => a + b, 0) !== n) {
      throw new Error(`split: sizes ${fmtShape(size)} do not sum to dim size ${n}`);
    }
    sizes.push(...size);
  } else {
    if (!(size > 0)) throw new Error(`split: size must be positive, got ${size}`);
    for (let i = 0; i < n; i += size) sizes.push(Math.min(size, n - i));
  }
  let at = 0;
  return sizes.map((s) => {
    const t = narrow(x, d, at, s);
    at += s;
    return t;
  });
}

export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  const d = normDim("chunk", dim, x.ndim);
  return split(x, Math.max(1, Math.ceil(x.shape[d] / chunks)), d);
}

/** Repeats the tensor `reps[i]` times along dim i (PyTorch's `repeat`). */
export function repeat(x: Tensor, reps: number[]): Tensor {
  if (reps.length < x.ndim) {
    throw new Error(`repeat: got ${reps.length} repeats for a tensor of ${x.ndim} dims`);
  }
  const shape = [...Array(reps.length - x.ndim).fill(1), ...x.shape];
  const inter = shape.flatMap((s) => [1, s]); // (1, s0, 1, s1, ...)
  const exp = shape.flatMap((s, i) => [reps[i], s]);
  return x.reshape(inter).expand(exp).reshape(shape.map((s, i) => s * reps[i]));
}

/** Like `repeat`, but fewer reps than dims repeat the trailing dims (NumPy's tile). */
export function tile(x: Tensor, reps: number[]): Tensor {
  const r = reps.length < x.ndim ? [...Array(x.ndim - reps.length).fill(1), ...reps] : reps;
  return repeat(x, r);
}

export function roll(x: Tensor, shifts: number | number[], dims?: number | number[]): Tensor {
  if (dims === undefined) return roll(x.flatten(), shifts, 0).reshape(x.shape);
  const sh = Array.isArray(shifts) ? shifts : [shifts];
  const ds = Array.isArray(dims) ? dims : [dims];
  if (sh.length !== ds.length) throw new Error("roll: shifts and dims must have the same length");
  let y = x;
  sh.forEach((s, i) => {
    const d = normDim("roll", ds[i], x.ndim);
    const n = x.shape[d];
    const k = ((s % n) + n) % n;
    if (k) y = cat([narrow(y, d, n - k, k), narrow(y, d, 0, n - k)], d);
  });
  return y;
}

export function tril(x: Tensor, diagonal = 0): Tensor {
  return triangle(x, diagonal, true);
}

export function triu(x: Tensor, diagonal = 0): Tensor {
  return triangle(x, diagonal, false);
}

function triangle(x: Tensor, k: number, lower: boolean): Tensor {
  if (x.ndim < 2) throw new Error(`${lower ? "tril" : "triu"}: expected at least 2 dims`);
  const [r, c] = x.shape.slice(-2);
  const rows = arangeOn(x, r).reshape([r, 1]), cols = arangeOn(x, c).reshape([1, c]);
  const diff = cols.sub(rows); // j - i
  return x.maskedFill(lower ? diff.gt(k) : diff.lt(k), 0);
}

export type PadMode = "constant" | "reflect" | "replicate" | "circular";

export interface PadOptions {
  /** "constant" (default), "reflect", "replicate" or "circular". */
  mode?: PadMode;
  /** Fill value for constant padding (default 0). */
  value?: number;
}

/**
 * Pads the last dims: `pads` = [left, right] for the last dim, then [top, bottom] for the one
 * before, ... (PyTorch's `F.pad` order). Negative pads crop.
 */
export function pad(x: Tensor, pads: number[], o: PadOptions = {}): Tensor {
  const mode = o.mode ?? "constant";
  if (pads.length % 2 || pads.length / 2 > x.ndim) {
    throw new Error(`pad: expected an even number of pads for at most ${x.ndim} dims, got ${pads}`);
  }
  if (mode !== "constant") {
    let y = x;
    for (let i = 0; i < pads.length / 2; i++) {
      y = padIndexed(y, x.ndim - 1 - i, pads[2 * i], pads[2 * i + 1], mode);
    }
    return y;
  }
  // Crop negative pads first, then place x inside a tensor full of `value`.
  let y = x;
  const shape = [...x.shape];
  let offset = 0;
  const before: number[] = new Array(x.ndim).fill(0);
  for (let i = 0; i < pads.length / 2; i++) {
    const d = x.ndim - 1 - i;
    const [l, r] = [pads[2 * i], pads[2 * i + 1]];
    y = y.slice(d, Math.max(-l, 0), y.shape[d] - Math.max(-r, 0));
    before[d] = Math.max(l, 0);
    shape[d] = y.shape[d] + Math.max(l, 0) + Math.max(r, 0);
  }
  const st = stridesOf(shape);
  before.forEach((b, d) => (offset += b * st[d]));
  return stridedSet(fullOn(x, shape, x.dtype, o.value ?? 0), y, [...y.shape], st, offset);
}

/** Reflect/replicate/circular padding of one dim via an index gather (differentiable). */
function padIndexed(x: Tensor, d: number, l: number, r: number, mode: PadMode): Tensor {
  const n = x.shape[d];
  if (mode === "reflect" && (l >= n || r >= n)) {
    throw new Error(`pad: reflect padding (${l}, ${r}) must be smaller than dim size ${n}`);
  }
  const idx: number[] = [];
  for (let i = -l; i < n + r; i++) {
    if (mode === "replicate") idx.push(Math.min(Math.max(i, 0), n - 1));
    else if (mode === "circular") idx.push(((i % n) + n) % n);
    else idx.push(i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  }
  return x.indexSelect(d, fromArrayOn(x, idx));
}
