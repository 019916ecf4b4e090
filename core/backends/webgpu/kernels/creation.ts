/**
 * Creation kernels: full, arange and the counter-based random numbers of core/random.ts
 * (uniform and int bit for bit, normal within float32 rounding).
 */
import { allocArray, type DType } from "../../../dtype.ts";
import { fbits, type Gpu, type GpuBuf } from "../device.ts";
import { groups, main1d, out, PRELUDE } from "./wgsl.ts";

/** The u32 bits that `dtype`'s host array stores for `value` (Int32Array wraps, etc.). */
export function hostBits(dtype: DType, value: number): number {
  if (dtype === "float32") return fbits(value);
  const a = allocArray(dtype, 1);
  a[0] = value;
  return a[0] >>> 0;
}

export function full(gpu: Gpu, size: number, dtype: DType, value: number): GpuBuf {
  const o = gpu.alloc(size, dtype);
  const p = gpu.pipeline("full", () => PRELUDE + out("u32") + main1d("  O[i] = pu(1u);"));
  gpu.dispatch(p, [o.buffer], [size, hostBits(dtype, value)], groups(size));
  return o;
}

export function arange(gpu: Gpu, size: number, start: number, step: number, dtype: DType): GpuBuf {
  const o = gpu.alloc(size, dtype);
  const int = dtype !== "float32" && Number.isInteger(start) && Number.isInteger(step);
  // Floats: start + i * step with start and step split into f32 hi + lo parts.
  const body = int
    ? `  let v = pi(1u) + i32(i) * pi(2u);\n  O[i] = ${
      dtype === "bool" ? "bitcast<u32>(v) & 0xffu" : "bitcast<u32>(v)"
    };`
    : `  let fi = f32(i);\n  let v = fma(fi, pf(3u), pf(1u)) + fma(fi, pf(4u), pf(2u));\n  O[i] = ${
      dtype === "float32"
        ? "bitcast<u32>(v)"
        : dtype === "int32"
        ? "bitcast<u32>(to_i32(v))"
        : "bitcast<u32>(to_i32(v)) & 0xffu"
    };`;
  const p = gpu.pipeline(`arange:${int}:${dtype}`, () => PRELUDE + out("u32") + main1d(body));
  const hi = (v: number) => Math.fround(v);
  const params = int
    ? [size, start, step]
    : [size, fbits(start), fbits(start - hi(start)), fbits(step), fbits(step - hi(step))];
  gpu.dispatch(p, [o.buffer], params, groups(size));
  return o;
}

/** core/random.ts in WGSL: mix32 (lowbias32) and bitsAt over a 64-bit counter (lo, hi). */
const RNG = /* wgsl */ `
fn mix32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u; x *= 0x7feb352du; x ^= x >> 15u; x *= 0x846ca68bu; x ^= x >> 16u;
  return x;
}
fn bits_at(off: u32) -> u32 {
  let lo = pu(2u) + off;
  let hi = pu(3u) + select(0u, 1u, lo < off);
  return mix32(mix32(lo ^ pu(4u)) ^ (hi + pu(5u)));
}
`;

const RANDOM_BODY = {
  uniform: "  O[i] = bitcast<u32>(f32(bits_at(i) >> 8u) * 5.9604644775390625e-8);",
  normal: `  let u1 = f32((bits_at(2u * i) >> 8u) + 1u) * 5.9604644775390625e-8;
  let u2 = f32(bits_at(2u * i + 1u) >> 8u) * 5.9604644775390625e-8;
  // cos(2 pi u2) = -cos(2 pi (u2 - 1/2)): the argument stays in [-pi, pi].
  O[i] = bitcast<u32>(-sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * (u2 - 0.5)));`,
  int: "  O[i] = pu(6u) + bits_at(i) % pu(7u);",
};

export function random(
  gpu: Gpu,
  kind: "uniform" | "normal" | "int",
  size: number,
  key: [number, number],
  start: number,
  low: number,
  high: number,
): GpuBuf {
  const o = gpu.alloc(size, kind === "int" ? "int32" : "float32");
  const p = gpu.pipeline(
    `random:${kind}`,
    () => PRELUDE + out("u32") + RNG + main1d(RANDOM_BODY[kind]),
  );
  const lo = start >>> 0, hi = Math.floor(start / 4294967296) >>> 0;
  gpu.dispatch(p, [o.buffer], [size, 0, lo, hi, key[0], key[1], low, high - low], groups(size));
  return o;
}
