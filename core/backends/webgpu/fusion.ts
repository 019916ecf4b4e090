/**
 * Lazy elementwise fusion. Float32 elementwise ops (unary, binary, where, float<->bool casts
 * and float/bool `full`) do not dispatch a kernel: they return a *pending* buffer holding an
 * expression over already-computed buffers ("leaves") and constants. An elementwise op on a
 * pending operand that it reads element for element (same size, contiguous) builds on its
 * expression instead of reading its buffer. A pending buffer is computed (one kernel for the
 * whole expression, cached by its WGSL source) when anything else needs its contents: another
 * kernel, a readback, an operand read through broadcasting strides, or an expression that
 * would outgrow one kernel's bindings or parameter words.
 *
 * An expression is inlined into at most one consumer: a second consumer computes the pending
 * buffer first and reads it, so chains that feed themselves (optimizer state, step after step)
 * cannot grow without bound, and a kernel holds at most MAX_OPS ops. The price is
 * recomputation: an intermediate that was inlined and is later needed on its own (say, saved
 * for a backward pass and read there by a matmul) runs again in its own kernel, with the part
 * of the chain that led to it. Elementwise kernels are mostly bound by memory traffic, which
 * this adds little to (such a kernel reads the chain's inputs instead of the previous result);
 * the extra arithmetic is at most MAX_OPS ops an element. Constants are inlined everywhere.
 *
 * Buffers are reference counted: a pending expression keeps its leaves alive after their
 * tensors are freed, and a pending buffer freed before anything needed it never runs at all.
 *
 * Results are the unfused kernels' (elementwise.ts, binary.ts) op for op, NaN rules included;
 * a shader compiler may contract a * b + c into one fused multiply-add inside a kernel, a
 * difference within float32 rounding.
 */
import type { BinaryOp, UnaryOp } from "../../backend.ts";
import { BOOL_BINARY, BOOL_UNARY, type DType } from "../../dtype.ts";
import { mergeDims, numelOf } from "../../shape.ts";
import type { Gpu, GpuBuf } from "./device.ts";
import { F_BIN_HELPERS, F_BINARY } from "./kernels/binary.ts";
import { hostBits } from "./kernels/creation.ts";
import { F_HELPERS, F_UNARY } from "./kernels/elementwise.ts";
import { groups, main1d, out, PRELUDE } from "./kernels/wgsl.ts";

/** WGSL value type of an expression: f32 (float32) or u32 holding 0/1 (bool). */
type T = "f32" | "u32";

type Node =
  | { k: "leaf"; buf: GpuBuf; shape: number[]; strides: number[]; t: T }
  | { k: "const"; bits: number; t: T }
  | { k: "unary"; op: UnaryOp; x: Node; t: T }
  | { k: "binary"; op: BinaryOp; a: Node; b: Node; t: T }
  | { k: "where"; c: Node; a: Node; b: Node; t: T }
  | { k: "cast"; x: Node; t: T };

/** What a pending buffer will hold. */
interface Pending {
  root: Node;
  /** The distinct leaf buffers of `root`, each retained once by this pending buffer. */
  leaves: GpuBuf[];
  /** Consumers that inlined the expression so far (0 or 1). */
  uses: number;
}

/** A GpuBuf with the fusion bookkeeping (plain buffers have neither field). */
type FBuf = GpuBuf & { pending?: Pending; refs?: number; buffer: GPUBuffer };

/** Operations (unary, binary, where, cast) in one kernel, at most. */
const MAX_OPS = 48;
/** Parameter words a kernel may use: 64 less the two reserved ones and the size in word 0. */
const MAX_WORDS = 61;

const isContiguous = (m: { shape: number[]; strides: number[][] }) =>
  m.shape.length === 0 || (m.shape.length === 1 && m.strides[0][0] === 1);

export class Fusion {
  /** Fuse elementwise ops (on by default; PAPERLAB_WEBGPU_FUSION=0 turns it off). */
  enabled: boolean;
  readonly #maxInputs: number;

  constructor(readonly gpu: Gpu) {
    let env: string | undefined;
    try {
      env = Deno.env.get("PAPERLAB_WEBGPU_FUSION");
    } catch { /* no env permission: the default */ }
    this.enabled = env !== "0";
    // One binding is the output, one the parameters' uniform (not a storage buffer).
    this.#maxInputs = Math.min(gpu.limits.maxStorageBuffersPerShaderStage, 16) - 1;
  }

  // ------------------------------------------------------------------ reference counting

  /** Frees a buffer's owner's reference; the buffer goes back when no expression holds it. */
  release(buf: GpuBuf): void {
    const b = buf as FBuf;
    const refs = (b.refs ?? 1) - 1;
    b.refs = refs;
    if (refs > 0) return;
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
    return this.#pending({ k: "const", bits: hostBits(dtype, value), t }, [], size, dtype);
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
    const inlined = new Set<GpuBuf>();
    const root = op(operands.map((o) => this.#operand(o, size, inlined)));
    const m = measure(root, this.#maxInputs);
    if (m.fits) return this.#pending(root, m.leaves, size, dtype);
    const plain = op(operands.map((o) => this.#operand(o, size, null)));
    return this.#pending(plain, measure(plain, this.#maxInputs).leaves, size, dtype);
  }

  /**
   * An operand as an expression node: a pending one's expression where it may be inlined
   * (`inlined`: those this op has inlined already, so an operand given twice is computed
   * once; null: inline nothing), else a leaf reading its buffer.
   */
  #operand([buf, shape, strides]: Operand, size: number, inlined: Set<GpuBuf> | null): Node {
    const b = buf as FBuf;
    const t: T = b.dtype === "float32" ? "f32" : "u32";
    const p = b.pending;
    if (p?.root.k === "const") return p.root;
    const m = mergeDims(shape, [strides]);
    if (p && inlined && b.size === size && isContiguous(m)) {
      if (inlined.has(b)) return p.root;
      if (p.uses === 0) {
        p.uses++;
        inlined.add(b);
        return p.root;
      }
    }
    this.force(b);
    return { k: "leaf", buf: b, shape: m.shape, strides: m.strides[0], t };
  }

  /** A pending buffer of `root`, retaining its distinct leaf buffers `leaves`. */
  #pending(root: Node, leaves: GpuBuf[], size: number, dtype: DType): GpuBuf {
    for (const l of leaves) this.#retain(l);
    const buf: FBuf = {
      buffer: undefined as unknown as GPUBuffer,
      size,
      dtype,
      pending: { root, leaves, uses: 0 },
    };
    return buf;
  }

  // ------------------------------------------------------------------------- running

  /** Computes a pending buffer (one dispatch); plain buffers are returned as they are. */
  force(buf: GpuBuf): GpuBuf {
    const b = buf as FBuf;
    const p = b.pending;
    if (!p) return b;
    const k = compile(p.root);
    const pipeline = this.gpu.pipeline(k.source, () => k.source);
    b.buffer = this.gpu.alloc(b.size, b.dtype).buffer;
    this.gpu.dispatch(
      pipeline,
      [b.buffer, ...k.inputs],
      [b.size, ...k.params],
      groups(b.size),
    );
    b.pending = undefined;
    for (const l of p.leaves) this.release(l);
    return b;
  }
}

/** A buffer read through strides over the op's output shape. */
type Operand = [GpuBuf, number[], number[]];

/** The distinct nodes of an expression, children before parents. */
function topo(root: Node): Node[] {
  const seen = new Set<Node>(), order: Node[] = [];
  const visit = (n: Node) => {
    if (seen.has(n)) return;
    seen.add(n);
    if (n.k === "unary" || n.k === "cast") visit(n.x);
    else if (n.k === "binary") (visit(n.a), visit(n.b));
    else if (n.k === "where") (visit(n.c), visit(n.a), visit(n.b));
    order.push(n);
  };
  visit(root);
  return order;
}

/** Parameter words an access through merged (shape, strides) takes: none when direct. */
function accessWords(l: Extract<Node, { k: "leaf" }>): number {
  return direct(l) ? 0 : 2 * l.shape.length;
}

/** Contiguous (index i), a single value (index 0), or all strides 0 (index 0). */
function direct(l: Extract<Node, { k: "leaf" }>): "i" | "0" | null {
  if (l.shape.length === 0 || l.strides.every((s) => s === 0)) return "0";
  if (l.shape.length === 1 && l.strides[0] === 1) return "i";
  return null;
}

function accessKey(l: Extract<Node, { k: "leaf" }>): string {
  return `${l.shape.join(",")}/${l.strides.join(",")}`;
}

/**
 * An expression's distinct leaf buffers, and whether it fits one kernel: its ops, input
 * bindings and parameter words.
 */
function measure(root: Node, maxInputs: number): { leaves: GpuBuf[]; fits: boolean } {
  let ops = 0, words = 0;
  const loads = new Map<GpuBuf, Set<string>>();
  for (const n of topo(root)) {
    if (n.k === "const") words++;
    else if (n.k === "leaf") {
      let keys = loads.get(n.buf);
      if (!keys) loads.set(n.buf, keys = new Set());
      const key = accessKey(n);
      if (!keys.has(key)) words += accessWords(n);
      keys.add(key);
    } else ops++;
  }
  const fits = ops <= MAX_OPS && loads.size <= maxInputs && words <= MAX_WORDS;
  return { leaves: [...loads.keys()], fits };
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

/** The kernel of an expression: WGSL source, input buffers (bindings 2..) and parameters. */
function compile(root: Node): { source: string; inputs: GPUBuffer[]; params: number[] } {
  const nodes = topo(root);
  const inputs: GPUBuffer[] = [];
  const params: number[] = [];
  const names = new Map<Node, string>();
  const loads = new Map<string, string>();
  const fns = new Map<string, string>();
  let body = "";
  const word = () => 1 + params.length; // word 0 holds the size
  let count = 0;
  for (const n of nodes) {
    const v = `v${count++}`;
    names.set(n, v);
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
          names.set(n, seen);
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
        const load = `I${bi}[${idx}]`;
        e = n.t === "f32" ? `bitcast<f32>(${load})` : load;
        loads.set(key, v);
        break;
      }
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
  const rv = names.get(root)!;
  body += root.t === "f32" ? `  O[i] = bitcast<u32>(${rv});` : `  O[i] = ${rv};`;
  const decls = inputs.map((_, j) =>
    `@group(0) @binding(${j + 2}) var<storage, read> I${j}: array<u32>;`
  ).join("\n");
  const source = PRELUDE + F_HELPERS + F_BIN_HELPERS + [...fns.values()].join("") +
    out("u32") + "\n" + decls + main1d(body);
  return { source, inputs, params };
}
