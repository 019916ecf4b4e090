/**
 * Convolution, pooling, resampling and im2col, composed from the core's differentiable ops so
 * gradients (and double backward) come for free on every backend:
 *
 * - im2col (`unfold`) is the backend's im2col kernel where it has one (the CPU), else one
 *   `gather` of a padded, flattened input with precomputed int32 indices; its backward is
 *   col2im, which sums the overlapping windows (the backend's kernel, else a scatterAdd). The
 *   two are recorded as each other's gradient, so double backward holds either way.
 * - conv = im2col + one batched matmul (groups become extra batches); convTranspose2d is the
 *   adjoint: a matmul, then col2im (`fold`) into the output plane.
 * - maxPool2d = im2col over an input padded with -Infinity + `max(dim)`, whose gradient goes to
 *   the first maximum of each window (PyTorch's rule at ties); avgPool2d sums and divides.
 * - adaptiveAvgPool2d and bilinear/bicubic interpolation are separable linear maps
 *   out = M_h x M_w^T with small host-built matrices; nearest is an indexSelect per dim.
 *
 * Inputs are [N, C, ...] or unbatched [C, ...] as in PyTorch. Index tensors, divisors and
 * resampling matrices depend only on shapes and options and are cached per backend.
 */
import { record } from "./autograd.ts";
import type { Backend, Windows } from "./backend.ts";
import { keep } from "./memory.ts";
import { fromArrayOn, fullOn } from "./ops/creation.ts";
import { bmmT } from "./ops/matmul.ts";
import { fmtShape } from "./shape.ts";
import { fromBuf, type Tensor } from "./tensor.ts";

type Pair = number | number[];
/** [top, bottom, left, right]. */
type Pads4 = [number, number, number, number];

// ------------------------------------------------------------------------------ helpers

const CACHE = new WeakMap<Backend, Map<string, Tensor>>();
const CACHE_MAX = 256;

/**
 * A constant tensor built once per backend and key (kept out of scopes). Callers get an alias,
 * so evicting the cached handle never frees storage a recorded graph still uses.
 */
function cached(like: Tensor, key: string, make: () => Tensor): Tensor {
  let m = CACHE.get(like._backend);
  if (!m) CACHE.set(like._backend, m = new Map());
  let t = m.get(key);
  if (t) m.delete(key); // re-inserted below: most recently used last
  else {
    t = keep(make());
    if (m.size >= CACHE_MAX) {
      const [k, old] = m.entries().next().value!;
      m.delete(k);
      old.dispose();
    }
  }
  m.set(key, t);
  return t._alias();
}

function pair(op: string, name: string, v: Pair, n = 2): number[] {
  const a = typeof v === "number" ? Array(n).fill(v) : v.length === 1 ? Array(n).fill(v[0]) : v;
  if (a.length !== n || !a.every((x) => Number.isInteger(x))) {
    throw new Error(`${op}: ${name} must be an integer or a list of ${n}, got ${fmtShape(a)}`);
  }
  return a;
}

function positive(op: string, name: string, v: number[], min = 1): void {
  if (v.some((x) => x < min)) {
    throw new Error(`${op}: ${name} must be >= ${min}, got ${fmtShape(v)}`);
  }
}

/** Adds a batch dim to unbatched input; `undo` removes it from the result. */
function batched(
  op: string,
  x: Tensor,
  spatial: number,
): { x: Tensor; undo: (t: Tensor) => Tensor } {
  if (x.ndim === spatial + 2) return { x, undo: (t) => t };
  if (x.ndim === spatial + 1) return { x: x.unsqueeze(0), undo: (t) => t.squeeze(0) };
  throw new Error(
    `${op}: expected a ${spatial + 1}-D (unbatched) or ${spatial + 2}-D (batched) input, ` +
      `got ${fmtShape(x.shape)}`,
  );
}

/** Window geometry of a 2-D sliding op over an input of H x W. */
type Geometry = Windows;

/** Output size of a sliding window (PyTorch's pooling_output_shape for ceil mode). */
function outSize(n: number, k: number, s: number, p0: number, p1: number, d: number, ceil = false) {
  const span = n + p0 + p1 - d * (k - 1) - 1;
  let o = Math.floor((ceil ? span + s - 1 : span) / s) + 1;
  if (ceil && (o - 1) * s >= n + p0) o--; // the last window must start inside the input
  return o;
}

function checkOut(op: string, g: Geometry, hw: readonly number[]): void {
  if (g.out.some((o) => o <= 0)) {
    throw new Error(
      `${op}: output size ${fmtShape(g.out)} is not positive: input ${fmtShape(hw)} with ` +
        `padding ${fmtShape(g.pads)} is smaller than the kernel ${fmtShape(g.kernel)} ` +
        `dilated by ${fmtShape(g.dilation)}`,
    );
  }
}

/**
 * Flat positions (in a plane of width `wp`) of every kernel tap k (rows) at every window l
 * (columns): (l_h s_h + k_h d_h) * wp + l_w s_w + k_w d_w, as a [K * L] int32 tensor.
 */
function windowIndex(like: Tensor, g: Geometry, wp: number): Tensor {
  const [kh, kw] = g.kernel, [sh, sw] = g.stride, [dh, dw] = g.dilation, [oh, ow] = g.out;
  const key = `win|${g.kernel}|${g.stride}|${g.dilation}|${g.out}|${wp}`;
  return cached(like, key, () => {
    const idx = new Int32Array(kh * kw * oh * ow);
    let at = 0;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        for (let y = 0; y < oh; y++) {
          for (let x = 0; x < ow; x++) idx[at++] = (y * sh + i * dh) * wp + x * sw + j * dw;
        }
      }
    }
    return fromArrayOn(like, idx, "int32");
  });
}

/**
 * im2col: x [N, C, H, W] as [N * C, K * L] where row (n, c) holds every kernel tap k = (i, j)
 * at every window l = (y, x), k-major; taps in the padding read `padValue`. The backend's
 * im2col kernel where it has one, else a gather of the padded input; either way its gradient
 * is col2im of the incoming gradient.
 */
function patches(x: Tensor, g: Geometry, padValue: number): Tensor {
  const [N, C, H, W] = x.shape;
  const R = N * C, KL = g.kernel[0] * g.kernel[1] * g.out[0] * g.out[1];
  const be = x._backend;
  const buf = x.dtype === "float32" && R * KL > 0
    ? be.im2col?.(x._buf, R, H, W, g, padValue) ?? null
    : null;
  if (!buf) return gatherPatches(x, g, padValue);
  const out = fromBuf(be, buf, [R, KL], "float32");
  return record(out, "im2col", [x], (gr) => [col2im(gr, g, H, W).reshape(x.shape)]);
}

/** patches() composed: a gather of the padded, flattened input with precomputed indices. */
function gatherPatches(x: Tensor, g: Geometry, padValue: number): Tensor {
  const [N, C, H, W] = x.shape;
  const [pt, pb, pl, pr] = g.pads;
  const xp = pt || pb || pl || pr ? x.pad([pl, pr, pt, pb], { value: padValue }) : x;
  const hp = H + pt + pb, wp = W + pl + pr;
  const flat = xp.reshape([N * C, hp * wp]); // (N*C, Hp*Wp)
  const idx = windowIndex(x, g, wp);
  return flat.gather(1, idx.reshape([1, idx.numel]).expand([N * C, idx.numel]));
}

/**
 * col2im, im2col's adjoint: sums cols [R, K * L] into planes [R, H, W] at the windows of `g`
 * (taps in the padding dropped). The backend's kernel where it has one, else a scatterAdd
 * into the padded planes, cropped; its gradient is im2col of the incoming gradient.
 */
function col2im(cols: Tensor, g: Geometry, H: number, W: number): Tensor {
  const R = cols.shape[0];
  const be = cols._backend;
  const buf = cols.dtype === "float32" && R * H * W > 0
    ? be.col2im?.(cols._buf, R, H, W, g) ?? null
    : null;
  if (buf) {
    const out = fromBuf(be, buf, [R, H, W], "float32");
    return record(out, "col2im", [cols], (gr) => [patches(gr.reshape([R, 1, H, W]), g, 0)]);
  }
  const [pt, pb, pl, pr] = g.pads;
  const hp = H + pt + pb, wp = W + pl + pr;
  const idx = windowIndex(cols, g, wp);
  const base = fullOn(cols, [R, hp * wp], "float32", 0);
  const planes = base.scatterAdd(1, idx.reshape([1, idx.numel]).expand([R, idx.numel]), cols)
    .reshape([R, hp, wp]);
  return pt || pb || pl || pr ? planes.narrow(1, pt, H).narrow(2, pl, W) : planes;
}

// -------------------------------------------------------------------------- convolution

export interface ConvOptions {
  stride?: Pair;
  /** Zeros on both sides of each spatial dim, or "valid" (none) or "same" (stride 1 only). */
  padding?: Pair | "same" | "valid";
  dilation?: Pair;
  groups?: number;
}

function convPads(
  op: string,
  padding: ConvOptions["padding"],
  k: number[],
  d: number[],
  s: number[],
): Pads4 {
  if (padding === "valid") return [0, 0, 0, 0];
  if (padding === "same") {
    if (s.some((v) => v !== 1)) {
      throw new Error(`${op}: padding "same" is not supported for strided convolutions`);
    }
    // Total d (k - 1) per dim; an odd total puts the extra zero at the end (as PyTorch).
    const [th, tw] = [d[0] * (k[0] - 1), d[1] * (k[1] - 1)];
    return [th >> 1, th - (th >> 1), tw >> 1, tw - (tw >> 1)];
  }
  const [ph, pw] = pair(op, "padding", padding ?? 0);
  positive(op, "padding", [ph, pw], 0);
  return [ph, ph, pw, pw];
}

function convCore(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  o: ConvOptions,
  spatial: 1 | 2,
): Tensor {
  const b = batched(op, x, spatial);
  let x4 = b.x.float(), w4 = weight.float();
  if (weight.ndim !== spatial + 2) {
    throw new Error(`${op}: weight must be ${spatial + 2}-D, got ${fmtShape(weight.shape)}`);
  }
  // conv1d runs as conv2d over [N, C, 1, L]: the extra dim has stride/dilation 1, padding 0.
  const spatialPair = (name: string, v: Pair, lead = 1) =>
    spatial === 1 ? [lead, ...pair(op, name, v, 1)] : pair(op, name, v);
  const stride = spatialPair("stride", o.stride ?? 1);
  const dilation = spatialPair("dilation", o.dilation ?? 1);
  positive(op, "stride", stride);
  positive(op, "dilation", dilation);
  if (spatial === 1) {
    x4 = x4.unsqueeze(2); // (N, C, 1, L)
    w4 = w4.unsqueeze(2); // (OC, C/G, 1, k)
  }
  const [N, C, H, W] = x4.shape;
  const [OC, Cg, kh, kw] = w4.shape;
  const G = o.groups ?? 1;
  if (!Number.isInteger(G) || G < 1) throw new Error(`${op}: groups must be >= 1, got ${G}`);
  if (C !== Cg * G || OC % G !== 0) {
    throw new Error(
      `${op}: input ${fmtShape(x.shape)} has ${C} channels but weight ${fmtShape(weight.shape)} ` +
        `with groups=${G} expects ${Cg * G} (and out channels ${OC} divisible by groups)`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== OC)) {
    throw new Error(`${op}: bias must have shape [${OC}], got ${fmtShape(bias.shape)}`);
  }
  const padding = typeof o.padding === "string"
    ? o.padding
    : spatialPair("padding", o.padding ?? 0, 0);
  const pads = convPads(op, padding, [kh, kw], dilation, stride);
  const g: Geometry = {
    kernel: [kh, kw],
    stride,
    dilation,
    pads,
    out: [
      outSize(H, kh, stride[0], pads[0], pads[1], dilation[0]),
      outSize(W, kw, stride[1], pads[2], pads[3], dilation[1]),
    ],
  };
  checkOut(op, g, x.shape.slice(-spatial));
  const [OH, OW] = g.out, K = kh * kw, L = OH * OW, OCg = OC / G;
  const cols = patches(x4, g, 0).reshape([N * G, Cg * K, L]); // (N*G, C/G*K, L)
  let wm = w4.reshape([G, OCg, Cg * K]); // (G, OC/G, C/G*K)
  if (G > 1) wm = wm.unsqueeze(0).expand([N, G, OCg, Cg * K]).reshape([N * G, OCg, Cg * K]);
  let out = bmmT(wm, cols).reshape([N, OC, OH, OW]);
  if (bias) out = out.add(bias.reshape([1, OC, 1, 1]));
  if (spatial === 1) out = out.squeeze(2); // (N, OC, OW)
  return b.undo(out);
}

/** 1-D convolution (cross-correlation) of x [N, C, L] or [C, L] with weight [OC, C/groups, k]. */
export function conv1d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  o: ConvOptions = {},
): Tensor {
  return convCore("conv1d", x, weight, bias, o, 1);
}

/** 2-D convolution of x [N, C, H, W] or [C, H, W] with weight [OC, C/groups, kh, kw]. */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  o: ConvOptions = {},
): Tensor {
  return convCore("conv2d", x, weight, bias, o, 2);
}

export interface ConvTransposeOptions {
  stride?: Pair;
  /** Removed from both sides of the full output (PyTorch's `padding`). */
  padding?: Pair;
  /** Extra rows/columns on the bottom/right of the output; smaller than stride or dilation. */
  outputPadding?: Pair;
  groups?: number;
  dilation?: Pair;
}

/**
 * Transposed 2-D convolution (the gradient of conv2d w.r.t. its input) of x [N, Cin, H, W] or
 * [Cin, H, W] with weight [Cin, Cout/groups, kh, kw]. Output size per dim:
 * (H - 1) stride - 2 padding + dilation (k - 1) + outputPadding + 1.
 */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  o: ConvTransposeOptions = {},
): Tensor {
  const op = "convTranspose2d";
  const b = batched(op, x, 2);
  const x4 = b.x.float(), w4 = weight.float();
  if (weight.ndim !== 4) {
    throw new Error(`${op}: weight must be 4-D, got ${fmtShape(weight.shape)}`);
  }
  const stride = pair(op, "stride", o.stride ?? 1),
    dilation = pair(op, "dilation", o.dilation ?? 1);
  const padding = pair(op, "padding", o.padding ?? 0),
    outPad = pair(op, "outputPadding", o.outputPadding ?? 0);
  positive(op, "stride", stride);
  positive(op, "dilation", dilation);
  positive(op, "padding", padding, 0);
  positive(op, "outputPadding", outPad, 0);
  if (outPad.some((p, i) => p >= Math.max(stride[i], dilation[i]))) {
    throw new Error(
      `${op}: outputPadding ${fmtShape(outPad)} must be smaller than stride ${fmtShape(stride)} ` +
        `or dilation ${fmtShape(dilation)}`,
    );
  }
  const [N, Cin, H, W] = x4.shape;
  const [Cw, OCg, kh, kw] = w4.shape;
  const G = o.groups ?? 1;
  if (!Number.isInteger(G) || G < 1 || Cin !== Cw || Cin % G !== 0) {
    throw new Error(
      `${op}: input ${fmtShape(x.shape)} has ${Cin} channels; weight ` +
        `${fmtShape(weight.shape)} expects ${Cw}, divisible into groups=${G}`,
    );
  }
  const OC = OCg * G, Cg = Cin / G, K = kh * kw, L = H * W;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== OC)) {
    throw new Error(`${op}: bias must have shape [${OC}], got ${fmtShape(bias.shape)}`);
  }
  const full = [0, 1].map((i) =>
    (x4.shape[2 + i] - 1) * stride[i] + dilation[i] * ([kh, kw][i] - 1) + 1
  );
  const outHW = full.map((f, i) => f - 2 * padding[i] + outPad[i]);
  if (outHW.some((v) => v <= 0)) {
    throw new Error(
      `${op}: output size ${fmtShape(outHW)} is not positive for input ${fmtShape(x.shape)}`,
    );
  }
  // cols[n, g] = W[g]^T x[n, g]: (N*G, OC/G*K, H*W)
  let wm = w4.reshape([G, Cg, OCg * K]); // (G, Cin/G, OC/G*K)
  if (G > 1) wm = wm.unsqueeze(0).expand([N, G, Cg, OCg * K]).reshape([N * G, Cg, OCg * K]);
  const cols = bmmT(wm, x4.reshape([N * G, Cg, L]), true, false).reshape([N * OC, K * L]);
  // Windows of the transposed conv: input pixel l lands at l * stride + k * dilation.
  const g: Geometry = { kernel: [kh, kw], stride, dilation, pads: [0, 0, 0, 0], out: [H, W] };
  const plane = full.map((f, i) => f + Math.max(0, outPad[i] - padding[i]));
  let out = col2im(cols, g, plane[0], plane[1]).reshape([N, OC, plane[0], plane[1]]);
  out = out.narrow(2, padding[0], outHW[0]).narrow(3, padding[1], outHW[1]);
  if (bias) out = out.add(bias.reshape([1, OC, 1, 1]));
  return b.undo(out);
}

// ------------------------------------------------------------------------------ im2col

export interface UnfoldOptions {
  dilation?: Pair;
  padding?: Pair;
  stride?: Pair;
}

function slidingGeometry(
  op: string,
  hw: readonly number[],
  kernelSize: Pair,
  o: UnfoldOptions,
): Geometry {
  const kernel = pair(op, "kernelSize", kernelSize), stride = pair(op, "stride", o.stride ?? 1);
  const dilation = pair(op, "dilation", o.dilation ?? 1),
    [ph, pw] = pair(op, "padding", o.padding ?? 0);
  positive(op, "kernelSize", kernel);
  positive(op, "stride", stride);
  positive(op, "dilation", dilation);
  positive(op, "padding", [ph, pw], 0);
  const out = [0, 1].map((i) =>
    outSize(hw[i], kernel[i], stride[i], [ph, pw][i], [ph, pw][i], dilation[i])
  );
  return { kernel, stride, dilation, pads: [ph, ph, pw, pw], out };
}

/**
 * im2col (PyTorch's F.unfold): sliding blocks of x [N, C, H, W] (or [C, H, W]) as
 * [N, C * kh * kw, L], channel-major then kernel row, kernel column; L windows row-major.
 */
export function unfold(x: Tensor, kernelSize: Pair, o: UnfoldOptions = {}): Tensor {
  const b = batched("unfold", x, 2);
  const [N, C, H, W] = b.x.shape;
  const g = slidingGeometry("unfold", [H, W], kernelSize, o);
  checkOut("unfold", g, [H, W]);
  const K = g.kernel[0] * g.kernel[1], L = g.out[0] * g.out[1];
  return b.undo(patches(b.x, g, 0).reshape([N, C * K, L]));
}

/**
 * col2im (PyTorch's F.fold), the adjoint of unfold: sums blocks x [N, C * kh * kw, L] (or
 * [C * kh * kw, L]) into [N, C, ...outputSize]; overlapping values add up.
 */
export function fold(x: Tensor, outputSize: Pair, kernelSize: Pair, o: UnfoldOptions = {}): Tensor {
  const op = "fold";
  const b = batched(op, x, 1);
  const [N, CK, L] = b.x.shape;
  const [H, W] = pair(op, "outputSize", outputSize);
  const g = slidingGeometry(op, [H, W], kernelSize, o);
  const K = g.kernel[0] * g.kernel[1];
  if (CK % K !== 0 || g.out[0] * g.out[1] !== L || g.out.some((v) => v <= 0)) {
    throw new Error(
      `${op}: input ${fmtShape(x.shape)} does not hold C * ${K} rows of ${g.out[0] * g.out[1]} ` +
        `blocks for outputSize ${fmtShape([H, W])}`,
    );
  }
  const C = CK / K;
  return b.undo(col2im(b.x.float().reshape([N * C, K * L]), g, H, W).reshape([N, C, H, W]));
}

// ------------------------------------------------------------------------------ pooling

export interface MaxPoolOptions {
  /** Defaults to kernelSize. */
  stride?: Pair;
  /** -Infinity on both sides, at most half the kernel. */
  padding?: Pair;
  dilation?: Pair;
  /** Round the output size up (windows may start in the right/bottom padding). */
  ceilMode?: boolean;
}

function poolGeometry(
  op: string,
  hw: readonly number[],
  kernelSize: Pair,
  o: MaxPoolOptions,
  dilationOk: boolean,
): Geometry {
  const kernel = pair(op, "kernelSize", kernelSize);
  const stride = o.stride === undefined || (Array.isArray(o.stride) && !o.stride.length)
    ? kernel
    : pair(op, "stride", o.stride);
  const dilation = dilationOk ? pair(op, "dilation", o.dilation ?? 1) : [1, 1];
  const pad = pair(op, "padding", o.padding ?? 0);
  positive(op, "kernelSize", kernel);
  positive(op, "stride", stride);
  positive(op, "dilation", dilation);
  positive(op, "padding", pad, 0);
  if (pad.some((p, i) => 2 * p > kernel[i])) {
    throw new Error(
      `${op}: padding ${fmtShape(pad)} should be at most half of the kernel size ${
        fmtShape(kernel)
      }`,
    );
  }
  const out = [0, 1].map((i) =>
    outSize(hw[i], kernel[i], stride[i], pad[i], pad[i], dilation[i], o.ceilMode)
  );
  // Pad the end far enough for every window (ceil mode may overhang the padded input).
  const end = [0, 1].map((i) =>
    Math.max(pad[i], (out[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 - hw[i] - pad[i])
  );
  const g: Geometry = { kernel, stride, dilation, pads: [pad[0], end[0], pad[1], end[1]], out };
  checkOut(op, g, hw);
  return g;
}

/**
 * 2-D max pooling of x [N, C, H, W] or [C, H, W]. The gradient of each window goes to its first
 * maximum (PyTorch's rule at ties); NaN propagates. With `returnIndices`, also the flat index
 * h * W + w of each maximum in its input plane (int32).
 */
export function maxPool2d(
  x: Tensor,
  kernelSize: Pair,
  o?: MaxPoolOptions & { returnIndices?: false },
): Tensor;
export function maxPool2d(
  x: Tensor,
  kernelSize: Pair,
  o: MaxPoolOptions & { returnIndices: true },
): { values: Tensor; indices: Tensor };
export function maxPool2d(
  x: Tensor,
  kernelSize: Pair,
  o: MaxPoolOptions & { returnIndices?: boolean } = {},
): Tensor | { values: Tensor; indices: Tensor } {
  const b = batched("maxPool2d", x, 2);
  const [N, C, H, W] = b.x.shape;
  const g = poolGeometry("maxPool2d", [H, W], kernelSize, o, true);
  const [OH, OW] = g.out, K = g.kernel[0] * g.kernel[1], L = OH * OW;
  const cols = patches(b.x.float(), g, -Infinity).reshape([N * C, K, L]); // (N*C, K, L)
  const { values, indices } = cols.max(1); // (N*C, L); gradient to the first max
  const out = b.undo(values.reshape([N, C, OH, OW]));
  if (!o.returnIndices) return out;
  // Tap k of window l sits at input (l_h s - p + k_h d, l_w s - p + k_w d).
  const table = cached(
    b.x,
    `maxidx|${H},${W}|${g.kernel}|${g.stride}|${g.dilation}|${g.pads}|${g.out}`,
    () => {
      const t = new Int32Array(K * L);
      const [kh, kw] = g.kernel, [sh, sw] = g.stride, [dh, dw] = g.dilation, [pt, , pl] = g.pads;
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          for (let y = 0; y < OH; y++) {
            for (let z = 0; z < OW; z++) {
              t[((i * kw + j) * OH + y) * OW + z] = (y * sh - pt + i * dh) * W + z * sw - pl +
                j * dw;
            }
          }
        }
      }
      return fromArrayOn(b.x, t, "int32", [K, L]);
    },
  );
  const flatIdx = table.gather(0, indices).reshape([N, C, OH, OW]);
  return { values: out, indices: b.undo(flatIdx) };
}

export interface AvgPoolOptions {
  /** Defaults to kernelSize. */
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
  /** Count the zero padding in the divisor (default true, as PyTorch). */
  countIncludePad?: boolean;
  /** Divide every window by this instead. */
  divisorOverride?: number;
}

/** 2-D average pooling of x [N, C, H, W] or [C, H, W] with PyTorch's divisor rules. */
export function avgPool2d(x: Tensor, kernelSize: Pair, o: AvgPoolOptions = {}): Tensor {
  const b = batched("avgPool2d", x, 2);
  const [N, C, H, W] = b.x.shape;
  const g = poolGeometry("avgPool2d", [H, W], kernelSize, o, false);
  const [OH, OW] = g.out, K = g.kernel[0] * g.kernel[1], L = OH * OW;
  const cip = o.countIncludePad ?? true, dov = o.divisorOverride;
  if (dov !== undefined && !(dov > 0)) {
    throw new Error(`avgPool2d: divisorOverride must be positive, got ${dov}`);
  }
  const div = cached(
    b.x,
    `avgdiv|${H},${W}|${g.kernel}|${g.stride}|${g.pads}|${g.out}|${cip}|${dov}`,
    () => {
      const d = new Float32Array(L);
      const [kh, kw] = g.kernel, [sh, sw] = g.stride, [ph, , pw] = g.pads;
      for (let y = 0; y < OH; y++) {
        for (let z = 0; z < OW; z++) {
          // As PyTorch: windows are clipped to the padded input, then (unless counted) to the input.
          const h0 = y * sh - ph, h1 = Math.min(h0 + kh, H + ph);
          const w0 = z * sw - pw, w1 = Math.min(w0 + kw, W + pw);
          const inside = (Math.min(h1, H) - Math.max(h0, 0)) * (Math.min(w1, W) - Math.max(w0, 0));
          d[y * OW + z] = dov ?? (cip ? (h1 - h0) * (w1 - w0) : inside);
        }
      }
      return fromArrayOn(b.x, d, "float32", [1, L]);
    },
  );
  const sums = patches(b.x.float(), g, 0).reshape([N * C, K, L]).sum(1); // (N*C, L)
  return b.undo(sums.div(div).reshape([N, C, OH, OW]));
}

export interface MaxPool1dOptions {
  /** Defaults to kernelSize. */
  stride?: number;
  padding?: number;
  dilation?: number;
  ceilMode?: boolean;
}

/** 1-D max pooling of x [N, C, L] or [C, L] (maxPool2d over a height of 1). */
export function maxPool1d(
  x: Tensor,
  kernelSize: number,
  o?: MaxPool1dOptions & { returnIndices?: false },
): Tensor;
export function maxPool1d(
  x: Tensor,
  kernelSize: number,
  o: MaxPool1dOptions & { returnIndices: true },
): { values: Tensor; indices: Tensor };
export function maxPool1d(
  x: Tensor,
  kernelSize: number,
  o: MaxPool1dOptions & { returnIndices?: boolean } = {},
): Tensor | { values: Tensor; indices: Tensor } {
  batched("maxPool1d", x, 1);
  const o2 = {
    ceilMode: o.ceilMode,
    stride: [1, o.stride ?? kernelSize],
    padding: [0, o.padding ?? 0],
    dilation: [1, o.dilation ?? 1],
  };
  const x2 = x.unsqueeze(-2); // (..., C, 1, L)
  if (!o.returnIndices) return maxPool2d(x2, [1, kernelSize], o2).squeeze(-2);
  const r = maxPool2d(x2, [1, kernelSize], { ...o2, returnIndices: true });
  return { values: r.values.squeeze(-2), indices: r.indices.squeeze(-2) };
}

/** 1-D average pooling of x [N, C, L] or [C, L]. */
export function avgPool1d(
  x: Tensor,
  kernelSize: number,
  o: { stride?: number; padding?: number; ceilMode?: boolean; countIncludePad?: boolean } = {},
): Tensor {
  batched("avgPool1d", x, 1);
  return avgPool2d(x.unsqueeze(-2), [1, kernelSize], {
    ...o,
    stride: [1, o.stride ?? kernelSize],
    padding: [0, o.padding ?? 0],
  }).squeeze(-2);
}

/** A [out, in] averaging matrix: row i averages input [floor(i in/out), ceil((i+1) in/out)). */
function adaptiveMatrix(n: number, o: number): Float32Array {
  const m = new Float32Array(o * n);
  for (let i = 0; i < o; i++) {
    const s = Math.floor((i * n) / o), e = Math.ceil(((i + 1) * n) / o);
    for (let j = s; j < e; j++) m[i * n + j] = 1 / (e - s);
  }
  return m;
}

/** out = M_h x M_w^T over the last two dims of x [N, C, H, W], for [OH, H] and [OW, W] maps. */
function separable(x: Tensor, mh: Tensor | null, mw: Tensor): Tensor {
  const [N, C, H, W] = x.shape, OW = mw.shape[0];
  let y = bmmT(x.float().reshape([1, N * C * H, W]), mw.reshape([1, OW, W]), false, true);
  y = y.reshape([N * C, H, OW]); // (N*C, H, OW)
  if (!mh) return y.reshape([N, C, H, OW]);
  const OH = mh.shape[0];
  return bmmT(mh.reshape([1, OH, H]), y).reshape([N, C, OH, OW]);
}

function sizeOf(op: string, v: number | (number | null)[], hw: readonly number[]): number[] {
  const s = typeof v === "number" ? [v, v] : v.length === 1 ? [v[0], v[0]] : v;
  if (s.length !== hw.length) throw new Error(`${op}: outputSize must have ${hw.length} entries`);
  const out = s.map((n, i) => n ?? hw[i]);
  if (!out.every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error(`${op}: output size must be positive integers, got ${fmtShape(out)}`);
  }
  return out;
}

/**
 * Adaptive average pooling of x [N, C, H, W] or [C, H, W] to `outputSize` (a number, or
 * [OH, OW] where null keeps that dim): output (i, j) averages the input rows
 * [floor(i H / OH), ceil((i + 1) H / OH)) and the same for columns.
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | (number | null)[]): Tensor {
  const b = batched("adaptiveAvgPool2d", x, 2);
  const [, , H, W] = b.x.shape;
  const [OH, OW] = sizeOf("adaptiveAvgPool2d", outputSize, [H, W]);
  const mh = cached(
    b.x,
    `adapt|${H}|${OH}`,
    () => fromArrayOn(b.x, adaptiveMatrix(H, OH), "float32", [OH, H]),
  );
  const mw = cached(
    b.x,
    `adapt|${W}|${OW}`,
    () => fromArrayOn(b.x, adaptiveMatrix(W, OW), "float32", [OW, W]),
  );
  return b.undo(separable(b.x, mh, mw));
}

/** Adaptive average pooling of x [N, C, L] or [C, L] to `outputSize`. */
export function adaptiveAvgPool1d(x: Tensor, outputSize: number): Tensor {
  batched("adaptiveAvgPool1d", x, 1);
  return adaptiveAvgPool2d(x.unsqueeze(-2), [1, outputSize]).squeeze(-2);
}

// -------------------------------------------------------------------------- interpolate

export type InterpolateMode =
  | "nearest"
  | "nearest-exact"
  | "linear"
  | "bilinear"
  | "bicubic"
  | "area";

export interface InterpolateOptions {
  /** Output spatial size (a number for every dim, or one per dim). */
  size?: number | number[];
  /** Output size = floor(input size * scaleFactor); the factor also sets the sampling scale. */
  scaleFactor?: number | number[];
  /** Default "nearest". "linear" is for 3-D input, "bilinear"/"bicubic" for 4-D. */
  mode?: InterpolateMode;
  /** Align the corner pixels' centres (linear modes only; default false). */
  alignCorners?: boolean;
  /** Sample with in/out instead of 1/scaleFactor (default false). */
  recomputeScaleFactor?: boolean;
}

/** PyTorch's source-index scale: in/out, or 1/scaleFactor when one was given. */
function srcScale(n: number, o: number, factor: number | undefined, alignCorners: boolean): number {
  if (alignCorners) return o > 1 ? (n - 1) / (o - 1) : 0;
  return factor !== undefined && factor > 0 ? 1 / factor : n / o;
}

/** The [o, n] resampling matrix of one dim for the linear and cubic modes. */
function resampleMatrix(n: number, o: number, mode: InterpolateMode, ac: boolean, factor?: number) {
  const m = new Float32Array(o * n);
  const scale = srcScale(n, o, factor, ac);
  const clampI = (i: number) => Math.min(Math.max(i, 0), n - 1);
  for (let i = 0; i < o; i++) {
    let src = ac ? scale * i : scale * (i + 0.5) - 0.5;
    if (mode === "bicubic") {
      const f = Math.floor(src), t = src - f, A = -0.75;
      const c1 = (v: number) => ((A + 2) * v - (A + 3)) * v * v + 1;
      const c2 = (v: number) => ((A * v - 5 * A) * v + 8 * A) * v - 4 * A;
      const w = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
      for (let k = 0; k < 4; k++) m[i * n + clampI(f - 1 + k)] += w[k];
      continue;
    }
    if (src < 0) src = 0;
    const i0 = Math.floor(src), lam = src - i0, i1 = i0 < n - 1 ? i0 + 1 : i0;
    m[i * n + i0] += 1 - lam;
    m[i * n + i1] += lam;
  }
  return m;
}

function nearestIndex(n: number, o: number, exact: boolean, factor?: number): Int32Array {
  const idx = new Int32Array(o);
  // float32 arithmetic, as PyTorch's CPU kernel.
  const scale = Math.fround(factor !== undefined && factor > 0 ? 1 / factor : n / o);
  for (let i = 0; i < o; i++) {
    const s = exact ? Math.fround(Math.fround(i + 0.5) * scale) : Math.fround(i * scale);
    idx[i] = o === n ? i : Math.min(Math.floor(s), n - 1);
  }
  return idx;
}

/**
 * Resizes x [N, C, L] or [N, C, H, W] to `size` or by `scaleFactor` (PyTorch's F.interpolate
 * without antialias): "nearest", "nearest-exact", "linear" (3-D), "bilinear" / "bicubic" (4-D,
 * bicubic with A = -0.75 and clamped borders) and "area" (adaptive average pooling).
 */
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  const op = "interpolate";
  const mode = o.mode ?? "nearest";
  if (x.ndim !== 3 && x.ndim !== 4) {
    throw new Error(
      `${op}: expected a 3-D [N, C, L] or 4-D [N, C, H, W] input, got ${fmtShape(x.shape)}`,
    );
  }
  const sp = x.ndim - 2, inSize = x.shape.slice(2);
  if (
    (mode === "linear" && sp !== 1) || ((mode === "bilinear" || mode === "bicubic") && sp !== 2)
  ) {
    throw new Error(
      `${op}: mode "${mode}" needs a ${mode === "linear" ? 3 : 4}-D input, got ${
        fmtShape(x.shape)
      }`,
    );
  }
  if ((o.size === undefined) === (o.scaleFactor === undefined)) {
    throw new Error(`${op}: give exactly one of size and scaleFactor`);
  }
  const linearish = mode === "linear" || mode === "bilinear" || mode === "bicubic";
  if (o.alignCorners !== undefined && !linearish) {
    throw new Error(
      `${op}: alignCorners only applies to the linear and cubic modes, not "${mode}"`,
    );
  }
  let factors: number[] | undefined;
  if (o.scaleFactor !== undefined) {
    const f = typeof o.scaleFactor === "number" ? [o.scaleFactor] : o.scaleFactor;
    factors = f.length === 1 ? Array(sp).fill(f[0]) : f;
    if (factors.length !== sp || !factors.every((v) => v > 0)) {
      throw new Error(`${op}: scaleFactor must be ${sp} positive numbers, got ${fmtShape(f)}`);
    }
  }
  const size = o.size !== undefined
    ? (typeof o.size === "number" ? Array(sp).fill(o.size) : o.size)
    : inSize.map((n, i) => Math.floor(n * factors![i]));
  if (size.length !== sp || !size.every((s) => Number.isInteger(s) && s > 0)) {
    throw new Error(`${op}: output size ${fmtShape(size)} must be ${sp} positive integers`);
  }
  const x4 = sp === 1 ? x.float().unsqueeze(2) : x.float(); // (N, C, H, W)
  const sizes4 = sp === 1 ? [1, size[0]] : size, in4 = sp === 1 ? [1, inSize[0]] : inSize;
  // The sampling scale is 1 / scaleFactor unless recomputed from the sizes (PyTorch).
  const f4 = o.recomputeScaleFactor ? undefined : factors && (sp === 1 ? [1, factors[0]] : factors);
  let out: Tensor;
  if (mode === "area") out = adaptiveAvgPool2d(x4, sizes4);
  else if (mode === "nearest" || mode === "nearest-exact") {
    out = x4;
    for (const d of [0, 1]) {
      if (sizes4[d] === in4[d]) continue; // the identity
      const idx = cached(
        x,
        `near|${in4[d]}|${sizes4[d]}|${mode}|${f4?.[d]}`,
        () => fromArrayOn(x, nearestIndex(in4[d], sizes4[d], mode === "nearest-exact", f4?.[d])),
      );
      out = out.indexSelect(2 + d, idx);
    }
  } else if (linearish) {
    const ac = o.alignCorners ?? false;
    const mat = (d: number) =>
      cached(
        x,
        `resample|${in4[d]}|${sizes4[d]}|${mode}|${ac}|${f4?.[d]}`,
        () =>
          fromArrayOn(x, resampleMatrix(in4[d], sizes4[d], mode, ac, f4?.[d]), "float32", [
            sizes4[d],
            in4[d],
          ]),
      );
    out = separable(x4, sp === 1 ? null : mat(0), mat(1));
  } else throw new Error(`${op}: unknown mode "${mode}"`);
  return sp === 1 ? out.squeeze(2) : out;
}
