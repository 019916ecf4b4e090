/**
 * The CPU backend: the primitive kernels of backend.ts on host typed arrays. Buffers are the
 * typed arrays themselves; every kernel runs synchronously and `read` resolves at once.
 */
import type {
  AdamStepConstants,
  Backend,
  BinaryOp,
  Buf,
  MatmulDims,
  ReduceOp,
  UnaryOp,
  Windows,
} from "../../backend.ts";
import {
  allocArray,
  binaryResultDtype,
  BOOL_UNARY,
  type DType,
  type TypedArray,
} from "../../dtype.ts";
import { bitsAt, wordsToNormal, wordToUniform } from "../../random.ts";
import { numelOf, reductionRows, splitAround, stridesOf } from "../../shape.ts";
import { binaryKernel, stridedCopy, stridedWrite, unaryKernel } from "./elementwise.ts";
import { matmulKernel } from "./matmul.ts";
import { col2imKernel, im2colKernel } from "./windows.ts";
import { heapArray, heapGive } from "./wasm/memory.ts";
import {
  WASM_BINARY,
  wasmAdam,
  wasmBinary,
  wasmBoolToF32,
  wasmCol2im,
  wasmColumnSum,
  wasmIm2col,
  wasmLayerNorm,
  wasmRowSum,
  wasmSoftmax,
  wasmUnary,
} from "./wasm/elementwise.ts";
import { matmulOutSlack } from "./wasm/mod.ts";

const arr = (b: Buf) => b as TypedArray;

function reduceInto(
  op: ReduceOp,
  x: TypedArray,
  out: TypedArray,
  outer: number,
  r: number,
  inner: number,
): void {
  const init = op === "sum" ? 0 : op === "prod" ? 1 : op === "max" ? -Infinity : Infinity;
  if (inner === 1) {
    reduceRows(op, x, out, outer, r);
    return;
  }
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(init);
    const base = o * r * inner;
    for (let k = 0; k < r; k++) {
      const row = base + k * inner;
      if (op === "sum") { for (let i = 0; i < inner; i++) acc[i] += x[row + i]; }
      else if (op === "prod") { for (let i = 0; i < inner; i++) acc[i] *= x[row + i]; }
      else if (op === "max") {
        for (let i = 0; i < inner; i++) {
          const v = x[row + i];
          if (v > acc[i] || v !== v) acc[i] = v;
        }
      } else {
        for (let i = 0; i < inner; i++) {
          const v = x[row + i];
          if (v < acc[i] || v !== v) acc[i] = v;
        }
      }
    }
    // Once NaN, max/min stay NaN: `v > NaN` is false, so acc keeps NaN.
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i];
  }
}

/** Reduces each contiguous row of length r (the last-dims case: sums in local variables). */
export function reduceRows(op: ReduceOp, x: TypedArray, out: TypedArray, outer: number, r: number) {
  for (let o = 0, p = 0; o < outer; o++, p += r) {
    const end = p + r;
    if (op === "sum") {
      // Four partial sums: independent additions pipeline (about 3x faster than one chain).
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = p;
      for (; i + 3 < end; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
      }
      for (; i < end; i++) s0 += x[i];
      out[o] = (s0 + s1) + (s2 + s3);
    } else if (op === "prod") {
      let a = 1;
      for (let i = p; i < end; i++) a *= x[i];
      out[o] = a;
    } else if (op === "max") {
      let a = -Infinity;
      for (let i = p; i < end; i++) {
        const v = x[i];
        if (v > a || v !== v) a = v;
        if (a !== a) break; // NaN wins
      }
      out[o] = a;
    } else {
      let a = Infinity;
      for (let i = p; i < end; i++) {
        const v = x[i];
        if (v < a || v !== v) a = v;
        if (a !== a) break;
      }
      out[o] = a;
    }
  }
}

/** Whether `dim` is the last dim and idx's leading dims equal `shape`'s (one row each). */
function lastDimRows(shape: number[], dim: number, idxShape: number[]): boolean {
  if (dim !== shape.length - 1 || idxShape.length !== shape.length) return false;
  for (let d = 0; d < dim; d++) if (idxShape[d] !== shape[d]) return false;
  return true;
}

/**
 * Freed host arrays, kept by dtype and length for the next allocation of the same size. A
 * training step allocates the same shapes every step; reusing them skips the zero-fill, the
 * page faults and the garbage collection of fresh large arrays (measured: a transformer
 * training step's backend time fell from 212 to 128 ms with the pool). Only arrays of at least MIN_POOLED values
 * are kept, at most CAP_BYTES in all. Every kernel below writes all of its output, so a
 * recycled array's old values never show.
 */
class ArrayPool {
  static readonly MIN_POOLED = 4096;
  static readonly CAP_BYTES = 256 * 2 ** 20;
  #free = new Map<string, TypedArray[]>();
  #bytes = 0;

  take(dtype: DType, n: number): TypedArray {
    if (n >= ArrayPool.MIN_POOLED) {
      const list = this.#free.get(`${dtype}:${n}`);
      const a = list?.pop();
      if (a) {
        this.#bytes -= a.byteLength;
        return a;
      }
    }
    return allocArray(dtype, n);
  }

  give(a: TypedArray): void {
    const n = a.length;
    if (n < ArrayPool.MIN_POOLED || this.#bytes + a.byteLength > ArrayPool.CAP_BYTES) return;
    // Only whole arrays (never a view into a larger buffer someone else may hold).
    if (a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength) return;
    const dtype = a instanceof Float32Array
      ? "float32"
      : a instanceof Int32Array
      ? "int32"
      : "bool";
    const key = `${dtype}:${n}`;
    let list = this.#free.get(key);
    if (!list) this.#free.set(key, list = []);
    list.push(a);
    this.#bytes += a.byteLength;
  }
}

/** Arrays of at least this many values live in the Wasm heap (see #take). */
const HEAP_MIN_VALUES = 1024;

export class CpuBackend implements Backend {
  readonly name = "cpu";
  readonly deviceInfo = `cpu (${navigator.hardwareConcurrency} cores)`;
  readonly #pool = new ArrayPool();

  /**
   * An array for a kernel's output: large ones in the Wasm kernels' shared heap (read and
   * written there in place by the Wasm kernels), the rest, or all where there is no shared
   * heap, from the recycling pool.
   */
  #take(dtype: DType, n: number, slackBytes = 0): TypedArray {
    if (n >= HEAP_MIN_VALUES) {
      const a = heapArray(dtype, n, slackBytes);
      if (a) return a;
    }
    return this.#pool.take(dtype, n);
  }
  #give(a: TypedArray): void {
    if (!heapGive(a)) this.#pool.give(a);
  }

  upload(data: TypedArray, dtype: DType): Buf {
    const out = this.#take(dtype, data.length);
    out.set(data);
    return out;
  }
  read(buf: Buf, _dtype: DType, size: number): Promise<TypedArray> {
    return Promise.resolve(arr(buf).slice(0, size));
  }
  free(buf: Buf): void {
    // Large arrays are kept for reuse; the rest go to the garbage collector.
    this.#give(arr(buf));
  }
  full(size: number, dtype: DType, value: number): Buf {
    return this.#take(dtype, size).fill(value);
  }
  arange(size: number, start: number, step: number, dtype: DType): Buf {
    const out = this.#take(dtype, size);
    for (let i = 0; i < size; i++) out[i] = start + i * step;
    return out;
  }
  random(
    kind: "uniform" | "normal" | "int",
    size: number,
    key: [number, number],
    start: number,
    low = 0,
    high = 1,
  ): Buf {
    const [k0, k1] = key;
    if (kind === "uniform") {
      const out = this.#take("float32", size);
      for (let i = 0; i < size; i++) out[i] = wordToUniform(bitsAt(k0, k1, start + i));
      return out;
    }
    if (kind === "normal") {
      const out = this.#take("float32", size);
      for (let i = 0; i < size; i++) {
        out[i] = wordsToNormal(bitsAt(k0, k1, start + 2 * i), bitsAt(k0, k1, start + 2 * i + 1));
      }
      return out;
    }
    const out = this.#take("int32", size);
    const range = high - low;
    for (let i = 0; i < size; i++) out[i] = low + (bitsAt(k0, k1, start + i) % range);
    return out;
  }
  cast(x: Buf, from: DType, to: DType, size: number): Buf {
    const src = arr(x);
    const out = this.#take(to, size);
    if (from === "bool" && to === "float32" && size >= HEAP_MIN_VALUES) {
      if (wasmBoolToF32(src as Uint8Array, out as Float32Array, size)) return out;
    }
    if (to === "bool") { for (let i = 0; i < size; i++) out[i] = src[i] !== 0 ? 1 : 0; }
    else if (to === "int32") { for (let i = 0; i < size; i++) out[i] = Math.trunc(src[i]); }
    else out.set(src.subarray(0, size));
    return out;
  }
  unary(op: UnaryOp, x: Buf, dtype: DType, size: number): Buf {
    const boolOut = BOOL_UNARY.has(op);
    const out = this.#take(boolOut ? "bool" : dtype, size);
    if (dtype === "float32" && !boolOut && size >= HEAP_MIN_VALUES) {
      if (wasmUnary(op, arr(x) as Float32Array, out as Float32Array, size)) return out;
    }
    unaryKernel(op, dtype)(arr(x), out, size);
    return out;
  }
  binary(
    op: BinaryOp,
    a: Buf,
    aStrides: number[],
    b: Buf,
    bStrides: number[],
    outShape: number[],
    dtype: DType,
  ): Buf {
    const outDtype = binaryResultDtype(op, dtype);
    const n = numelOf(outShape);
    const out = this.#take(outDtype, n);
    if (dtype === "float32" && n >= HEAP_MIN_VALUES && WASM_BINARY.has(op)) {
      const [A, B] = [arr(a), arr(b)] as Float32Array[];
      const O = out as Float32Array | Uint8Array;
      if (wasmBinary(op, A, aStrides, B, bStrides, outShape, O)) return out;
    }
    binaryKernel(op, dtype)(arr(a), arr(b), out, outShape, aStrides, bStrides);
    return out;
  }
  where(
    cond: Buf,
    cStrides: number[],
    a: Buf,
    aStrides: number[],
    b: Buf,
    bStrides: number[],
    outShape: number[],
    dtype: DType,
  ): Buf {
    const n = numelOf(outShape);
    const out = this.#take(dtype, n);
    const c = arr(cond), A = arr(a), B = arr(b);
    const nd = outShape.length;
    const idx = new Array(nd).fill(0);
    let pc = 0, pa = 0, pb = 0;
    for (let o = 0; o < n; o++) {
      out[o] = c[pc] ? A[pa] : B[pb];
      for (let d = nd - 1; d >= 0; d--) {
        idx[d]++;
        pc += cStrides[d];
        pa += aStrides[d];
        pb += bStrides[d];
        if (idx[d] < outShape[d]) break;
        pc -= cStrides[d] * outShape[d];
        pa -= aStrides[d] * outShape[d];
        pb -= bStrides[d] * outShape[d];
        idx[d] = 0;
      }
    }
    return out;
  }
  reduce(op: ReduceOp, x: Buf, dtype: DType, shape: number[], axes: number[]): Buf {
    const outShape = shape.filter((_, i) => !axes.includes(i));
    const outN = numelOf(outShape);
    const out = this.#take(dtype, outN);
    const rows = reductionRows(shape, axes);
    if (rows) {
      const [outer, r, inner] = rows;
      if (
        op === "sum" && dtype === "float32" && inner > 1 && outer * r * inner >= HEAP_MIN_VALUES
      ) {
        const [X, O] = [arr(x), out] as Float32Array[];
        if (wasmColumnSum(X, O, outer, r, inner)) return out;
      }
      if (
        op === "sum" && dtype === "float32" && inner === 1 && outer * r >= HEAP_MIN_VALUES &&
        wasmRowSum(arr(x) as Float32Array, out as Float32Array, outer, r)
      ) return out;
      reduceInto(op, arr(x), out, outer, r, inner);
      return out;
    }
    // Several separate reduced blocks: move reduced axes last, then reduce rows.
    const perm = [...shape.keys()].filter((i) => !axes.includes(i)).concat(axes);
    const st = stridesOf(shape);
    const moved = this.strided(x, dtype, perm.map((p) => shape[p]), perm.map((p) => st[p]), 0);
    let r = 1;
    for (const a of axes) r *= shape[a];
    reduceInto(op, arr(moved), out, outN, r, 1);
    return out;
  }
  argReduce(op: "argmax" | "argmin", x: Buf, _dtype: DType, shape: number[], axis: number): Buf {
    const [outer, r, inner] = splitAround(shape, axis);
    const X = arr(x);
    const out = new Int32Array(outer * inner);
    const better = op === "argmax"
      ? (v: number, b: number) => v > b
      : (v: number, b: number) => v < b;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let best = X[o * r * inner + i], bi = 0;
        if (best === best) {
          for (let k = 1; k < r; k++) {
            const v = X[(o * r + k) * inner + i];
            if (v !== v) {
              bi = k;
              break;
            }
            if (better(v, best)) {
              best = v;
              bi = k;
            }
          }
        }
        out[o * inner + i] = bi;
      }
    }
    return out;
  }
  scan(op: "cumsum" | "cumprod", x: Buf, dtype: DType, shape: number[], axis: number): Buf {
    const [outer, r, inner] = splitAround(shape, axis);
    const X = arr(x);
    const out = this.#take(dtype, X.length);
    const acc = new Float64Array(inner);
    for (let o = 0; o < outer; o++) {
      acc.fill(op === "cumsum" ? 0 : 1);
      for (let k = 0; k < r; k++) {
        const row = (o * r + k) * inner;
        for (let i = 0; i < inner; i++) {
          acc[i] = op === "cumsum" ? acc[i] + X[row + i] : acc[i] * X[row + i];
          out[row + i] = acc[i];
        }
      }
    }
    return out;
  }
  sortIndices(x: Buf, _dtype: DType, shape: number[], axis: number, descending: boolean): Buf {
    const [outer, r, inner] = splitAround(shape, axis);
    const X = arr(x);
    const out = new Int32Array(X.length);
    const order = Array.from({ length: r }, (_, k) => k);
    const vals = new Float64Array(r);
    // NaN is the largest value: last ascending, first descending (as PyTorch).
    const cmp = (p: number, q: number) => {
      const a = vals[p], b = vals[q];
      const an = a !== a, bn = b !== b;
      let c = an || bn ? (an ? (bn ? 0 : 1) : -1) : a < b ? -1 : a > b ? 1 : 0;
      if (descending) c = -c;
      return c;
    };
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        for (let k = 0; k < r; k++) {
          vals[k] = X[(o * r + k) * inner + i];
          order[k] = k;
        }
        order.sort(cmp); // stable in V8
        for (let k = 0; k < r; k++) out[(o * r + k) * inner + i] = order[k];
      }
    }
    return out;
  }
  matmul(a: Buf, b: Buf, d: MatmulDims): Buf {
    const { batch, m, n } = d;
    const out = this.#take("float32", batch * m * n, matmulOutSlack(batch, m, n)) as Float32Array;
    matmulKernel(arr(a) as Float32Array, arr(b) as Float32Array, out, d);
    return out;
  }
  strided(x: Buf, dtype: DType, shape: number[], strides: number[], offset: number): Buf {
    const n = numelOf(shape);
    const out = this.#take(dtype, n);
    stridedCopy(arr(x), out, shape, strides, offset);
    return out;
  }
  stridedSet(
    base: Buf,
    size: number,
    src: Buf,
    dtype: DType,
    shape: number[],
    strides: number[],
    offset: number,
  ): Buf {
    const out = this.#take(dtype, size);
    out.set(arr(base).subarray(0, size));
    stridedWrite(out, arr(src), shape, strides, offset);
    return out;
  }
  im2col(x: Buf, rows: number, h: number, w: number, win: Windows, padValue: number): Buf {
    const n = rows * win.kernel[0] * win.kernel[1] * win.out[0] * win.out[1];
    const out = this.#take("float32", n) as Float32Array, X = arr(x) as Float32Array;
    if (!wasmIm2col(X, out, rows, h, w, win, padValue)) {
      im2colKernel(X, out, rows, h, w, win, padValue);
    }
    return out;
  }
  col2im(cols: Buf, rows: number, h: number, w: number, win: Windows): Buf {
    const out = this.#take("float32", rows * h * w) as Float32Array;
    const C = arr(cols) as Float32Array;
    if (!wasmCol2im(C, out, rows, h, w, win)) col2imKernel(C, out, rows, h, w, win);
    return out;
  }
  softmax(x: Buf, rows: number, cols: number, log: boolean): Buf | null {
    const out = this.#take("float32", rows * cols) as Float32Array;
    if (wasmSoftmax(arr(x) as Float32Array, out, rows, cols, log)) return out;
    // No Wasm SIMD here, or no room in the kernels' heap: the op is composed.
    this.#give(out);
    return null;
  }
  layerNorm(
    x: Buf,
    rows: number,
    cols: number,
    eps: number,
    weight: Buf | null,
    bias: Buf | null,
  ): { y: Buf; stats: Buf } | null {
    const y = this.#take("float32", rows * cols) as Float32Array;
    const stats = this.#take("float32", 2 * rows) as Float32Array;
    const w = weight ? arr(weight) as Float32Array : null;
    const b = bias ? arr(bias) as Float32Array : null;
    if (wasmLayerNorm(arr(x) as Float32Array, y, rows, cols, eps, w, b, stats)) return { y, stats };
    this.#give(y); // declined as softmax above
    this.#give(stats);
    return null;
  }
  adamStep(
    param: Buf,
    grad: Buf,
    expAvg: Buf,
    expAvgSq: Buf,
    n: number,
    o: AdamStepConstants,
  ): { param: Buf; expAvg: Buf; expAvgSq: Buf } {
    const P = arr(param), G = arr(grad), M = arr(expAvg), V = arr(expAvgSq);
    const np = this.#take("float32", n), nm = this.#take("float32", n);
    const nv = this.#take("float32", n);
    // Every step rounds to float32 where the composed ops would (scalars are float32 tensors
    // there), so the fused update gives the same bits as adam.ts's tensor ops.
    const f = Math.fround;
    const decay = f(1 - o.lr * o.weightDecay), wd = f(o.weightDecay);
    const decayP = o.decoupled && o.weightDecay !== 0, addWd = !o.decoupled && o.weightDecay !== 0;
    const w1 = 1 - o.beta1, lerpUp = w1 < 0.5, c1 = f(lerpUp ? w1 : 1 - w1);
    const b2 = f(o.beta2), c2 = f(1 - o.beta2), bc = f(o.bc2Sqrt), eps = f(o.eps);
    const step = f(o.stepSize), sign = o.maximize ? -1 : 1;
    const c = { decayP, addWd, lerpUp, decay, wd, c1, b2, c2, bc, eps, step, sign };
    const ins = [P, G, M, V] as [Float32Array, Float32Array, Float32Array, Float32Array];
    const outs = [np, nm, nv] as [Float32Array, Float32Array, Float32Array];
    if (n >= HEAP_MIN_VALUES && wasmAdam(ins, outs, n, c)) {
      return { param: np, expAvg: nm, expAvgSq: nv };
    }
    for (let i = 0; i < n; i++) {
      let p = P[i], g = sign * G[i];
      if (decayP) p = f(p * decay);
      if (addWd) g = f(g + f(p * wd));
      const m0 = M[i];
      const m = lerpUp ? f(m0 + f(f(g - m0) * c1)) : f(g - f(f(g - m0) * c1));
      const v = f(f(V[i] * b2) + f(f(g * g) * c2));
      const denom = f(f(f(Math.sqrt(v)) / bc) + eps);
      np[i] = f(p - f(f(m / denom) * step));
      nm[i] = m;
      nv[i] = v;
    }
    return { param: np, expAvg: nm, expAvgSq: nv };
  }
  gather(x: Buf, dtype: DType, xShape: number[], dim: number, idx: Buf, idxShape: number[]): Buf {
    const X = arr(x), I = arr(idx);
    const xs = stridesOf(xShape);
    const n = I.length;
    const out = this.#take(dtype, n);
    if (lastDimRows(xShape, dim, idxShape)) {
      // Along the last dim with the leading dims matching (im2col's case): row by row.
      const size = xShape[dim], len = idxShape[dim];
      for (let o = 0, xb = 0; o < n; o += len, xb += size) {
        for (let i = o, end = o + len; i < end; i++) {
          const j = I[i];
          if (j < 0 || j >= size) {
            throw new Error(`gather: index ${j} out of range for dim ${dim} of size ${size}`);
          }
          out[i] = X[xb + j];
        }
      }
      return out;
    }
    const nd = idxShape.length;
    const pos = new Array(nd).fill(0);
    let base = 0; // offset of pos in x, without the dim term
    const size = xShape[dim];
    for (let o = 0; o < n; o++) {
      const j = I[o];
      if (j < 0 || j >= size) {
        throw new Error(`gather: index ${j} out of range for dim ${dim} of size ${size}`);
      }
      out[o] = X[base + j * xs[dim]];
      for (let d = nd - 1; d >= 0; d--) {
        pos[d]++;
        if (d !== dim) base += xs[d];
        if (pos[d] < idxShape[d]) break;
        if (d !== dim) base -= xs[d] * idxShape[d];
        pos[d] = 0;
      }
    }
    return out;
  }
  scatter(
    base: Buf,
    dtype: DType,
    baseShape: number[],
    dim: number,
    idx: Buf,
    idxShape: number[],
    src: Buf,
    srcShape: number[],
    mode: "assign" | "add",
  ): Buf {
    const out = this.#take(dtype, arr(base).length);
    out.set(arr(base));
    const I = arr(idx), S = arr(src);
    if (lastDimRows(baseShape, dim, idxShape) && lastDimRows(srcShape, dim, idxShape)) {
      // Along the last dim with the leading dims matching (col2im's case): row by row.
      const size = baseShape[dim], len = idxShape[dim], sl = srcShape[dim], add = mode === "add";
      for (let o = 0, r = 0, ob = 0; o < I.length; o += len, r += sl, ob += size) {
        for (let i = 0; i < len; i++) {
          const j = I[o + i];
          if (j < 0 || j >= size) {
            throw new Error(`scatter: index ${j} out of range for dim ${dim} of size ${size}`);
          }
          if (add) out[ob + j] += S[r + i];
          else out[ob + j] = S[r + i];
        }
      }
      return out;
    }
    const bs = stridesOf(baseShape), ss = stridesOf(srcShape);
    const nd = idxShape.length;
    const pos = new Array(nd).fill(0);
    const size = baseShape[dim];
    let pb = 0, ps = 0;
    for (let o = 0; o < I.length; o++) {
      const j = I[o];
      if (j < 0 || j >= size) {
        throw new Error(`scatter: index ${j} out of range for dim ${dim} of size ${size}`);
      }
      const t = pb + j * bs[dim];
      if (mode === "add") out[t] += S[ps];
      else out[t] = S[ps];
      for (let d = nd - 1; d >= 0; d--) {
        pos[d]++;
        ps += ss[d];
        if (d !== dim) pb += bs[d];
        if (pos[d] < idxShape[d]) break;
        ps -= ss[d] * idxShape[d];
        if (d !== dim) pb -= bs[d] * idxShape[d];
        pos[d] = 0;
      }
    }
    return out;
  }
}
