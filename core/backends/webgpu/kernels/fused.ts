/**
 * Fused row kernels: softmax / logSoftmax and layerNorm over the rows of a float32
 * [rows, cols]. A row is folded by a group of T threads (`groupLanes`: 32 for rows of up to
 * 1,024 values, else 256), so a workgroup of 256 takes 256 / T rows, and a segmented tree in
 * workgroup memory combines each group's partial results; many short rows take a thread each
 * instead. Each kernel reads its row two or three times and writes it once, where the
 * composed ops take five (softmax) to nine (layerNorm) passes and launches.
 */
import { fbits, type Gpu, type GpuBuf } from "../device.ts";
import { groupLanes, opCode, segmentedTree, shortRows } from "./reduce.ts";
import { groups, PRELUDE, WG } from "./wgsl.ts";

const FWG = 256;
/** Longest row the kernels take: llvmpipe ends an invocation's loops after 65,535 steps. */
export const FUSED_MAX_COLS = FWG * 16384;

/**
 * The entry of the workgroup form with `t` threads a row. Threads of a group past the last row
 * see an empty row (n = 0) but still reach every barrier.
 */
const groupHead = (t: number) => (bindings: string) =>
  PRELUDE + bindings + `
var<workgroup> sh: array<f32, ${FWG}>;
${opCode("max", "f32").fn}
${segmentedTree("treeMax", "f32", t, "comb(sh[lid], sh[lid + s])")}
${segmentedTree("treeSum", "f32", t, "sh[lid] + sh[lid + s]")}
@compute @workgroup_size(${FWG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.y * nwg.x + wid.x) * ${FWG / t}u + lid / ${t}u;
  let lane = lid % ${t}u;
  let valid = row < pu(0u);
  let n = select(0u, pu(1u), valid);
  let base = row * pu(1u);
`;

/**
 * The entry of a kernel with a thread per row (for `shortRows`, see reduce.ts), where
 * `fold(name, v)` is just v.
 */
const THREAD_HEAD = (bindings: string) =>
  PRELUDE + bindings + opCode("max", "f32").fn + `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.y * nwg.x + wid.x) * ${WG}u + lid;
  if (row >= pu(0u)) { return; }
  let valid = true;
  let lane = 0u;
  let n = pu(1u);
  let base = row * n;
`;

/** Loops over a row and folds across its threads, in the workgroup or thread-per-row form. */
function rowForm(rows: number, cols: number) {
  const short = shortRows(rows, cols), t = short ? 1 : groupLanes(cols);
  return {
    /** Part of the pipeline key. */
    form: short ? "thread" : `group${t}`,
    head: short ? THREAD_HEAD : groupHead(t),
    loop: short ? "for (var j = 0u; j < n; j++)" : `for (var j = lane; j < n; j += ${t}u)`,
    fold: (tree: string, v: string) => short ? v : `${tree}(${v}, lid)`,
    workgroups: short ? groups(rows) : groups(rows, FWG / t),
  };
}

/** Softmax (log: logSoftmax) of each row, or null for rows too long for the kernel. */
export function softmaxRows(
  gpu: Gpu,
  x: GpuBuf,
  rows: number,
  cols: number,
  log: boolean,
): GpuBuf | null {
  if (cols > FUSED_MAX_COLS) return null;
  const o = gpu.alloc(rows * cols, "float32");
  const { form, head, loop, fold, workgroups } = rowForm(rows, cols);
  const p = gpu.pipeline(
    `softmaxRows:${log}:${form}`,
    () =>
      head(`@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
`) + `
  var m = -bitcast<f32>(0x7f800000u);
  ${loop} { m = comb(m, X[base + j]); }
  m = ${fold("treeMax", "m")};
  // A NaN, a +Infinity or an all -Infinity row is NaN throughout (as PyTorch). Such a row
  // still folds its sum (to NaN), so that every thread reaches every barrier.
  let bad = is_nan(m) || is_inf(m);
  var s = 0.0;
  ${loop} { s += exp(X[base + j] - m); }
  s = ${fold("treeSum", "s")};
  if (bad) {
    ${loop} { O[base + j] = nan(); }
  } else {
    ${
        log
          ? `let ls = log(s);
    ${loop} { O[base + j] = (X[base + j] - m) - ls; }`
          : `let inv = 1.0 / s;
    ${loop} { O[base + j] = exp(X[base + j] - m) * inv; }`
      }
  }
}`,
  );
  gpu.dispatch(p, [o.buffer, x.buffer], [rows, cols], workgroups);
  return o;
}

/**
 * LayerNorm of each row: (x - mean) / sqrt(var + eps) * w + b (w, b optional), and the
 * statistics [rows, 2] (mean, 1 / sqrt(var + eps)); null for rows too long for the kernel.
 */
export function layerNormRows(
  gpu: Gpu,
  x: GpuBuf,
  rows: number,
  cols: number,
  eps: number,
  w: GpuBuf | null,
  b: GpuBuf | null,
): { y: GpuBuf; stats: GpuBuf } | null {
  if (cols > FUSED_MAX_COLS) return null;
  const y = gpu.alloc(rows * cols, "float32"), stats = gpu.alloc(2 * rows, "float32");
  const bind = [
    `@group(0) @binding(1) var<storage, read_write> O: array<f32>;`,
    `@group(0) @binding(2) var<storage, read_write> S: array<f32>;`,
    `@group(0) @binding(3) var<storage, read> X: array<f32>;`,
  ];
  if (w) bind.push(`@group(0) @binding(${bind.length + 1}) var<storage, read> W: array<f32>;`);
  if (b) bind.push(`@group(0) @binding(${bind.length + 1}) var<storage, read> B: array<f32>;`);
  const { form, head, loop, fold, workgroups } = rowForm(rows, cols);
  const p = gpu.pipeline(
    `layerNormRows:${!!w}:${!!b}:${form}`,
    () =>
      head(bind.join("\n") + "\n") + `
  var s = 0.0;
  ${loop} { s += X[base + j]; }
  let mean = ${fold("treeSum", "s")} / f32(n);
  var q = 0.0;
  ${loop} { let d = X[base + j] - mean; q += d * d; }
  let rstd = 1.0 / sqrt(${fold("treeSum", "q")} / f32(n) + pf(2u));
  ${loop} {
    O[base + j] = (X[base + j] - mean) * rstd${w ? " * W[j]" : ""}${b ? " + B[j]" : ""};
  }
  if (valid && lane == 0u) { S[2u * row] = mean; S[2u * row + 1u] = rstd; }
}`,
  );
  const bufs = [y.buffer, stats.buffer, x.buffer];
  if (w) bufs.push(w.buffer);
  if (b) bufs.push(b.buffer);
  gpu.dispatch(p, bufs, [rows, cols, fbits(eps)], workgroups);
  return { y, stats };
}
