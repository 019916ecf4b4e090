/**
 * Copies through strides and the index kernels: strided (gather copy of a view), stridedSet,
 * gather and scatter. Values move as raw 32-bit words, so one pipeline serves every dtype
 * (except scatter-add, which needs the arithmetic type).
 *
 * Shaders cannot throw: an out-of-range index reads 0 in `gather` and is skipped in `scatter`.
 * Index tensors uploaded from the host (up to 65,536 elements) keep a host copy, and are
 * checked before the dispatch with the CPU backend's error; indices computed on the GPU are
 * not checked, since that would need a readback.
 *
 * scatter: a "pull" pass with one thread per target element walks the index entries that may
 * hit it, in the CPU's order, so assign keeps the last write and add sums in the same order
 * (bit for bit equal to the CPU, and deterministic). Its cost is size(dim) x numel(index),
 * so above `PULL_LIMIT` a "push" pass with one thread per index entry is used instead:
 * integer adds with atomicAdd, float adds with a compare-exchange loop on the u32 bits
 * (WGSL has no float atomics); float sums then depend on the order threads land in.
 */
import type { DType } from "../../../dtype.ts";
import { mergeDims, stridesOf } from "../../../shape.ts";
import type { Gpu, GpuBuf } from "../device.ts";
import { checkDims, groups, main1d, offsets, PRELUDE } from "./wgsl.ts";

const PULL_LIMIT = 1 << 24;
/** Index entries one pull thread may walk (llvmpipe caps loop trips per invocation). */
const PULL_MAX_ROWS = 16384;

const BINDINGS = (names: [string, string][]) =>
  names.map(([n, t], i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${i === 0 ? "read_write" : "read"}> ${n}: ${t};`
  ).join("\n");

const numel = (s: readonly number[]) => s.reduce((a, v) => a * v, 1);

/** Throws as the CPU backend does when a host-known index is out of range. */
function checkHostIndex(op: string, idx: GpuBuf, n: number, dim: number, size: number): void {
  const h = idx.host;
  if (!h) return;
  for (let i = 0; i < n; i++) {
    const j = h[i];
    if (j < 0 || j >= size) {
      throw new Error(`${op}: index ${j} out of range for dim ${dim} of size ${size}`);
    }
  }
}

export function strided(
  gpu: Gpu,
  x: GpuBuf,
  dtype: DType,
  shape: number[],
  strides: number[],
  offset: number,
): GpuBuf {
  const n = numel(shape);
  const o = gpu.alloc(n, dtype);
  if (n === 0) return o;
  const c = mergeDims(shape, [strides]);
  const nd = c.shape.length;
  checkDims("strided", nd);
  if (nd === 1 && c.strides[0][0] === 1 || nd === 0) {
    gpu.copy(x.buffer, o.buffer, n * 4, offset * 4);
    return o;
  }
  const p = gpu.pipeline(
    `strided:${nd}`,
    () =>
      PRELUDE + BINDINGS([["O", "array<u32>"], ["X", "array<u32>"]]) +
      main1d(offsets("i", nd, 2, [2 + nd], ["px"], ["pi(1u)"]) + "  O[i] = X[px];"),
  );
  gpu.dispatch(p, [o.buffer, x.buffer], [n, offset, ...c.shape, ...c.strides[0]], groups(n));
  return o;
}

export function stridedSet(
  gpu: Gpu,
  base: GpuBuf,
  size: number,
  src: GpuBuf,
  dtype: DType,
  shape: number[],
  strides: number[],
  offset: number,
): GpuBuf {
  const o = gpu.alloc(size, dtype);
  gpu.copy(base.buffer, o.buffer, size * 4);
  const n = numel(shape);
  if (n === 0) return o;
  const c = mergeDims(shape, [strides]);
  const nd = c.shape.length;
  checkDims("stridedSet", nd);
  if (nd === 1 && c.strides[0][0] === 1 || nd === 0) {
    gpu.copy(src.buffer, o.buffer, n * 4, 0, offset * 4);
    return o;
  }
  const p = gpu.pipeline(
    `stridedSet:${nd}`,
    () =>
      PRELUDE + BINDINGS([["O", "array<u32>"], ["S", "array<u32>"]]) +
      main1d(offsets("i", nd, 2, [2 + nd], ["po"], ["pi(1u)"]) + "  O[po] = S[i];"),
  );
  gpu.dispatch(p, [o.buffer, src.buffer], [n, offset, ...c.shape, ...c.strides[0]], groups(n));
  return o;
}

export function gather(
  gpu: Gpu,
  x: GpuBuf,
  dtype: DType,
  xShape: number[],
  dim: number,
  idx: GpuBuf,
  idxShape: number[],
): GpuBuf {
  const n = numel(idxShape);
  checkHostIndex("gather", idx, n, dim, xShape[dim]);
  const o = gpu.alloc(n, dtype);
  if (n === 0) return o;
  const nd = idxShape.length;
  checkDims("gather", nd);
  const xs = stridesOf(xShape);
  const base = xs.map((s, d) => (d === dim ? 0 : s));
  // params: n, size(dim), stride(dim), idxShape, x strides without dim
  const p = gpu.pipeline(
    `gather:${nd}`,
    () =>
      PRELUDE + BINDINGS([["O", "array<u32>"], ["X", "array<u32>"], ["I", "array<i32>"]]) +
      main1d(
        offsets("i", nd, 3, [3 + nd], ["px"]) +
          `  let j = I[i];
  if (j < 0 || j >= pi(1u)) { O[i] = 0u; return; }
  O[i] = X[px + j * pi(2u)];`,
      ),
  );
  const params = [n, xShape[dim], xs[dim], ...idxShape, ...base];
  gpu.dispatch(p, [o.buffer, x.buffer, idx.buffer], params, groups(n));
  return o;
}

export function scatter(
  gpu: Gpu,
  base: GpuBuf,
  dtype: DType,
  baseShape: number[],
  dim: number,
  idx: GpuBuf,
  idxShape: number[],
  src: GpuBuf,
  srcShape: number[],
  mode: "assign" | "add",
): GpuBuf {
  const size = numel(baseShape);
  checkHostIndex("scatter", idx, numel(idxShape), dim, baseShape[dim]);
  const o = gpu.alloc(size, dtype);
  gpu.copy(base.buffer, o.buffer, size * 4);
  const ni = numel(idxShape);
  if (ni === 0) return o;
  const nd = idxShape.length;
  checkDims("scatter", nd);
  const bs = stridesOf(baseShape), ss = stridesOf(srcShape), is = stridesOf(idxShape);
  const t = dtype === "float32" ? "f32" : dtype === "int32" ? "i32" : "u32";
  const combine = mode === "add" ? (dtype === "bool" ? "(acc + v) & 0xffu" : "acc + v") : "v";
  if (baseShape[dim] * ni <= PULL_LIMIT && idxShape[dim] <= PULL_MAX_ROWS) {
    // One thread per target q (idxShape with dim replaced by baseShape[dim]).
    const qShape = idxShape.map((s, d) => (d === dim ? baseShape[dim] : s));
    const nq = numel(qShape);
    const qb = bs.map((s, d) => (d === dim ? 0 : s));
    const qi = is.map((s, d) => (d === dim ? 0 : s));
    const qs = ss.map((s, d) => (d === dim ? 0 : s));
    // params: nq, rows = idxShape[dim], idx/src strides along dim, base stride(dim), qShape,
    // then strides of q into base (dim 0), idx (dim 0), src (dim 0)
    const p = gpu.pipeline(`scatterPull:${mode}:${t}:${nd}:${dim}`, () =>
      PRELUDE +
      BINDINGS([["O", `array<${t}>`], ["I", "array<i32>"], ["S", `array<${t}>`]]) +
      main1d(
        offsets("i", nd, 5, [5 + nd, 5 + 2 * nd, 5 + 3 * nd], ["pb", "pidx", "ps"]) +
          `  var r2: u32 = i;
${
            Array.from({ length: nd - 1 - dim }, (_, j) => `  r2 = r2 / pu(${4 + nd - j}u);\n`)
              .join("")
          }  let qd = i32(r2 % pu(${5 + dim}u));
  let at = pb + qd * pi(4u);
  var acc = O[at];
  var hit = false;
  for (var k = 0u; k < pu(1u); k++) {
    if (I[pidx + i32(k) * pi(2u)] == qd) {
      let v = S[ps + i32(k) * pi(3u)];
      acc = ${combine};
      hit = true;
    }
  }
  if (hit) { O[at] = acc; }`,
      ));
    const params = [nq, idxShape[dim], is[dim], ss[dim], bs[dim], ...qShape, ...qb, ...qi, ...qs];
    gpu.dispatch(p, [o.buffer, idx.buffer, src.buffer], params, groups(nq));
    return o;
  }
  // One thread per index entry p; target = p with dim replaced by idx[p].
  const atomic = mode === "add";
  const ot = atomic ? (t === "f32" ? "atomic<u32>" : `atomic<${t}>`) : t;
  let write = "  O[at] = S[ps];";
  if (atomic && t === "f32") {
    write = `  let v = S[ps];
  var old = atomicLoad(&O[at]);
  loop {
    let r = atomicCompareExchangeWeak(&O[at], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }`;
  } else if (atomic) write = "  atomicAdd(&O[at], S[ps]);";
  const p = gpu.pipeline(`scatterPush:${mode}:${t}:${nd}`, () =>
    PRELUDE +
    BINDINGS([["O", `array<${ot}>`], ["I", "array<i32>"], ["S", `array<${t}>`]]) +
    main1d(
      offsets("i", nd, 3, [3 + nd, 3 + 2 * nd], ["pb", "ps"]) +
        `  let j = I[i];
  if (j < 0 || j >= pi(1u)) { return; }
  let at = pb + j * pi(2u);
${write}`,
    ));
  const pb = bs.map((s, d) => (d === dim ? 0 : s));
  const params = [ni, baseShape[dim], bs[dim], ...idxShape, ...pb, ...ss];
  gpu.dispatch(p, [o.buffer, idx.buffer, src.buffer], params, groups(ni));
  return o;
}
