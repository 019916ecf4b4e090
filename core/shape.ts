/** Shape arithmetic: broadcasting, dim normalisation, strides. */

export type Shape = readonly number[];

export function numelOf(shape: Shape): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Row-major (C-contiguous) strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const st = new Array(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

export function fmtShape(s: Shape): string {
  return `[${s.join(", ")}]`;
}

/** Broadcasts shapes the NumPy/PyTorch way, or throws naming the op. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const nd = Math.max(...shapes.map((s) => s.length));
  const out = new Array(nd).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = nd - s.length + i;
      const d = s[i];
      if (out[j] === 1) out[j] = d;
      else if (d !== 1 && d !== out[j]) {
        throw new Error(
          `${op}: shapes ${shapes.map(fmtShape).join(" and ")} cannot be broadcast ` +
            `(dim ${j - nd} is ${out[j]} vs ${d})`,
        );
      }
    }
  }
  return out;
}

/** Strides that read a tensor of `shape` as if broadcast to `outShape` (0 on broadcast dims). */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const st = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((_, j) => {
    const i = j - off;
    return i < 0 || shape[i] === 1 ? 0 : st[i];
  });
}

/** Normalises a possibly negative dim against `ndim`, or throws naming the op. */
export function normDim(op: string, dim: number, ndim: number): number {
  const lim = Math.max(ndim, 1);
  if (!Number.isInteger(dim) || dim < -lim || dim >= lim) {
    throw new Error(
      `${op}: dim ${dim} out of range for a tensor of ${ndim} dims (expected -${lim}..${lim - 1})`,
    );
  }
  return dim < 0 ? dim + lim : dim;
}

/** Normalises a dim or list of dims; `undefined` means all dims. Sorted, unique. */
export function normDims(op: string, dim: number | number[] | undefined, ndim: number): number[] {
  if (dim === undefined) return [...Array(ndim).keys()];
  const list = Array.isArray(dim) ? dim : [dim];
  const out = [...new Set(list.map((d) => normDim(op, d, ndim)))].sort((a, b) => a - b);
  if (out.length !== list.length) throw new Error(`${op}: dim ${fmtShape(list)} repeats a dim`);
  return out;
}

/** Checks a shape is a list of non-negative integers, naming the op. */
export function checkShape(op: string, shape: Shape): number[] {
  if (!Array.isArray(shape)) throw new Error(`${op}: expected a shape array, got ${shape}`);
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) {
      throw new Error(`${op}: invalid shape ${fmtShape(shape)}: sizes must be integers >= 0`);
    }
  }
  return [...shape];
}

/**
 * Drops size-1 dims and merges each dim into the next where every stride array steps through
 * the two as one (strides[d] = strides[d+1] * shape[d+1] in each), so most broadcasts and views
 * become 1-3 dims and inner loops run as long as they can.
 */
export function mergeDims(
  shape: Shape,
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const sh: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = sh.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k][last] === s[d] * shape[d])) {
      sh[last] *= shape[d];
      strides.forEach((s, k) => st[k][last] = s[d]);
    } else {
      sh.push(shape[d]);
      strides.forEach((s, k) => st[k].push(s[d]));
    }
  }
  return { shape: sh, strides: st };
}

/** Splits `shape` around one axis into [outer, size, inner]. */
export function splitAround(shape: Shape, axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}

/** Merges neighbouring dims that are both reduced or both kept (size-1 dims dropped). */
export function mergeReduced(shape: Shape, axes: number[]): { size: number; red: boolean }[] {
  const groups: { size: number; red: boolean }[] = [];
  shape.forEach((s, i) => {
    if (s === 1) return;
    const red = axes.includes(i);
    const last = groups[groups.length - 1];
    if (last && last.red === red) last.size *= s;
    else groups.push({ size: s, red });
  });
  return groups;
}

/**
 * A reduction as [outer, r, inner] (r: the reduced elements of each output, as one run after
 * merging), or null where the reduced dims are several separate runs.
 */
export function reductionRows(shape: Shape, axes: number[]): [number, number, number] | null {
  const groups = mergeReduced(shape, axes);
  if (groups.filter((g) => g.red).length > 1) return null;
  const at = groups.findIndex((g) => g.red);
  let outer = 1, r = 1, inner = 1;
  groups.forEach((g, i) => {
    if (at < 0 || i < at) outer *= g.size;
    else if (i === at) r = g.size;
    else inner *= g.size;
  });
  if (shape.some((s, i) => s === 0 && axes.includes(i))) r = 0;
  return [outer, r, inner];
}
