/**
 * Elementwise kernels on one operand: cast and unary. WGSL templates specialised by op and
 * dtype, with the CPU backend's semantics, NaN handling included (binary.ts has the rest).
 */
import type { UnaryOp } from "../../../backend.ts";
import { BOOL_UNARY, type DType } from "../../../dtype.ts";
import { ERF_CLAMP, ERF_P, ERF_Q } from "../../cpu/elementwise.ts";
import type { Gpu, GpuBuf } from "../device.ts";
import { groups, input, main1d, out, PRELUDE, wgslType } from "./wgsl.ts";

/** Conversion expression from the raw value `x` of dtype `from` to dtype `to`. */
function castExpr(from: DType, to: DType): string {
  if (to === "bool") {
    return from === "float32"
      ? "select(0u, 1u, (bitcast<u32>(x) & 0x7fffffffu) != 0u)"
      : "select(0u, 1u, x != 0)";
  }
  if (to === "float32") return "bitcast<u32>(f32(x))";
  return from === "float32" ? "bitcast<u32>(to_i32(x))" : "bitcast<u32>(i32(x))";
}

export function cast(gpu: Gpu, x: GpuBuf, from: DType, to: DType, size: number): GpuBuf {
  const o = gpu.alloc(size, to);
  if (from === to) {
    gpu.copy(x.buffer, o.buffer, size * 4);
    return o;
  }
  const p = gpu.pipeline(
    `cast:${from}:${to}`,
    () =>
      PRELUDE + out("u32") + input(2, "X", wgslType(from)) +
      main1d(`  let x = X[i];\n  O[i] = ${castExpr(from, to)};`),
  );
  gpu.dispatch(p, [o.buffer, x.buffer], [size], groups(size));
  return o;
}

export const F_UNARY: Record<UnaryOp, string> = {
  neg: "-x",
  abs: "abs(x)",
  sign: "select(select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0), 0.0, is_nan(x))", // NaN -> 0 as the CPU
  exp: "exp(x)",
  log: "log_(x)",
  log1p: "log1p_(x)",
  expm1: "expm1_(x)",
  sqrt: "select(sqrt(x), nan(), x < 0.0)",
  sin: "sincos_(x, false)",
  cos: "sincos_(x, true)",
  tanh: "tanh(clamp(x, -10.0, 10.0))",
  sigmoid: "1.0 / (1.0 + exp(-x))",
  relu: "select(x, 0.0, x <= 0.0)",
  erf: "erf_(x)",
  gelu: "0.5 * x * (1.0 + erf_(x * 0.70710678118654752))",
  floor: "floor(x)",
  ceil: "ceil(x)",
  round: "round(x)", // WGSL rounds half to even
  trunc: "trunc(x)",
  reciprocal: "1.0 / x",
  isnan: "select(0u, 1u, is_nan(x))",
  isinf: "select(0u, 1u, is_inf(x))",
  logicalNot: "select(0u, 1u, (bitcast<u32>(x) & 0x7fffffffu) == 0u)",
};

/** c[0] + s (c[1] + s (...)) in WGSL, each coefficient as written in float64. */
const horner = (c: number[]): string =>
  c.reduceRight((acc, v, i) => (i === c.length - 1 ? `${v}` : `(${v} + s * ${acc})`), "");

/**
 * Float helpers: sin/cos by Cephes' reduction and polynomials, log1p/expm1 by Goldberg's
 * correction, erf by the CPU backend's rational fit (cpu/elementwise.ts).
 */
export const F_HELPERS = /* wgsl */ `
// sin and cos as Cephes' sinf/cosf: x = k pi/2 + y with |y| <= pi/4 (pi/2 in three parts, so
// the reduction is accurate for |x| up to ~1e4), then their polynomials for sin y and cos y.
// GPUs' built-ins are only bounded on [-pi, pi], and loosely (WGSL allows 2^-11 absolute): an
// H100 was 7e-6 off at sin(100), and 2.5e-7 near sin's zeros even after a reduction.
fn sincos_(x: f32, cosine: bool) -> f32 {
  if (is_nan(x) || is_inf(x)) { return nan(); }
  let k = round(x * 0.63661977236758134);
  let y = ((x - k * 1.5703125) - k * 4.837512969970703125e-4) - k * 7.54978995489188216e-8;
  let z = y * y;
  let s = y + y * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z +
    z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  // sin x by quadrant: s, c, -s, -c; cos x is one quadrant on
  let q = (i32(k) + select(0, 1, cosine)) & 3;
  let v = select(s, c, (q & 1) == 1);
  return select(v, -v, q >= 2);
}
fn log_(x: f32) -> f32 {
  if (x < 0.0) { return nan(); }
  if (x == 0.0) { return -bitcast<f32>(0x7f800000u); }
  return log(x);
}
fn log1p_(x: f32) -> f32 {
  let u = 1.0 + x;
  if (u == 1.0 || (is_inf(u) && x > 0.0)) { return x; }
  return log_(u) * (x / (u - 1.0));
}
fn expm1_(x: f32) -> f32 {
  if (abs(x) < 1e-5) { return x + 0.5 * x * x; }
  if (x > 88.7) { return exp(x); }
  let u = exp(x);
  if (u == 0.0) { return -1.0; }
  return (u - 1.0) * (x / log(u));
}
fn erf_(x: f32) -> f32 {
  if (!(abs(x) < ${ERF_CLAMP})) { return select(sign(x), x, is_nan(x)); }
  let s = x * x;
  return x * ${horner(ERF_P)} / ${horner(ERF_Q)};
}
`;

/** Integer (and bool, via i32) versions: rounding ops are the identity. */
const I_UNARY: Partial<Record<UnaryOp, string>> = {
  neg: "-x",
  abs: "abs(x)",
  sign: "sign(x)",
  relu: "max(x, 0)",
  floor: "x",
  ceil: "x",
  round: "x",
  trunc: "x",
  isnan: "0u",
  isinf: "0u",
  logicalNot: "select(0u, 1u, x == 0)",
};

export function unary(gpu: Gpu, op: UnaryOp, x: GpuBuf, dtype: DType, size: number): GpuBuf {
  const boolOut = BOOL_UNARY.has(op);
  const o = gpu.alloc(size, boolOut ? "bool" : dtype);
  const p = gpu.pipeline(`unary:${op}:${dtype}`, () => {
    let body: string;
    if (dtype === "float32") {
      body = `  let x = X[i];\n  let r = ${F_UNARY[op]};\n` +
        (boolOut
          ? "  O[i] = r;"
          : op === "sign"
          ? "  O[i] = bitcast<u32>(r);"
          : "  O[i] = bitcast<u32>(select(r, x, is_nan(x)));");
    } else {
      // Float-only ops on ints compute in float and store as the host array would.
      const e = I_UNARY[op] ?? `to_i32(${F_UNARY[op].replace(/\bx\b/g, "f32(x)")})`;
      const store = boolOut
        ? "r"
        : dtype === "bool"
        ? "bitcast<u32>(r) & 0xffu"
        : "bitcast<u32>(r)";
      body = `  let x = bitcast<i32>(X[i]);\n  let r = ${e};\n  O[i] = ${store};`;
    }
    const xt = dtype === "float32" ? "f32" : "u32";
    return PRELUDE + F_HELPERS + out("u32") + input(2, "X", xt) + main1d(body);
  });
  gpu.dispatch(p, [o.buffer, x.buffer], [size], groups(size));
  return o;
}
