/**
 * IEEE float16 (binary16) and bfloat16 <-> float32 conversions on raw 16-bit patterns.
 *
 * Encoding rounds to nearest, ties to even, from the float32 value (a JS number is first
 * rounded to float32, as when torch casts a float32 tensor): overflow gives +-Infinity, NaN
 * stays a (quiet) NaN, float16 keeps subnormals. Decoding is exact.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 bit pattern of `x` (after rounding x to float32). */
function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** float32 value -> float16 bit pattern (round to nearest even). */
export function f32ToF16Bits(x: number): number {
  const bits = bitsOf(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf / NaN
  const e = exp - 127 + 15; // float16 biased exponent
  if (e >= 31) return sign | 0x7c00; // too large: Infinity
  // Drop `shift` low bits of the significand, rounding to nearest even.
  let sig: number, shift: number;
  if (e > 0) {
    sig = mant;
    shift = 13; // normal: 23 -> 10 mantissa bits
  } else {
    if (e < -10) return sign; // below half the smallest subnormal: +-0
    sig = mant | 0x800000;
    shift = 14 - e; // subnormal: value / 2^-24, between 14 and 24 bits dropped
  }
  let r = sig >>> shift;
  const rem = sig & ((1 << shift) - 1), half = 1 << (shift - 1);
  if (rem > half || (rem === half && (r & 1))) r++;
  // For normals, adding the exponent lets a mantissa carry roll into it (up to Infinity).
  return sign | (e > 0 ? ((e << 10) + r) : r);
}

/** float16 bit pattern -> number (exact). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero / subnormal
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 value -> bfloat16 bit pattern (the top 16 bits, rounded to nearest even). */
export function f32ToBf16Bits(x: number): number {
  const bits = bitsOf(x);
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff)) return (bits >>> 16) | 0x40; // NaN
  const lsb = (bits >>> 16) & 1;
  return Math.floor((bits + 0x7fff + lsb) / 65536) & 0xffff; // may round up to Infinity
}

/** bfloat16 bit pattern -> number (exact). */
export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

let f16Table: Float32Array | undefined;

/** Decodes an array of float16 bit patterns to float32 (via a 64K-entry lookup table). */
export function f16ArrayToF32(h: Uint16Array): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
  }
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = f16Table[h[i]];
  return out;
}

/** Decodes an array of bfloat16 bit patterns to float32. */
export function bf16ArrayToF32(h: Uint16Array): Float32Array {
  const bits = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
  return new Float32Array(bits.buffer);
}

/** Encodes float values to float16 bit patterns. */
export function f32ArrayToF16(x: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]);
  return out;
}

/** Encodes float values to bfloat16 bit patterns. */
export function f32ArrayToBf16(x: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToBf16Bits(x[i]);
  return out;
}
