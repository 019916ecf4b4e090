/**
 * Elementwise ops. The primitives (unary, binary, where) have a kernel on every backend and a
 * backward rule right beside their forward; the rest are composed from them.
 */
import type { BinaryOp, UnaryOp } from "../backend.ts";
import { record } from "../autograd.ts";
import {
  BOOL_BINARY,
  BOOL_UNARY,
  type DType,
  promoteTypes,
  promoteWithScalar,
  scalarType,
} from "../dtype.ts";
import { broadcastShapes, broadcastStrides, shapeEq } from "../shape.ts";
import { fromBuf, live, type Tensor } from "../tensor.ts";

/** A tensor or a JS scalar, accepted wherever an op takes a tensor operand. */
export type TensorLike = Tensor | number | boolean;

/** A 0-d tensor holding `v`, on `like`'s backend. */
export function scalarTensor(v: number | boolean, like: Tensor, dtype?: DType): Tensor {
  const d = dtype ?? scalarType(v);
  return fromBuf(like._backend, like._backend.full(1, d, Number(v)), [], d);
}

/** Sums a broadcast gradient back down to `shape`. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (shapeEq(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  }
  const s = dims.length ? g.sum(dims, { keepdim: true }) : g;
  return s.reshape(shape);
}

// ---------------------------------------------------------------------------------- unary

type UnaryGrad = (g: Tensor, x: Tensor, out: Tensor) => Tensor;
const zero: UnaryGrad = (g) => g.zerosLike();

/** Backward rules of the unary primitives (d out / d x times g). */
const UNARY_GRAD: Partial<Record<UnaryOp, UnaryGrad>> = {
  neg: (g) => g.neg(),
  abs: (g, x) => g.mul(x.sign()),
  sign: zero,
  floor: zero,
  ceil: zero,
  round: zero,
  trunc: zero,
  exp: (g, _x, out) => g.mul(out),
  log: (g, x) => g.div(x),
  log1p: (g, x) => g.div(x.add(1)),
  expm1: (g, _x, out) => g.mul(out.add(1)),
  sqrt: (g, _x, out) => g.div(out.mul(2)),
  sin: (g, x) => g.mul(x.cos()),
  cos: (g, x) => g.mul(x.sin()).neg(),
  tanh: (g, _x, out) => g.mul(out.mul(out).rsub(1)),
  sigmoid: (g, _x, out) => g.mul(out.mul(out.rsub(1))),
  relu: (g, _x, out) => g.mul(out.gt(0)),
  erf: (g, x) => g.mul(x.mul(x).neg().exp().mul(2 / Math.sqrt(Math.PI))),
  // d/dx x Phi(x) = Phi(x) + x phi(x)
  gelu: (g, x) =>
    g.mul(
      x.mul(Math.SQRT1_2).erf().add(1).mul(0.5)
        .add(x.mul(x).mul(-0.5).exp().mul(x).mul(1 / Math.sqrt(2 * Math.PI))),
    ),
  reciprocal: (g, _x, out) => g.mul(out.mul(out)).neg(),
};

const FLOAT_ONLY = new Set<UnaryOp>([
  "exp",
  "log",
  "log1p",
  "expm1",
  "sqrt",
  "sin",
  "cos",
  "tanh",
  "sigmoid",
  "erf",
  "gelu",
  "reciprocal",
]);

/** Applies a unary primitive; float-only ops promote integer inputs to float32. */
export function unary(op: UnaryOp, x: Tensor): Tensor {
  live(op, x);
  if (FLOAT_ONLY.has(op) && x.dtype !== "float32") x = x.float();
  if (x.dtype === "bool" && (op === "neg" || op === "abs" || op === "sign")) {
    if (op === "neg") throw new Error("neg: negation of a bool tensor is not supported");
    x = x.int();
  }
  const boolOut = BOOL_UNARY.has(op);
  const out = fromBuf(
    x._backend,
    x._backend.unary(op, x._buf, x.dtype, x.numel),
    x.shape,
    boolOut ? "bool" : x.dtype,
  );
  const rule = UNARY_GRAD[op];
  if (!rule || boolOut) return out;
  return record(out, op, [x], (g) => [rule(g, x, out)]);
}

// --------------------------------------------------------------------------------- binary

type BinaryGrad = (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => [Tensor | null, Tensor | null];

const BINARY_GRAD: Partial<Record<BinaryOp, BinaryGrad>> = {
  add: (g) => [g, g],
  sub: (g) => [g, g.neg()],
  mul: (g, a, b) => [g.mul(b), g.mul(a)],
  div: (g, a, b) => [g.div(b), g.mul(a).div(b.mul(b)).neg()],
  pow: (g, a, b, out) => [
    // d/da = b a^(b-1), zero where b == 0; d/db = out log a, zero where a == 0 and b >= 0
    where(b.eq(0), 0, g.mul(b).mul(a.pow(b.sub(1)))),
    where(a.eq(0).logicalAnd(b.ge(0)), 0, g.mul(out).mul(a.log())),
  ],
  // At ties the gradient is split evenly, as PyTorch does.
  maximum: (g, a, b) => {
    const h = where(a.eq(b), g.div(2), g);
    return [where(a.lt(b), 0, h), where(a.gt(b), 0, h)];
  },
  minimum: (g, a, b) => {
    const h = where(a.eq(b), g.div(2), g);
    return [where(a.gt(b), 0, h), where(a.lt(b), 0, h)];
  },
  remainder: (g, a, b) => [g, g.mul(a.div(b).floor()).neg()],
};

const BOOL_AS_LOGICAL: Partial<Record<BinaryOp, BinaryOp>> = {
  add: "logicalOr",
  maximum: "logicalOr",
  mul: "logicalAnd",
  minimum: "logicalAnd",
};

/** Applies a broadcasting binary primitive with PyTorch's type promotion. */
export function binary(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  live(op, a, b);
  if (typeof a !== "object" && typeof b !== "object") {
    throw new Error(`${op}: at least one operand must be a tensor`);
  }
  let A: Tensor, B: Tensor;
  if (typeof a === "object" && typeof b === "object") {
    if (a._backend !== b._backend) {
      throw new Error(`${op}: operands are on different backends (${a.device} and ${b.device})`);
    }
    const d = promoteTypes(a.dtype, b.dtype);
    [A, B] = [a.to(d), b.to(d)];
  } else if (typeof a === "object") {
    const d = promoteWithScalar(a.dtype, b as number | boolean);
    [A, B] = [a.to(d), scalarTensor(b as number | boolean, a, d)];
  } else {
    const t = b as Tensor;
    const d = promoteWithScalar(t.dtype, a);
    [A, B] = [scalarTensor(a, t, d), t.to(d)];
  }
  let dtype = A.dtype;
  if (op === "div" && dtype !== "float32") [A, B, dtype] = [A.float(), B.float(), "float32"];
  if (dtype === "bool" && !BOOL_BINARY.has(op)) {
    // PyTorch keeps bool for add/mul/maximum/minimum (or/and) and refuses sub.
    const logical = BOOL_AS_LOGICAL[op];
    if (logical) return binary(logical, A, B);
    if (op === "sub") {
      throw new Error("sub: subtraction of two bool tensors is not supported; use logicalXor");
    }
    [A, B, dtype] = [A.int(), B.int(), "int32"];
  }
  const shape = broadcastShapes(op, A.shape, B.shape);
  const buf = A._backend.binary(
    op,
    A._buf,
    broadcastStrides(A.shape, shape),
    B._buf,
    broadcastStrides(B.shape, shape),
    shape,
    dtype,
  );
  const out = fromBuf(A._backend, buf, shape, BOOL_BINARY.has(op) ? "bool" : dtype);
  const rule = BINARY_GRAD[op];
  if (!rule || BOOL_BINARY.has(op)) return out;
  const [a0, b0] = [A, B];
  return record(out, op, [a0, b0], (g) => {
    const [ga, gb] = rule(g, a0, b0, out);
    return [ga && sumTo(ga, a0.shape), gb && sumTo(gb, b0.shape)];
  });
}

/** `cond ? a : b`, broadcasting all three (PyTorch's `torch.where`). */
export function where(cond: TensorLike, a: TensorLike, b: TensorLike): Tensor {
  live("where", cond, a, b);
  const like = [cond, a, b].find((v) => typeof v === "object") as Tensor | undefined;
  if (!like) throw new Error("where: at least one operand must be a tensor");
  const C = typeof cond === "object" ? cond.bool() : scalarTensor(Boolean(cond), like, "bool");
  let d: DType;
  if (typeof a === "object" && typeof b === "object") d = promoteTypes(a.dtype, b.dtype);
  else if (typeof a === "object") d = promoteWithScalar(a.dtype, b as number);
  else if (typeof b === "object") d = promoteWithScalar(b.dtype, a);
  else d = promoteTypes(scalarType(a), scalarType(b));
  const A = typeof a === "object" ? a.to(d) : scalarTensor(a, like, d);
  const B = typeof b === "object" ? b.to(d) : scalarTensor(b, like, d);
  const shape = broadcastShapes("where", C.shape, A.shape, B.shape);
  const buf = like._backend.where(
    C._buf,
    broadcastStrides(C.shape, shape),
    A._buf,
    broadcastStrides(A.shape, shape),
    B._buf,
    broadcastStrides(B.shape, shape),
    shape,
    d,
  );
  const out = fromBuf(like._backend, buf, shape, d);
  return record(out, "where", [A, B], (g) => {
    const z = g.zerosLike();
    return [sumTo(where(C, g, z), A.shape), sumTo(where(C, z, g), B.shape)];
  });
}

// ------------------------------------------------------------------------------ composites

/** Clamps to [min, max]; the gradient passes where min <= x <= max (as PyTorch). */
export function clamp(x: Tensor, min?: TensorLike | null, max?: TensorLike | null): Tensor {
  if (min == null && max == null) throw new Error("clamp: give at least one of min and max");
  let y = x;
  if (min != null) y = where(y.lt(min), min, y);
  if (max != null) y = where(y.gt(max), max, y);
  return y;
}

export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return where(x.gt(0), x, x.mul(negativeSlope));
}

export function elu(x: Tensor, alpha = 1): Tensor {
  return where(x.gt(0), x, x.clamp(null, 0).expm1().mul(alpha));
}

/** GELU: exact (erf) by default, or the tanh approximation with `approximate: "tanh"`. */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  if (approximate === "tanh") {
    const inner = x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return x.mul(0.5).mul(inner.tanh().add(1));
  }
  if (approximate !== "none") {
    throw new Error(`gelu: approximate must be "none" or "tanh", got ${approximate}`);
  }
  return unary("gelu", x); // x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, one primitive
}

export function silu(x: Tensor): Tensor {
  return x.mul(x.sigmoid());
}

/** softplus(x) = log(1 + exp(beta x)) / beta, linear above `threshold` (PyTorch defaults). */
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  const bx = x.mul(beta);
  // Clamp before exp so the unused branch cannot overflow into a NaN gradient.
  const soft = bx.clamp(null, threshold).exp().log1p().div(beta);
  return where(bx.gt(threshold), x, soft);
}
