/**
 * Elementwise kernels on one operand: cast and unary. WGSL templates specialised by op and
 * dtype, with the CPU backend's semantics, NaN handling included (binary.ts has the rest).
 */
import type { UnaryOp } from "../../../backend.ts";
import { BOOL_UNARY, type DType } from "../../../dtype.ts";
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
  sin: "sin(x)",
  cos: "cos(x)",
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

/** Float helpers: log1p/expm1 by Goldberg's correction, erf by Numerical Recipes' erfc fit. */
export const F_HELPERS = /* wgsl */ `
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
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
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
