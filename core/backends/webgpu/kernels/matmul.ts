/**
 * Batched float32 matmul, tiled in workgroup memory with register blocking.
 *
 * A workgroup computes a BM x BN tile of out[b] (64 x 64 with 16 x 16 threads, or 32 x 32 with
 * 8 x 8 threads for small problems); each thread owns a 4 x 4 block of it. K advances in steps
 * of BK: the tiles of A and B are staged in workgroup memory as [BK][BM] and [BK][BN], loaded
 * so that neighbouring threads read neighbouring addresses for either layout, so transposed
 * operands are read in place (transA/transB only select the load). The batch is the third
 * dispatch dimension; batch strides may be 0 (broadcast).
 */
import type { Gpu, GpuBuf } from "../device.ts";
import { PRELUDE } from "./wgsl.ts";

const BK = 16;

interface Tile {
  bm: number;
  bn: number;
}

/** WGSL lines for each i in [0, n): loops are unrolled, as llvmpipe caps loop trips. */
const each = (n: number, line: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => line(i)).join("\n");

/**
 * Threads are (BN/4) x (BM/4); thread (tx, ty) owns rows ty*4..+3 and columns tx*4..+3 of the
 * tile, as four vec4 accumulators. Tiles are staged as vec4s along M (A) and N (B): packing
 * keeps workgroup arrays short, which llvmpipe needs to compile in reasonable time.
 */
function source(transA: boolean, transB: boolean, { bm, bn }: Tile): string {
  const tx = bn / 4, ty = bm / 4, threads = tx * ty;
  // Slot e fills one vec4: four consecutive rows (A) or columns (B) at one kk. Neighbouring
  // threads take neighbouring addresses: along k for row-major A / transposed B, else along m/n.
  const load = (l: number, isA: boolean) => {
    const e = `(lid + ${l * threads}u)`;
    const w = (isA ? bm : bn) / 4;
    const alongK = isA ? !transA : transB;
    const [v4, kk] = alongK ? [`${e} / ${BK}u`, `${e} % ${BK}u`] : [`${e} % ${w}u`, `${e} / ${w}u`];
    const at = (c: number) => {
      const g = `(${isA ? "row0" : "col0"} + v4 * 4u + ${c}u)`;
      const lim = isA ? "M" : "N";
      const idx = isA
        ? transA ? `gk * M + ${g}` : `${g} * K + gk`
        : transB
        ? `${g} * K + gk`
        : `gk * N + ${g}`;
      return `select(0.0, ${isA ? "A[aoff" : "B[boff"} + ${idx}], ${g} < ${lim} && gk < K)`;
    };
    return `    { let v4 = ${v4}; let kk = ${kk}; let gk = k0 + kk;
      ${isA ? "As" : "Bs"}[kk * ${w}u + v4] = vec4<f32>(${each(4, at).replaceAll("\n", ", ")}); }`;
  };
  const step = (kk: number) =>
    `    { let a = As[${kk * ty}u + tid.y]; let b = Bs[${kk * tx}u + tid.x];\n` +
    each(4, (r) => `      acc${r} = fma(vec4<f32>(a[${r}]), b, acc${r});`) + " }";
  return PRELUDE + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
var<workgroup> As: array<vec4<f32>, ${BK * ty}>;
var<workgroup> Bs: array<vec4<f32>, ${BK * tx}>;

@compute @workgroup_size(${tx}, ${ty})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) tid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let bt = wid.z + pu(5u);
  let aoff = bt * pu(3u); let boff = bt * pu(4u);
  let row0 = wid.y * ${bm}u; let col0 = wid.x * ${bn}u;
${each(4, (r) => `  var acc${r} = vec4<f32>(0.0);`)}
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
${each((BK * bm) / 4 / threads, (l) => load(l, true))}
${each((BK * bn) / 4 / threads, (l) => load(l, false))}
    workgroupBarrier();
${each(BK, step)}
    workgroupBarrier();
  }
  let ooff = bt * M * N;
  let j0 = col0 + tid.x * 4u;
${
    each(4, (r) =>
      `  { let i = row0 + tid.y * 4u + ${r}u;
    if (i < M) {
${each(4, (c) => `      if (j0 + ${c}u < N) { O[ooff + i * N + j0 + ${c}u] = acc${r}[${c}]; }`)}
    } }`)
  }
}`;
}

export function matmul(
  gpu: Gpu,
  a: GpuBuf,
  b: GpuBuf,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  aBatchStride: number,
  bBatchStride: number,
): GpuBuf {
  const o = gpu.alloc(batch * m * n, "float32");
  if (batch * m * n === 0) return o; // k == 0 needs no case: the K loop runs 0 times
  const tile: Tile = m * n >= 128 * 128 || (m >= 64 && n >= 64) ? { bm: 64, bn: 64 } : {
    bm: 32,
    bn: 32,
  };
  const p = gpu.pipeline(
    `matmul:${transA}:${transB}:${tile.bm}x${tile.bn}`,
    () => source(transA, transB, tile),
  );
  const gx = Math.ceil(n / tile.bn), gy = Math.ceil(m / tile.bm);
  const maxZ = gpu.limits.maxComputeWorkgroupsPerDimension;
  for (let b0 = 0; b0 < batch; b0 += maxZ) {
    const nb = Math.min(maxZ, batch - b0);
    gpu.dispatch(
      p,
      [o.buffer, a.buffer, b.buffer],
      [m, n, k, aBatchStride, bBatchStride, b0],
      [gx, gy, nb],
    );
  }
  return o;
}
