/**
 * The WebGPU backend against the CPU backend, method by method, on the same random inputs:
 * floats within float32 tolerance, ints and bools exact, uniform random numbers exact.
 * Runs in the webgpu pass (PAPERLAB_BACKEND=webgpu, `deno task test:webgpu`) where an adapter
 * exists. The CPU pass runs test modules in parallel workers, and Deno 2.9.6 can crash at
 * process exit after a worker that touched WebGPU is torn down (see tools/test_webgpu.ts), so
 * this module opens no adapter there.
 */
import assert from "node:assert/strict";
import type { BinaryOp, Buf, ReduceOp, UnaryOp } from "../../core/backend.ts";
import { CpuBackend } from "../../core/backends/cpu/mod.ts";
import { createWebGpuBackend, type WebGpuBackend } from "../../core/backends/webgpu/mod.ts";
import { BOOL_BINARY, type DType, type TypedArray } from "../../core/dtype.ts";
import { Generator, seedKey } from "../../core/random.ts";
import { stridesOf } from "../../core/shape.ts";

const webgpuPass = Deno.env.get("PAPERLAB_BACKEND") === "webgpu";
const adapter = webgpuPass ? await navigator.gpu?.requestAdapter().catch(() => null) ?? null : null;
const gpu = adapter ? (await createWebGpuBackend()) as WebGpuBackend : undefined;
const cpu = new CpuBackend();
const ignore = !adapter;

const numel = (s: number[]) => s.reduce((a, v) => a * v, 1);

/** Random host data; floats optionally with NaN, +-Inf and +-0 sprinkled in. */
function data(
  dtype: DType,
  n: number,
  g: Generator,
  o: { special?: boolean; lo?: number; hi?: number } = {},
): TypedArray {
  const lo = o.lo ?? -3, hi = o.hi ?? 3;
  if (dtype === "bool") return Uint8Array.from({ length: n }, () => (g.bernoulli(0.5) ? 1 : 0));
  if (dtype === "int32") return Int32Array.from({ length: n }, () => g.int(lo, hi + 1));
  const sp = [NaN, Infinity, -Infinity, 0, -0, 0.5, -2.5, 1];
  return Float32Array.from(
    { length: n },
    () => o.special && g.bernoulli(0.1) ? sp[g.int(0, sp.length)] : g.uniform(lo, hi),
  );
}

/** The same host data uploaded to both backends. */
function both(a: TypedArray, dtype: DType): [Buf, Buf] {
  return [cpu.upload(a, dtype), gpu!.upload(a, dtype)];
}

interface Tol {
  rtol?: number;
  atol?: number;
}

/** Reads both results and compares: exact for int/bool, NaN-aware tolerance for float. */
async function same(what: string, c: Buf, w: Buf, dtype: DType, n: number, tol: Tol = {}) {
  const [x, y] = await Promise.all([cpu.read(c, dtype, n), gpu!.read(w, dtype, n)]);
  gpu!.free(w);
  assert.equal(y.constructor, x.constructor, `${what}: array type`);
  assert.equal(y.length, x.length, `${what}: length`);
  const rtol = tol.rtol ?? 2e-6, atol = tol.atol ?? 1e-6;
  for (let i = 0; i < x.length; i++) {
    const a = x[i], b = y[i];
    if (dtype !== "float32") {
      if (a !== b) assert.fail(`${what}: [${i}] cpu ${a} vs webgpu ${b}`);
    } else if (a !== b && !(a !== a && b !== b)) {
      if (!(Math.abs(a - b) <= atol + rtol * Math.abs(a))) {
        assert.fail(`${what}: [${i}] cpu ${a} vs webgpu ${b}`);
      }
    }
  }
}

/** Int32 indices computed on the GPU (no host copy, so the backend cannot check them). */
const computed = (a: Int32Array): Buf =>
  gpu!.binary(
    "add",
    gpu!.upload(a, "int32"),
    [1],
    gpu!.full(1, "int32", 0),
    [0],
    [a.length],
    "int32",
  );

const t = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `webgpu backend: ${name}`, ignore, fn });

t("deviceInfo names the adapter and marks software adapters", async () => {
  assert.equal(gpu!.name, "webgpu");
  assert.ok(gpu!.deviceInfo.includes(adapter!.info.description || ""));
  if (adapter!.info.isFallbackAdapter) assert.match(gpu!.deviceInfo, /\(software\)/);
  await Promise.resolve();
});

t("upload and read round-trip every dtype and odd sizes", async () => {
  const g = new Generator(1);
  for (const dtype of ["float32", "int32", "bool"] as DType[]) {
    for (const n of [0, 1, 3, 257, 70_000]) {
      const a = data(dtype, n, g, { special: true });
      const [c, w] = both(a, dtype);
      await same(`upload ${dtype} ${n}`, c, w, dtype, n, { rtol: 0, atol: 0 });
    }
  }
});

t("full and arange match, including int wrap-around and float steps", async () => {
  for (
    const [dtype, v] of [["float32", 2.5], ["float32", NaN], ["int32", 2.7], ["int32", 3e9], [
      "bool",
      1,
    ]] as [DType, number][]
  ) {
    for (const n of [1, 70_000]) {
      await same(`full ${dtype} ${v}`, cpu.full(n, dtype, v), gpu!.full(n, dtype, v), dtype, n);
    }
  }
  for (
    const [n, start, step, dtype] of [
      [70_000, 0, 1, "int32"],
      [1000, -5, 3, "int32"],
      [10_001, 0, 0.1, "float32"],
      [77, 1.5, -0.25, "float32"],
      [300, 2, 7, "float32"],
    ] as [number, number, number, DType][]
  ) {
    await same(
      `arange ${start}:${step} ${dtype}`,
      cpu.arange(n, start, step, dtype),
      gpu!.arange(n, start, step, dtype),
      dtype,
      n,
    );
  }
});

t(
  "random: uniform and int bit-exact, normal within float32 tolerance, counters past 2^32",
  async () => {
    for (const start of [0, 12345, 2 ** 33 + 7]) {
      const key = seedKey(42 + start);
      const n = 70_001;
      await same(
        `uniform @${start}`,
        cpu.random("uniform", n, key, start),
        gpu!.random("uniform", n, key, start),
        "float32",
        n,
        { rtol: 0, atol: 0 },
      );
      await same(
        `int @${start}`,
        cpu.random("int", n, key, start, -7, 13),
        gpu!.random("int", n, key, start, -7, 13),
        "int32",
        n,
      );
      await same(
        `normal @${start}`,
        cpu.random("normal", n, key, start),
        gpu!.random("normal", n, key, start),
        "float32",
        n,
        { rtol: 1e-5, atol: 2e-5 },
      );
    }
  },
);

t(
  "cast between every dtype pair, with NaN, Inf and out-of-range floats as the CPU stores them",
  async () => {
    const g = new Generator(2);
    const specials = Float32Array.from([
      NaN,
      Infinity,
      -Infinity,
      -0,
      0.7,
      -0.7,
      2.5,
      -2.5,
      3e9,
      -3e9,
      2 ** 31,
      -(2 ** 31),
      1e20,
      123456789,
    ]);
    for (const from of ["float32", "int32", "bool"] as DType[]) {
      const a = from === "float32"
        ? Float32Array.from([...specials, ...data("float32", 1000, g, { lo: -100, hi: 100 })])
        : data(from, 1000, g, { lo: -5, hi: 5 });
      for (const to of ["float32", "int32", "bool"] as DType[]) {
        const [c, w] = both(a, from);
        await same(
          `cast ${from}->${to}`,
          cpu.cast(c, from, to, a.length),
          gpu!.cast(w, from, to, a.length),
          to,
          a.length,
          { rtol: 0, atol: 0 },
        );
      }
    }
  },
);

const UNARY: UnaryOp[] = [
  "neg",
  "abs",
  "sign",
  "exp",
  "log",
  "log1p",
  "expm1",
  "sqrt",
  "sin",
  "cos",
  "tanh",
  "sigmoid",
  "relu",
  "erf",
  "floor",
  "ceil",
  "round",
  "trunc",
  "reciprocal",
  "isnan",
  "isinf",
  "logicalNot",
];

t(
  "unary: every op on floats with NaN, Inf, +-0 and halves; integer ops on int32 and bool",
  async () => {
    const g = new Generator(3);
    const halves = Float32Array.from([
      0.5,
      1.5,
      2.5,
      -0.5,
      -1.5,
      -2.5,
      1e-7,
      -1e-7,
      1e-3,
      30,
      -30,
      100,
      -100,
    ]);
    const a = Float32Array.from([
      ...halves,
      ...data("float32", 4000, g, { special: true, lo: -4, hi: 4 }),
    ]);
    for (const op of UNARY) {
      const out = op === "isnan" || op === "isinf" || op === "logicalNot" ? "bool" : "float32";
      const [c, w] = both(a, "float32");
      await same(
        `unary ${op}`,
        cpu.unary(op, c, "float32", a.length),
        gpu!.unary(op, w, "float32", a.length),
        out,
        a.length,
        { rtol: 2e-6, atol: 2e-7 },
      );
    }
    const ints = data("int32", 1000, g, { lo: -50, hi: 50 });
    for (
      const op of [
        "neg",
        "abs",
        "sign",
        "relu",
        "floor",
        "ceil",
        "round",
        "trunc",
        "isnan",
        "isinf",
        "logicalNot",
      ] as UnaryOp[]
    ) {
      const out = op === "isnan" || op === "isinf" || op === "logicalNot" ? "bool" : "int32";
      const [c, w] = both(ints, "int32");
      await same(
        `unary ${op} int32`,
        cpu.unary(op, c, "int32", 1000),
        gpu!.unary(op, w, "int32", 1000),
        out,
        1000,
      );
    }
    const bools = data("bool", 100, g);
    const [c, w] = both(bools, "bool");
    await same(
      "logicalNot bool",
      cpu.unary("logicalNot", c, "bool", 100),
      gpu!.unary("logicalNot", w, "bool", 100),
      "bool",
      100,
    );
  },
);

const ARITH: BinaryOp[] = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder"];
const CMP: BinaryOp[] = [...BOOL_BINARY];

/** Runs a binary op on both backends with shapes broadcast as the ops layer does. */
async function binaryCase(
  op: BinaryOp,
  dtype: DType,
  aShape: number[],
  bShape: number[],
  g: Generator,
  o: { special?: boolean; lo?: number; hi?: number } = {},
  tol?: Tol,
) {
  const nd = Math.max(aShape.length, bShape.length);
  const pad = (s: number[]) => [...Array(nd - s.length).fill(1), ...s];
  const A = pad(aShape), B = pad(bShape);
  const out = A.map((s, i) => Math.max(s, B[i]));
  const bst = (s: number[]) => stridesOf(s).map((st, i) => (s[i] === 1 ? 0 : st));
  const a = data(dtype, numel(aShape), g, o), b = data(dtype, numel(bShape), g, o);
  if (dtype === "int32" && op === "remainder") {
    b.forEach((v, i) => (b[i] = v === 0 && i % 3 ? 3 : v));
  }
  const [ca, wa] = both(a, dtype), [cb, wb] = both(b, dtype);
  const outDtype: DType = CMP.includes(op) ? "bool" : op === "div" ? "float32" : dtype;
  await same(
    `binary ${op} ${dtype} [${aShape}]x[${bShape}]`,
    cpu.binary(op, ca, bst(A), cb, bst(B), out, dtype),
    gpu!.binary(op, wa, bst(A), wb, bst(B), out, dtype),
    outDtype,
    numel(out),
    tol,
  );
  gpu!.free(wa);
  gpu!.free(wb);
}

t("binary: every op with broadcasting, NaN propagation and Python-style remainder", async () => {
  const g = new Generator(4);
  for (const op of [...ARITH, ...CMP]) {
    await binaryCase(op, "float32", [3, 1, 5], [4, 1], g, { special: true }, {
      rtol: 1e-5,
      atol: 1e-6,
    });
    await binaryCase(op, "float32", [70_000], [70_000], g, {}, { rtol: 1e-5, atol: 1e-6 });
    await binaryCase(op, "float32", [], [2, 3], g);
    await binaryCase(op, "int32", [6, 7], [7], g, { lo: -9, hi: 9 });
    if (CMP.includes(op)) await binaryCase(op, "bool", [5, 1], [1, 4], g);
  }
  // Integer wrap-around and pow by squaring
  await binaryCase("mul", "int32", [50], [50], g, { lo: -100_000, hi: 100_000 });
  await binaryCase("pow", "int32", [40], [40], g, { lo: -4, hi: 9 });
});

t("binary: strided (transposed) operands and a 5-dim broadcast", async () => {
  const g = new Generator(5);
  const a = data("float32", 12, g), b = data("float32", 12, g);
  const [ca, wa] = both(a, "float32"), [cb, wb] = both(b, "float32");
  // a as [3, 4] row-major, b as the transpose of a [4, 3] buffer.
  await same(
    "binary transposed",
    cpu.binary("sub", ca, [4, 1], cb, [1, 3], [3, 4], "float32"),
    gpu!.binary("sub", wa, [4, 1], wb, [1, 3], [3, 4], "float32"),
    "float32",
    12,
  );
  await binaryCase("add", "float32", [2, 1, 3, 1, 5], [4, 1, 2, 1], g);
});

t("where broadcasts cond, a and b", async () => {
  const g = new Generator(6);
  for (const dtype of ["float32", "int32", "bool"] as DType[]) {
    const c = data("bool", 4, g), a = data(dtype, 15, g), b = data(dtype, 1, g);
    const [cc, wc] = both(c, "bool"), [ca, wa] = both(a, dtype), [cb, wb] = both(b, dtype);
    const cs = [0, 1, 0], as = [5, 0, 1], bs = [0, 0, 0], shape = [3, 4, 5];
    await same(
      `where ${dtype}`,
      cpu.where(cc, cs, ca, as, cb, bs, shape, dtype),
      gpu!.where(wc, cs, wa, as, wb, bs, shape, dtype),
      dtype,
      60,
    );
  }
});

const REDUCE: ReduceOp[] = ["sum", "prod", "max", "min"];

t(
  "reduce: every op over contiguous, separate and all axes, NaN, many outputs and empty dims",
  async () => {
    const g = new Generator(7);
    const cases: [number[], number[]][] = [
      [[70_000], [0]],
      [[3, 4, 5], [1]],
      [[3, 4, 5], [0, 2]],
      [[3, 4, 5], [0, 1]],
      [[3, 4, 5], []],
      [[4, 3000], [0]],
      [[3000, 7], [1]],
      [[2, 1, 3], [1]],
      [[3, 0, 2], [1]],
      [[1000, 300], [1]],
      [[1024, 128], [1]], // the longest short rows: a thread per row
      [[1023, 128], [1]], // one row too few: a workgroup per row
    ];
    for (const op of REDUCE) {
      for (const dtype of ["float32", "int32"] as DType[]) {
        for (const [shape, axes] of cases) {
          const lo = op === "prod" ? 0.5 : -3, hi = op === "prod" ? 1.5 : 3;
          const a = data(
            dtype,
            numel(shape),
            g,
            dtype === "int32"
              ? { lo: -3, hi: 3 }
              : { special: op !== "sum" && op !== "prod", lo, hi },
          );
          const [c, w] = both(a, dtype);
          const n = numel(shape.filter((_, i) => !axes.includes(i)));
          await same(
            `reduce ${op} ${dtype} [${shape}] axes [${axes}]`,
            cpu.reduce(op, c, dtype, shape, axes),
            gpu!.reduce(op, w, dtype, shape, axes),
            dtype,
            n,
            { rtol: 2e-5, atol: 2e-4 },
          );
        }
      }
    }
    const a = data("bool", 60, g);
    for (const op of ["max", "min"] as ReduceOp[]) {
      const [c, w] = both(a, "bool");
      await same(
        `reduce ${op} bool`,
        cpu.reduce(op, c, "bool", [3, 4, 5], [1, 2]),
        gpu!.reduce(op, w, "bool", [3, 4, 5], [1, 2]),
        "bool",
        3,
      );
    }
  },
);

t("argReduce: first index on ties, NaN wins, both the thread and the workgroup path", async () => {
  const g = new Generator(8);
  for (const op of ["argmax", "argmin"] as const) {
    for (
      const [shape, axis] of [[[50, 7], 1], [[7, 50], 0], [[3, 1000, 2], 1], [[5000], 0], [[
        2000,
        20,
      ], 1], [[4, 300], 1]] as [number[], number][]
    ) {
      const f = data("float32", numel(shape), g, { special: true });
      const ints = data("int32", numel(shape), g, { lo: -3, hi: 3 });
      for (const [a, dtype] of [[f, "float32"], [ints, "int32"]] as [TypedArray, DType][]) {
        const [c, w] = both(a, dtype);
        const n = numel(shape) / shape[axis];
        await same(
          `${op} ${dtype} [${shape}] axis ${axis}`,
          cpu.argReduce(op, c, dtype, shape, axis),
          gpu!.argReduce(op, w, dtype, shape, axis),
          "int32",
          n,
        );
      }
    }
  }
});

t("scan: cumsum and cumprod along first, middle and last axes, and a 70,000-long row", async () => {
  const g = new Generator(9);
  for (const op of ["cumsum", "cumprod"] as const) {
    for (
      const [shape, axis] of [[[4, 5, 6], 0], [[4, 5, 6], 1], [[4, 5, 6], 2], [[70_000], 0]] as [
        number[],
        number,
      ][]
    ) {
      for (const dtype of ["float32", "int32"] as DType[]) {
        const a = op === "cumprod" && dtype === "float32"
          ? data(dtype, numel(shape), g, { lo: 0.9, hi: 1.1 })
          : data(dtype, numel(shape), g, { lo: -2, hi: 2 });
        const [c, w] = both(a, dtype);
        await same(
          `${op} ${dtype} [${shape}] axis ${axis}`,
          cpu.scan(op, c, dtype, shape, axis),
          gpu!.scan(op, w, dtype, shape, axis),
          dtype,
          numel(shape),
          { rtol: 1e-4, atol: 1e-3 },
        );
      }
    }
  }
});

t(
  "sortIndices: stable, NaN largest, -0 equal to 0, local and global networks, both directions",
  async () => {
    const g = new Generator(10);
    for (const descending of [false, true]) {
      for (
        const [shape, axis] of [
          [[10, 37], 1],
          [[37, 10], 0],
          [[3, 5, 4], 1],
          [[5000], 0],
          [[2, 9000], 1],
          [[6, 1], 1],
          [[4096], 0],
        ] as [number[], number][]
      ) {
        const f = data("float32", numel(shape), g, { special: true });
        for (let i = 0; i < f.length; i++) if (i % 7 === 0) f[i] = Math.round(f[i]); // ties
        const ints = data("int32", numel(shape), g, { lo: -5, hi: 5 });
        const bools = data("bool", numel(shape), g);
        for (
          const [a, dtype] of [[f, "float32"], [ints, "int32"], [bools, "bool"]] as [
            TypedArray,
            DType,
          ][]
        ) {
          const [c, w] = both(a, dtype);
          await same(
            `sort ${dtype} [${shape}] axis ${axis} desc ${descending}`,
            cpu.sortIndices(c, dtype, shape, axis, descending),
            gpu!.sortIndices(w, dtype, shape, axis, descending),
            "int32",
            numel(shape),
          );
        }
      }
    }
  },
);

t(
  "matmul: odd sizes, every transpose combination, every tile, batched with broadcast batch strides",
  async () => {
    const g = new Generator(11);
    const cases = [
      [1, 33, 65, 17, 0, 0],
      [3, 33, 65, 17, 0, 1],
      [4, 7, 5, 130, 1, 0],
      [2, 1, 1, 1, 1, 1],
      [1, 130, 70, 200, 1, 1],
      [5, 2, 3, 4, 1, 1],
      [1, 3, 4, 0, 1, 1],
      // the large tile (8 x 4 blocks): vec4 loads (all sizes multiples of 4), then scalar loads
      // with partial tiles and a broadcast batch; transposes both or neither (each operand's
      // load is generated on its own, so these cover all four loads of either kind)
      [1, 1024, 1028, 8, 1, 1],
      [2, 1030, 1025, 7, 1, 0],
    ];
    for (const [batch, m, n, k, bcA, bcB] of cases) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          if (m * n >= 1024 * 1024 && transA !== transB) continue;
          const as = bcA ? m * k : 0, bs = bcB ? k * n : 0;
          const a = data("float32", Math.max(as * batch, m * k), g),
            b = data("float32", Math.max(bs * batch, k * n), g);
          const [ca, wa] = both(a, "float32"), [cb, wb] = both(b, "float32");
          const d = { batch, m, n, k, transA, transB, aBatchStride: as, bBatchStride: bs };
          await same(
            `matmul b${batch} ${m}x${k}@${k}x${n} tA ${transA} tB ${transB}`,
            cpu.matmul(ca, cb, d),
            gpu!.matmul(wa, wb, d),
            "float32",
            batch * m * n,
            { rtol: 1e-5, atol: 1e-4 },
          );
        }
      }
    }
  },
);

t(
  "strided: negative, zero and permuted strides with offsets; stridedSet writes the view",
  async () => {
    const g = new Generator(12);
    const a = data("float32", 120, g);
    const views: [number[], number[], number][] = [
      [[120], [-1], 119],
      [[4, 5, 6], [30, 6, 1], 0],
      [[6, 4, 5], [1, 30, 6], 0],
      [[3, 4], [0, 1], 7],
      [[2, 3, 10], [-60, 20, -1], 69],
      [[5, 2], [2, 1], 3],
      [[], [], 17],
    ];
    for (const [shape, strides, offset] of views) {
      for (const dtype of ["float32", "int32"] as DType[]) {
        const src = dtype === "float32" ? a : Int32Array.from(a, (v) => Math.round(v * 100));
        const [c, w] = both(src, dtype);
        await same(
          `strided [${shape}] [${strides}] +${offset}`,
          cpu.strided(c, dtype, shape, strides, offset),
          gpu!.strided(w, dtype, shape, strides, offset),
          dtype,
          numel(shape),
        );
        if (strides.includes(0)) continue;
        const s = data(dtype, numel(shape), g);
        const [cs, ws] = both(s, dtype);
        await same(
          `stridedSet [${shape}] [${strides}] +${offset}`,
          cpu.stridedSet(c, 120, cs, dtype, shape, strides, offset),
          gpu!.stridedSet(w, 120, ws, dtype, shape, strides, offset),
          dtype,
          120,
        );
      }
    }
    const big = data("float32", 70_000, g);
    const [c, w] = both(big, "float32");
    await same(
      "strided 70,000 reversed",
      cpu.strided(c, "float32", [70_000], [-1], 69_999),
      gpu!.strided(w, "float32", [70_000], [-1], 69_999),
      "float32",
      70_000,
    );
  },
);

t(
  "gather along each dim; computed out-of-range indices read 0, host-known ones throw",
  async () => {
    const g = new Generator(13);
    const xShape = [4, 5, 6];
    for (const dtype of ["float32", "int32", "bool"] as DType[]) {
      const x = data(dtype, 120, g);
      for (const dim of [0, 1, 2]) {
        const idxShape = [3, 4, 5].map((s, i) => (i === dim ? 7 : Math.min(s, xShape[i])));
        const idx = Int32Array.from({ length: numel(idxShape) }, () => g.int(0, xShape[dim]));
        const [cx, wx] = both(x, dtype), [ci, wi] = both(idx, "int32");
        await same(
          `gather ${dtype} dim ${dim}`,
          cpu.gather(cx, dtype, xShape, dim, ci, idxShape),
          gpu!.gather(wx, dtype, xShape, dim, wi, idxShape),
          dtype,
          numel(idxShape),
        );
      }
    }
    const w = gpu!.gather(
      gpu!.upload(Float32Array.from([1, 2, 3]), "float32"),
      "float32",
      [3],
      0,
      computed(Int32Array.from([2, 5, -1, 0])),
      [4],
    );
    assert.deepEqual([...await gpu!.read(w, "float32", 4)], [3, 0, 0, 1]);
    const x = gpu!.upload(Float32Array.from([1, 2, 3]), "float32");
    const bad = gpu!.upload(Int32Array.from([0, 3]), "int32");
    assert.throws(
      () => gpu!.gather(x, "float32", [3], 0, bad, [2]),
      /^Error: gather: index 3 out of range for dim 0 of size 3$/,
    );
    assert.throws(
      () => gpu!.scatter(x, "float32", [3], 0, bad, [2], x, [3], "add"),
      /^Error: scatter: index 3 out of range for dim 0 of size 3$/,
    );
  },
);

t(
  "scatter assign and add: the pull pass equals the CPU bit for bit, the push pass uses atomics, computed out-of-range indices are skipped",
  async () => {
    const g = new Generator(14);
    const baseShape = [5, 6, 4];
    for (const mode of ["assign", "add"] as const) {
      for (const dtype of ["float32", "int32"] as DType[]) {
        for (const dim of [0, 1, 2]) {
          const idxShape = [4, 5, 3].map((s, i) => (i === dim ? 9 : s));
          const srcShape = idxShape.map((s, i) => s + (i === 2 ? 1 : 0));
          const idx = Int32Array.from({ length: numel(idxShape) }, () => g.int(0, baseShape[dim]));
          const base = data(dtype, 120, g), src = data(dtype, numel(srcShape), g);
          const [cb, wb] = both(base, dtype),
            [ci, wi] = both(idx, "int32"),
            [cs, ws] = both(src, dtype);
          await same(
            `scatter ${mode} ${dtype} dim ${dim}`,
            cpu.scatter(cb, dtype, baseShape, dim, ci, idxShape, cs, srcShape, mode),
            gpu!.scatter(wb, dtype, baseShape, dim, wi, idxShape, ws, srcShape, mode),
            dtype,
            120,
            { rtol: 0, atol: 0 },
          );
        }
      }
    }
    // A large scatter-add (size(dim) x numel(index) above the pull limit) uses atomics.
    for (const dtype of ["float32", "int32"] as DType[]) {
      const bShape = [3000, 8], iShape = [8000, 8];
      const idx = Int32Array.from({ length: numel(iShape) }, () => g.int(0, 3000));
      const base = data(dtype, numel(bShape), g), src = data(dtype, numel(iShape), g);
      const [cb, wb] = both(base, dtype),
        [ci, wi] = both(idx, "int32"),
        [cs, ws] = both(src, dtype);
      await same(
        `scatter add push ${dtype}`,
        cpu.scatter(cb, dtype, bShape, 0, ci, iShape, cs, iShape, "add"),
        gpu!.scatter(wb, dtype, bShape, 0, wi, iShape, ws, iShape, "add"),
        dtype,
        numel(bShape),
        { rtol: 1e-5, atol: 1e-5 },
      );
    }
    // Out-of-range indices are left unwritten.
    const w = gpu!.scatter(
      gpu!.upload(Float32Array.from([1, 2, 3]), "float32"),
      "float32",
      [3],
      0,
      computed(Int32Array.from([7, -1, 1])),
      [3],
      gpu!.upload(Float32Array.from([9, 9, 9]), "float32"),
      [3],
      "assign",
    );
    assert.deepEqual([...await gpu!.read(w, "float32", 3)], [1, 9, 3]);
  },
);

t("the pool reuses buffers: 1,000 allocate/free cycles create no new buffers", async () => {
  const g = new Generator(15);
  const host = data("float32", 1000, g);
  const step = () => {
    const a = gpu!.upload(host, "float32");
    const b = gpu!.unary("exp", a, "float32", 1000);
    const c = gpu!.binary("add", a, [1], b, [1], [1000], "float32");
    gpu!.free(a);
    gpu!.free(b);
    return c;
  };
  for (let i = 0; i < 10; i++) gpu!.free(step());
  await gpu!.read(step(), "float32", 1);
  const before = gpu!.poolStats();
  for (let i = 0; i < 1000; i++) {
    const c = step();
    if (i % 100 === 99) await gpu!.read(c, "float32", 1);
    gpu!.free(c);
  }
  const after = gpu!.poolStats();
  assert.ok(
    after.created - before.created <= 2,
    `created ${after.created - before.created} new buffers`,
  );
  assert.ok(
    after.pooled <= before.pooled + 3,
    `pool grew from ${before.pooled} to ${after.pooled}`,
  );
});

t("reads issued together share one submit", async () => {
  const bufs = [1, 2, 3, 4].map((v) => gpu!.full(10, "float32", v));
  const before = gpu!.poolStats().submits;
  const out = await Promise.all(bufs.map((b) => gpu!.read(b, "float32", 10)));
  assert.equal(gpu!.poolStats().submits - before, 1);
  assert.deepEqual(out.map((a) => a[9]), [1, 2, 3, 4]);
  for (const b of bufs) gpu!.free(b);
});

t("a backend method after a freed buffer is reused keeps queued results intact", async () => {
  // Free inputs right after queuing work that reads them, then reuse them for uploads.
  const a = gpu!.upload(Float32Array.from([1, 2, 3, 4]), "float32");
  const b = gpu!.unary("neg", a, "float32", 4);
  gpu!.free(a);
  const c = gpu!.upload(Float32Array.from([9, 9, 9, 9]), "float32");
  assert.deepEqual([...await gpu!.read(b, "float32", 4)], [-1, -2, -3, -4]);
  assert.deepEqual([...await gpu!.read(c, "float32", 4)], [9, 9, 9, 9]);
  gpu!.free(b);
  gpu!.free(c);
});
