/**
 * Lazy fusion. Float32 elementwise ops (unary, binary, where, float<->bool casts and
 * float/bool `full`) and matmuls do not dispatch a kernel: they return a *pending* buffer
 * holding an expression over already-computed buffers ("leaves") and constants. An
 * elementwise op on a pending operand that it reads element for element (same size,
 * contiguous) builds on its expression instead of reading its buffer. A pending buffer is
 * computed (one kernel for the whole expression, cached by its WGSL source) when anything else
 * needs its contents: another kernel, a readback, an operand read through broadcasting
 * strides, or an expression that would outgrow one kernel's bindings or parameter words.
 *
 * Matmuls and float32 reductions are pending too. One of them in an expression (at most one)
 * makes it a matmul or reduction kernel whose epilogue evaluates the rest of the expression on
 * each output element (kernels/matmul.ts, kernels/reduce.ts): `x @ w + b` and an activation
 * after it run as one kernel, and so does `mean`'s sum and scale. A reduction also inlines a
 * pending input as its prologue, as an elementwise op would: `((a - b) ** 2).mean()` is one
 * kernel that reads a and b.
 *
 * An expression is inlined into at most one consumer: a second consumer computes the pending
 * buffer first and reads it, so chains that feed themselves (optimizer state, step after step)
 * cannot grow without bound, and a kernel holds at most MAX_OPS ops. Once computed, such a
 * buffer is also read, not recomputed, by the expression that had inlined it. What is
 * recomputed is an elementwise intermediate that was inlined and is later needed on its own
 * after its consumer ran (say, saved for a backward pass and read there by a matmul): it runs
 * again in its own kernel, with the part of the chain that led to it. Elementwise kernels are
 * mostly bound by memory traffic, which this adds little to (such a kernel reads the chain's
 * inputs instead of the previous result); the extra arithmetic is at most MAX_OPS ops an
 * element. A matmul or reduction does not run twice: its kernel also stores every
 * intermediate of its epilogue that is still pending and alive, its own result included
 * (the one exception: a kernel that would need one binding too many to read such a stored
 * intermediate recomputes it, which fits, as it did when it was built).
 * Constants are inlined everywhere.
 *
 * Buffers are reference counted: a pending expression keeps its leaves alive after their
 * tensors are freed, and a pending buffer freed before anything needed it never runs at all.
 *
 * Results are the unfused kernels' (elementwise.ts, binary.ts, matmul.ts) op for op, NaN
 * rules included; a shader compiler may contract a * b + c into one fused multiply-add inside
 * a kernel, a difference within float32 rounding.
 */
import type { BinaryOp, ReduceOp, UnaryOp } from "../../backend.ts";
import { BOOL_BINARY, BOOL_UNARY, type DType } from "../../dtype.ts";
import { mergeDims, numelOf, reductionRows } from "../../shape.ts";
import type { Gpu, GpuBuf } from "./device.ts";
import { F_BIN_HELPERS, F_BINARY } from "./kernels/binary.ts";
import { hostBits } from "./kernels/creation.ts";
import { F_HELPERS, F_UNARY } from "./kernels/elementwise.ts";
import {
  dispatchMatmul,
  kernelFor,
  kernelKey,
  MATMUL_BINDINGS,
  MATMUL_WORDS,
  type MatmulArgs,
  matmulSource,
} from "./kernels/matmul.ts";
import { REDUCE_WORDS, reducedLast, reduceRows } from "./kernels/reduce.ts";
import { groups, main1d, out, PRELUDE } from "./kernels/wgsl.ts";

/** WGSL value type of an expression: f32 (float32) or u32 holding 0/1 (bool). */
type T = "f32" | "u32";

type Leaf = { k: "leaf"; buf: GpuBuf; shape: number[]; strides: number[]; t: T };
type Node =
  | Leaf
  | { k: "const"; bits: number; t: T }
  | { k: "unary"; op: UnaryOp; x: Node; t: T }
  | { k: "binary"; op: BinaryOp; a: Node; b: Node; t: T }
  | { k: "where"; c: Node; a: Node; b: Node; t: T }
  | { k: "cast"; x: Node; t: T }
  | Heavy;
/** A matmul, or a reduction over [outer, r, inner] of an expression `pro` of its input. */
type Heavy =
  | { k: "mm"; x: MatmulArgs; t: "f32" }
  | { k: "red"; op: ReduceOp; rows: [number, number, number]; pro: Node; t: "f32" };

/** What a pending buffer will hold. */
interface Pending {
  root: Node;
  /**
   * Buffers this pending buffer retains: the leaves of `root` as built, then (from index
   * `built` on) buffers computed since that it may read instead of recomputing them.
   */
  leaves: GpuBuf[];
  built: number;
  /** Whether the expression ran a matmul or reduction when built (it may be computed since). */
  heavy: boolean;
  /** Consumers that inlined the expression so far (0 or 1). */
  uses: number;
}

/** A GpuBuf with the fusion bookkeeping (plain buffers have none of the fields). */
type FBuf = GpuBuf & {
  pending?: Pending;
  refs?: number;
  buffer: GPUBuffer;
  /** The pending buffer that inlined this one's expression. */
  inliner?: FBuf;
  /** Computed by a kernel that ran a matmul or reduction. */
  heavy?: boolean;
  /** Given back to the pool (or never computed and dropped). */
  freed?: boolean;
};

/** The pending buffer an expression node is the root of (constants have none). */
const owners = new WeakMap<Node, FBuf>();

/** Where a node's owner has been computed and may be read: that owner, else null. */
type Cut = (n: Node) => FBuf | null;

/** The owner of a node, once computed (and not freed). */
const computed: Cut = (n) => {
  const o = owners.get(n);
  return o && !o.pending && !o.freed ? o : null;
};

/** Operations (unary, binary, where, cast) in one kernel, at most. */
const MAX_OPS = 48;
/** Parameter words a kernel may use: 64 less the two reserved ones. */
const MAX_WORDS = 62;

const isContiguous = (m: { shape: number[]; strides: number[][] }) =>
  m.shape.length === 0 || (m.shape.length === 1 && m.strides[0][0] === 1);

export class Fusion {
  /** Fuse elementwise ops (on by default; PAPERLAB_WEBGPU_FUSION=0 turns it off). */
  enabled: boolean;
  /** Storage buffers one kernel may bind (outputs and inputs). */
  readonly #maxStorage: number;
  /** Matmul and reduction kernels run so far (for tests: neither may run twice). */
  readonly runs = { matmul: 0, reduce: 0 };

  constructor(readonly gpu: Gpu) {
    let env: string | undefined;
    try {
      env = Deno.env.get("PAPERLAB_WEBGPU_FUSION");
    } catch { /* no env permission: the default */ }
    this.enabled = env !== "0";
    this.#maxStorage = Math.min(gpu.limits.maxStorageBuffersPerShaderStage, 16);
  }

  // ------------------------------------------------------------------ reference counting

  /** Frees a buffer's owner's reference; the buffer goes back when no expression holds it. */
  release(buf: GpuBuf): void {
    const b = buf as FBuf;
    const refs = (b.refs ?? 1) - 1;
    b.refs = refs;
    if (refs > 0) return;
    b.freed = true;
    if (b.pending) {
      const { leaves } = b.pending;
      b.pending = undefined;
      for (const l of leaves) this.release(l);
    } else {
      this.gpu.free(b);
    }
  }

  #retain(buf: GpuBuf): void {
    const b = buf as FBuf;
    b.refs = (b.refs ?? 1) + 1;
  }

  // ------------------------------------------------------------------------ building

  /** A pending float32/bool `full`, or null where the dtype is not fused. */
  full(size: number, dtype: DType, value: number): GpuBuf | null {
    if (!this.enabled || size === 0 || dtype === "int32") return null;
    const t: T = dtype === "float32" ? "f32" : "u32";
    const root: Node = { k: "const", bits: hostBits(dtype, value), t };
    return this.#pending(root, { leaves: [], heavy: null }, size, dtype);
  }

  /** A pending matmul (operands already computed), or null when fusion is off or empty. */
  matmul(x: MatmulArgs): GpuBuf | null {
    const size = x.batch * x.m * x.n;
    if (!this.enabled || size === 0) return null;
    const heavy: Heavy = { k: "mm", x, t: "f32" };
    const leaves = x.a === x.b ? [x.a] : [x.a, x.b];
    return this.#pending(heavy, { leaves, heavy }, size, "float32");
  }

  /**
   * A pending float32 reduction of x over `axes` (x's pending expression inlined as the
   * prologue where allowed), or null where fusion does not take it (other dtypes, empty
   * tensors). Reduced dims that are not one run after merging are first moved last by a copy.
   */
  reduce(op: ReduceOp, x: GpuBuf, dtype: DType, shape: number[], axes: number[]): GpuBuf | null {
    const size = numelOf(shape);
    if (!this.enabled || dtype !== "float32" || size === 0) return null;
    const rows = reductionRows(shape, axes);
    const b = x as FBuf, p = b.pending;
    const build = (pro: Node, rows: [number, number, number]) => {
      const node: Heavy = { k: "red", op, rows, pro, t: "f32" };
      const m = measure(node, computed);
      return this.#fits(m, 0) ? this.#pending(node, m, rows[0] * rows[2], dtype) : null;
    };
    const leaf = (buf: GpuBuf): Leaf => ({ k: "leaf", buf, shape: [size], strides: [1], t: "f32" });
    if (!rows) {
      const { moved, rows } = reducedLast(this.gpu, this.force(b), dtype, shape, axes);
      const buf = build(leaf(moved), rows)!; // a leaf prologue always fits
      this.release(moved); // the pending reduction holds it
      return buf;
    }
    if (p && b.size === size && (p.root.k === "const" || p.uses === 0)) {
      if (p.root.k === "const") return build(p.root, rows);
      if (!p.heavy) {
        const buf = build(p.root, rows);
        if (buf) {
          p.uses++;
          b.inliner = buf as FBuf;
          return buf;
        }
      }
    }
    this.force(b);
    return build(leaf(b), rows);
  }

  unary(op: UnaryOp, x: GpuBuf, dtype: DType, size: number): GpuBuf | null {
    if (!this.enabled || dtype !== "float32" || size === 0) return null;
    const t: T = BOOL_UNARY.has(op) ? "u32" : "f32";
    return this.#build(size, t === "f32" ? "float32" : "bool", [[x, [size], [1]]], ([n]) => ({
      k: "unary",
      op,
      x: n,
      t,
    }));
  }

  binary(
    op: BinaryOp,
    a: GpuBuf,
    aStrides: number[],
    b: GpuBuf,
    bStrides: number[],
    shape: number[],
    dtype: DType,
  ): GpuBuf | null {
    if (!this.enabled || dtype !== "float32") return null;
    const size = numelOf(shape);
    if (size === 0) return null;
    const t: T = BOOL_BINARY.has(op) ? "u32" : "f32";
    const ops: Operand[] = [[a, shape, aStrides], [b, shape, bStrides]];
    return this.#build(size, t === "f32" ? "float32" : "bool", ops, ([na, nb]) => ({
      k: "binary",
      op,
      a: na,
      b: nb,
      t,
    }));
  }

  where(
    cond: GpuBuf,
    cStrides: number[],
    a: GpuBuf,
    aStrides: number[],
    b: GpuBuf,
    bStrides: number[],
    shape: number[],
    dtype: DType,
  ): GpuBuf | null {
    if (!this.enabled || dtype === "int32") return null;
    const size = numelOf(shape);
    if (size === 0) return null;
    const t: T = dtype === "float32" ? "f32" : "u32";
    const ops: Operand[] = [[cond, shape, cStrides], [a, shape, aStrides], [b, shape, bStrides]];
    return this.#build(
      size,
      dtype,
      ops,
      ([nc, na, nb]) => ({ k: "where", c: nc, a: na, b: nb, t }),
    );
  }

  /** float32 -> bool and bool -> float32 casts. */
  cast(x: GpuBuf, from: DType, to: DType, size: number): GpuBuf | null {
    if (!this.enabled || size === 0 || from === to) return null;
    if (!((from === "float32" && to === "bool") || (from === "bool" && to === "float32"))) {
      return null;
    }
    const t: T = to === "float32" ? "f32" : "u32";
    return this.#build(size, to, [[x, [size], [1]]], ([n]) => ({ k: "cast", x: n, t }));
  }

  /**
   * Builds op(operands) as a pending buffer, inlining pending operands where allowed; when
   * the expression would not fit one kernel, computes the pending operands first and builds
   * on their buffers.
   */
  #build(size: number, dtype: DType, operands: Operand[], op: (n: Node[]) => Node): GpuBuf {
    const inlined = new Set<FBuf>();
    const state = { heavy: false };
    const root = op(operands.map((o) => this.#operand(o, size, inlined, state)));
    const m = measure(root, computed);
    if (this.#fits(m, 0)) {
      const buf = this.#pending(root, m, size, dtype);
      for (const b of inlined) b.inliner = buf as FBuf;
      return buf;
    }
    const plain = op(operands.map((o) => this.#operand(o, size, null, state)));
    return this.#pending(plain, measure(plain, computed), size, dtype);
  }

  /**
   * An operand as an expression node: a pending one's expression where it may be inlined
   * (`inlined`: those this op has inlined already, so an operand given twice is computed
   * once; null: inline nothing; `state.heavy`: a matmul or reduction was inlined, and a
   * kernel runs one at most), else a leaf reading its buffer.
   */
  #operand(
    [buf, shape, strides]: Operand,
    size: number,
    inlined: Set<FBuf> | null,
    state: { heavy: boolean },
  ): Node {
    const b = buf as FBuf;
    const t: T = b.dtype === "float32" ? "f32" : "u32";
    const p = b.pending;
    if (p?.root.k === "const") return p.root;
    const m = mergeDims(shape, [strides]);
    if (p && inlined && b.size === size && isContiguous(m)) {
      if (inlined.has(b)) return p.root;
      if (p.uses === 0 && !(p.heavy && state.heavy)) {
        state.heavy ||= p.heavy;
        p.uses++;
        inlined.add(b);
        return p.root;
      }
    }
    this.force(b);
    return { k: "leaf", buf: b, shape: m.shape, strides: m.strides[0], t };
  }

  /** A pending buffer of `root`, retaining the distinct leaf buffers its measure found. */
  #pending(
    root: Node,
    { leaves, heavy }: Pick<Measure, "leaves" | "heavy">,
    size: number,
    dtype: DType,
  ): GpuBuf {
    for (const l of leaves) this.#retain(l);
    const buf: FBuf = {
      buffer: undefined as unknown as GPUBuffer,
      size,
      dtype,
      pending: { root, leaves, built: leaves.length, heavy: heavy !== null, uses: 0 },
    };
    if (root.k !== "const") owners.set(root, buf);
    return buf;
  }

  /** Whether an expression fits one kernel that also stores `extras` more buffers. */
  #fits(m: Measure, extras: number): boolean {
    const storage = 1 + extras + m.inputs;
    return m.ops <= MAX_OPS && m.heavies <= 1 && m.words <= MAX_WORDS &&
      storage <= this.#maxStorage;
  }

  // ------------------------------------------------------------------------- running

  /** Computes a pending buffer (one dispatch); plain buffers are returned as they are. */
  force(buf: GpuBuf): GpuBuf {
    const b = buf as FBuf;
    const p = b.pending;
    if (!p) return b;
    // Read the computed intermediates this buffer retains rather than recompute them. Each
    // can add a binding: when there are too many, read only those known at build time (which
    // it fitted with) and those a matmul or reduction computed, then only the former.
    let mode = 0;
    let plan = planOf(p, READS[mode]);
    while (!this.#fits(plan.m, plan.extras.length)) {
      if (this.#fits(plan.m, 0)) {
        // Too many outputs: the outermost intermediate to store runs first, and is then read.
        this.force(owners.get(plan.extras[plan.extras.length - 1])!);
      } else if (++mode === READS.length) {
        throw new Error("webgpu backend: internal: a fused expression outgrew its kernel");
      }
      plan = planOf(p, READS[mode]);
    }
    const { m, extras, cut } = plan;
    const outs = [b, ...extras.map((n) => owners.get(n)!)];
    for (const o of outs) o.buffer = this.gpu.alloc(o.size, o.dtype).buffer;
    const extraBufs = outs.slice(1).map((o) => o.buffer);
    const h = m.heavy;
    if (h?.k === "mm") {
      const k = compile(p.root, cut, { extras, binding: MATMUL_BINDINGS, word: MATMUL_WORDS });
      const s = kernelFor(h.x), decls = helpers(k) + k.decls;
      // keyed by what the source is made of: generating it took 77-171 us a matmul
      const key = `${kernelKey(s)}\n${decls}\n${k.body}`;
      const pipeline = this.gpu.pipeline(key, () => matmulSource(s, k.body, decls));
      const bufs = [...extraBufs, ...k.inputs];
      dispatchMatmul(this.gpu, pipeline, h.x, s.tile, b.buffer, bufs, k.params);
      this.runs.matmul++;
    } else if (h?.k === "red") {
      // The epilogue's buffers and parameter words come first: a second pass (long rows) binds
      // the epilogue alone, then its input.
      const code = (pro: boolean, epi: boolean) => {
        let binding = 2, word = REDUCE_WORDS;
        const e = epi ? compile(p.root, cut, { extras, binding, word }) : null;
        if (e) binding += extras.length + e.inputs.length, word += e.params.length;
        const r = pro ? compile(h.pro, cut, { extras: null, binding, word, prefix: "P" }) : null;
        const parts = [e, r].filter((k) => k !== null);
        return {
          decls: helpers(...parts) + parts.map((k) => k.decls).join(""),
          pro: r?.body ?? "",
          epi: e?.body ?? "",
          bufs: [...(e ? [...extraBufs, ...e.inputs] : []), ...(r?.inputs ?? [])],
          params: parts.flatMap((k) => k.params),
        };
      };
      reduceRows(this.gpu, h.op, null, "float32", ...h.rows, { code, out: b });
      this.runs.reduce++;
    } else {
      const k = compile(p.root, cut, { extras, binding: 2, word: 1 });
      const source = PRELUDE + out("u32") + helpers(k) + k.decls + main1d(k.body);
      const pipeline = this.gpu.pipeline(source, () => source);
      this.gpu.dispatch(
        pipeline,
        [b.buffer, ...extraBufs, ...k.inputs],
        [b.size, ...k.params],
        groups(b.size),
      );
    }
    for (const o of outs) this.#done(o, h !== null);
    return b;
  }

  /**
   * Marks a buffer computed: releases what its expression held, and lets the pending
   * expressions that inlined it (directly or through others) read it.
   */
  #done(o: FBuf, heavy: boolean): void {
    const q = o.pending!;
    o.pending = undefined;
    o.heavy = heavy;
    for (let c = o.inliner; c; c = c.inliner) {
      if (!c.pending) continue;
      this.#retain(o);
      c.pending.leaves.push(o);
    }
    for (const l of q.leaves) this.release(l);
  }
}

/** A buffer read through strides over the op's output shape. */
type Operand = [GpuBuf, number[], number[]];

/**
 * Which computed intermediates that a pending buffer retains its kernel reads: all, those
 * retained at build time or computed by a matmul or reduction kernel, or only the former.
 */
const READS = ["all", "heavy", "built"] as const;

/**
 * How a pending expression runs now: which computed intermediates it reads (`cut`), and, when
 * it runs a matmul or reduction, the intermediates still pending and alive that contain it
 * (they are stored too, so it does not run again).
 */
function planOf(p: Pending, reads: typeof READS[number]): { m: Measure; extras: Node[]; cut: Cut } {
  const cut: Cut = (n) => {
    const o = computed(n);
    if (!o) return null;
    const i = p.leaves.indexOf(o);
    const ok = i >= 0 && (i < p.built || reads === "all" || (reads === "heavy" && o.heavy));
    return ok ? o : null;
  };
  const m = measure(p.root, cut);
  const extras: Node[] = [];
  if (m.heavy) {
    const above = new Set<Node>([m.heavy]);
    for (const n of topo(p.root, cut)) {
      if (cutLeaf(n, cut) || !children(n).some((c) => above.has(c))) continue;
      above.add(n);
      if (n !== p.root && owners.get(n)?.pending?.root === n) extras.push(n);
    }
    if (m.heavy !== p.root && owners.get(m.heavy)?.pending) extras.unshift(m.heavy);
  }
  return { m, extras, cut };
}

/** The operands of a node in the same expression (a reduction's prologue is apart). */
function children(n: Node): Node[] {
  if (n.k === "unary" || n.k === "cast") return [n.x];
  if (n.k === "binary") return [n.a, n.b];
  if (n.k === "where") return [n.c, n.a, n.b];
  return [];
}

/** A node read from its computed owner's buffer, as a leaf. */
function cutLeaf(n: Node, cut: Cut): Leaf | null {
  const o = cut(n);
  return o ? { k: "leaf", buf: o, shape: [o.size], strides: [1], t: n.t } : null;
}

/** The distinct nodes of an expression, children before parents; cut nodes end a branch. */
function topo(root: Node, cut: Cut): Node[] {
  const seen = new Set<Node>(), order: Node[] = [];
  const visit = (n: Node) => {
    if (seen.has(n)) return;
    seen.add(n);
    if (!cutLeaf(n, cut)) children(n).forEach(visit);
    order.push(n);
  };
  visit(root);
  return order;
}

/** Parameter words an access through merged (shape, strides) takes: none when direct. */
function accessWords(l: Leaf): number {
  return direct(l) ? 0 : 2 * l.shape.length;
}

/** Contiguous (index i), a single value (index 0), or all strides 0 (index 0). */
function direct(l: Leaf): "i" | "0" | null {
  if (l.shape.length === 0 || l.strides.every((s) => s === 0)) return "0";
  if (l.shape.length === 1 && l.strides[0] === 1) return "i";
  return null;
}

function accessKey(l: Leaf): string {
  return `${l.shape.join(",")}/${l.strides.join(",")}`;
}

interface Measure {
  /** The distinct buffers the kernel reads (a matmul's operands, a prologue's included). */
  leaves: GpuBuf[];
  /** Input bindings, parameter words and ops of the kernel (its output and extras aside). */
  inputs: number;
  words: number;
  ops: number;
  /** The matmul or reduction the expression runs (the last found), and how many it has. */
  heavy: Heavy | null;
  heavies: number;
}

/** An expression's buffers and sizes as one kernel, reading cut nodes from their owners. */
function measure(root: Node, cut: Cut): Measure {
  let ops = 0, words = 0, heavies = 0, inputs = 0;
  let heavy: Measure["heavy"] = null;
  const loads = new Map<GpuBuf, Set<string>>();
  const operands: GpuBuf[] = [];
  for (const node of topo(root, cut)) {
    const n = cutLeaf(node, cut) ?? node;
    if (n.k === "const") words++;
    else if (n.k === "leaf") {
      let keys = loads.get(n.buf);
      if (!keys) loads.set(n.buf, keys = new Set());
      const key = accessKey(n);
      if (!keys.has(key)) words += accessWords(n);
      keys.add(key);
    } else if (n.k === "mm") {
      heavies++, heavy = n;
      operands.push(n.x.a, n.x.b);
      inputs += MATMUL_BINDINGS - 2, words += MATMUL_WORDS - 1;
    } else if (n.k === "red") {
      heavies++, heavy = n;
      const pro = measure(n.pro, cut);
      operands.push(...pro.leaves);
      inputs += pro.inputs, words += REDUCE_WORDS - 1 + pro.words, ops += pro.ops;
    } else ops++;
  }
  // Word 0 is the size (elementwise) or the first of the matmul's or reduction's.
  words++;
  const leaves = [...new Set([...loads.keys(), ...operands])];
  return { leaves, inputs: inputs + loads.size, words, ops, heavy, heavies };
}

/** WGSL of one op as a function of its operands. */
function opFunction(n: Node): { name: string; src: string } | null {
  if (n.k === "unary") {
    const name = `u_${n.op}`;
    const body = BOOL_UNARY.has(n.op)
      ? `return ${F_UNARY[n.op]};`
      : n.op === "sign"
      ? `return ${F_UNARY[n.op]};`
      : `let r = ${F_UNARY[n.op]};\n  return select(r, x, is_nan(x));`;
    return { name, src: `fn ${name}(x: f32) -> ${n.t} {\n  ${body}\n}\n` };
  }
  if (n.k === "binary") {
    const name = `b_${n.op}`;
    const e = F_BINARY[n.op];
    const ret = n.t === "u32" ? `select(0u, 1u, ${e})` : e;
    return {
      name,
      src: `fn ${name}(a: f32, b: f32) -> ${n.t} {\n  let nan2 = is_nan(a) || is_nan(b);\n` +
        `  return ${ret};\n}\n`,
    };
  }
  return null;
}

/** The WGSL helper functions of compiled expressions, each once. */
function helpers(...ks: { fns: Map<string, string> }[]): string {
  const fns = new Map<string, string>();
  for (const k of ks) for (const [name, src] of k.fns) fns.set(name, src);
  return F_HELPERS + F_BIN_HELPERS + [...fns.values()].join("");
}

/**
 * The body of an expression for flat index `i` (a matmul or reduction in it is the value
 * `mm`): it stores the root in O and each of `extras` in E0, E1... (output bindings from
 * `binding` on), or with `extras: null` returns the root (a reduction's prologue). Then come
 * the input bindings, named `prefix` and a number; parameter words from `word` on.
 */
function compile(
  root: Node,
  cut: Cut,
  o: { extras: Node[] | null; binding: number; word: number; prefix?: string },
): {
  decls: string;
  fns: Map<string, string>;
  body: string;
  inputs: GPUBuffer[];
  params: number[];
} {
  const inputs: GPUBuffer[] = [];
  const params: number[] = [];
  const names = new Map<Node, string>();
  const loads = new Map<string, string>();
  const fns = new Map<string, string>();
  const prefix = o.prefix ?? "I", extras = o.extras ?? [];
  let body = "";
  const word = () => o.word + params.length;
  let count = 0;
  for (const node of topo(root, cut)) {
    const v = `v${count++}`;
    names.set(node, v);
    const n = cutLeaf(node, cut) ?? node;
    const get = (c: Node) => names.get(c)!;
    let e: string;
    switch (n.k) {
      case "const":
        e = n.t === "f32" ? `pf(${word()}u)` : `pu(${word()}u)`;
        params.push(n.bits);
        break;
      case "leaf": {
        let bi = inputs.indexOf(n.buf.buffer);
        if (bi < 0) bi = inputs.push(n.buf.buffer) - 1;
        const key = `${bi}|${accessKey(n)}`;
        const seen = loads.get(key);
        if (seen) {
          names.set(node, seen);
          continue;
        }
        const d = direct(n);
        let idx: string;
        if (d === "i") idx = "i";
        else if (d === "0") idx = "0u";
        else {
          const nd = n.shape.length, at = word();
          params.push(...n.shape, ...n.strides);
          body += `  var p_${v}: i32 = 0;\n  { var r: u32 = i;\n`;
          for (let dd = nd - 1; dd >= 0; dd--) {
            body += `    { let n = pu(${at + dd}u); p_${v} += i32(r % n) * pi(${
              at + nd + dd
            }u); r = r / n; }\n`;
          }
          body += "  }\n";
          idx = `p_${v}`;
        }
        const load = `${prefix}${bi}[${idx}]`;
        e = n.t === "f32" ? `bitcast<f32>(${load})` : load;
        loads.set(key, v);
        break;
      }
      case "mm":
      case "red":
        e = "mm";
        break;
      case "unary":
      case "binary": {
        const f = opFunction(n)!;
        fns.set(f.name, f.src);
        e = n.k === "unary" ? `${f.name}(${get(n.x)})` : `${f.name}(${get(n.a)}, ${get(n.b)})`;
        break;
      }
      case "where":
        e = `select(${get(n.b)}, ${get(n.a)}, ${get(n.c)} != 0u)`;
        break;
      case "cast":
        e = n.t === "f32"
          ? `f32(${get(n.x)})`
          : `select(0u, 1u, (bitcast<u32>(${get(n.x)}) & 0x7fffffffu) != 0u)`;
        break;
    }
    body += `  let ${v} = ${e};\n`;
  }
  const bits = (n: Node) => n.t === "f32" ? `bitcast<u32>(${names.get(n)})` : names.get(n);
  body += o.extras === null
    ? `  return ${names.get(root)};`
    : [`  O[i] = ${bits(root)};`, ...extras.map((n, j) => `  E${j}[i] = ${bits(n)};`)].join("\n");
  const first = o.binding + extras.length;
  const decls = [
    ...extras.map((_, j) =>
      `@group(0) @binding(${o.binding + j}) var<storage, read_write> E${j}: array<u32>;\n`
    ),
    ...inputs.map((_, j) =>
      `@group(0) @binding(${first + j}) var<storage, read> ${prefix}${j}: array<u32>;\n`
    ),
  ].join("");
  return { decls, fns, body, inputs, params };
}
