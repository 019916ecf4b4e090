/**
 * Row kernels in WebAssembly SIMD for the CPU backend: softmax, logSoftmax and layerNorm over
 * a range of rows, each row wholly in one call, and the transcendental unary ops (exp,
 * sigmoid): V8 runs `Math.exp` at about 13 ns an element here, the SIMD polynomial below at
 * a fraction of a nanosecond. This file generates the functions; they are part of the
 * elementwise module (elementwise.ts), which the thread pool's workers also instantiate, so
 * a range of rows can be split over the threads.
 *
 * The row functions write nothing outside their rows (the last n % 4 values of a row go one
 * at a time), so rows can be split between threads anywhere.
 *
 * exp: Cephes' expf (S. L. Moshier): x = k ln2 + r with |r| <= ln2/2, e^r by a degree-7
 * polynomial, 2^k from the exponent bits. Relative error about 2e-7 (within 2 ulp of
 * Math.exp, checked in tests/core/cpu_rows_test.ts). Results below e^-87.34 (float32's
 * smallest normal) are 0 rather than subnormal (an absolute error under 1.2e-38), above
 * float32's largest value +Infinity, and NaN stays NaN. Where the runtime has relaxed SIMD,
 * its multiply-adds are f32x4.relaxed_madd (fused on CPUs with FMA: 1.5x faster here), so
 * the last bit of a result may differ between machines, never between threads.
 *
 * Measured (one thread, [256, 1024] in the heap; median ms): softmax 0.58 with multiply then
 * add -> 0.34 with FMA and softmax's exp for x <= 0 -> 0.28 with four accumulators in the max
 * and sum passes (0.15-0.18 on two threads).
 */
import { F32, Fn, I32, V128 } from "./emit.ts";

// e^LO is float32's smallest normal, e^HI its largest finite value.
const LO = -87.33654, HI = 88.72283935546875;
const MAGIC = 12582912; // 1.5 * 2^23
const MAGIC_BITS = 0x4b400000; // its float32 bits

const EXP_F32 = {
  hi: HI,
  lo: LO,
  log2e: Math.LOG2E,
  magic: MAGIC,
  c1: 0.693359375,
  c2: -2.12194440e-4,
  p0: 1.9875691500e-4,
  p1: 1.3981999507e-3,
  p2: 8.3334519073e-3,
  p3: 4.1665795894e-2,
  p4: 1.6666665459e-1,
  half: 0.5,
  one: 1,
  t128: 127.5,
  inf: Infinity,
};
type ExpConsts = Record<keyof typeof EXP_F32 | "bias", number> & {
  relaxed: boolean;
  t: number;
  r: number;
  u: number;
  big: number;
};

/**
 * Locals holding exp's constants, set once at the top of the function (V8 rebuilds a
 * v128.const at every use: hoisted, the kernel ran 2x faster), and its temporaries. With
 * `relaxed`, multiply-adds use relaxed SIMD's f32x4.relaxed_madd (one FMA instruction where
 * the CPU has it).
 */
function expLocals(f: Fn, relaxed: boolean): ExpConsts {
  const c = { relaxed } as ExpConsts;
  for (const [k, v] of Object.entries(EXP_F32)) {
    const l = f.local(V128);
    f.f32x4Const(k === "c1" || k === "c2" ? -v : v).set(l); // (subtracted: stored negated)
    c[k as keyof typeof EXP_F32] = l;
  }
  c.bias = f.local(V128);
  f.i32x4Const(127 - MAGIC_BITS).set(c.bias);
  c.t = f.local(V128);
  c.r = f.local(V128);
  c.u = f.local(V128);
  c.big = f.local(V128);
  return c;
}

/** a * b + c, a and b on the stack and c in a local: one relaxed FMA, or mul then add. */
function mulAdd(f: Fn, relaxed: boolean, c: number): void {
  if (relaxed) f.get(c).f32x4RelaxedMadd();
  else f.f32x4Mul().get(c).f32x4Add();
}

/**
 * Pushes e^x of the v128 in local `x`. With `nonPositive` (x <= 0 or NaN, as softmax's
 * x - max), the steps for results past float32's range are left out.
 */
function emitExp(f: Fn, x: number, c: ExpConsts, nonPositive = false): void {
  const { t, r, u, big, relaxed } = c;
  // r = clamp(x) (pmin/pmax keep NaN); u = r log2(e) + 1.5 * 2^23 rounds to an integer in its
  // low mantissa bits, t = u - 1.5 * 2^23 is that integer as a float.
  f.get(x);
  if (!nonPositive) f.get(c.hi).f32x4Pmin();
  f.get(c.lo).f32x4Pmax().tee(r);
  f.get(c.log2e);
  mulAdd(f, relaxed, c.magic);
  f.tee(u).get(c.magic).f32x4Sub().set(t);
  // r -= t ln2 (ln2 in two parts, Cephes' C1 and C2, held negated)
  f.get(t).get(c.c1);
  mulAdd(f, relaxed, r);
  f.set(r).get(t).get(c.c2);
  mulAdd(f, relaxed, r);
  f.set(r);
  // p(r) = ((((P0 r + P1) r + P2) r + P3) r + P4) r + P5; e^r = p(r) r^2 + r + 1
  f.get(c.p0);
  for (const k of [c.p1, c.p2, c.p3, c.p4, c.half]) {
    f.get(r);
    mulAdd(f, relaxed, k);
  }
  f.get(r).get(r).f32x4Mul();
  mulAdd(f, relaxed, r);
  f.get(c.one).f32x4Add();
  if (nonPositive) {
    // times 2^t from exponent bits (t + 127) << 23, then 0 below e^LO
    f.get(u).get(c.bias).i32x4Add().i32(23).i32x4Shl().f32x4Mul();
    f.get(x).get(c.lo).f32x4Lt().v128Andnot();
    return;
  }
  // times 2^t, built from exponent bits (t + 127) << 23. At t = 128 (x up to ln(FLT_MAX)) that
  // would be Infinity: use 2^127 and double the product instead (big: all-ones lanes there).
  f.get(t).get(c.t128).f32x4Gt().set(big);
  f.get(u).get(c.bias).i32x4Add().get(big).i32x4Add().i32(23).i32x4Shl();
  f.f32x4Mul().tee(r).get(r).get(big).v128And().f32x4Add();
  // underflow to 0, overflow to +Infinity
  f.get(x).get(c.lo).f32x4Lt().v128Andnot();
  f.set(r).get(c.inf).get(r).get(x).get(c.hi).f32x4Gt().v128Bitselect();
}

/**
 * One pass over a row of n floats: `body` for each whole vector of four (byte offset in local
 * p), `unroll` of them (a power of 2) an iteration while they last, then for each of the
 * last n % 4 values (`scalar`: `load` splats the value to every lane, `store` writes lane 0
 * only).
 */
function rowPass(
  f: Fn,
  p: number,
  vecEnd: number,
  rowEnd: number,
  body: (v: Step) => void,
  unroll = 1,
): void {
  const step = (scalar: boolean, k: number): Step => ({
    scalar,
    k,
    load: (base) => {
      f.get(base).get(p).add();
      if (scalar) f.load32Splat();
      else f.v128Load(16 * k);
    },
    storeAt: (base) => f.get(base).get(p).add(),
    store: () => scalar ? f.store32Lane(0) : f.v128Store(16 * k),
  });
  f.i32(0).set(p);
  if (unroll > 1) {
    const end = f.local(I32);
    f.get(vecEnd).i32(-16 * unroll).and().set(end);
    f.whileLt(p, end, () => {
      for (let k = 0; k < unroll; k++) body(step(false, k));
      f.inc(p, 16 * unroll);
    });
  }
  f.whileLt(p, vecEnd, () => {
    body(step(false, 0));
    f.inc(p, 16);
  });
  f.whileLt(p, rowEnd, () => {
    body(step(true, 0));
    f.inc(p, 4);
  });
}

interface Step {
  scalar: boolean;
  /** Which of an iteration's unrolled vectors this is (0 for single ones and the tail). */
  k: number;
  /** Pushes the vector at local `base` + p (a splat of one value in the tail). */
  load(base: number): void;
  /** Pushes the address `base` + p for a store. */
  storeAt(base: number): void;
  /** Stores the vector on the stack at the address under it. */
  store(): void;
}

/** Accumulators for an unrolled sum or max, and their combination into the first. */
function accumulators(f: Fn, n: number): number[] {
  return Array.from({ length: n }, () => f.local(V128));
}
function combine(f: Fn, acc: number[], op: "add" | "max"): void {
  for (let k = 1; k < acc.length; k++) {
    f.get(acc[0]).get(acc[k]);
    if (op === "add") f.f32x4Add();
    else f.f32x4Pmax();
    f.set(acc[0]);
  }
}

/** Independent accumulators in the sum and max passes (with one, they were latency-bound). */
const ACCS = 4;

/** Horizontal reduction of the v128 in `v` with a scalar op (f32.add or f32.max). */
function horizontal(f: Fn, v: number, op: "add" | "max"): void {
  f.get(v).f32x4ExtractLane(0);
  for (let l = 1; l < 4; l++) {
    f.get(v).f32x4ExtractLane(l);
    if (op === "add") f.f32Add();
    else f.f32Max();
  }
}

/**
 * The loop over `count` rows of n floats (param indices), src and dst advancing by a row,
 * with byte locals vecEnd (the row's whole vectors) and rowEnd set for `row`.
 */
function eachRow(f: Fn, S: number, D: number, N: number, COUNT: number, row: (e: Ends) => void) {
  const r = f.local(I32), vecEnd = f.local(I32), rowEnd = f.local(I32);
  f.get(N).i32(4).mul().set(rowEnd).get(N).i32(-4).and().i32(4).mul().set(vecEnd);
  f.i32(0).set(r);
  f.whileLt(r, COUNT, () => {
    row({ vecEnd, rowEnd });
    f.get(S).get(rowEnd).add().set(S).get(D).get(rowEnd).add().set(D);
    f.inc(r, 1);
  });
}
interface Ends {
  vecEnd: number;
  rowEnd: number;
}

/**
 * softmax(src, dst, n, count) and logSoftmax: `count` rows of n floats, shifted by the row's
 * max. logSoftmax is (x - max) - log(sum e^(x - max)), the subtractions in this order so
 * large logits keep their digits. A row with NaN, +Infinity or only -Infinity gives NaN, as
 * in PyTorch (the max skips NaN, but e^NaN makes the sum NaN).
 */
function buildSoftmax(log: boolean, relaxed: boolean): Fn {
  const f = new Fn([I32, I32, I32, I32]);
  const [S, D, N, COUNT] = [0, 1, 2, 3];
  const p = f.local(I32), acc = accumulators(f, ACCS), mv = f.local(V128), x = f.local(V128);
  const tot = f.local(F32), sv = f.local(V128), ec = expLocals(f, relaxed);
  const logC = log ? logLocals(f) : null;
  eachRow(f, S, D, N, COUNT, ({ vecEnd, rowEnd }) => {
    // the max (pmax skips NaN), splat to mv
    for (const a of acc) f.f32x4Const(-Infinity).set(a);
    rowPass(f, p, vecEnd, rowEnd, (v) => {
      f.get(acc[v.k]);
      v.load(S);
      f.f32x4Pmax().set(acc[v.k]);
    }, ACCS);
    combine(f, acc, "max");
    horizontal(f, acc[0], "max");
    f.f32x4Splat().set(mv);
    // e^(x - max), stored by softmax; their sum in tot (vectors summed by lane, then the tail)
    f.v128Zero().set(acc[0]);
    f.f32Zero().set(tot);
    rowPass(f, p, vecEnd, rowEnd, (v) => {
      v.load(S);
      f.get(mv).f32x4Sub().set(x);
      emitExp(f, x, ec, true);
      f.set(x);
      if (!log) {
        v.storeAt(D);
        f.get(x);
        v.store();
      }
      if (v.scalar) f.get(tot).get(x).f32x4ExtractLane(0).f32Add().set(tot);
      else f.get(acc[0]).get(x).f32x4Add().set(acc[0]);
    });
    horizontal(f, acc[0], "add");
    f.get(tot).f32Add().f32x4Splat().set(sv);
    if (log) emitLog(f, sv, logC!); // sv = log(sum)
    else f.f32x4Const(1).get(sv).f32x4Div().set(sv); // sv = 1 / sum
    rowPass(f, p, vecEnd, rowEnd, (v) => {
      v.storeAt(D);
      if (log) {
        v.load(S);
        f.get(mv).f32x4Sub().get(sv).f32x4Sub();
      } else {
        v.load(D);
        f.get(sv).f32x4Mul();
      }
      v.store();
    });
  });
  return f;
}

// log(s) for the softmax sum s (in [1, n], or NaN): s = 2^k m with m in [sqrt(1/2), sqrt 2)
// (musl's logf reduction), log m = 2 atanh(t) with t = (m - 1) / (m + 1), |t| < 0.1716, by
// its series to t^9 (truncation under 3e-8 absolute).
const SQRT_HALF_BITS = 0x3f3504f3;
type LogConsts =
  & Record<"off" | "mant" | "one" | "ln2" | "c3" | "c5" | "c7" | "c9" | "two", number>
  & {
    t: number;
    t2: number;
    k: number;
  };
function logLocals(f: Fn): LogConsts {
  const c = {} as LogConsts;
  const ints = { off: -SQRT_HALF_BITS, mant: 0x7fffff };
  const floats = { one: 1, two: 2, ln2: Math.LN2, c3: 2 / 3, c5: 2 / 5, c7: 2 / 7, c9: 2 / 9 };
  for (const [k, v] of Object.entries(ints)) {
    c[k as keyof typeof ints] = f.local(V128);
    f.i32x4Const(v).set(c[k as keyof typeof ints]);
  }
  for (const [k, v] of Object.entries(floats)) {
    c[k as keyof typeof floats] = f.local(V128);
    f.f32x4Const(v).set(c[k as keyof typeof floats]);
  }
  c.t = f.local(V128);
  c.t2 = f.local(V128);
  c.k = f.local(V128);
  return c;
}
/** Replaces the v128 in local `s` (values >= 1, or NaN) with its log. */
function emitLog(f: Fn, s: number, c: LogConsts): void {
  // u = bits(s) - bits(sqrt(1/2)) >= 0: k = u >> 23, m = bits (u & mantissa) + bits(sqrt(1/2))
  f.get(s).get(c.off).i32x4Add().tee(c.k).get(c.mant).v128And().i32x4Const(SQRT_HALF_BITS);
  f.i32x4Add().set(c.t);
  f.get(c.k).i32(23).i32x4ShrU().f32x4ConvertI32x4U().set(c.k);
  // t = (m - 1) / (m + 1)
  f.get(c.t).get(c.one).f32x4Sub().get(c.t).get(c.one).f32x4Add().f32x4Div().tee(c.t);
  f.get(c.t).f32x4Mul().set(c.t2);
  // 2 t (1 + t^2/3 + t^4/5 + ...) = t (2 + t2 (2/3 + t2 (2/5 + t2 (2/7 + t2 2/9))))
  f.get(c.c9);
  for (const k of [c.c7, c.c5, c.c3, c.two]) f.get(c.t2).f32x4Mul().get(k).f32x4Add();
  f.get(c.t).f32x4Mul();
  // + k ln2, + (s - s): NaN for a NaN sum (whose bits above mean nothing), else 0
  f.get(c.k).get(c.ln2).f32x4Mul().f32x4Add();
  f.get(s).get(s).f32x4Sub().f32x4Add().set(s);
}

/**
 * layerNorm(src, dst, n, eps, w, b, stats, count): per row of n floats, dst = (x - mean) *
 * rstd * w + b with rstd = 1 / sqrt(var + eps) (biased variance, two passes, float32 sums);
 * mean and rstd stored at stats (two floats a row). w and b: n floats each.
 */
function buildLayerNorm(): Fn {
  const f = new Fn([I32, I32, I32, F32, I32, I32, I32, I32]);
  const [S, D, N, EPS, W, B, ST, COUNT] = [0, 1, 2, 3, 4, 5, 6, 7];
  const p = f.local(I32), acc = accumulators(f, ACCS), x = f.local(V128), tot = f.local(F32);
  const nf = f.local(F32), mv = f.local(V128), rv = f.local(V128);
  f.get(N).f32ConvertI32U().set(nf);
  // mean of the row (of (x - mean)^2 for the deviations' pass): lanes, then the tail
  const sum = (dev: boolean, ends: Ends) => {
    for (const a of acc) f.v128Zero().set(a);
    f.f32Zero().set(tot);
    rowPass(f, p, ends.vecEnd, ends.rowEnd, (v) => {
      v.load(S);
      if (dev) f.get(mv).f32x4Sub().tee(x).get(x).f32x4Mul();
      if (v.scalar) f.f32x4ExtractLane(0).get(tot).f32Add().set(tot);
      else f.get(acc[v.k]).f32x4Add().set(acc[v.k]);
    }, ACCS);
    combine(f, acc, "add");
    horizontal(f, acc[0], "add");
    f.get(tot).f32Add().get(nf).f32Div();
  };
  eachRow(f, S, D, N, COUNT, (ends) => {
    sum(false, ends);
    f.f32x4Splat().set(mv);
    f.get(ST).get(mv).f32x4ExtractLane(0).f32Store();
    sum(true, ends);
    f.get(EPS).f32Add().f32Sqrt().f32x4Splat().set(rv);
    f.f32x4Const(1).get(rv).f32x4Div().set(rv);
    f.get(ST).get(rv).f32x4ExtractLane(0).f32Store(4);
    f.inc(ST, 8);
    rowPass(f, p, ends.vecEnd, ends.rowEnd, (v) => {
      v.storeAt(D);
      v.load(S);
      f.get(mv).f32x4Sub().get(rv).f32x4Mul();
      v.load(W);
      f.f32x4Mul();
      v.load(B);
      f.f32x4Add();
      v.store();
    });
  });
  return f;
}

/** exp(src, dst, n) and sigmoid(src, dst, n) = 1 / (1 + e^-x) over ceil(n / 4) vectors. */
function buildExpLike(sig: boolean, relaxed: boolean): Fn {
  const f = new Fn([I32, I32, I32]);
  const [S, D, N] = [0, 1, 2];
  const p = f.local(I32), end = f.local(I32);
  const x = f.local(V128), ec = expLocals(f, relaxed), one = ec.one;
  f.vecLoop(p, end, N, () => {
    f.get(S).get(p).add().v128Load();
    if (sig) f.f32x4Neg();
    f.set(x).get(D).get(p).add();
    emitExp(f, x, ec);
    if (sig) f.set(x).get(one).get(one).get(x).f32x4Add().f32x4Div();
    f.v128Store();
  });
  return f;
}

/**
 * The row functions and exp/sigmoid, for the elementwise module (elementwise.ts); `relaxed`:
 * whether relaxed SIMD's FMA may be used.
 */
export function rowFunctions(relaxed: boolean): Record<string, Fn> {
  return {
    softmax: buildSoftmax(false, relaxed),
    logSoftmax: buildSoftmax(true, relaxed),
    layerNorm: buildLayerNorm(),
    exp: buildExpLike(false, relaxed),
    sigmoid: buildExpLike(true, relaxed),
  };
}
