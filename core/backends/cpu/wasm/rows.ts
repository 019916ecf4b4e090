/**
 * Row kernels in WebAssembly SIMD for the CPU backend's fused softmax, logSoftmax and
 * layerNorm, and for the transcendental unary ops (exp, sigmoid): V8 runs `Math.exp` at
 * about 13 ns an element here, the SIMD polynomial below at a fraction of a nanosecond.
 *
 * The module works in the kernels' shared memory (memory.ts): arrays in its heap (the CPU
 * backend's large tensors) are read and written in place; others are copied through a
 * temporary heap block, a block of rows at a time. Every function works on whole vectors of
 * four floats (`n` a multiple of 4), and the callers finish the last 0-3 values of a row in
 * JavaScript. Single-threaded.
 *
 * exp: Cephes' expf (S. L. Moshier): x = k ln2 + r with |r| <= ln2/2, e^r by a degree-7
 * polynomial, 2^k from the exponent bits. Relative error about 2e-7 (within 2 ulp of
 * Math.exp, checked in tests/core/cpu_rows_test.ts). Results below e^-87.34 (float32's
 * smallest normal) are 0 rather than subnormal (an absolute error under 1.2e-38), above
 * float32's largest value +Infinity, and NaN stays NaN.
 */
import { buildModule, F32, Fn, I32, type MemoryImport, V128 } from "./emit.ts";
import { hasSimd } from "./kernel.ts";
import { type Heap, memoryImport, wasmMemory } from "./memory.ts";

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
  t: number;
  r: number;
  u: number;
  big: number;
};

/**
 * Locals holding exp's constants, set once at the top of the function (V8 rebuilds a
 * v128.const at every use: hoisted, the kernel ran 2x faster), and its temporaries.
 */
export function expLocals(f: Fn): ExpConsts {
  const c = {} as ExpConsts;
  for (const [k, v] of Object.entries(EXP_F32)) {
    const l = f.local(V128);
    f.f32x4Const(v).set(l);
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

/** Pushes e^x of the v128 in local `x`. */
export function emitExp(f: Fn, x: number, c: ExpConsts): void {
  const { t, r, u, big } = c;
  // r = clamp(x) (pmin/pmax keep NaN); u = r log2(e) + 1.5 * 2^23 rounds to an integer in its
  // low mantissa bits, t = u - 1.5 * 2^23 is that integer as a float.
  f.get(x).get(c.hi).f32x4Pmin().get(c.lo).f32x4Pmax().set(r);
  f.get(r).get(c.log2e).f32x4Mul().get(c.magic).f32x4Add().tee(u);
  f.get(c.magic).f32x4Sub().set(t);
  // r -= t ln2 (ln2 in two parts, Cephes' C1 and C2)
  f.get(r).get(t).get(c.c1).f32x4Mul().f32x4Sub();
  f.get(t).get(c.c2).f32x4Mul().f32x4Sub().set(r);
  // p(r) = ((((P0 r + P1) r + P2) r + P3) r + P4) r + P5; e^r = p(r) r^2 + r + 1
  f.get(c.p0);
  for (const k of [c.p1, c.p2, c.p3, c.p4, c.half]) f.get(r).f32x4Mul().get(k).f32x4Add();
  f.get(r).get(r).f32x4Mul().f32x4Mul().get(r).f32x4Add().get(c.one).f32x4Add();
  // times 2^t, built from exponent bits (t + 127) << 23. At t = 128 (x up to ln(FLT_MAX)) that
  // would be Infinity: use 2^127 and double the product instead (big: all-ones lanes there).
  f.get(t).get(c.t128).f32x4Gt().set(big);
  f.get(u).get(c.bias).i32x4Add().get(big).i32x4Add().i32(23).i32x4Shl();
  f.f32x4Mul().tee(r).get(r).get(big).v128And().f32x4Add();
  // underflow to 0, overflow to +Infinity
  f.get(x).get(c.lo).f32x4Lt().v128Andnot();
  f.set(r).get(c.inf).get(r).get(x).get(c.hi).f32x4Gt().v128Bitselect();
}

/** `for (p = 0; p < n*4; p += 16) body(p)`; `p` is a byte offset local. */
function vecLoop(f: Fn, p: number, end: number, n: number, body: () => void): void {
  f.i32(0).set(p).get(n).i32(4).mul().set(end);
  f.whileLt(p, end, () => {
    body();
    f.inc(p, 16);
  });
}

/** Horizontal reduction of the v128 in `v` with a scalar op (f32.add or f32.max). */
function horizontal(f: Fn, v: number, op: "add" | "max"): void {
  f.get(v).f32x4ExtractLane(0);
  for (let l = 1; l < 4; l++) {
    f.get(v).f32x4ExtractLane(l);
    if (op === "add") f.f32Add();
    else f.f32Max();
  }
}

function buildRowsModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const fns: Record<string, Fn> = {};

  // max4(ptr, n) -> f32: max of n floats, skipping NaN (pmax is one instruction, IEEE max
  // about eight). Softmax still gives NaN rows for NaN input: e^NaN makes the sum NaN.
  {
    const f = new Fn([I32, I32], [F32]);
    const [P, N] = [0, 1];
    const p = f.local(I32), end = f.local(I32), acc = f.local(V128);
    f.f32x4Const(-Infinity).set(acc);
    vecLoop(f, p, end, N, () => {
      f.get(acc).get(P).get(p).add().v128Load().f32x4Pmax().set(acc);
    });
    horizontal(f, acc, "max");
    fns.max4 = f;
  }
  // expShift(src, dst, n, c) -> f32: dst = e^(src - c); returns the sum of dst.
  {
    const f = new Fn([I32, I32, I32, F32], [F32]);
    const [S, D, N, C] = [0, 1, 2, 3];
    const p = f.local(I32), end = f.local(I32), acc = f.local(V128), cv = f.local(V128);
    const x = f.local(V128), ec = expLocals(f);
    f.v128Zero().set(acc).get(C).f32x4Splat().set(cv);
    vecLoop(f, p, end, N, () => {
      f.get(S).get(p).add().v128Load().get(cv).f32x4Sub().set(x);
      f.get(D).get(p).add();
      emitExp(f, x, ec);
      f.tee(x).v128Store();
      f.get(acc).get(x).f32x4Add().set(acc);
    });
    horizontal(f, acc, "add");
    fns.expShift = f;
  }
  // affine(src, dst, n, c, a, b): dst = (src - c) * a + b (softmax's scale; logSoftmax's
  // (x - max) - log(sum), the subtractions in this order so large logits keep their digits).
  {
    const f = new Fn([I32, I32, I32, F32, F32, F32]);
    const [S, D, N, C, A, B] = [0, 1, 2, 3, 4, 5];
    const p = f.local(I32), end = f.local(I32), av = f.local(V128), bv = f.local(V128);
    const cv = f.local(V128);
    f.get(A).f32x4Splat().set(av).get(B).f32x4Splat().set(bv).get(C).f32x4Splat().set(cv);
    vecLoop(f, p, end, N, () => {
      f.get(D).get(p).add();
      f.get(S).get(p).add().v128Load().get(cv).f32x4Sub().get(av).f32x4Mul().get(bv).f32x4Add();
      f.v128Store();
    });
    fns.affine = f;
  }
  // sum4(ptr, n) -> f32 and sqDev(ptr, n, mean) -> f32 = sum (x - mean)^2.
  for (const dev of [false, true]) {
    const f = new Fn(dev ? [I32, I32, F32] : [I32, I32], [F32]);
    const [P, N, M] = [0, 1, 2];
    const p = f.local(I32), end = f.local(I32), acc = f.local(V128), mv = f.local(V128);
    const x = f.local(V128);
    f.v128Zero().set(acc);
    if (dev) f.get(M).f32x4Splat().set(mv);
    vecLoop(f, p, end, N, () => {
      f.get(P).get(p).add().v128Load();
      if (dev) f.get(mv).f32x4Sub().tee(x).get(x).f32x4Mul();
      f.get(acc).f32x4Add().set(acc);
    });
    horizontal(f, acc, "add");
    fns[dev ? "sqDev" : "sum4"] = f;
  }
  // norm(src, dst, n, mean, rstd, w, b): dst = (src - mean) * rstd * w + b (w, b: n floats).
  {
    const f = new Fn([I32, I32, I32, F32, F32, I32, I32]);
    const [S, D, N, M, R, W, B] = [0, 1, 2, 3, 4, 5, 6];
    const p = f.local(I32), end = f.local(I32), mv = f.local(V128), rv = f.local(V128);
    f.get(M).f32x4Splat().set(mv).get(R).f32x4Splat().set(rv);
    vecLoop(f, p, end, N, () => {
      f.get(D).get(p).add();
      f.get(S).get(p).add().v128Load().get(mv).f32x4Sub().get(rv).f32x4Mul();
      f.get(W).get(p).add().v128Load().f32x4Mul().get(B).get(p).add().v128Load().f32x4Add();
      f.v128Store();
    });
    fns.norm = f;
  }
  // exp(src, dst, n) and sigmoid(src, dst, n) = 1 / (1 + e^-x).
  for (const sig of [false, true]) {
    const f = new Fn([I32, I32, I32]);
    const [S, D, N] = [0, 1, 2];
    const p = f.local(I32), end = f.local(I32);
    const x = f.local(V128), ec = expLocals(f), one = ec.one;
    vecLoop(f, p, end, N, () => {
      f.get(S).get(p).add().v128Load();
      if (sig) f.f32x4Neg();
      f.set(x).get(D).get(p).add();
      emitExp(f, x, ec);
      if (sig) f.set(x).get(one).get(one).get(x).f32x4Add().f32x4Div();
      f.v128Store();
    });
    fns[sig ? "sigmoid" : "exp"] = f;
  }
  return buildModule(fns, memory);
}

interface RowExports {
  max4(p: number, n: number): number;
  sum4(p: number, n: number): number;
  sqDev(p: number, n: number, mean: number): number;
  expShift(src: number, dst: number, n: number, c: number): number;
  affine(src: number, dst: number, n: number, c: number, a: number, b: number): void;
  norm(src: number, dst: number, n: number, mean: number, rstd: number, w: number, b: number): void;
  exp(src: number, dst: number, n: number): void;
  sigmoid(src: number, dst: number, n: number): void;
}

let kernels: { k: RowExports; heap: Heap } | null | undefined;

function init() {
  if (kernels !== undefined) return kernels;
  kernels = null;
  const mem = hasSimd() ? wasmMemory() : null;
  if (!mem) return null;
  const bytes = buildRowsModule(memoryImport(mem));
  const k = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: mem.memory } })
    .exports as unknown as RowExports;
  kernels = { k, heap: mem.heap };
  return kernels;
}

type Kernels = NonNullable<ReturnType<typeof init>>;

/**
 * Calls f with a temporary heap block of `floats` floats (its float offset), then frees it;
 * false if the heap has no room.
 */
function withTemp(s: Kernels, floats: number, f: (at: number) => void): boolean {
  const at = s.heap.alloc(4 * floats + 16);
  if (at < 0) return false;
  try {
    f(at / 4);
  } finally {
    s.heap.release(at);
  }
  return true;
}

/** Whether the Wasm row kernels can run here (tests and benches). */
export function rowKernelsAvailable(): boolean {
  return !!init();
}

/** e^x in JavaScript with the SIMD kernel's range rules (for the 0-3 values of a tail). */
function expTail(x: number): number {
  return x < LO ? 0 : x > HI ? Infinity : Math.exp(x);
}

/** Rows per block: a block (about 1 MiB) is copied in, computed and copied out. */
const blockRows = (rows: number, cols: number) =>
  Math.max(1, Math.min(rows, Math.floor(262144 / Math.max(cols, 1))));

/**
 * Calls row(s, d, r) for each row r of `src` viewed as [rows, cols], s and d the float
 * offsets in the heap of its input and where its output goes. Arrays in the heap are used in
 * place; otherwise rows are copied in a block at a time (s = d, computed in place) and the
 * results copied out to `dst`. False if the heap has no room for that.
 */
function inBlocks(
  s: Kernels,
  src: Float32Array,
  dst: Float32Array,
  rows: number,
  cols: number,
  row: (s: number, d: number, r: number, heap: Float32Array) => void,
): boolean {
  const sAt = s.heap.addressOf(src), dAt = s.heap.addressOf(dst);
  if (sAt >= 0 && dAt >= 0) {
    const heap = s.heap.f32(); // (the kernels allocate nothing: the view stays whole)
    for (let r = 0, so = sAt / 4, d = dAt / 4; r < rows; r++, so += cols, d += cols) {
      row(so, d, r, heap);
    }
    return true;
  }
  const block = blockRows(rows, cols);
  return withTemp(s, block * cols, (tmp) => {
    const heap = s.heap.f32();
    for (let r0 = 0; r0 < rows; r0 += block) {
      const r1 = Math.min(rows, r0 + block);
      heap.set(src.subarray(r0 * cols, r1 * cols), tmp);
      for (let r = r0; r < r1; r++) row(tmp + (r - r0) * cols, tmp + (r - r0) * cols, r, heap);
      dst.set(heap.subarray(tmp, tmp + (r1 - r0) * cols), r0 * cols);
    }
  });
}

/**
 * Softmax (or logSoftmax) over the last dim of `src` viewed as [rows, cols], into `dst`.
 * Returns false (nothing written) where the kernels cannot run, so the caller falls back.
 */
export function softmaxRows(
  src: Float32Array,
  dst: Float32Array,
  rows: number,
  cols: number,
  log: boolean,
): boolean {
  const s = init();
  if (!s) return false;
  const k = s.k;
  const n4 = cols & ~3;
  // logSoftmax's exponentials are only summed: they go to a scratch row.
  let ran = false;
  const room = withTemp(
    s,
    log ? cols : 0,
    (scratch) =>
      ran = inBlocks(s, src, dst, rows, cols, (so, d, _r, heap) => {
        const sp = so * 4, dp = d * 4;
        let m = n4 ? k.max4(sp, n4) : -Infinity;
        for (let j = n4; j < cols; j++) if (heap[so + j] > m) m = heap[so + j];
        // A row of -Infinity (all masked) gives NaN, as in PyTorch.
        let sum = n4 ? k.expShift(sp, log ? scratch * 4 : dp, n4, m) : 0;
        if (log) {
          for (let j = n4; j < cols; j++) sum += expTail(heap[so + j] - m);
          const ls = Math.fround(Math.log(sum));
          if (n4) k.affine(sp, dp, n4, m, 1, -ls);
          for (let j = n4; j < cols; j++) heap[d + j] = Math.fround(heap[so + j] - m) - ls;
        } else {
          for (let j = n4; j < cols; j++) sum += heap[d + j] = expTail(heap[so + j] - m);
          const inv = 1 / sum;
          if (n4) k.affine(dp, dp, n4, 0, inv, 0);
          for (let j = n4; j < cols; j++) heap[d + j] *= inv;
        }
      }),
  );
  return room && ran;
}

/**
 * LayerNorm over the last dim: dst = (x - mean) / sqrt(var + eps) * w + b per row of `cols`
 * (biased variance, two passes); writes each row's mean and 1/sqrt(var + eps) into `stats`
 * ([rows, 2]) for the backward pass. w and b default to 1 and 0. False where the kernels
 * cannot run.
 */
export function layerNormRows(
  src: Float32Array,
  dst: Float32Array,
  rows: number,
  cols: number,
  eps: number,
  w: Float32Array | null,
  b: Float32Array | null,
  stats: Float32Array,
): boolean {
  const s = init();
  if (!s) return false;
  const k = s.k;
  const n4 = cols & ~3;
  let ran = false;
  // w and b (copied into the heap: they are short) in one temporary block.
  const room = withTemp(s, 2 * cols, (wOff) => {
    const bOff = wOff + cols;
    const heap = s.heap.f32();
    if (w) heap.set(w.subarray(0, cols), wOff);
    else heap.fill(1, wOff, wOff + cols);
    if (b) heap.set(b.subarray(0, cols), bOff);
    else heap.fill(0, bOff, bOff + cols);
    ran = inBlocks(s, src, dst, rows, cols, (so, d, r, heap) => {
      const sp = so * 4;
      let sum = n4 ? k.sum4(sp, n4) : 0;
      for (let j = n4; j < cols; j++) sum += heap[so + j];
      const mean = sum / cols;
      let sq = n4 ? k.sqDev(sp, n4, mean) : 0;
      for (let j = n4; j < cols; j++) sq += (heap[so + j] - mean) ** 2;
      const rstd = 1 / Math.sqrt(sq / cols + eps);
      if (n4) k.norm(sp, d * 4, n4, mean, rstd, wOff * 4, bOff * 4);
      for (let j = n4; j < cols; j++) {
        heap[d + j] = (heap[so + j] - mean) * rstd * heap[wOff + j] + heap[bOff + j];
      }
      stats[2 * r] = mean;
      stats[2 * r + 1] = rstd;
    });
  });
  return room && ran;
}

/** dst = e^src or 1 / (1 + e^-src), elementwise. False where the kernels cannot run. */
export function expLike(
  op: "exp" | "sigmoid",
  src: Float32Array,
  dst: Float32Array,
  n: number,
): boolean {
  const s = init();
  if (!s) return false;
  const fn = op === "exp" ? s.k.exp : s.k.sigmoid;
  const sAt = s.heap.addressOf(src);
  // In place when dst is a heap block with room for the last whole vector.
  if (sAt >= 0 && s.heap.wholeVectors(dst, n)) {
    fn(sAt, dst.byteOffset, n4Of(n));
    return true;
  }
  const chunk = 262144;
  return withTemp(s, Math.min(n, chunk) + 4, (tmp) => {
    for (let i0 = 0; i0 < n; i0 += chunk) {
      const len = Math.min(chunk, n - i0);
      s.heap.f32().set(src.subarray(i0, i0 + len), tmp);
      fn(tmp * 4, tmp * 4, n4Of(len)); // the padding lanes' results are not copied out
      dst.set(s.heap.f32().subarray(tmp, tmp + len), i0);
    }
  });
}

/** n rounded up to whole vectors of four. */
const n4Of = (n: number) => (n + 3) & ~3;
