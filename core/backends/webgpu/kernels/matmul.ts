/**
 * Batched float32 matmul, tiled in workgroup memory with register blocking.
 *
 * A workgroup computes a BM x BN tile of out[b] (64 x 64 with 16 x 16 threads, or 32 x 32 with
 * 8 x 8 threads for small problems); each thread owns a 4 x 4 block of it. K advances in steps
 * of BK: the tiles of A and B are staged in workgroup memory as [BK][BM] and [BK][BN], loaded
 * so that neighbouring threads read neighbouring addresses for either layout, so transposed
 * operands are read in place (transA/transB only select the load). The batch is the third
 * dispatch dimension; batch strides may be 0 (broadcast).
 *
 * Each output element goes through an epilogue, `fn epi(i: u32, mm: f32)` with i the flat
 * index in [batch, M, N]: by default it stores mm; fusion.ts generates epilogues that apply an
 * elementwise expression and may store more than one buffer. Parameter words 0-5 are the
 * matmul's, an epilogue's start at word 6; bindings 1-3 are O, A and B, an epilogue's start at 4.
 */
import type { MatmulDims } from "../../../backend.ts";
import type { Gpu, GpuBuf } from "../device.ts";
import { PRELUDE } from "./wgsl.ts";

const BK = 16;

export interface Tile {
  bm: number;
  bn: number;
}

/** The parameter words the matmul itself uses (an epilogue's come after). */
export const MATMUL_WORDS = 6;
/** The bindings the matmul itself uses, parameters included (an epilogue's come after). */
export const MATMUL_BINDINGS = 4;

/** The default epilogue: store the product. */
export const STORE = "  O[i] = bitcast<u32>(mm);";

/** 64 x 64 tiles for large outputs, 32 x 32 for small ones. */
export function tileFor(m: number, n: number): Tile {
  return m * n >= 128 * 128 || (m >= 64 && n >= 64) ? { bm: 64, bn: 64 } : { bm: 32, bn: 32 };
}

/** WGSL lines for each i in [0, n): loops are unrolled, as llvmpipe caps loop trips. */
const each = (n: number, line: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => line(i)).join("\n");

/**
 * Threads are (BN/4) x (BM/4); thread (tx, ty) owns rows ty*4..+3 and columns tx*4..+3 of the
 * tile, as four vec4 accumulators. Tiles are staged as vec4s along M (A) and N (B): packing
 * keeps workgroup arrays short, which llvmpipe needs to compile in reasonable time.
 */
export function matmulSource(
  transA: boolean,
  transB: boolean,
  { bm, bn }: Tile,
  epilogue = STORE,
  decls = "",
): string {
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
  return PRELUDE + decls + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> O: array<u32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
fn epi(i: u32, mm: f32) {
${epilogue}
}
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
${each(4, (c) => `      if (j0 + ${c}u < N) { epi(ooff + i * N + j0 + ${c}u, acc${r}[${c}]); }`)}
    } }`)
  }
}`;
}

/** The operands and sizes of one batched matmul (see Backend.matmul). */
export interface MatmulArgs extends MatmulDims {
  a: GpuBuf;
  b: GpuBuf;
}

/**
 * Queues a matmul kernel (`pipeline`, built from matmulSource for tileFor(m, n)) writing `out`
 * and the epilogue's `extra` buffers, with the epilogue's parameter words `params`.
 */
export function dispatchMatmul(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  x: MatmulArgs,
  out: GPUBuffer,
  extra: GPUBuffer[] = [],
  params: number[] = [],
): void {
  const tile = tileFor(x.m, x.n);
  const gx = Math.ceil(x.n / tile.bn), gy = Math.ceil(x.m / tile.bm);
  const maxZ = gpu.limits.maxComputeWorkgroupsPerDimension;
  for (let b0 = 0; b0 < x.batch; b0 += maxZ) {
    const nb = Math.min(maxZ, x.batch - b0);
    gpu.dispatch(
      pipeline,
      [out, x.a.buffer, x.b.buffer, ...extra],
      [x.m, x.n, x.k, x.aBatchStride, x.bBatchStride, b0, ...params],
      [gx, gy, nb],
    );
  }
}

/** A matmul with the default epilogue (fusion off). */
export function matmul(gpu: Gpu, x: MatmulArgs): GpuBuf {
  const o = gpu.alloc(x.batch * x.m * x.n, "float32");
  if (x.batch * x.m * x.n === 0) return o; // k == 0 needs no case: the K loop runs 0 times
  const tile = tileFor(x.m, x.n);
  const p = gpu.pipeline(
    `matmul:${x.transA}:${x.transB}:${tile.bm}x${tile.bn}`,
    () => matmulSource(x.transA, x.transB, tile),
  );
  dispatchMatmul(gpu, p, x, o.buffer);
  return o;
}
