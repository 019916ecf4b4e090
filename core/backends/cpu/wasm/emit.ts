/**
 * A tiny WebAssembly binary emitter: just enough to generate the CPU backend's SIMD kernels at
 * run time from TypeScript (no prebuilt binary). A module here has one imported memory, a few
 * functions whose parameters and locals are i32 or v128, and exports them by name.
 *
 * Reference: the WebAssembly core spec (binary format, section 5) and the SIMD and
 * relaxed-SIMD proposals' opcode tables.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
export function uleb(n: number, out: number[] = []): number[] {
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (32-bit). */
export function sleb(n: number, out: number[] = []): number[] {
  n |= 0;
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/** A function body under construction: locals and instructions, with readable op names. */
export class Fn {
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];

  constructor(readonly params: ValType[], readonly results: ValType[] = []) {}

  /** A new local of type t; returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }

  private op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  /** A SIMD-prefixed opcode (0xfd, then the sub-opcode as LEB128). */
  private simd(sub: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(sub), ...imm);
  }
  /** memarg: alignment exponent and constant byte offset. */
  private mem(align: number, offset: number): number[] {
    return [...uleb(align), ...uleb(offset)];
  }

  // Control flow. Blocks here take and yield nothing (block type 0x40).
  block(): this {
    return this.op(0x02, 0x40);
  }
  loop(): this {
    return this.op(0x03, 0x40);
  }
  if_(): this {
    return this.op(0x04, 0x40);
  }
  else_(): this {
    return this.op(0x05);
  }
  end(): this {
    return this.op(0x0b);
  }
  br(depth: number): this {
    return this.op(0x0c, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.op(0x0d, ...uleb(depth));
  }

  /** Calls function `index` of the module (its place in buildModule's `fns`). */
  call(index: number): this {
    return this.op(0x10, ...uleb(index));
  }

  /** `while (local[i] < local[end]) body()` (unsigned); the body must advance i. */
  whileLt(i: number, end: number, body: () => void): this {
    this.block().loop().get(i).get(end).geU().brIf(1);
    body();
    return this.br(0).end().end();
  }

  /**
   * `for (p = 0; p < n4 * 16; p += 16) body()` over n4 = ceil(n / 4) vectors of four floats;
   * p (a local) in bytes, end a scratch local, n a local holding the value count.
   */
  vecLoop(p: number, end: number, n: number, body: () => void): this {
    this.i32(0).set(p).get(n).i32(3).add().i32(-4).and().i32(4).mul().set(end);
    return this.whileLt(p, end, () => {
      body();
      this.inc(p, 16);
    });
  }

  // Locals.
  get(i: number): this {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.op(0x21, ...uleb(i));
  }
  tee(i: number): this {
    return this.op(0x22, ...uleb(i));
  }

  // i32 arithmetic and comparisons.
  i32(v: number): this {
    return this.op(0x41, ...sleb(v));
  }
  add(): this {
    return this.op(0x6a);
  }
  sub(): this {
    return this.op(0x6b);
  }
  mul(): this {
    return this.op(0x6c);
  }
  and(): this {
    return this.op(0x71);
  }
  shrU(): this {
    return this.op(0x76);
  }
  divU(): this {
    return this.op(0x6e);
  }
  eq(): this {
    return this.op(0x46);
  }
  eqz(): this {
    return this.op(0x45);
  }
  ne(): this {
    return this.op(0x47);
  }
  ltU(): this {
    return this.op(0x49);
  }
  geU(): this {
    return this.op(0x4f);
  }
  /** local[i] += delta (i32). */
  inc(i: number, delta: number): this {
    return this.get(i).i32(delta).add().set(i);
  }

  /** select(a, b, cond): a if cond else b. */
  select(): this {
    return this.op(0x1b);
  }

  // Scalar f32 memory.
  f32Load(offset = 0): this {
    return this.op(0x2a, ...this.mem(2, offset));
  }
  f32Store(offset = 0): this {
    return this.op(0x38, ...this.mem(2, offset));
  }
  f32Zero(): this {
    return this.op(0x43, 0, 0, 0, 0);
  }
  i32Load(offset = 0): this {
    return this.op(0x28, ...this.mem(2, offset));
  }
  /** 8-byte integer load/store, used to move two floats at once. */
  i64Load(offset = 0): this {
    return this.op(0x29, ...this.mem(3, offset));
  }
  i64Store(offset = 0): this {
    return this.op(0x37, ...this.mem(3, offset));
  }

  // SIMD (v128 = four f32 lanes here).
  v128Load(offset = 0): this {
    return this.simd(0x00, ...this.mem(4, offset));
  }
  /** Loads one f32 and splats it to all four lanes. */
  load32Splat(offset = 0): this {
    return this.simd(0x09, ...this.mem(2, offset));
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b, ...this.mem(4, offset));
  }
  /** v128.load32_zero: 4 bytes into the low lane, the rest zero. */
  load32Zero(offset = 0): this {
    return this.simd(0x5c, ...this.mem(2, offset));
  }
  store32Lane(lane: number, offset = 0): this {
    return this.simd(0x5a, ...this.mem(2, offset), lane);
  }
  /** Stores 64-bit lane `lane` (0 or 1) of a v128. */
  store64Lane(lane: number, offset = 0): this {
    return this.simd(0x5b, ...this.mem(3, offset), lane);
  }
  v128Zero(): this {
    return this.simd(0x0c, ...new Array(16).fill(0));
  }
  f32x4Splat(): this {
    return this.simd(0x13);
  }
  f32x4ExtractLane(lane: number): this {
    return this.simd(0x1f, lane);
  }
  f32x4ReplaceLane(lane: number): this {
    return this.simd(0x20, lane);
  }
  /** i8x16.shuffle with 16 lane indices into the concatenation of the two operands. */
  shuffle(lanes: number[]): this {
    return this.simd(0x0d, ...lanes);
  }
  f32x4Add(): this {
    return this.simd(0xe4);
  }
  f32x4Mul(): this {
    return this.simd(0xe6);
  }
  f32x4Sub(): this {
    return this.simd(0xe5);
  }
  f32x4Div(): this {
    return this.simd(0xe7);
  }
  f32x4Neg(): this {
    return this.simd(0xe1);
  }
  f32x4Abs(): this {
    return this.simd(0xe0);
  }
  f32x4Sqrt(): this {
    return this.simd(0xe3);
  }
  /** IEEE max: NaN if either is NaN, max(-0, +0) = +0. */
  f32x4Max(): this {
    return this.simd(0xe9);
  }
  /**
   * Pseudo-min/max: b < a ? b : a and a < b ? b : a (one instruction on x86, where IEEE
   * min/max take about eight); a NaN in `a` is kept.
   */
  f32x4Pmin(): this {
    return this.simd(0xea);
  }
  f32x4Pmax(): this {
    return this.simd(0xeb);
  }
  f32x4Eq(): this {
    return this.simd(0x41);
  }
  f32x4Ne(): this {
    return this.simd(0x42);
  }
  f32x4Lt(): this {
    return this.simd(0x43);
  }
  f32x4Le(): this {
    return this.simd(0x45);
  }
  f32x4Ge(): this {
    return this.simd(0x46);
  }
  /** f64x2 of the low two f32 lanes. */
  f64x2PromoteLow(): this {
    return this.simd(0x5f);
  }
  /** f32x4 [a0, a1, 0, 0] of an f64x2, rounded to nearest. */
  f32x4DemoteZero(): this {
    return this.simd(0x5e);
  }
  f64x2Add(): this {
    return this.simd(0xf0);
  }
  /** Signed saturating narrowings: two i32x4 to one i16x8, two i16x8 to one i8x16. */
  i16x8NarrowI32x4S(): this {
    return this.simd(0x85);
  }
  i8x16NarrowI16x8S(): this {
    return this.simd(0x65);
  }
  /** Zero extension of the low half: u8 lanes to u16, u16 lanes to u32. */
  i16x8ExtendLowU8(): this {
    return this.simd(0x89);
  }
  i32x4ExtendLowU16(): this {
    return this.simd(0xa9);
  }
  f32x4ConvertI32x4U(): this {
    return this.simd(0xfb);
  }
  f32x4Gt(): this {
    return this.simd(0x44);
  }
  i32x4Add(): this {
    return this.simd(0xae);
  }
  /** Shift every i32 lane left (or right, logically) by an i32 count. */
  i32x4Shl(): this {
    return this.simd(0xab);
  }
  i32x4ShrU(): this {
    return this.simd(0xad);
  }
  v128And(): this {
    return this.simd(0x4e);
  }
  v128Or(): this {
    return this.simd(0x50);
  }
  /** a & ~b. */
  v128Andnot(): this {
    return this.simd(0x4f);
  }
  /** bitselect(a, b, mask): a where mask bits are set, else b. */
  v128Bitselect(): this {
    return this.simd(0x52);
  }
  /** A v128 constant of four equal f32 lanes. */
  f32x4Const(v: number): this {
    const b = new Uint8Array(new Float32Array([v, v, v, v]).buffer);
    return this.simd(0x0c, ...b);
  }
  /** A v128 constant of four equal i32 lanes. */
  i32x4Const(v: number): this {
    const b = new Uint8Array(new Int32Array([v, v, v, v]).buffer);
    return this.simd(0x0c, ...b);
  }

  // Scalar f32 arithmetic (horizontal steps and results).
  f32Add(): this {
    return this.op(0x92);
  }
  f32Div(): this {
    return this.op(0x95);
  }
  f32Sqrt(): this {
    return this.op(0x91);
  }
  f32Max(): this {
    return this.op(0x97);
  }
  /** An unsigned i32 to the nearest f32. */
  f32ConvertI32U(): this {
    return this.op(0xb3);
  }

  /** Relaxed SIMD: a * b + c (fused or not, as the hardware does it). */
  f32x4RelaxedMadd(): this {
    return this.simd(0x105);
  }

  /** The body as the code section wants it: size, local declarations, code, end. */
  encode(): number[] {
    // Locals are declared as runs of equal types.
    const decl: number[] = [];
    let runs = 0;
    for (let i = 0; i < this.locals.length;) {
      let j = i;
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++;
      uleb(j - i, decl).push(this.locals[i]);
      runs++;
      i = j;
    }
    const body = [...uleb(runs), ...decl, ...this.code, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

/** The imported memory: "env"."memory", shared or not, with page limits. */
export interface MemoryImport {
  initial: number;
  maximum: number;
  shared: boolean;
}

/** Assembles a module from named functions (all exported) and an imported memory. */
export function buildModule(
  fns: Record<string, Fn>,
  memory: MemoryImport,
): Uint8Array<ArrayBuffer> {
  const list = Object.entries(fns);
  const types = list.map((
    [, f],
  ) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))]);
  const limits = [memory.shared ? 0x03 : 0x01, ...uleb(memory.initial), ...uleb(memory.maximum)];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, vec(types)),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, ...limits]])),
    ...section(3, vec(list.map((_, i) => uleb(i)))),
    ...section(7, vec(list.map(([n], i) => [...name(n), 0x00, ...uleb(i)]))),
    ...section(10, vec(list.map(([, f]) => f.encode()))),
  ];
  return new Uint8Array(bytes);
}
