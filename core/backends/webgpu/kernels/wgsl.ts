/**
 * Shared WGSL pieces: the parameter block, NaN/Inf bit tests, the 1-D entry point, and
 * strided index arithmetic generated for a fixed number of dims.
 */
import type { DType } from "../../../dtype.ts";

/** Threads per workgroup of the elementwise kernels. */
export const WG = 256;
/** Most dims a strided kernel handles after merging contiguous dims. */
export const MAXD = 12;

/** WGSL element type of a dtype on the GPU (bool is u32). */
export function wgslType(d: DType): "f32" | "i32" | "u32" {
  return d === "float32" ? "f32" : d === "int32" ? "i32" : "u32";
}

/**
 * Parameters are 64 u32 words in a uniform slot (`pu`, `pi`, `pf` read word i as u32, i32,
 * f32); words 62 and 63 hold 0 and NaN's bits. `is_nan`/`is_inf` test bits, since compilers may fold
 * `x != x` away and WGSL's min/max/clamp do not propagate NaN.
 */
export const PRELUDE = /* wgsl */ `
struct Params { v: array<vec4<u32>, 16> }
@group(0) @binding(0) var<uniform> P: Params;
fn pu(i: u32) -> u32 { return P.v[i >> 2u][i & 3u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(pu(i)); }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
fn nan() -> f32 { return bitcast<f32>(pu(63u)); }
// 0, unknown to the compiler: loops with barriers start from it so they are not unrolled
// (llvmpipe compiles unrolled barrier loops very slowly).
fn zero() -> u32 { return pu(62u); }
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn is_inf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }
// ECMAScript ToInt32 of a float (what storing into an Int32Array does): truncate, wrap
// modulo 2^32, NaN and Inf to 0. GPUs saturate or give 0x80000000 out of range instead.
fn to_i32(x: f32) -> i32 {
  let b = bitcast<u32>(x);
  let e = i32((b >> 23u) & 0xffu) - 150;
  if (e >= 105) { return 0; }
  if (abs(x) < 2147483648.0) { return i32(x); }
  if (e >= 32) { return 0; }
  let m = ((b & 0x7fffffu) | 0x800000u) << u32(e);
  return select(bitcast<i32>(m), -bitcast<i32>(m), (b >> 31u) != 0u);
}
`;

/** The entry point of a kernel with one thread per element `i < pu(0)`. */
export function main1d(body: string, wg = WG): string {
  return /* wgsl */ `
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * ${wg}u + lid;
  if (i >= pu(0u)) { return; }
${body}
}`;
}

/** The output binding (1) and an input binding of a kernel. */
export const out = (t: string) => `@group(0) @binding(1) var<storage, read_write> O: array<${t}>;`;
export const input = (b: number, name: string, t: string) =>
  `@group(0) @binding(${b}) var<storage, read> ${name}: array<${t}>;`;

/** Workgroups for `n` threads of `wg`. */
export const groups = (n: number, wg = WG) => Math.ceil(n / wg);

/** Throws when a view still has more dims than the strided kernels take. */
export function checkDims(op: string, nd: number): void {
  if (nd > MAXD) {
    throw new Error(
      `webgpu backend: ${op} on a view with ${nd} non-mergeable dims (at most ${MAXD})`,
    );
  }
}

/**
 * WGSL that decomposes the flat index `flat` over `nd` dims whose sizes are in parameter words
 * [shapeAt, shapeAt + nd) and accumulates `offs[k]` (i32 vars, declared here with initial
 * value `inits[k]`) from strides in words [strideAt[k], strideAt[k] + nd).
 */
export function offsets(
  flat: string,
  nd: number,
  shapeAt: number,
  strideAt: number[],
  offs: string[],
  inits: string[] = offs.map(() => "0"),
): string {
  let s = offs.map((o, k) => `  var ${o}: i32 = ${inits[k]};\n`).join("");
  if (nd === 0) return s;
  s += `  var r: u32 = ${flat};\n`;
  for (let d = nd - 1; d >= 0; d--) {
    s += `  { let n = pu(${shapeAt + d}u); let c = i32(r % n); r = r / n;\n`;
    s += offs.map((o, k) => `    ${o} += c * pi(${strideAt[k] + d}u);\n`).join("");
    s += `  }\n`;
  }
  return s;
}
