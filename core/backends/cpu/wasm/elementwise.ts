/**
 * Float32 elementwise ops in WebAssembly SIMD, on arrays in the kernels' shared heap
 * (memory.ts), in place: add, sub, mul, div with broadcasting, and the cheap unary ops.
 * The CPU backend calls these for float32 outputs in the heap and falls back to its
 * JavaScript loops (../elementwise.ts) otherwise; results are the same bits, since Wasm's
 * f32 arithmetic and JavaScript's double arithmetic rounded to float32 agree for + - * /
 * and sqrt.
 *
 * Broadcasting: after dropping size-1 dims and merging dims that are laid out alike, the
 * last dim is the run each call covers; each operand must be contiguous along it (stride 1)
 * or broadcast (stride 0: a scalar for the run). Outer dims are walked in JavaScript, one
 * call per run, so a bias added to each row of a matrix is one call per row.
 *
 * Every function covers whole vectors of four floats: a run of n values writes up to
 * three lanes past its end. Runs are written in increasing order into one output block, and
 * heap blocks are sized in 64-byte multiples (memory.ts), so such lanes either belong to the
 * next run (which overwrites them) or to the output block's padding. Inputs are read up to
 * three lanes past their runs likewise (values that only reach those lanes).
 */
import { blasOn, checkExtents, foldsIntoOne, sgemmItems } from "../blas.ts";
import type { BinaryOp, MatmulDims, UnaryOp, Windows } from "../../../backend.ts";
import { tapRanges } from "../windows.ts";
import { mapPool } from "./mod.ts";
import { mapFunctions } from "./pool.ts";
import { mergeDims } from "../../../shape.ts";
import { buildModule, F32, Fn, I32, type MemoryImport, V128 } from "./emit.ts";
import { hasRelaxedSimd, hasSimd } from "./kernel.ts";
import { rowFunctions } from "./rows.ts";
import { ERF_CLAMP, ERF_P, ERF_Q } from "../elementwise.ts";
import { type Heap, memoryImport, wasmMemory } from "./memory.ts";

type Arith = "add" | "sub" | "mul" | "div";
const ARITH: Arith[] = ["add", "sub", "mul", "div"];
/** Comparisons: IEEE (false for NaN, but `ne`), as JavaScript's; 0/1 bytes out. */
type Cmp = "eq" | "ne" | "lt" | "le" | "gt" | "ge";
const CMP: Cmp[] = ["eq", "ne", "lt", "le", "gt", "ge"];
type Simple = "neg" | "abs" | "sqrt" | "relu" | "erf" | "gelu" | "exp" | "sigmoid";
const SIMPLE: Simple[] = ["neg", "abs", "sqrt", "relu", "erf", "gelu", "exp", "sigmoid"];

/** Runs shorter than this go to the JavaScript loops when there are several of them. */
const MIN_RUN = 16;

function emitArith(f: Fn, op: Arith | Cmp): void {
  if (op === "add") f.f32x4Add();
  else if (op === "sub") f.f32x4Sub();
  else if (op === "mul") f.f32x4Mul();
  else if (op === "div") f.f32x4Div();
  else if (op === "eq") f.f32x4Eq();
  else if (op === "ne") f.f32x4Ne();
  else if (op === "lt") f.f32x4Lt();
  else if (op === "le") f.f32x4Le();
  else if (op === "gt") f.f32x4Gt();
  else f.f32x4Ge();
}

/**
 * erf(src, dst, n): ERF_P/ERF_Q's rational erf (../elementwise.ts) on n floats (whole
 * vectors); with `gelu`, x (1 + erf(x / sqrt 2)) / 2 instead.
 */
function buildErf(gelu: boolean): Fn {
  const f = new Fn([I32, I32, I32]);
  const [X, O, N] = [0, 1, 2];
  const p = f.local(I32), end = f.local(I32);
  const local = (v: number) => {
    const l = f.local(V128);
    f.f32x4Const(v).set(l);
    return l;
  };
  const hi = local(ERF_CLAMP), lo = local(-ERF_CLAMP), sign = local(-0);
  const one = local(1), minusOne = local(-1);
  const pc = ERF_P.map(local), qc = ERF_Q.map(local);
  const x = f.local(V128), c = f.local(V128), s = f.local(V128), num = f.local(V128);
  const v = f.local(V128), halfs = local(0.5), rsqrt2 = local(Math.SQRT1_2);
  f.vecLoop(p, end, N, () => {
    // c = clamp(x) (pmin/pmax keep NaN), s = c^2; num = c P(s)
    f.get(X).get(p).add().v128Load();
    if (gelu) f.tee(v).get(rsqrt2).f32x4Mul();
    f.tee(x).get(hi).f32x4Pmin().get(lo).f32x4Pmax().tee(c);
    f.get(c).f32x4Mul().set(s);
    f.get(pc[pc.length - 1]);
    for (let k = pc.length - 2; k >= 0; k--) f.get(s).f32x4Mul().get(pc[k]).f32x4Add();
    f.get(c).f32x4Mul().set(num);
    // num / Q(s) within [-1, 1] (float32 rounding can pass 1 by an ulp), then +-1 (x's sign)
    // where |x| >= the clamp (where erf rounds to +-1)
    f.get(O).get(p).add();
    f.get(x).get(sign).v128And().get(one).v128Or();
    f.get(num).get(qc[qc.length - 1]);
    for (let k = qc.length - 2; k >= 0; k--) f.get(s).f32x4Mul().get(qc[k]).f32x4Add();
    f.f32x4Div().get(one).f32x4Pmin().get(minusOne).f32x4Pmax();
    f.get(x).f32x4Abs().get(hi).f32x4Ge().v128Bitselect();
    if (gelu) f.get(one).f32x4Add().get(v).get(halfs).f32x4Mul().f32x4Mul();
    f.v128Store();
  });
  return f;
}

/**
 * One run of a binary op: out[0, n) = a op b over whole vectors (params A, B, O, N), an
 * operand in `scalar` taken from the splat in local s instead of memory; comparisons write a
 * byte each.
 */
function binaryRun(f: Fn, op: Arith | Cmp, scalar: "a" | "b" | null, s: number): void {
  const [A, B, O, N] = [0, 1, 2, 3];
  const cmp = (CMP as string[]).includes(op);
  const p = f.local(I32), end = f.local(I32), m = f.local(V128), ones = f.local(V128);
  f.i32x4Const(0x01010101).set(ones);
  f.vecLoop(p, end, N, () => {
    f.get(O).get(p);
    if (cmp) f.i32(2).shrU();
    f.add();
    if (scalar === "a") f.get(s);
    else f.get(A).get(p).add().v128Load();
    if (scalar === "b") f.get(s);
    else f.get(B).get(p).add().v128Load();
    emitArith(f, op);
    if (cmp) {
      // all-ones/zero i32 lanes -> bytes 0-3, then 0xff -> 1
      f.tee(m).get(m).i16x8NarrowI32x4S().tee(m).get(m).i8x16NarrowI16x8S();
      f.get(ones).v128And().store32Lane(0);
    } else f.v128Store();
  });
}

function buildElementwiseModule(memory: MemoryImport) {
  const fns: Record<string, Fn> = {};
  for (const op of [...ARITH, ...CMP]) {
    // vv(a, b, out, n), vs(a, s, out, n), sv(s, b, out, n)
    for (const kind of ["vv", "vs", "sv"] as const) {
      const f = new Fn([kind === "sv" ? F32 : I32, kind === "vs" ? F32 : I32, I32, I32]);
      const s = f.local(V128);
      if (kind !== "vv") f.get(kind === "vs" ? 1 : 0).f32x4Splat().set(s);
      binaryRun(f, op, kind === "vv" ? null : kind === "vs" ? "b" : "a", s);
      fns[`${op}_${kind}`] = f;
    }
    // vp(a, b, out, n, count, aRow, bRow, outRow) and pv: `count` rows of n values, the
    // scalar operand read from memory for each row (b, or a for pv); pointers advance by
    // their row strides (bytes).
    for (const kind of ["vp", "pv"] as const) {
      const f = new Fn([I32, I32, I32, I32, I32, I32, I32, I32]);
      const [A, B, O, , COUNT, AROW, BROW, OROW] = [0, 1, 2, 3, 4, 5, 6, 7];
      const r = f.local(I32), s = f.local(V128);
      f.i32(0).set(r);
      f.whileLt(r, COUNT, () => {
        f.get(kind === "vp" ? B : A).load32Splat().set(s);
        binaryRun(f, op, kind === "vp" ? "b" : "a", s);
        f.get(A).get(AROW).add().set(A).get(B).get(BROW).add().set(B);
        f.get(O).get(OROW).add().set(O);
        f.inc(r, 1);
      });
      fns[`${op}_${kind}`] = f;
    }
  }
  fns.erf = buildErf(false);
  fns.gelu = buildErf(true);
  // softmax, logSoftmax, layerNorm, exp, sigmoid
  Object.assign(fns, rowFunctions(hasRelaxedSimd()));
  for (const op of SIMPLE) {
    if (fns[op]) continue;
    const f = new Fn([I32, I32, I32]);
    const [X, O, N] = [0, 1, 2];
    const p = f.local(I32), end = f.local(I32), zero = f.local(V128);
    f.v128Zero().set(zero);
    f.vecLoop(p, end, N, () => {
      f.get(O).get(p).add().get(X).get(p).add().v128Load();
      if (op === "neg") f.f32x4Neg();
      else if (op === "abs") f.f32x4Abs();
      else if (op === "sqrt") f.f32x4Sqrt();
      else f.get(zero).f32x4Max(); // relu: NaN stays NaN, -0 gives +0 (as the JS loop)
      f.v128Store();
    });
    fns[op] = f;
  }
  // boolToF32(src, dst, n): 0/1 bytes to 0/1 floats.
  {
    const f = new Fn([I32, I32, I32]);
    const [S, D, N] = [0, 1, 2];
    const p = f.local(I32), end = f.local(I32);
    f.vecLoop(p, end, N, () => {
      f.get(D).get(p).add();
      f.get(S).get(p).i32(2).shrU().add().load32Zero();
      f.i16x8ExtendLowU8().i32x4ExtendLowU16().f32x4ConvertI32x4U().v128Store();
    });
    fns.boolToF32 = f;
  }
  // colSum(x, out, outer, r, inner, acc): out[o, i] = sum over k of x[o, k, i] for x
  // [outer, r, inner] (inner a multiple of 4), accumulated in float64 at acc (inner doubles)
  // in the order of CpuBackend's loop, so the sums are the same bits.
  {
    const f = new Fn([I32, I32, I32, I32, I32, I32]);
    const [X, O, OUTER, R, INNER, ACC] = [0, 1, 2, 3, 4, 5];
    const o = f.local(I32), k = f.local(I32), ap = f.local(I32), aEnd = f.local(I32);
    const rowEnd = f.local(I32), v = f.local(V128);
    f.get(ACC).get(INNER).i32(8).mul().add().set(aEnd);
    f.i32(0).set(o);
    f.whileLt(o, OUTER, () => {
      f.get(ACC).set(ap);
      f.whileLt(ap, aEnd, () => {
        f.get(ap).v128Zero().v128Store();
        f.inc(ap, 16);
      });
      f.i32(0).set(k);
      f.whileLt(k, R, () => {
        f.get(ACC).set(ap);
        f.get(X).get(INNER).i32(4).mul().add().set(rowEnd);
        f.whileLt(X, rowEnd, () => {
          f.get(X).v128Load().set(v);
          f.get(ap).get(ap).v128Load().get(v).f64x2PromoteLow().f64x2Add().v128Store();
          f.get(ap).get(ap).v128Load(16).get(v).get(v);
          f.shuffle([8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]);
          f.f64x2PromoteLow().f64x2Add().v128Store(16);
          f.inc(X, 16).inc(ap, 32);
        });
        f.inc(k, 1);
      });
      f.get(ACC).set(ap);
      f.whileLt(ap, aEnd, () => {
        f.get(O).get(ap).v128Load().f32x4DemoteZero().get(ap).v128Load(16).f32x4DemoteZero();
        f.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]).v128Store();
        f.inc(O, 16).inc(ap, 32);
      });
      f.inc(o, 1);
    });
    fns.colSum = f;
  }
  // rowSum(x, out, n, count): out[r] = the sum of row r of n floats, for `count` rows, in
  // float64 as CpuBackend's loop: partial sums s0..s3 of the values at i % 4 = 0..3 (lanes of
  // two f64x2), the last n % 4 values added to s0, then (s0 + s1) + (s2 + s3) rounded to
  // float32. The same bits as that loop.
  {
    const f = new Fn([I32, I32, I32, I32]);
    const [X, O, N, COUNT] = [0, 1, 2, 3];
    const r = f.local(I32), p = f.local(I32), vecEnd = f.local(I32), rowEnd = f.local(I32);
    const a = f.local(V128), b = f.local(V128), v = f.local(V128);
    const high = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
    f.get(N).i32(4).mul().set(rowEnd).get(N).i32(-4).and().i32(4).mul().set(vecEnd);
    f.i32(0).set(r);
    f.whileLt(r, COUNT, () => {
      f.v128Zero().set(a).v128Zero().set(b).i32(0).set(p);
      f.whileLt(p, vecEnd, () => {
        f.get(X).get(p).add().v128Load().set(v);
        f.get(a).get(v).f64x2PromoteLow().f64x2Add().set(a);
        f.get(b).get(v).get(v).shuffle(high).f64x2PromoteLow().f64x2Add().set(b);
        f.inc(p, 16);
      });
      f.whileLt(p, rowEnd, () => {
        // [x, 0] added: s1 + 0 is s1 (never -0)
        f.get(a).get(X).get(p).add().load32Zero().f64x2PromoteLow().f64x2Add().set(a);
        f.inc(p, 4);
      });
      // [s0 + s1, s2 + s3], then its two lanes summed in lane 0, rounded to float32
      f.get(a).get(b).shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
      f.get(a).get(b).shuffle([8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31]);
      f.f64x2Add().tee(v).get(v).get(v).shuffle(high).f64x2Add().f32x4DemoteZero().set(v);
      f.get(O).get(v).store32Lane(0);
      f.get(X).get(rowEnd).add().set(X);
      f.inc(O, 4).inc(r, 1);
    });
    fns.rowSum = f;
  }
  // copyBlock(src, dst, run, n1, s1, n2, s2): n2 x n1 runs of `run` 4-byte values, run
  // (i2, i1) read at src + i2 * s2 + i1 * s1 (bytes), all written contiguously from dst.
  {
    const f = new Fn([I32, I32, I32, I32, I32, I32, I32]);
    const [S, D, RUN, N1, S1, N2, S2] = [0, 1, 2, 3, 4, 5, 6];
    const p = f.local(I32), end = f.local(I32), i1 = f.local(I32), i2 = f.local(I32);
    const bytes = f.local(I32), src = f.local(I32);
    f.get(RUN).i32(4).mul().set(bytes);
    f.i32(0).set(i2);
    f.whileLt(i2, N2, () => {
      f.get(S).set(src).i32(0).set(i1);
      f.whileLt(i1, N1, () => {
        f.vecLoop(p, end, RUN, () => {
          f.get(D).get(p).add().get(src).get(p).add().v128Load().v128Store();
        });
        f.get(src).get(S1).add().set(src);
        f.get(D).get(bytes).add().set(D);
        f.inc(i1, 1);
      });
      f.get(S).get(S2).add().set(S);
      f.inc(i2, 1);
    });
    fns.copyBlock = f;
  }
  // im2colTap(src, dst, pre, rows, post, ow, lo, hi, stride, pad): one kernel tap's oh x ow
  // block of im2col (window stride 1 along a row), written contiguously from dst: `pre`
  // rows of pad, then `rows` rows that each copy values [lo, hi) of an input row (row y read
  // at src + y * stride bytes) between pads, then `post` rows of pad.
  // col2imTap(cols, dst, rows, ow, lo, hi, stride): the adjoint for the `rows` valid rows:
  // dst row y (at dst + y * stride) gains cols row y's values [lo, hi).
  for (const adjoint of [false, true]) {
    const f = adjoint
      ? new Fn([I32, I32, I32, I32, I32, I32, I32])
      : new Fn([I32, I32, I32, I32, I32, I32, I32, I32, I32, F32]);
    const [S, D] = [0, 1];
    const [PRE, ROWS, POST, OW, LO, HI, STRIDE, PAD] = adjoint
      ? [-1, 2, -1, 3, 4, 5, 6, -1]
      : [2, 3, 4, 5, 6, 7, 8, 9];
    const y = f.local(I32), z = f.local(I32), zEnd = f.local(I32), vEnd = f.local(I32);
    const rowBytes = f.local(I32);
    f.get(OW).i32(4).mul().set(rowBytes);
    const padRun = (from: number, to: number) => {
      // dst[from..to) = pad, bytes from dst; `from`, `to` are locals
      f.whileLt(from, to, () => {
        f.get(D).get(from).add().get(PAD).f32Store();
        f.inc(from, 4);
      });
    };
    if (!adjoint) {
      f.get(PRE).get(rowBytes).mul().set(zEnd);
      f.i32(0).set(z);
      padRun(z, zEnd);
      f.get(D).get(zEnd).add().set(D);
    }
    // vEnd: the end of [lo, hi)'s whole vectors, in bytes
    f.get(LO).i32(4).mul().get(HI).get(LO).sub().i32(-4).and().i32(4).mul().add().set(vEnd);
    f.i32(0).set(y);
    f.whileLt(y, ROWS, () => {
      if (!adjoint) {
        f.i32(0).set(z);
        f.get(LO).i32(4).mul().set(zEnd);
        padRun(z, zEnd);
      } else f.get(LO).i32(4).mul().set(z);
      f.whileLt(z, vEnd, () => {
        if (adjoint) {
          f.get(D).get(z).add().get(D).get(z).add().v128Load();
          f.get(S).get(z).add().v128Load().f32x4Add().v128Store();
        } else f.get(D).get(z).add().get(S).get(z).add().v128Load().v128Store();
        f.inc(z, 16);
      });
      f.get(HI).i32(4).mul().set(zEnd);
      f.whileLt(z, zEnd, () => {
        if (adjoint) {
          f.get(D).get(z).add().get(D).get(z).add().f32Load();
          f.get(S).get(z).add().f32Load().f32Add().f32Store();
        } else f.get(D).get(z).add().get(S).get(z).add().f32Load().f32Store();
        f.inc(z, 4);
      });
      if (!adjoint) padRun(z, rowBytes);
      // next row: dst by a window row (im2col) or an input row (col2im), src the other way
      f.get(S).get(adjoint ? rowBytes : STRIDE).add().set(S);
      f.get(D).get(adjoint ? STRIDE : rowBytes).add().set(D);
      f.inc(y, 1);
    });
    if (!adjoint) {
      f.get(POST).get(rowBytes).mul().set(zEnd);
      f.i32(0).set(z);
      padRun(z, zEnd);
    }
    fns[adjoint ? "col2imTap" : "im2colTap"] = f;
  }
  // im2colPlanes(src, dst, table, taps, ow, stride, pad, count, planeBytes) and
  // col2imPlanes(cols, dst, table, taps, ow, stride, count, planeBytes): the tap functions
  // above over `count` planes (input planes planeBytes apart, each plane's taps' blocks
  // contiguous), each tap's arguments read from `table`: six i32 a tap (the byte offset in
  // the plane of its first valid window row's input, pad rows before, valid rows, pad rows
  // after, valid columns lo and hi). One call a range of planes, so the pool can split them.
  for (const adjoint of [false, true]) {
    const tapIndex = Object.keys(fns).indexOf(adjoint ? "col2imTap" : "im2colTap");
    const f = adjoint
      ? new Fn([I32, I32, I32, I32, I32, I32, I32, I32])
      : new Fn([I32, I32, I32, I32, I32, I32, F32, I32, I32]);
    const [BLOCKS, PLANES, TABLE, TAPS, OW, STRIDE] = adjoint
      ? [0, 1, 2, 3, 4, 5]
      : [1, 0, 2, 3, 4, 5];
    const [PAD, COUNT, PLANE_BYTES] = adjoint ? [-1, 6, 7] : [6, 7, 8];
    const c = f.local(I32), t = f.local(I32), e = f.local(I32), blockBytes = f.local(I32);
    f.get(OW).i32(4).mul().set(blockBytes); // then one tap's block: (pre + rows + post) rows
    f.i32(0).set(c);
    f.whileLt(c, COUNT, () => {
      f.get(TABLE).set(e).i32(0).set(t);
      f.whileLt(t, TAPS, () => {
        const field = (k: number) => f.get(e).i32Load(4 * k);
        if (adjoint) {
          // col2imTap(cols + pre * ow * 4, plane + offset, rows, ow, lo, hi, stride)
          f.get(BLOCKS);
          field(1).get(blockBytes).mul().add();
          f.get(PLANES);
          field(0).add();
          field(2).get(OW);
          field(4);
          field(5).get(STRIDE);
        } else {
          // im2colTap(plane + offset, block, pre, rows, post, ow, lo, hi, stride, pad)
          f.get(PLANES);
          field(0).add().get(BLOCKS);
          field(1);
          field(2);
          field(3).get(OW);
          field(4);
          field(5).get(STRIDE).get(PAD);
        }
        f.call(tapIndex);
        // next tap's block: (pre + rows + post) * ow floats on
        f.get(BLOCKS);
        field(1);
        field(2).add();
        field(3).add().get(blockBytes).mul().add().set(BLOCKS);
        f.inc(e, 24).inc(t, 1);
      });
      f.get(PLANES).get(PLANE_BYTES).add().set(PLANES);
      f.inc(c, 1);
    });
    fns[adjoint ? "col2imPlanes" : "im2colPlanes"] = f;
  }
  // adam_<decayP><addWd><lerpUp>(p, g, m, v, np, nm, nv, n, decay, wd, c1, b2, c2, bc, eps,
  // step, sign): one Adam/AdamW update, every step rounded to float32 as CpuBackend.adamStep.
  for (let variant = 0; variant < 8; variant++) {
    const decayP = !!(variant & 4), addWd = !!(variant & 2), lerpUp = !!(variant & 1);
    const f = new Fn([
      I32,
      I32,
      I32,
      I32,
      I32,
      I32,
      I32,
      I32,
      F32,
      F32,
      F32,
      F32,
      F32,
      F32,
      F32,
      F32,
      F32,
    ]);
    const [P, G, M, V, NP, NM, NV, N] = [0, 1, 2, 3, 4, 5, 6, 7];
    const consts = [8, 9, 10, 11, 12, 13, 14, 15, 16].map((arg) => {
      const l = f.local(V128);
      f.get(arg).f32x4Splat().set(l);
      return l;
    });
    const [decay, wd, c1, b2, c2, bc, eps, step, sign] = consts;
    const p = f.local(I32), end = f.local(I32);
    const pv = f.local(V128), gv = f.local(V128), m0 = f.local(V128), mv = f.local(V128);
    const vv = f.local(V128);
    f.vecLoop(p, end, N, () => {
      f.get(P).get(p).add().v128Load();
      if (decayP) f.get(decay).f32x4Mul();
      f.set(pv);
      f.get(G).get(p).add().v128Load().get(sign).f32x4Mul();
      if (addWd) f.get(pv).get(wd).f32x4Mul().f32x4Add();
      f.set(gv);
      f.get(M).get(p).add().v128Load().set(m0);
      // m = m0 + (g - m0) c1, or g - (g - m0) c1
      if (lerpUp) f.get(m0).get(gv).get(m0).f32x4Sub().get(c1).f32x4Mul().f32x4Add();
      else f.get(gv).get(gv).get(m0).f32x4Sub().get(c1).f32x4Mul().f32x4Sub();
      f.set(mv);
      // v = v0 b2 + g^2 c2
      f.get(V).get(p).add().v128Load().get(b2).f32x4Mul();
      f.get(gv).get(gv).f32x4Mul().get(c2).f32x4Mul().f32x4Add().set(vv);
      f.get(NM).get(p).add().get(mv).v128Store();
      f.get(NV).get(p).add().get(vv).v128Store();
      // p - m / (sqrt(v) / bc + eps) * step
      f.get(NP).get(p).add().get(pv).get(mv);
      f.get(vv).f32x4Sqrt().get(bc).f32x4Div().get(eps).f32x4Add();
      f.f32x4Div().get(step).f32x4Mul().f32x4Sub().v128Store();
    });
    fns[`adam${variant}`] = f;
  }
  return buildModule(fns, memory);
}

type RunFn = (a: number, b: number, out: number, n: number) => void;
type Exports = Record<string, RunFn> & Record<Simple, (x: number, o: number, n: number) => void> & {
  im2colTap(...args: number[]): void;
  col2imTap(...args: number[]): void;
  boolToF32(src: number, dst: number, n: number): void;
  colSum(x: number, out: number, outer: number, r: number, inner: number, acc: number): void;
};

interface Kernels {
  k: Exports;
  heap: Heap;
  module: WebAssembly.Module;
  /** Exports by name: their index in the pool's map functions, and the functions. */
  index: Map<string, number>;
  fns: ((...a: number[]) => void)[];
}

let kernels: Kernels | null | undefined;

function init(): Kernels | null {
  if (kernels !== undefined) return kernels;
  kernels = null;
  const mem = hasSimd() ? wasmMemory() : null;
  if (!mem?.shared) return null; // tensors only live in a shared heap
  const { memory, heap } = mem;
  const module = new WebAssembly.Module(buildElementwiseModule(memoryImport(mem)));
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const { names, fns } = mapFunctions(module, instance);
  // Host functions after the module's exports, in the same order as in worker.ts.
  names.push("sgemm_items");
  fns.push(sgemmItems(memory));
  const index = new Map(names.map((n, i) => [n, i]));
  kernels = { k: instance.exports as unknown as Exports, heap, module, index, fns };
  return kernels;
}

/** The compiled module (the pool's workers instantiate it for map jobs), or null. */
export function elementwiseModule(): WebAssembly.Module | null {
  return init()?.module ?? null;
}

/** Ranges at least this large are split over the pool's threads (smaller: the hand-off costs more). */
const PARALLEL_MIN = 1 << 16;

/**
 * Calls export `name` for each row of [0, rows) over columns [0, cols), as pool.ts's MapJob
 * describes (argument `count` gets the column count), spread over the thread pool when the
 * range is large (`values` at least PARALLEL_MIN) and the pool is running, else on this
 * thread.
 */
function mapCall(
  s: Kernels,
  name: string,
  args: number[],
  rowStride: number[],
  colStride: number[],
  count: number,
  rows: number,
  cols: number,
  colAlign = 16,
  values = rows * cols,
): void {
  const fn = s.index.get(name)!;
  const pool = values >= PARALLEL_MIN ? mapPool() : null;
  if (pool) {
    const job = { fn, args, rowStride, colStride, count, rows, cols, colAlign };
    pool.pool.map(job, s.fns, pool.threads);
    return;
  }
  const f = s.fns[fn], a = args.slice();
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < a.length; i++) a[i] = args[i] + r * rowStride[i];
    a[count] = cols;
    f(...a);
  }
}

/**
 * mapCall for a kernel that walks a range of independent items itself (rows, planes):
 * argument a advances by step[a] an item, argument `count` gets a chunk's number of items.
 * Split over the pool from PARALLEL_MIN `values` (0: all on this thread, in order).
 */
function itemsCall(
  s: Kernels,
  name: string,
  args: number[],
  step: number[],
  count: number,
  items: number,
  values: number,
): void {
  mapCall(s, name, args, args.map(() => 0), step, count, 1, items, 1, values);
}

/**
 * A matmul through the system BLAS split over the pool's threads (see ../blas.ts): batch
 * items, or for one matrix (or a batch that folds into one tall matrix) a block of rows per
 * thread. Operands and `out` must be in the heap; returns false (nothing written) where they
 * are not, or there is no pool or BLAS, or nothing to compute.
 */
export function poolSgemm(
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
  d: MatmulDims,
): boolean {
  const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = d;
  if (batch * m * n * k === 0 || !blasOn()) return false;
  const s = init(), pool = s && mapPool(); // (mapPool starts the pool: only when it will run)
  if (!s || !pool) return false;
  const a = s.heap.addressOf(A), b = s.heap.addressOf(B), c = s.heap.addressOf(out);
  if (a < 0 || b < 0 || c < 0) return false;
  checkExtents(A, B, out, d);
  const lda = transA ? m : k, ldb = transB ? k : n;
  let rows = m, items = batch, block = m, rStep = 0;
  let aStep = 4 * aBatchStride, bStep = 4 * bBatchStride, cStep = 4 * m * n;
  if (batch === 1 || foldsIntoOne(d)) {
    rows = batch * m;
    block = rStep = Math.ceil(rows / pool.threads);
    items = Math.ceil(rows / block);
    [aStep, bStep, cStep] = [4 * block * (transA ? 1 : k), 0, 4 * block * n];
  }
  const args = [a, b, c, 0, 0, rStep, rows, block, n, k, +transA, +transB, lda, ldb];
  args.push(aStep, bStep, cStep);
  const step = args.map((_, i) => i < 3 ? args[14 + i] : i === 4 ? rStep : 0);
  itemsCall(s, "sgemm_items", args, step, 3, items, PARALLEL_MIN);
  return true;
}

/** Whether the Wasm elementwise kernels run here (tests). */
export function wasmElementwiseAvailable(): boolean {
  return !!init();
}

export const WASM_BINARY = new Set<BinaryOp>([...ARITH, ...CMP]);
export const WASM_UNARY = new Set<UnaryOp>(SIMPLE);

/** out = op(x) for n contiguous floats; false (nothing written) where it cannot run. */
export function wasmUnary(op: UnaryOp, x: Float32Array, out: Float32Array, n: number): boolean {
  const s = init();
  if (!s || !WASM_UNARY.has(op) || !s.heap.wholeVectors(out, n)) return false;
  const xAt = s.heap.addressOf(x);
  if (xAt < 0) return false;
  mapCall(s, op, [xAt, out.byteOffset, 0], [0, 0, 0], [4, 4, 0], 2, 1, n);
  return true;
}

/**
 * out = a op b with broadcasting (the strides of backend.ts's binary, in elements): floats
 * out of + - * /, bools (0/1 bytes) out of comparisons; false (nothing written) where these
 * kernels do not apply, so the caller runs its loop.
 */
export function wasmBinary(
  op: BinaryOp,
  A: Float32Array,
  aStrides: number[],
  B: Float32Array,
  bStrides: number[],
  shape: number[],
  out: Float32Array | Uint8Array,
): boolean {
  const s = init();
  if (!s || !WASM_BINARY.has(op)) return false;
  const { shape: dims, strides: [as, bs] } = mergeDims(shape, [aStrides, bStrides]);
  const nd = dims.length;
  let n = 1;
  for (const d of dims) n *= d;
  if (nd === 0 || !s.heap.wholeVectors(out, n)) return false;
  const run = dims[nd - 1], sa = as[nd - 1], sb = bs[nd - 1];
  if ((sa !== 0 && sa !== 1) || (sb !== 0 && sb !== 1) || (sa === 0 && sb === 0)) return false;
  if (run < MIN_RUN && n > run) return false;
  // Operands outside the heap (small ones: biases, scalars) go through a temporary block.
  return inHeap(s, [{ a: A, n: A.length }, { a: B, n: B.length }], ([aAt, bAt]) => {
    const f32 = s.heap.f32(), k = s.k;
    const name = sa && sb ? `${op}_vv` : sa ? `${op}_vs` : `${op}_sv`, fn = k[name];
    const oAt = out.byteOffset, oBytes = out.BYTES_PER_ELEMENT, aF = aAt / 4, bF = bAt / 4;
    // One run, or rows of runs whose scalar operand (if any) is the same for every row: one
    // map call, which the pool may split. Rows split across threads must not spill into each
    // other's vectors, so their runs are whole vectors.
    const rows = nd === 2 ? dims[0] : 1;
    if (
      nd <= 2 && (rows === 1 || run % 4 === 0) && (sa || !as[0] || nd === 1) &&
      (sb || !bs[0] || nd === 1)
    ) {
      // (a scalar operand's row stride is 0 here, so the row strides need no case for it)
      const rowStride = nd === 2 ? [4 * as[0], 4 * bs[0], oBytes * run, 0] : [0, 0, 0, 0];
      const a = sa ? aAt : f32[aF], b = sb ? bAt : f32[bF];
      mapCall(s, name, [a, b, oAt, 0], rowStride, [4 * sa, 4 * sb, oBytes, 0], 3, rows, run);
      return;
    }
    // Rows of runs with a scalar operand that differs by row (a column broadcast: x - mean,
    // x * rstd): one call for all rows, split over the pool where the runs are whole vectors
    // (else one thread writes the rows in order, each row's last vector overwritten by the
    // next).
    if (nd === 2 && !(sa && sb)) {
      const rowStride = [4 * as[0], 4 * bs[0], oBytes * run, 0, 0, 0, 0, 0];
      const args = [aAt, bAt, oAt, run, 0, rowStride[0], rowStride[1], rowStride[2]];
      const values = run % 4 === 0 ? n : 0;
      itemsCall(s, `${op}_${sa ? "vp" : "pv"}`, args, rowStride, 4, rows, values);
      return;
    }
    const idx = new Array(nd - 1).fill(0);
    let oa = 0, ob = 0;
    for (let o = 0; o < n; o += run) {
      const a = sa ? aAt + 4 * oa : f32[aF + oa], b = sb ? bAt + 4 * ob : f32[bF + ob];
      fn(a, b, oAt + oBytes * o, run);
      for (let d = nd - 2; d >= 0; d--) {
        idx[d]++;
        oa += as[d];
        ob += bs[d];
        if (idx[d] < dims[d]) break;
        oa -= as[d] * dims[d];
        ob -= bs[d] * dims[d];
        idx[d] = 0;
      }
    }
  });
}

/** out = 0/1 floats of n bools; false (nothing written) where it cannot run. */
export function wasmBoolToF32(x: Uint8Array, out: Float32Array, n: number): boolean {
  const s = init();
  if (!s || !s.heap.wholeVectors(out, n)) return false;
  const xAt = s.heap.addressOf(x);
  if (xAt < 0) return false;
  s.k.boolToF32(xAt, out.byteOffset, n);
  return true;
}

/**
 * out[o, i] = sum over k of x[o, k, i], x viewed as [outer, r, inner] floats (inner a multiple
 * of 4): the same float64 sums as CpuBackend's loop, in SIMD. False where it cannot run.
 */
export function wasmColumnSum(
  x: Float32Array,
  out: Float32Array,
  outer: number,
  r: number,
  inner: number,
): boolean {
  const s = init();
  if (!s || inner % 4 !== 0) return false;
  const xAt = s.heap.addressOf(x);
  if (xAt < 0) return false;
  const n = outer * inner, direct = s.heap.wholeVectors(out, n);
  const tmp = s.heap.alloc(8 * inner + (direct ? 0 : 4 * n));
  if (tmp < 0) return false;
  const oAt = direct ? out.byteOffset : tmp + 8 * inner;
  s.k.colSum(xAt, oAt, outer, r, inner, tmp);
  if (!direct) out.set(s.heap.f32().subarray(oAt / 4, oAt / 4 + n));
  s.heap.release(tmp);
  return true;
}

/**
 * out = the strided view (shape, strides, offset; dims already merged where they can be) of x,
 * for 4-byte values whose view is contiguous in its last dim: the last four dims are one map
 * call (copyBlock over the second and first, split over the pool along them where runs are
 * whole vectors), dims before them walked here. False (nothing written) where it does not
 * apply.
 */
export function wasmStridedCopy(
  x: Float32Array | Int32Array,
  out: Float32Array | Int32Array,
  shape: number[],
  strides: number[],
  offset: number,
): boolean {
  const s = init();
  const nd = shape.length;
  if (!s || nd === 0 || strides[nd - 1] !== 1) return false;
  let n = 1;
  for (const d of shape) n *= d;
  const xAt = s.heap.addressOf(x);
  if (xAt < 0 || !s.heap.wholeVectors(out, n)) return false;
  // the last four dims [d0, d1, d2, run] (leading 1s where there are fewer)
  const pad = Math.max(0, 4 - nd), lead = Math.max(0, nd - 4);
  const [d0, d1, d2, run] = [...new Array(pad).fill(1), ...shape.slice(lead)];
  const [t0, t1, t2] = [...new Array(pad).fill(0), ...strides.slice(lead)];
  const block = d0 * d1 * d2 * run, values = run % 4 === 0 ? block : 0;
  const rowStride = [4 * t0, 4 * d1 * d2 * run, 0, 0, 0, 0, 0];
  const colStride = [4 * t1, 4 * d2 * run, 0, 0, 0, 0, 0];
  const idx = new Array(lead).fill(0);
  let base = offset;
  for (let o = 0; o < n; o += block) {
    const args = [xAt + 4 * base, out.byteOffset + 4 * o, run, d2, 4 * t2, 0, 4 * t1];
    mapCall(s, "copyBlock", args, rowStride, colStride, 5, d0, d1, 1, values);
    for (let d = lead - 1; d >= 0; d--) {
      idx[d]++;
      base += strides[d];
      if (idx[d] < shape[d]) break;
      base -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return true;
}

/** The Adam constants of CpuBackend.adamStep, already rounded to float32. */
export interface AdamF32 {
  decayP: boolean;
  addWd: boolean;
  lerpUp: boolean;
  decay: number;
  wd: number;
  c1: number;
  b2: number;
  c2: number;
  bc: number;
  eps: number;
  step: number;
  sign: number;
}

/**
 * One fused Adam update of n values (see CpuBackend.adamStep) when all seven arrays are in
 * the heap; false (nothing written) otherwise.
 */
export function wasmAdam(
  arrays: [Float32Array, Float32Array, Float32Array, Float32Array],
  outs: [Float32Array, Float32Array, Float32Array],
  n: number,
  c: AdamF32,
): boolean {
  const s = init();
  if (!s) return false;
  const at = arrays.map((a) => s.heap.addressOf(a));
  if (at.some((a) => a < 0) || outs.some((o) => !s.heap.wholeVectors(o, n))) return false;
  const name = `adam${(c.decayP ? 4 : 0) + (c.addWd ? 2 : 0) + (c.lerpUp ? 1 : 0)}`;
  const args = [
    ...at,
    ...outs.map((o) => o.byteOffset),
    n,
    c.decay,
    c.wd,
    c.c1,
    c.b2,
    c.c2,
    c.bc,
    c.eps,
    c.step,
    c.sign,
  ];
  const zero = args.map(() => 0);
  mapCall(s, name, args, zero, args.map((_, i) => i < 7 ? 4 : 0), 7, 1, n);
  return true;
}

/**
 * The im2col of Backend.im2col for windows with column stride 1, x and out in the heap: one
 * call a kernel tap and input plane (wasm's im2colTap), planes split over the pool. False
 * (nothing written) otherwise.
 */
export function wasmIm2col(
  x: Float32Array,
  out: Float32Array,
  rows: number,
  h: number,
  w: number,
  win: Windows,
  padValue: number,
): boolean {
  return planesCall(x, out, rows, h, w, win, false, padValue);
}

/** The col2im of Backend.col2im, as wasmIm2col; `out` ([rows, h, w]) is zeroed first. */
export function wasmCol2im(
  cols: Float32Array,
  out: Float32Array,
  rows: number,
  h: number,
  w: number,
  win: Windows,
): boolean {
  return planesCall(out, cols, rows, h, w, win, true, 0);
}

/** The kernels, where the tap kernels apply: column stride 1, both arrays in the heap. */
function tapKernels(planes: Float32Array, blocks: Float32Array, win: Windows): Kernels | null {
  const s = init();
  if (!s || win.stride[1] !== 1) return null;
  return s.heap.addressOf(planes) < 0 || s.heap.addressOf(blocks) < 0 ? null : s;
}

/**
 * Runs im2colPlanes (or col2imPlanes, `adjoint`) over `rows` planes ([rows, h, w]) and their
 * blocks ([rows, K, L]), the taps' table built here (see the Wasm function); col2im's planes
 * are zeroed first. False (nothing written) where the tap kernels do not apply or the heap
 * has no room for the table.
 */
function planesCall(
  planes: Float32Array,
  blocks: Float32Array,
  rows: number,
  h: number,
  w: number,
  win: Windows,
  adjoint: boolean,
  padValue: number,
): boolean {
  const s = tapKernels(planes, blocks, win);
  if (!s) return false;
  const [kh, kw] = win.kernel, sh = win.stride[0], [dh, dw] = win.dilation;
  const [pt, , pl] = win.pads, [oh, ow] = win.out;
  const ranges = tapRanges(w, win), taps = kh * kw;
  const at = s.heap.alloc(24 * taps);
  if (at < 0) return false;
  const table = new Int32Array(s.heap.memory.buffer, at, 6 * taps);
  for (let i = 0, e = 0; i < kh; i++) {
    const base = i * dh - pt; // input row of window row 0
    const y0 = Math.min(oh, base >= 0 ? 0 : Math.ceil(-base / sh));
    const y1 = Math.max(y0, Math.min(oh, Math.floor((h - 1 - base) / sh) + 1));
    for (let j = 0; j < kw; j++, e += 6) {
      const lo = ranges[2 * j], hi = ranges[2 * j + 1], valid = lo < hi && y1 > y0;
      table[e] = valid ? ((y0 * sh + base) * w + j * dw - pl) * 4 : 0;
      // a tap with no valid window: all pad rows (im2col), nothing (col2im)
      table.set(valid ? [y0, y1 - y0, oh - y1, lo, hi] : [oh, 0, 0, 0, 0], e + 1);
    }
  }
  const pAt = s.heap.addressOf(planes), bAt = s.heap.addressOf(blocks);
  const planeBytes = 4 * h * w, blockBytes = 4 * taps * oh * ow, stride = 4 * sh * w;
  const args = adjoint
    ? [bAt, pAt, at, taps, ow, stride, 0, planeBytes]
    : [pAt, bAt, at, taps, ow, stride, padValue, 0, planeBytes];
  const step = args.map(() => 0);
  step[0] = adjoint ? blockBytes : planeBytes;
  step[1] = adjoint ? planeBytes : blockBytes;
  const [name, count] = adjoint ? ["col2imPlanes", 6] : ["im2colPlanes", 7];
  if (adjoint) planes.fill(0, 0, rows * h * w);
  try {
    itemsCall(s, name, args, step, count, rows, rows * taps * oh * ow);
  } finally {
    s.heap.release(at);
  }
  return true;
}

/** An array for inHeap: `n` floats of `a`, copied in unless `out`, copied back if `out`. */
interface Operand {
  a: Float32Array;
  n: number;
  out?: boolean;
}

/**
 * Calls run with the byte address in the heap of each operand: operands outside it (small
 * arrays) are copied into one temporary block first, and outputs among them copied back
 * after. False (nothing run) if the heap has no room.
 */
function inHeap(s: Kernels, ops: Operand[], run: (at: number[]) => void): boolean {
  const at = ops.map(({ a }) => s.heap.addressOf(a));
  let bytes = 0;
  const tmpOff = ops.map(({ n }, i) => {
    if (at[i] >= 0) return -1;
    const off = bytes;
    bytes += 4 * n + 64;
    return off;
  });
  const tmp = bytes ? s.heap.alloc(bytes) : 0;
  if (tmp < 0) return false;
  const f32 = s.heap.f32();
  ops.forEach(({ a, n, out }, i) => {
    if (tmpOff[i] < 0) return;
    at[i] = tmp + tmpOff[i];
    if (!out) f32.set(a.subarray(0, n), at[i] / 4);
  });
  try {
    run(at);
  } finally {
    const f32 = s.heap.f32();
    ops.forEach(({ a, n, out }, i) => {
      if (out && tmpOff[i] >= 0) a.set(f32.subarray(at[i] / 4, at[i] / 4 + n));
    });
    if (bytes) s.heap.release(tmp);
  }
  return true;
}

/**
 * Softmax (or logSoftmax) over the last dim of `x` viewed as [rows, cols], into `out`, the
 * rows split over the pool's threads when there are many values. False (nothing written)
 * where the kernels cannot run, so the caller falls back.
 */
export function wasmSoftmax(
  x: Float32Array,
  out: Float32Array,
  rows: number,
  cols: number,
  log: boolean,
): boolean {
  const s = init();
  if (!s) return false;
  const n = rows * cols;
  return inHeap(s, [{ a: x, n }, { a: out, n, out: true }], ([xAt, oAt]) => {
    const rowBytes = 4 * cols;
    const name = log ? "logSoftmax" : "softmax";
    itemsCall(s, name, [xAt, oAt, cols, 0], [rowBytes, rowBytes, 0, 0], 3, rows, n);
  });
}

/**
 * LayerNorm over the last dim: out = (x - mean) / sqrt(var + eps) * w + b per row of `cols`
 * (biased variance, two passes); each row's mean and 1/sqrt(var + eps) go into `stats`
 * ([rows, 2]) for the backward pass. w and b default to 1 and 0. Rows split over the pool's
 * threads as softmax's. False (nothing written) where the kernels cannot run.
 */
export function wasmLayerNorm(
  x: Float32Array,
  out: Float32Array,
  rows: number,
  cols: number,
  eps: number,
  w: Float32Array | null,
  b: Float32Array | null,
  stats: Float32Array,
): boolean {
  const s = init();
  if (!s) return false;
  const n = rows * cols;
  const ops: Operand[] = [
    { a: x, n },
    { a: out, n, out: true },
    { a: w ?? new Float32Array(cols).fill(1), n: cols },
    { a: b ?? new Float32Array(cols), n: cols },
    { a: stats, n: 2 * rows, out: true },
  ];
  return inHeap(s, ops, ([xAt, oAt, wAt, bAt, stAt]) => {
    const rowBytes = 4 * cols;
    const args = [xAt, oAt, cols, eps, wAt, bAt, stAt, 0];
    itemsCall(s, "layerNorm", args, [rowBytes, rowBytes, 0, 0, 0, 0, 8, 0], 7, rows, n);
  });
}

/**
 * out[r] = the sum of row r of x viewed as [rows, cols]: the same float64 sums as CpuBackend's
 * loop, bit for bit, rows split over the pool's threads when there are many values. False
 * (nothing written) where it cannot run.
 */
export function wasmRowSum(
  x: Float32Array,
  out: Float32Array,
  rows: number,
  cols: number,
): boolean {
  const s = init();
  if (!s) return false;
  const n = rows * cols;
  return inHeap(s, [{ a: x, n }, { a: out, n: rows, out: true }], ([xAt, oAt]) => {
    itemsCall(s, "rowSum", [xAt, oAt, cols, 0], [4 * cols, 4, 0, 0], 3, rows, n);
  });
}
