/**
 * Reductions: reduce (sum/prod/max/min over axes), argReduce and scan.
 *
 * The input is seen as [outer, r, inner] after merging neighbouring dims as the CPU does
 * (several separate reduced blocks are first moved last with a strided copy). Rows with
 * inner == 1, or few outputs, use a group of threads per output (`groupLanes`: 32 for rows
 * of up to 1,024 values, eight to a workgroup, else a workgroup of 256): each thread folds a
 * strided share of the row, then a segmented tree in workgroup memory. Many outputs with
 * inner > 1, or many short rows, use one thread per output (with inner > 1 its neighbours read
 * neighbouring addresses).
 */
import type { ReduceOp } from "../../../backend.ts";
import type { DType } from "../../../dtype.ts";
import { numelOf, reductionRows, splitAround, stridesOf } from "../../../shape.ts";
import type { Gpu, GpuBuf } from "../device.ts";
import { strided } from "./indexing.ts";
import { groups, input, main1d, PRELUDE, wgslType } from "./wgsl.ts";

const RWG = 256;
/** Outputs above which inner > 1 reductions use a thread per output... */
const THREAD_PER_OUTPUT = 2048;
/** ...when its row is at most this long. */
const THREAD_MAX_R = 4096;
/**
 * Whether `rows` rows of `cols` values take a thread each (also when inner == 1, and in the
 * fused row kernels): at least 1,024 rows of at most 128. A workgroup of 256 threads and a
 * barrier tree for 32 or 64 values left most threads idle, and on llvmpipe took 170 ms for
 * 4,096 rows of 32 to 128 against 12.
 */
export const shortRows = (rows: number, cols: number) => cols <= 128 && rows >= 1024;
/**
 * Threads that fold one row in the workgroup form (here and in the fused row kernels): 32 (a
 * warp on NVIDIA hardware) for rows of up to 1,024 values folded in one pass, eight rows to a
 * workgroup, as PyTorch's CUDA softmax gives such rows a warp each; else all RWG. A 256-thread
 * tree for a row of 256 values left most threads idle through eight barrier levels; on
 * llvmpipe, a fused softmax of 2,048 such rows took 107 to 148 ms, against 31 to 34 with 32.
 */
export const groupLanes = (r: number, chunks = 1) => chunks === 1 && r <= 1024 ? 32 : RWG;
/**
 * WGSL `fn name(v, lid) -> t`: a tree reduction in workgroup memory `sh` (declared by the
 * kernel) within each group of `lanes` threads, combining pairs with `comb` (an expression in
 * sh[lid] and sh[lid + s]); every thread returns its group's result. All threads of the
 * workgroup must call it.
 */
export const segmentedTree = (name: string, t: string, lanes: number, comb: string) =>
  `fn ${name}(v: ${t}, lid: u32) -> ${t} {
  sh[lid] = v;
  workgroupBarrier();
  let lane = lid % ${lanes}u;
  for (var s = ${lanes / 2}u + zero(); s > 0u; s >>= 1u) {
    if (lane < s) { sh[lid] = ${comb}; }
    workgroupBarrier();
  }
  let r = sh[lid - lane];
  workgroupBarrier();
  return r;
}`;
/** Elements of a row one workgroup folds. */
const CHUNK = RWG * 1024;

/** Identity and combine (`fn comb`) of an op in WGSL, NaN-propagating for float max/min. */
export function opCode(op: ReduceOp, t: string): { init: string; fn: string } {
  const big = t === "f32"
    ? "bitcast<f32>(0x7f800000u)"
    : t === "i32"
    ? "2147483647"
    : "0xffffffffu";
  const small = t === "f32" ? "-bitcast<f32>(0x7f800000u)" : t === "i32" ? "-2147483647 - 1" : "0u";
  const nanGuard = t === "f32" ? "if (is_nan(a)) { return a; } if (is_nan(b)) { return b; }\n" : "";
  const body = op === "sum"
    ? "return a + b;"
    : op === "prod"
    ? "return a * b;"
    : `${nanGuard}  return select(b, a, a ${op === "max" ? ">" : "<"} b);`;
  const init = op === "sum" ? `${t}(0)` : op === "prod" ? `${t}(1)` : op === "max" ? small : big;
  return { init, fn: `fn comb(a: ${t}, b: ${t}) -> ${t} {\n  ${body}\n}\n` };
}

const io = (t: string, ot = t) =>
  `@group(0) @binding(1) var<storage, read_write> O: array<${ot}>;
@group(0) @binding(2) var<storage, read> X: array<${t}>;\n`;

/**
 * A fused reduction (fusion.ts): the input is an elementwise expression (the prologue, in
 * place of reading X) and the output goes through an elementwise epilogue.
 */
export interface ReduceFusion {
  /**
   * The WGSL of the prologue (the body of `fn xv(i: u32) -> f32`, element i of the input),
   * the epilogue (the body of `fn epi(i: u32, mm: f32)`, which stores output i as u32 bits),
   * or both, with their declarations, buffers (bound from 2 on) and parameter words (from
   * REDUCE_WORDS on).
   */
  code(pro: boolean, epi: boolean): {
    decls: string;
    pro: string;
    epi: string;
    bufs: GPUBuffer[];
    params: number[];
  };
  /** The output buffer. */
  out: GpuBuf;
}

/** The reduction's own parameter words (fused code's come after). */
export const REDUCE_WORDS = 4;

/**
 * Folds [outer, r, inner] into [outer, inner]. A workgroup folds at most `CHUNK` elements of a
 * row; longer rows leave [outer, chunks, inner] partials that a second call folds. (Besides
 * spreading work, this bounds the loop trip count per thread: llvmpipe ends any invocation's
 * loops after 65,535 iterations in total.) With `f` (float32 only; x is then null), the input
 * is f's prologue and the output goes through f's epilogue, in the last pass.
 */
export function reduceRows(
  gpu: Gpu,
  op: ReduceOp,
  x: GpuBuf | null,
  dtype: DType,
  outer: number,
  r: number,
  inner: number,
  f?: ReduceFusion,
): GpuBuf {
  const nOut = outer * inner;
  const t = wgslType(dtype);
  const { init, fn } = opCode(op, t);
  // Empty integer max/min: the CPU's +-Infinity stored into an Int32Array is 0.
  const empty = r === 0 && t !== "f32" && (op === "max" || op === "min");
  const threadMode = (inner > 1 && nOut >= THREAD_PER_OUTPUT && r <= THREAD_MAX_R) ||
    (inner === 1 && shortRows(nOut, r)) || empty;
  const chunks = threadMode ? 1 : Math.max(1, Math.ceil(r / CHUNK));
  // With several chunks, the prologue runs in the first pass and the epilogue in the second.
  const pro = !!f && x === null, epi = !!f && chunks === 1;
  const c = f && (pro || epi) ? f.code(pro, epi) : null;
  const head = PRELUDE + (c?.decls ?? "") + (pro ? "" : input(2 + (c?.bufs.length ?? 0), "X", t)) +
    `@group(0) @binding(1) var<storage, read_write> O: array<${epi ? "u32" : t}>;
fn xv(i: u32) -> ${t} {
${pro ? c!.pro : "  return X[i];"}
}
fn epi(i: u32, mm: ${t}) {
${epi ? c!.epi : "  O[i] = mm;"}
}
` + fn;
  const pipeline = (mode: string, main: string) =>
    gpu.pipeline(c ? head + mode : `${mode}:${op}:${t}:${empty}`, () => head + main);
  const o = epi ? f!.out : gpu.alloc(nOut * chunks, dtype);
  const bufs = [o.buffer, ...(c?.bufs ?? []), ...(pro ? [] : [x!.buffer])];
  const params = [nOut, r, inner, chunks, ...(c?.params ?? [])];
  if (threadMode) {
    const p = pipeline(
      "reduceThread",
      main1d(`  let base = (i / pu(2u)) * pu(1u) * pu(2u) + i % pu(2u);
  var acc = ${empty ? `${t}(0)` : init};
  for (var k = 0u; k < pu(1u); k++) { acc = comb(acc, xv(base + k * pu(2u))); }
  epi(i, acc);`),
    );
    gpu.dispatch(p, bufs, params, groups(nOut));
    return o;
  }
  // Workgroup form: a group of `lanes` threads folds chunk c = w % chunks of output
  // w / chunks into [outer, chunks, inner]; a workgroup holds RWG / lanes such groups. Groups
  // past the last output fold nothing but still reach every barrier.
  const lanes = groupLanes(r, chunks);
  const p = pipeline(
    `reduceGroup${lanes}`,
    `
var<workgroup> sh: array<${t}, ${RWG}>;
${segmentedTree("fold", t, lanes, "comb(sh[lid], sh[lid + s])")}
@compute @workgroup_size(${RWG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let lane = lid % ${lanes}u;
  let w = (wid.y * nwg.x + wid.x) * ${RWG / lanes}u + lid / ${lanes}u;
  let chunks = pu(3u);
  let valid = w < pu(0u) * chunks;
  let r = pu(1u); let inner = pu(2u);
  let o = w / chunks; let c = w % chunks;
  let base = (o / inner) * r * inner + o % inner;
  let k1 = select(0u, min(r, (c + 1u) * ${CHUNK}u), valid);
  var acc = ${init};
  for (var k = c * ${CHUNK}u + lane; k < k1; k += ${lanes}u) {
    acc = comb(acc, xv(base + k * inner));
  }
  let folded = fold(acc, lid);
  if (valid && lane == 0u) { epi(((o / inner) * chunks + c) * inner + o % inner, folded); }
}`,
  );
  gpu.dispatch(p, bufs, params, groups(nOut * chunks, RWG / lanes));
  if (chunks === 1) return o;
  const out = reduceRows(gpu, op, o, dtype, outer, chunks, inner, f);
  gpu.free(o);
  return out;
}

export function reduce(
  gpu: Gpu,
  op: ReduceOp,
  x: GpuBuf,
  dtype: DType,
  shape: number[],
  axes: number[],
): GpuBuf {
  const outShape = shape.filter((_, i) => !axes.includes(i));
  const outN = outShape.reduce((a, v) => a * v, 1);
  const rows = reductionRows(shape, axes);
  if (rows) {
    if (outN === 0) return gpu.alloc(0, dtype);
    return reduceRows(gpu, op, x, dtype, ...rows);
  }
  const { moved, rows: r3 } = reducedLast(gpu, x, dtype, shape, axes);
  const out = reduceRows(gpu, op, moved, dtype, ...r3);
  gpu.free(moved);
  return out;
}

/** Several separate reduced blocks: a copy with the reduced axes moved last, as rows. */
export function reducedLast(
  gpu: Gpu,
  x: GpuBuf,
  dtype: DType,
  shape: number[],
  axes: number[],
): { moved: GpuBuf; rows: [number, number, number] } {
  const perm = [...shape.keys()].filter((i) => !axes.includes(i)).concat(axes);
  const st = stridesOf(shape);
  const moved = strided(gpu, x, dtype, perm.map((p) => shape[p]), perm.map((p) => st[p]), 0);
  const r = axes.reduce((a, ax) => a * shape[ax], 1);
  return { moved, rows: [numelOf(shape) / r, r, 1] };
}

/**
 * Index of the max/min along `axis`: the first NaN if any, else the first extreme. The pair
 * rule (NaN, then better value, then smaller index) is order-free, so a tree can apply it.
 */
export function argReduce(
  gpu: Gpu,
  op: "argmax" | "argmin",
  x: GpuBuf,
  dtype: DType,
  shape: number[],
  axis: number,
): GpuBuf {
  const [outer, r, inner] = splitAround(shape, axis);
  const nOut = outer * inner;
  const o = gpu.alloc(nOut, "int32");
  if (nOut === 0) return o;
  const t = wgslType(dtype);
  const better = op === "argmax" ? ">" : "<";
  const isNan = t === "f32" ? "is_nan" : "no_nan";
  const pick = `
fn no_nan(v: ${t}) -> bool { return false; }
// Whether (v, i) beats (w, j).
fn beats(v: ${t}, i: u32, w: ${t}, j: u32) -> bool {
  if (${isNan}(v) || ${isNan}(w)) { return ${isNan}(v) && (!${isNan}(w) || i < j); }
  return v ${better} w || (v == w && i < j);
}
`;
  const wgMode = r > 64 && (nOut < THREAD_PER_OUTPUT || r > THREAD_MAX_R);
  const p = gpu.pipeline(`argReduce:${op}:${t}:${wgMode}`, () => {
    const head = PRELUDE + io(t, "i32") + pick;
    if (!wgMode) {
      return head + main1d(`  let r = pu(1u); let inner = pu(2u);
  let base = (i / inner) * r * inner + i % inner;
  var bv = X[base]; var bi = 0u;
  for (var k = 1u; k < r; k++) {
    let v = X[base + k * inner];
    if (beats(v, k, bv, bi)) { bv = v; bi = k; }
  }
  O[i] = i32(bi);`);
    }
    return head + `
var<workgroup> sv: array<${t}, ${RWG}>;
var<workgroup> si: array<u32, ${RWG}>;
@compute @workgroup_size(${RWG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = wid.y * nwg.x + wid.x;
  if (o >= pu(0u)) { return; }
  let r = pu(1u); let inner = pu(2u);
  let base = (o / inner) * r * inner + o % inner;
  var bv = X[base]; var bi = 0u;
  for (var k = lid; k < r; k += ${RWG}u) {
    let v = X[base + k * inner];
    if (beats(v, k, bv, bi)) { bv = v; bi = k; }
  }
  sv[lid] = bv; si[lid] = bi;
  workgroupBarrier();
  for (var s = ${RWG / 2}u + zero(); s > 0u; s >>= 1u) {
    if (lid < s && beats(sv[lid + s], si[lid + s], sv[lid], si[lid])) {
      sv[lid] = sv[lid + s]; si[lid] = si[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) { O[o] = i32(si[0]); }
}`;
  });
  gpu.dispatch(p, [o.buffer, x.buffer], [nOut, r, inner], wgMode ? nOut : groups(nOut));
  return o;
}

/**
 * Inclusive scan along `axis`. Short lines: one thread per (outer, inner) line. Long lines:
 * one workgroup per line, each thread scanning a contiguous block (block totals, a scan of the
 * totals in workgroup memory, then the blocks again from their offsets). Float cumsum carries
 * a Kahan compensation, so long rows stay close to the CPU's float64 accumulation.
 */
export function scan(
  gpu: Gpu,
  op: "cumsum" | "cumprod",
  x: GpuBuf,
  dtype: DType,
  shape: number[],
  axis: number,
): GpuBuf {
  const [outer, r, inner] = splitAround(shape, axis);
  const lines = outer * inner;
  const o = gpu.alloc(lines * r, dtype);
  if (lines * r === 0) return o;
  const t = wgslType(dtype);
  const sum = op === "cumsum";
  const kahan = sum && t === "f32";
  const one = `${t}(${sum ? 0 : 1})`;
  const step = kahan
    ? "{ let y = X[base + k * inner] - c; let s = acc + y; c = (s - acc) - y; acc = s; }"
    : `acc = acc ${sum ? "+" : "*"} X[base + k * inner];`;
  const perLine = r <= 1024;
  const p = gpu.pipeline(`scan:${op}:${t}:${perLine}`, () => {
    const head = PRELUDE + io(t);
    if (perLine) {
      return head + main1d(`  let r = pu(1u); let inner = pu(2u);
  let base = (i / inner) * r * inner + i % inner;
  var acc = ${one}; var c = ${t}(0);
  for (var k = 0u; k < r; k++) { ${step} O[base + k * inner] = acc; }`);
    }
    const combine = sum ? "a + b" : "a * b";
    return head + `
var<workgroup> part: array<${t}, ${RWG}>;
@compute @workgroup_size(${RWG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let line = wid.y * nwg.x + wid.x;
  if (line >= pu(0u)) { return; }
  let r = pu(1u); let inner = pu(2u);
  let base = (line / inner) * r * inner + line % inner;
  let per = (r + ${RWG - 1}u) / ${RWG}u;
  let k0 = min(r, lid * per); let k1 = min(r, k0 + per);
  var acc = ${one}; var c = ${t}(0);
  for (var k = k0; k < k1; k++) { ${step} }
  part[lid] = acc;
  workgroupBarrier();
  for (var off = 1u + zero(); off < ${RWG}u; off <<= 1u) {
    var v = part[lid];
    if (lid >= off) { let a = part[lid - off]; let b = v; v = ${combine}; }
    workgroupBarrier();
    part[lid] = v;
    workgroupBarrier();
  }
  acc = select(part[max(lid, 1u) - 1u], ${one}, lid == 0u); c = ${t}(0);
  for (var k = k0; k < k1; k++) { ${step} O[base + k * inner] = acc; }
}`;
  });
  gpu.dispatch(p, [o.buffer, x.buffer], [lines, r, inner], perLine ? groups(lines) : lines);
  return o;
}
