/**
 * Stable sort order along an axis: a bitonic sort of (key, index) pairs per row, padded to a
 * power of two P. Keys are u32 images of the values whose unsigned order is the value order
 * (NaN largest, -0 equal to 0), inverted for descending; ties fall back to the index, which
 * makes the sort stable. Pads are (0xffffffff, 0xffffffff), so they sort after every element.
 *
 * The pairs live in global memory. Short rows (or many rows) run the whole network in one
 * dispatch, a workgroup per row with storage barriers between stages; long rows run each
 * (k, j) stage as its own dispatch over all rows. (Workgroup memory would be faster on a GPU,
 * but llvmpipe compiles large workgroup arrays extremely slowly; see wgsl.ts.)
 */
import type { DType } from "../../../dtype.ts";
import type { Gpu, GpuBuf } from "../device.ts";
import { full } from "./creation.ts";
import { groups, main1d, PRELUDE, wgslType } from "./wgsl.ts";

const TPW = 256;
/** Longest padded row sorted by one workgroup (its threads' loop trips stay under 65,535). */
const ROW_MAX = 1 << 16;

/** WGSL `key(x)` for a dtype; `pu(4u)` = 1 for descending. */
function keyFn(t: string): string {
  const k = t === "f32"
    ? `  if (is_nan(x)) { return 0xffffffffu; }
  let b = select(bitcast<u32>(x), 0u, x == 0.0);
  return select(b | 0x80000000u, ~b, (b >> 31u) != 0u);`
    : t === "i32"
    ? "  return bitcast<u32>(x) ^ 0x80000000u;"
    : "  return x;";
  return `fn key0(x: ${t}) -> u32 {\n${k}\n}
fn key(x: ${t}) -> u32 { let k = key0(x); return select(k, ~k, pu(4u) != 0u); }
// Whether pair (ka, va) orders after (kb, vb).
fn after(ka: u32, va: u32, kb: u32, vb: u32) -> bool { return ka > kb || (ka == kb && va > vb); }
`;
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));

export function sortIndices(
  gpu: Gpu,
  x: GpuBuf,
  dtype: DType,
  shape: number[],
  axis: number,
  descending: boolean,
): GpuBuf {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  const r = shape[axis] ?? 1;
  const rows = outer * inner;
  if (r <= 1 || rows === 0) return full(gpu, rows * r, "int32", 0);
  const P = nextPow2(r);
  const t = wgslType(dtype);
  const desc = descending ? 1 : 0;
  const o = gpu.alloc(rows * r, "int32");
  // Pairs (K, V) of rows * P words each, in global memory.
  const K = gpu.alloc(rows * P, "int32"), V = gpu.alloc(rows * P, "int32");
  const kv = `@group(0) @binding(1) var<storage, read_write> K: array<u32>;
@group(0) @binding(2) var<storage, read_write> V: array<u32>;\n`;
  const AFTER =
    "fn after(ka: u32, va: u32, kb: u32, vb: u32) -> bool { return ka > kb || (ka == kb && va > vb); }\n";
  const init = gpu.pipeline(
    `sortInit:${t}`,
    () =>
      PRELUDE + kv + `@group(0) @binding(3) var<storage, read> X: array<${t}>;\n` + keyFn(t) +
      main1d(`  let P = pu(3u); let r = pu(1u); let inner = pu(2u);
  let row = i / P; let e = i % P;
  if (e < r) {
    K[i] = key(X[(row / inner) * r * inner + row % inner + e * inner]); V[i] = e;
  } else { K[i] = 0xffffffffu; V[i] = 0xffffffffu; }`),
  );
  gpu.dispatch(
    init,
    [K.buffer, V.buffer, x.buffer],
    [rows * P, r, inner, P, desc],
    groups(rows * P),
  );
  if (P <= ROW_MAX && (P <= 4096 || rows >= 64)) {
    // One workgroup per row runs the whole network, with storage barriers between stages.
    const p = gpu.pipeline("sortRows", () =>
      PRELUDE + kv + AFTER + `
@compute @workgroup_size(${TPW})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= pu(0u)) { return; }
  let P = pu(1u); let at = row * P;
  for (var k = 2u; k <= P; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var q = lid; q < P / 2u; q += ${TPW}u) {
        let a = 2u * j * (q / j) + q % j;
        let ia = at + a; let ib = ia + j;
        let ka = K[ia]; let kb = K[ib]; let va = V[ia]; let vb = V[ib];
        if (after(ka, va, kb, vb) == ((a & k) == 0u)) {
          K[ia] = kb; K[ib] = ka; V[ia] = vb; V[ib] = va;
        }
      }
      storageBarrier();
    }
  }
}`);
    gpu.dispatch(p, [K.buffer, V.buffer], [rows, P], rows);
  } else {
    // Each (k, j) stage of the network is its own dispatch over every row.
    const step = gpu.pipeline(
      "sortStep",
      () =>
        PRELUDE + kv + AFTER + main1d(`  let P = pu(1u); let k = pu(2u); let j = pu(3u);
  let row = i / (P / 2u); let q = i % (P / 2u);
  let a = 2u * j * (q / j) + q % j;
  let ia = row * P + a; let ib = ia + j;
  let ka = K[ia]; let kb = K[ib]; let va = V[ia]; let vb = V[ib];
  if (after(ka, va, kb, vb) == ((a & k) == 0u)) {
    K[ia] = kb; K[ib] = ka; V[ia] = vb; V[ib] = va;
  }`),
    );
    const pairs = rows * P / 2;
    for (let k = 2; k <= P; k *= 2) {
      for (let j = k >> 1; j > 0; j >>= 1) {
        gpu.dispatch(step, [K.buffer, V.buffer], [pairs, P, k, j], groups(pairs));
      }
    }
  }
  const fin = gpu.pipeline(
    "sortOut",
    () =>
      PRELUDE + `@group(0) @binding(1) var<storage, read_write> O: array<i32>;
@group(0) @binding(2) var<storage, read> V: array<u32>;\n` +
      main1d(`  let r = pu(1u); let inner = pu(2u); let P = pu(3u);
  let row = i / r; let e = i % r;
  O[(row / inner) * r * inner + row % inner + e * inner] = i32(V[row * P + e]);`),
  );
  gpu.dispatch(fin, [o.buffer, V.buffer], [rows * r, r, inner, P], groups(rows * r));
  gpu.free(K);
  gpu.free(V);
  return o;
}
