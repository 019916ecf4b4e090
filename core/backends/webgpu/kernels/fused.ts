/**
 * Fused row kernels: softmax / logSoftmax and layerNorm over the rows of a float32
 * [rows, cols], one workgroup per row. Threads fold a strided share of the row, then a tree in
 * workgroup memory combines them; each kernel reads its row two or three times and writes it
 * once, where the composed ops take five (softmax) to nine (layerNorm) passes and launches.
 */
import { fbits, type Gpu, type GpuBuf } from "../device.ts";
import { opCode } from "./reduce.ts";
import { PRELUDE } from "./wgsl.ts";

const FWG = 256;
/** Longest row the kernels take: llvmpipe ends an invocation's loops after 65,535 steps. */
export const FUSED_MAX_COLS = FWG * 16384;

/** A workgroup tree reduction `name(v, lid)` combining pairs with `comb`. */
const tree = (name: string, comb: string) =>
  `fn ${name}(v: f32, lid: u32) -> f32 {
  sh[lid] = v;
  workgroupBarrier();
  for (var s = ${FWG / 2}u + zero(); s > 0u; s >>= 1u) {
    if (lid < s) { sh[lid] = ${comb}; }
    workgroupBarrier();
  }
  let r = sh[0];
  workgroupBarrier();
  return r;
}`;

const HEAD = (bindings: string) =>
  PRELUDE + bindings + `
var<workgroup> sh: array<f32, ${FWG}>;
${opCode("max", "f32").fn}
// Tree reductions over sh; every thread returns the result.
${tree("treeMax", "comb(sh[lid], sh[lid + s])")}
${tree("treeSum", "sh[lid] + sh[lid + s]")}
@compute @workgroup_size(${FWG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  let n = pu(1u);
  let base = row * n;
`;

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
  const p = gpu.pipeline(
    `softmaxRows:${log}`,
    () =>
      HEAD(`@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
`) + `
  // rows = pu(0) = the number of workgroups, so every thread reaches every barrier.
  var m = -bitcast<f32>(0x7f800000u);
  for (var j = lid; j < n; j += ${FWG}u) { m = comb(m, X[base + j]); }
  m = treeMax(m, lid);
  // A NaN, a +Infinity or an all -Infinity row is NaN throughout (as PyTorch).
  if (is_nan(m) || is_inf(m)) {
    for (var j = lid; j < n; j += ${FWG}u) { O[base + j] = nan(); }
    return;
  }
  var s = 0.0;
  for (var j = lid; j < n; j += ${FWG}u) { s += exp(X[base + j] - m); }
  s = treeSum(s, lid);
  ${
        log
          ? "let ls = log(s);\n  for (var j = lid; j < n; j += " + FWG +
            "u) { O[base + j] = (X[base + j] - m) - ls; }"
          : "let inv = 1.0 / s;\n  for (var j = lid; j < n; j += " + FWG +
            "u) { O[base + j] = exp(X[base + j] - m) * inv; }"
      }
}`,
  );
  gpu.dispatch(p, [o.buffer, x.buffer], [rows, cols], rows);
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
  const p = gpu.pipeline(`layerNormRows:${!!w}:${!!b}`, () =>
    HEAD(bind.join("\n") + "\n") + `
  var s = 0.0;
  for (var j = lid; j < n; j += ${FWG}u) { s += X[base + j]; }
  let mean = treeSum(s, lid) / f32(n);
  var q = 0.0;
  for (var j = lid; j < n; j += ${FWG}u) { let d = X[base + j] - mean; q += d * d; }
  let rstd = 1.0 / sqrt(treeSum(q, lid) / f32(n) + pf(2u));
  for (var j = lid; j < n; j += ${FWG}u) {
    O[base + j] = (X[base + j] - mean) * rstd${w ? " * W[j]" : ""}${b ? " + B[j]" : ""};
  }
  if (lid == 0u) { S[2u * row] = mean; S[2u * row + 1u] = rstd; }
}`);
  const bufs = [y.buffer, stats.buffer, x.buffer];
  if (w) bufs.push(w.buffer);
  if (b) bufs.push(b.buffer);
  gpu.dispatch(p, bufs, [rows, cols, fbits(eps)], rows);
  return { y, stats };
}
