/**
 * Batched float32 matmul, tiled in workgroup memory with register blocking.
 *
 * A workgroup computes a BM x BN tile of out[b] with (BN/TN) x (BM/TM) threads, each owning a
 * TM x TN block of it (tileFor picks the sizes: 64 x 64 tiles of 8 x 4 blocks for large
 * outputs, of 4 x 4 blocks for smaller ones, 32 x 32 tiles for small ones). K advances in steps of
 * BK: the tiles of A and B are staged in workgroup memory as [BK][BM] and [BK][BN] (vec4s along
 * M and N), so transposed operands are read in place (transA/transB only select the load). The
 * next step's tiles are loaded into registers while the current one is multiplied. Where the
 * dimension an operand is contiguous along is a multiple of 4 (and so is its batch stride),
 * it is read as vec4s ("vec" kernels); otherwise one float at a time, neighbouring
 * threads reading neighbouring addresses. The batch is the third dispatch dimension; batch
 * strides may be 0 (broadcast).
 *
 * A thread's rows are 4-row groups spaced 4·(BM/TM) apart, and likewise its columns, so the
 * threads of a warp read consecutive vec4s of the staged tiles (no bank conflicts).
 *
 * Each output element goes through an epilogue, `fn epi(i: u32, mm: f32)` with i the flat
 * index in [batch, M, N]: by default it stores mm; fusion.ts generates epilogues that apply an
 * elementwise expression and may store more than one buffer. Parameter words 0-5 are the
 * matmul's, an epilogue's start at word 6; bindings 1-3 are O, A and B, an epilogue's start at 4.
 */
import type { MatmulDims } from "../../../backend.ts";
import type { Gpu, GpuBuf } from "../device.ts";
import { PRELUDE } from "./wgsl.ts";

/** A workgroup's output tile (bm x bn), each thread's block (tm x tn) and the K step (bk). */
export interface Tile {
  bm: number;
  bn: number;
  tm: number;
  tn: number;
  bk: number;
}

/** One compiled matmul variant: its tile, the transposes, and which operands load as vec4. */
export interface MatmulKernel {
  transA: boolean;
  transB: boolean;
  tile: Tile;
  vecA: boolean;
  vecB: boolean;
}

/** The parameter words the matmul itself uses (an epilogue's come after). */
export const MATMUL_WORDS = 6;
/** The bindings the matmul itself uses, parameters included (an epilogue's come after). */
export const MATMUL_BINDINGS = 4;

/** The default epilogue: store the product. */
export const STORE = "  O[i] = bitcast<u32>(mm);";

/**
 * The tile for an m x n output (per batch item). Chosen on an H100 (Vulkan), timing square
 * products of 256-4096 over 16 tile shapes (benchmarks/core/webgpu_matmul_peak.ts --tiles; the
 * numbers are in benchmarks/core/README.md): 64 x 64 tiles of 8 x 4 blocks were the fastest or
 * within 10% of it from 1024 up, 4 x 4 blocks at 512.
 */
export function tileFor(m: number, n: number): Tile {
  if (m >= 64 && n >= 64 && m * n >= 1024 * 1024) return { bm: 64, bn: 64, tm: 8, tn: 4, bk: 16 };
  if (m * n >= 128 * 128 || (m >= 64 && n >= 64)) return { bm: 64, bn: 64, tm: 4, tn: 4, bk: 16 };
  return { bm: 32, bn: 32, tm: 4, tn: 4, bk: 16 };
}

/** The kernel for a matmul: its tile (tileFor unless given) and vec4 loads where they fit. */
export function kernelFor(x: MatmulDims, tile: Tile = tileFor(x.m, x.n)): MatmulKernel {
  return {
    transA: x.transA,
    transB: x.transB,
    tile,
    vecA: (x.transA ? x.m : x.k) % 4 === 0 && x.aBatchStride % 4 === 0,
    vecB: (x.transB ? x.k : x.n) % 4 === 0 && x.bBatchStride % 4 === 0,
  };
}

/** A pipeline-cache key naming every choice matmulSource specialises on. */
export function kernelKey(s: MatmulKernel): string {
  const t = s.tile;
  return `matmul:${+s.transA}${+s.transB}:${t.bm}x${t.bn}/${t.tm}x${t.tn}/${t.bk}:${+s.vecA}${+s
    .vecB}`;
}

/** WGSL lines for each i in [0, n): loops are unrolled, as llvmpipe caps loop trips. */
const each = (n: number, line: (i: number) => string, sep = "\n") =>
  Array.from({ length: n }, (_, i) => line(i)).join(sep);

/**
 * The staging of one operand's tile: `at` declares a slot's indices (once, before the K loop),
 * `load` reads the slot's vec4 for the step starting at `k` into register r<X><l>, and `store`
 * writes that register into the workgroup tile.
 */
function operand(s: MatmulKernel, isA: boolean, threads: number) {
  const { bk } = s.tile;
  const w = isA ? s.tile.bm : s.tile.bn;
  const X = isA ? "A" : "B", lim = isA ? "M" : "N", base = isA ? "row0" : "col0";
  const vec = isA ? s.vecA : s.vecB;
  // Whether consecutive addresses of the operand run along k (row-major A, transposed B).
  const alongK = isA ? !s.transA : s.transB;
  const slots = (bk * w) / 4;
  if (slots % threads) {
    throw new Error(`matmul kernel: a ${bk} x ${w} tile does not split over ${threads} threads`);
  }
  const n = slots / threads;
  const at = (l: number) => {
    const e = `(lid + ${l * threads}u)`;
    // vec along k: slot = (one row/col, 4 consecutive k); otherwise (4 rows/cols, one k).
    const [p, q] = vec && alongK
      ? [`${e} / ${bk / 4}u`, `(${e} % ${bk / 4}u) * 4u`]
      : alongK
      ? [`${e} / ${bk}u`, `${e} % ${bk}u`]
      : [`${e} % ${w / 4}u`, `${e} / ${w / 4}u`];
    return `  let ${X}p${l} = ${p}; let ${X}k${l} = ${q};`;
  };
  const load = (l: number, k: string) => {
    const p = `${X}p${l}`, gk = `(${k} + ${X}k${l})`;
    if (vec) {
      // Index in vec4s; the operand's row length (K or M/N) and batch stride are multiples of 4.
      if (alongK) {
        const g = `(${base} + ${p})`;
        return `r${X}${l} = select(vec4<f32>(0.0), ${X}[${X.toLowerCase()}off4 + ${g} * (K / 4u) + ${gk} / 4u], ${g} < ${lim} && ${gk} < K);`;
      }
      const g = `(${base} + ${p} * 4u)`;
      return `r${X}${l} = select(vec4<f32>(0.0), ${X}[${X.toLowerCase()}off4 + ${gk} * (${lim} / 4u) + ${g} / 4u], ${g} < ${lim} && ${gk} < K);`;
    }
    // four rows/cols (vec4 p of the tile) at one k
    const el = (c: number) => {
      const g = `(${base} + ${p} * 4u + ${c}u)`;
      const idx = alongK ? `${g} * K + ${gk}` : `${gk} * ${lim} + ${g}`;
      return `select(0.0, ${X}[${X.toLowerCase()}off + ${idx}], ${g} < ${lim} && ${gk} < K)`;
    };
    return `r${X}${l} = vec4<f32>(${each(4, el, ", ")});`;
  };
  const store = (l: number) => {
    const p = `${X}p${l}`, k = `${X}k${l}`;
    if (vec && alongK) {
      // one row/col, 4 consecutive k: a column of the [BK][W] tile
      return each(
        4,
        (j) => `    ${X}s[(${k} + ${j}u) * ${w / 4}u + ${p} / 4u][${p} % 4u] = r${X}${l}[${j}];`,
      );
    }
    return `    ${X}s[${k} * ${w / 4}u + ${p}] = r${X}${l};`;
  };
  const binding = isA ? 2 : 3;
  return {
    decl: `@group(0) @binding(${binding}) var<storage, read> ${X}: array<${
      vec ? "vec4<f32>" : "f32"
    }>;
var<workgroup> ${X}s: array<vec4<f32>, ${slots}>;`,
    setup: each(n, at) + "\n" + each(n, (l) => `  var r${X}${l}: vec4<f32>;`),
    load: (k: string) => each(n, (l) => `    ${load(l, k)}`),
    store: each(n, store),
  };
}

/**
 * The kernel's WGSL. Thread (tx, ty) owns rows g·4·(BM/TM) + ty·4 + r and columns
 * h·4·(BN/TN) + tx·4 + c of the tile (g < TM/4, h < TN/4, r, c < 4), as (TM)·(TN/4) vec4
 * accumulators acc<row>_<h>.
 */
export function matmulSource(s: MatmulKernel, epilogue = STORE, decls = ""): string {
  const { bm, bn, tm, tn, bk } = s.tile;
  const tx = bn / tn, ty = bm / tm, threads = tx * ty;
  const gm = tm / 4, gn = tn / 4;
  const A = operand(s, true, threads), B = operand(s, false, threads);
  const step = (kk: number) =>
    `    {\n` +
    each(gm, (g) => `      let a${g} = As[${kk * (bm / 4) + g * ty}u + tid.y];`) + "\n" +
    each(gn, (h) => `      let b${h} = Bs[${kk * (bn / 4) + h * tx}u + tid.x];`) + "\n" +
    each(tm, (r) =>
      each(gn, (h) =>
        `      acc${r}_${h} = fma(vec4<f32>(a${r >> 2}[${r & 3}]), b${h}, acc${r}_${h});`)) +
    "\n    }";
  return PRELUDE + decls + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> O: array<u32>;
${A.decl}
${B.decl}
fn epi(i: u32, mm: f32) {
${epilogue}
}

@compute @workgroup_size(${tx}, ${ty})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) tid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let bt = wid.z + pu(5u);
  let aoff = bt * pu(3u); let boff = bt * pu(4u);
  let aoff4 = aoff / 4u; let boff4 = boff / 4u;
  let row0 = wid.y * ${bm}u; let col0 = wid.x * ${bn}u;
${each(tm, (r) => each(gn, (h) => `  var acc${r}_${h} = vec4<f32>(0.0);`))}
${A.setup}
${B.setup}
${A.load("0u")}
${B.load("0u")}
  for (var k0 = 0u; k0 < K; k0 += ${bk}u) {
${A.store}
${B.store}
    workgroupBarrier();
${A.load(`k0 + ${bk}u`)}
${B.load(`k0 + ${bk}u`)}
${each(bk, step)}
    workgroupBarrier();
  }
  let ooff = bt * M * N;
${
    each(tm, (r) =>
      `  { let i = row0 + ${(r >> 2) * ty * 4}u + tid.y * 4u + ${r & 3}u;
    if (i < M) {
${
        each(gn, (h) =>
          each(4, (c) =>
            `      { let j = col0 + ${
              h * tx * 4
            }u + tid.x * 4u + ${c}u; if (j < N) { epi(ooff + i * N + j, acc${r}_${h}[${c}]); } }`))
      }
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
 * Queues a matmul kernel (`pipeline`, built from matmulSource for `tile`) writing `out` and the
 * epilogue's `extra` buffers, with the epilogue's parameter words `params`.
 */
export function dispatchMatmul(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  x: MatmulArgs,
  tile: Tile,
  out: GPUBuffer,
  extra: GPUBuffer[] = [],
  params: number[] = [],
): void {
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

/** A matmul with the default epilogue (fusion off); `tile` overrides tileFor (benchmarks). */
export function matmul(gpu: Gpu, x: MatmulArgs, tile?: Tile): GpuBuf {
  const o = gpu.alloc(x.batch * x.m * x.n, "float32");
  if (x.batch * x.m * x.n === 0) return o; // k == 0 needs no case: the K loop runs 0 times
  const s = kernelFor(x, tile);
  const p = gpu.pipeline(kernelKey(s), () => matmulSource(s));
  dispatchMatmul(gpu, p, x, s.tile, o.buffer);
  return o;
}
