/**
 * Broadcasting binary ops and where: operands are read through strides (merged into as few
 * dims as possible), one pipeline per op, dtype and dim count, with the CPU backend's
 * semantics: NaN-propagating maximum/minimum, Math.pow's special cases, wrapping int32
 * arithmetic, float `div` of ints and Python-style remainder.
 */
import { mergeDims, numelOf } from "../../../shape.ts";
import type { BinaryOp } from "../../../backend.ts";
import { binaryResultDtype, BOOL_BINARY, type DType } from "../../../dtype.ts";
import type { Gpu, GpuBuf } from "../device.ts";
import { checkDims, groups, input, main1d, offsets, out, PRELUDE } from "./wgsl.ts";

export const F_BINARY: Record<BinaryOp, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  pow: "pow_(a, b)",
  maximum: "select(select(b, a, a > b), nan(), is_nan(a) || is_nan(b))",
  minimum: "select(select(b, a, a < b), nan(), is_nan(a) || is_nan(b))",
  remainder: "rem_(a, b)",
  eq: "!nan2 && a == b",
  ne: "nan2 || a != b",
  lt: "!nan2 && a < b",
  le: "!nan2 && a <= b",
  gt: "!nan2 && a > b",
  ge: "!nan2 && a >= b",
  logicalAnd: "nz(a) && nz(b)",
  logicalOr: "nz(a) || nz(b)",
  logicalXor: "nz(a) != nz(b)",
};

/** Math.pow's special cases, then exp2(b log2 |a|) with the sign of odd integer powers. */
export const F_BIN_HELPERS = /* wgsl */ `
fn nz(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) != 0u; }
fn neg_(x: f32) -> bool { return (bitcast<u32>(x) >> 31u) != 0u; }
fn pow_(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (is_nan(a) || is_nan(b)) { return nan(); }
  let inf = bitcast<f32>(0x7f800000u);
  if (is_inf(b)) {
    let m = abs(a);
    if (m == 1.0) { return nan(); }
    return select(select(inf, 0.0, b > 0.0), select(0.0, inf, b > 0.0), m > 1.0);
  }
  let bint = floor(b) == b;
  let odd = bint && abs(b) < 16777216.0 && (i32(abs(b)) & 1) == 1;
  if (a == 0.0 || is_inf(a)) {
    let m = select(0.0, inf, (a == 0.0) == (b < 0.0));
    return select(m, -m, neg_(a) && odd);
  }
  if (a < 0.0 && !bint) { return nan(); }
  var m: f32;
  if (bint && abs(b) <= 64.0) {
    // Small integer powers by squaring: exact where the product is representable.
    m = 1.0; var s = abs(a); var e = u32(abs(b));
    while (e > 0u) { if ((e & 1u) == 1u) { m *= s; } s *= s; e >>= 1u; }
    if (b < 0.0) { m = 1.0 / m; }
  } else {
    m = exp2(b * log2(abs(a)));
  }
  return select(m, -m, a < 0.0 && odd);
}
fn rem_(a: f32, b: f32) -> f32 {
  // fmod (sign of a, |r| < |b|) as JS's %, then Python's sign of b.
  if (is_inf(b) && !is_inf(a)) {
    return select(a, a + b, a != 0.0 && (a < 0.0) != (b < 0.0));
  }
  var r = fma(-b, trunc(a / b), a);
  if (r != 0.0 && (r < 0.0) != (a < 0.0)) { r += select(-abs(b), abs(b), a > 0.0); }
  return select(r, r + b, r != 0.0 && (r < 0.0) != (b < 0.0));
}
`;

const I_BINARY: Record<BinaryOp, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "f32(a) / f32(b)",
  pow: "ipow(a, b)",
  maximum: "max(a, b)",
  minimum: "min(a, b)",
  remainder: "irem(a, b)",
  eq: "a == b",
  ne: "a != b",
  lt: "a < b",
  le: "a <= b",
  gt: "a > b",
  ge: "a >= b",
  logicalAnd: "a != 0 && b != 0",
  logicalOr: "a != 0 || b != 0",
  logicalXor: "(a != 0) != (b != 0)",
};

/** Integer pow by squaring (wrapping, as the exact result stored into an Int32Array). */
const I_BIN_HELPERS = /* wgsl */ `
fn ipow(a: i32, b: i32) -> i32 {
  if (b < 0) {
    if (a == 1) { return 1; }
    if (a == -1) { return select(1, -1, (b & 1) == 1); }
    return 0;
  }
  var r = 1; var base = a; var e = u32(b);
  while (e > 0u) { if ((e & 1u) == 1u) { r *= base; } base *= base; e >>= 1u; }
  return r;
}
fn irem(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  // On magnitudes: some drivers (llvmpipe) compute i32 % as unsigned.
  let ma = select(bitcast<u32>(a), 0u - bitcast<u32>(a), a < 0);
  let mb = select(bitcast<u32>(b), 0u - bitcast<u32>(b), b < 0);
  let m = i32(ma % mb);
  let r = select(m, -m, a < 0);
  return select(r, r + b, r != 0 && (r < 0) != (b < 0));
}
`;

export function binary(
  gpu: Gpu,
  op: BinaryOp,
  a: GpuBuf,
  aStrides: number[],
  b: GpuBuf,
  bStrides: number[],
  outShape: number[],
  dtype: DType,
): GpuBuf {
  const n = numelOf(outShape);
  const cmp = BOOL_BINARY.has(op);
  const outDtype = binaryResultDtype(op, dtype);
  const o = gpu.alloc(n, outDtype);
  if (n === 0) return o;
  const c = mergeDims(outShape, [aStrides, bStrides]);
  const nd = c.shape.length;
  checkDims(op, nd);
  const p = gpu.pipeline(`binary:${op}:${dtype}:${nd}`, () => {
    const float = dtype === "float32";
    const load = float ? "" : "bitcast<i32>";
    let body = offsets("i", nd, 1, [1 + nd, 1 + 2 * nd], ["pa", "pb"]);
    body += `  let a = ${load}(A[pa]);\n  let b = ${load}(B[pb]);\n`;
    if (float) body += "  let nan2 = is_nan(a) || is_nan(b);\n";
    const e = float ? F_BINARY[op] : I_BINARY[op];
    const store = cmp
      ? `select(0u, 1u, ${e})`
      : outDtype === "float32"
      ? `bitcast<u32>(${e})`
      : dtype === "bool"
      ? `bitcast<u32>(${e}) & 0xffu`
      : `bitcast<u32>(${e})`;
    body += `  O[i] = ${store};`;
    const t = float ? "f32" : "u32";
    return PRELUDE + (float ? F_BIN_HELPERS : I_BIN_HELPERS) + out("u32") +
      input(2, "A", t) + input(3, "B", t) + main1d(body);
  });
  gpu.dispatch(p, [o.buffer, a.buffer, b.buffer], [n, ...c.shape, ...c.strides.flat()], groups(n));
  return o;
}

export function where(
  gpu: Gpu,
  cond: GpuBuf,
  cStrides: number[],
  a: GpuBuf,
  aStrides: number[],
  b: GpuBuf,
  bStrides: number[],
  outShape: number[],
  dtype: DType,
): GpuBuf {
  const n = numelOf(outShape);
  const o = gpu.alloc(n, dtype);
  if (n === 0) return o;
  const c = mergeDims(outShape, [cStrides, aStrides, bStrides]);
  const nd = c.shape.length;
  checkDims("where", nd);
  const p = gpu.pipeline(`where:${nd}`, () => {
    let body = offsets("i", nd, 1, [1 + nd, 1 + 2 * nd, 1 + 3 * nd], ["pc", "pa", "pb"]);
    body += "  O[i] = select(B[pb], A[pa], C[pc] != 0u);";
    return PRELUDE + out("u32") + input(2, "C", "u32") + input(3, "A", "u32") +
      input(4, "B", "u32") + main1d(body);
  });
  const bufs = [o.buffer, cond.buffer, a.buffer, b.buffer];
  gpu.dispatch(p, bufs, [n, ...c.shape, ...c.strides.flat()], groups(n));
  return o;
}
