/**
 * The CPU backend's Wasm heap (core/backends/cpu/wasm/memory.ts) and the kernels that work in
 * it in place (wasm/elementwise.ts): the allocator's reuse, splitting, merging and full-heap
 * behaviour; Wasm binary ops and comparisons with every broadcast form, unary ops, strided
 * copies, bool-to-float casts and column sums against the JavaScript loops bit for bit
 * (special values included); and the backend keeping large tensors in the heap, matmul
 * included.
 */
import { ok as assert, strictEqual as eq } from "node:assert/strict";
import { binaryKernel, erf, unaryKernel } from "../../core/backends/cpu/elementwise.ts";
import { col2imKernel, im2colKernel } from "../../core/backends/cpu/windows.ts";
import { reduceRows } from "../../core/backends/cpu/mod.ts";
import type { Windows } from "../../core/backend.ts";
import {
  wasmAdam,
  wasmBinary,
  wasmBoolToF32,
  wasmCol2im,
  wasmColumnSum,
  wasmElementwiseAvailable,
  wasmIm2col,
  wasmLayerNorm,
  wasmRowSum,
  wasmSoftmax,
  wasmStridedCopy,
  wasmUnary,
} from "../../core/backends/cpu/wasm/elementwise.ts";
import { Heap, heapArray, heapGive, wasmMemory } from "../../core/backends/cpu/wasm/memory.ts";
import { mapPool, setMatmulThreads } from "../../core/backends/cpu/wasm/mod.ts";
import { matmul, tensor } from "../../mod.ts";
import { getBackend } from "../../core/backend.ts";

const ignore = !wasmElementwiseAvailable();

let seed = 99;
function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
    a[i] = ((seed >>> 8) / (1 << 23) - 1) * 3;
  }
  // Special values where the loops must agree too.
  const special = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -3.4e38, 0.5];
  for (let i = 0; i < Math.min(n, special.length); i++) a[(i * 37) % n] = special[i];
  return a;
}

/** A heap array holding `values` (the backend's large tensors live like this). */
function inHeap(values: Float32Array): Float32Array {
  const a = heapArray("float32", values.length)!;
  a.set(values);
  return a;
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  eq(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) {
    assert(Object.is(a[i], b[i]), `${what}: [${i}] ${a[i]} vs ${b[i]}`);
  }
}

Deno.test("heap: exact sizes are reused, larger blocks split, neighbours merge, top retracts", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
  const h = new Heap(memory, 1024, 4 * 65536, false);
  const a = h.alloc(100), b = h.alloc(100), c = h.alloc(1000);
  eq(a, 1024);
  eq(b, 1024 + 128, "sizes round up to 64 bytes");
  eq(c, 1024 + 256);
  eq(h.liveBytes(), 128 + 128 + 1024);
  assert(h.release(b));
  assert(!h.release(b), "a block is freed once");
  eq(h.alloc(65), b, "a freed block is reused whole for its size");
  assert(h.release(a) && h.release(b));
  h.trim();
  // a and b merged into one 256-byte block: a 64-byte request splits it.
  eq(h.alloc(64), 1024);
  eq(h.alloc(192), 1024 + 64);
  assert(h.release(1024) && h.release(1024 + 64) && h.release(c));
  h.trim();
  eq(h.top(), 1024, "everything freed: the heap is empty again");
  eq(h.liveBytes(), 0);
});

Deno.test("heap: a request that finds no room merges the kept blocks first", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const h = new Heap(memory, 0, 65536, false);
  const blocks = Array.from({ length: 15 }, () => h.alloc(4096));
  assert(blocks.every((b) => b >= 0));
  eq(h.alloc(8192), -1, "full");
  assert(h.release(blocks[3]) && h.release(blocks[4]));
  eq(h.alloc(8192), blocks[3], "the two freed neighbours were merged to fit");
});

Deno.test("heap: grows the memory as needed and reports a full heap with -1", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 3 });
  const h = new Heap(memory, 0, 3 * 65536, false);
  const a = h.alloc(100000);
  assert(a >= 0 && memory.buffer.byteLength >= 100000 + 64);
  eq(h.alloc(200000), -1, "past the maximum");
  assert(h.alloc(50000) >= 0, "a smaller block still fits");
});

Deno.test({
  name: "heap: backend arrays are views into the shared memory; give returns them once",
  ignore,
  fn() {
    const heap = wasmMemory()!.heap;
    const live = heap.liveBytes();
    const a = heapArray("float32", 3000, 64)!;
    assert(heap.addressOf(a) > 0);
    assert(heap.room(a) >= 3000 * 4 + 64, "slack is reserved after the array");
    eq(heap.addressOf(new Float32Array(10)), -1, "an ordinary array is not in the heap");
    assert(!heapGive(a.subarray(1)), "a view into a block is not the block");
    assert(heapGive(a));
    assert(!heapGive(a), "given back once");
    eq(heap.liveBytes(), live);
  },
});

const SHAPES: [string, number[], number[], number[], number, number][] = [
  // name, out shape, a strides, b strides, a length, b length
  ["contiguous", [37, 53], [53, 1], [53, 1], 37 * 53, 37 * 53],
  ["row broadcast (bias)", [64, 100], [100, 1], [0, 1], 6400, 100],
  ["column broadcast", [64, 101], [101, 1], [1, 0], 6464, 64],
  ["column broadcast of a", [64, 100], [1, 0], [100, 1], 64, 6400],
  ["per-row scalar over 3 dims", [8, 8, 64], [512, 64, 1], [8, 1, 0], 4096, 64],
  ["scalar b", [3001], [1], [0], 3001, 1],
  ["scalar a", [3001], [0], [1], 1, 3001],
  ["outer broadcast over 3 dims", [4, 16, 33], [0, 33, 1], [33, 0, 1], 528, 4 * 33],
];

for (const op of ["add", "sub", "mul", "div"] as const) {
  Deno.test({
    name: `wasm elementwise: ${op} equals the JS loop bit for bit in every broadcast form`,
    ignore,
    fn() {
      for (const [name, shape, as, bs, na, nb] of SHAPES) {
        const a = rand(na), b = rand(nb);
        const n = shape.reduce((x, y) => x * y, 1);
        const want = new Float32Array(n);
        binaryKernel(op, "float32")(a, b, want, shape, as, bs);
        // Both operands in the heap, then b outside it (copied in by the kernel).
        for (const [A, B] of [[inHeap(a), inHeap(b)], [inHeap(a), b]]) {
          const out = heapArray("float32", n)!;
          assert(wasmBinary(op, A, as, B, bs, shape, out), `${name}: the Wasm path ran`);
          sameBits(out, want, `${op} ${name}`);
          heapGive(out);
        }
      }
    },
  });
}

for (const op of ["eq", "ne", "lt", "le", "gt", "ge"] as const) {
  Deno.test({
    name: `wasm elementwise: ${op} gives the JS loop's bools in every broadcast form`,
    ignore,
    fn() {
      // Rounded values, so that many pairs are equal; NaN, +-0 and +-Inf stay.
      const ints = (n: number) => rand(n).map(Math.round);
      for (const [name, shape, as, bs, na, nb] of SHAPES) {
        const a = ints(na), b = ints(nb);
        const n = shape.reduce((x, y) => x * y, 1);
        const want = new Uint8Array(n);
        binaryKernel(op, "float32")(a, b, want, shape, as, bs);
        const out = heapArray("bool", n)! as Uint8Array;
        assert(wasmBinary(op, inHeap(a), as, inHeap(b), bs, shape, out), `${name}: ran`);
        for (let i = 0; i < n; i++) eq(out[i], want[i], `${op} ${name} [${i}]`);
        heapGive(out);
      }
    },
  });
}

Deno.test({
  name: "wasm elementwise: bools cast to 0/1 floats",
  ignore,
  fn() {
    const n = 1031;
    const x = heapArray("bool", n)! as Uint8Array;
    for (let i = 0; i < n; i++) x[i] = (i * 7) % 3 === 0 ? 1 : 0;
    const out = heapArray("float32", n)! as Float32Array;
    assert(wasmBoolToF32(x, out, n));
    for (let i = 0; i < n; i++) eq(out[i], x[i], `[${i}]`);
  },
});

Deno.test({
  name: "wasm elementwise: column sums equal the float64 loop's bits; inner % 4 != 0 declines",
  ignore,
  fn() {
    for (const [outer, r, inner] of [[1, 1024, 512], [10, 64, 128], [3, 5, 4], [2, 700, 8]]) {
      const x = rand(outer * r * inner);
      const want = new Float32Array(outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let acc = 0;
          for (let k = 0; k < r; k++) acc += x[(o * r + k) * inner + i];
          want[o * inner + i] = acc;
        }
      }
      // Output in the heap (written in place) and outside it (copied out).
      for (const out of [heapArray("float32", outer * inner)!, new Float32Array(outer * inner)]) {
        assert(wasmColumnSum(inHeap(x), out as Float32Array, outer, r, inner));
        sameBits(out as Float32Array, want, `colSum [${outer}, ${r}, ${inner}]`);
      }
    }
    assert(!wasmColumnSum(inHeap(rand(1000)), new Float32Array(50), 2, 50, 10), "inner 10");
  },
});

Deno.test({
  name: "wasm elementwise: row sums equal the float64 loop's bits, tails and special values",
  ignore,
  fn() {
    for (const [rows, cols] of [[7, 1], [5, 3], [9, 4], [6, 7], [33, 128], [3, 1001]]) {
      const x = rand(rows * cols);
      const want = new Float32Array(rows);
      reduceRows("sum", x, want, rows, cols);
      // Input in the heap and outside it; output outside it (copied out) and in it.
      for (
        const [xs, out] of [[inHeap(x), new Float32Array(rows)], [x, heapArray("float32", rows)!]]
      ) {
        assert(wasmRowSum(xs, out, rows, cols));
        sameBits(out, want, `rowSum [${rows}, ${cols}]`);
      }
    }
  },
});

Deno.test({
  name: "wasm elementwise: short runs and outputs outside the heap are left to the JS loops",
  ignore,
  fn() {
    const a = inHeap(rand(4096)), b = inHeap(rand(4));
    const out = heapArray("float32", 4096)!;
    assert(!wasmBinary("add", a, [4, 1], b, [0, 1], [1024, 4], out), "runs of 4");
    assert(!wasmBinary("add", a, [1], a, [1], [4096], new Float32Array(4096)), "plain output");
    assert(!wasmBinary("maximum", a, [1], a, [1], [4096], out), "ops without a kernel");
  },
});

Deno.test({
  name: "wasm elementwise: neg, abs, sqrt and relu equal the JS loops bit for bit",
  ignore,
  fn() {
    const x = rand(1027);
    for (const op of ["neg", "abs", "sqrt", "relu"] as const) {
      const want = new Float32Array(1027);
      unaryKernel(op)(x, want, 1027);
      const out = heapArray("float32", 1027)!;
      assert(wasmUnary(op, inHeap(x), out, 1027));
      sameBits(out, want, op);
    }
  },
});

/**
 * erf in float64 by its Maclaurin series for |x| < 4.2 (cancellation costs under 1e-9 there),
 * +-1 beyond (erf(4.2) is 1 - 3e-9).
 */
function erfSeries(x: number): number {
  if (Math.abs(x) >= 4.2) return Math.sign(x);
  let term = x, sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

Deno.test("JS erf: within 3e-8 of erf's series, relative near 0; +-1 at and past the clamp", () => {
  for (let i = 0; i <= 20000; i++) {
    const v = (i / 20000 - 0.5) * 9.9;
    const want = erfSeries(v);
    const tol = Math.max(3e-8 * Math.abs(want), 1e-12);
    assert(Math.abs(erf(v) - want) <= tol, `erf(${v}) = ${erf(v)}, want ${want}`);
  }
  eq(erf(Infinity), 1);
  eq(erf(-Infinity), -1);
  eq(erf(-4), -1);
  assert(Object.is(erf(-0), -0) && Number.isNaN(erf(NaN)));
});

Deno.test({
  name: "wasm elementwise: erf within 4e-7 of erf's series, relative near 0, exact at 0 and ±Inf",
  ignore,
  fn() {
    const n = 20003;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i / n - 0.5) * 9.9;
    x.set([NaN, Infinity, -Infinity, 0, -0, 1e-30, -1e-5, 0.4999, 0.5, 0.5001, 3.925, -3.9249]);
    const out = heapArray("float32", n)!;
    assert(wasmUnary("erf", inHeap(x), out, n));
    assert(Number.isNaN(out[0]));
    eq(out[1], 1);
    eq(out[2], -1);
    assert(Object.is(out[3], 0) && Object.is(out[4], -0));
    for (let i = 5; i < n; i++) {
      const v = x[i], want = erfSeries(v);
      const tol = Math.abs(v) < 0.5 ? 3e-7 * Math.abs(want) : 4e-7;
      assert(Math.abs(out[i] - want) <= tol, `erf(${v}) = ${out[i]}, want ${want}`);
      assert(Math.abs(out[i]) <= 1, `erf(${v}) = ${out[i]} is outside [-1, 1]`);
    }
  },
});

Deno.test({
  name: "wasm elementwise: gelu is x (1 + erf(x / sqrt 2)) / 2 within float32 rounding",
  ignore,
  fn() {
    const n = 20003;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i / n - 0.5) * 16;
    x.set([NaN, Infinity, -Infinity, 0, -0, -10, 1e-30]);
    const out = heapArray("float32", n)!;
    assert(wasmUnary("gelu", inHeap(x), out, n));
    assert(Number.isNaN(out[0]) && Number.isNaN(out[2])); // -Inf (1 + -1): NaN, as PyTorch
    eq(out[1], Infinity);
    assert(Object.is(out[3], 0) && Object.is(out[4], -0) && Object.is(out[5], -0));
    for (let i = 6; i < n; i++) {
      const v = x[i], want = 0.5 * v * (1 + erfSeries(v * Math.SQRT1_2));
      const tol = 4e-7 * Math.abs(v) + 2e-7 * Math.abs(want);
      assert(Math.abs(out[i] - want) <= tol, `gelu(${v}) = ${out[i]}, want ${want}`);
    }
  },
});

Deno.test({
  name: "wasm im2col/col2im: every geometry gives the JS loops' values bit for bit",
  ignore,
  fn() {
    // [h, w, kernel, stride, dilation, pads [t, b, l, r], pad value]
    const cases: [number, number, number[], number[], number[], Windows["pads"], number][] = [
      [7, 9, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 0],
      [6, 7, [3, 3], [2, 1], [1, 2], [1, 1, 2, 2], 0],
      [2, 3, [5, 5], [1, 1], [1, 1], [4, 4, 4, 4], 0], // taps wholly in the padding
      [5, 6, [2, 3], [1, 1], [2, 2], [1, 2, 1, 2], -Infinity], // windows past the far edge
      [8, 5, [1, 1], [3, 1], [1, 1], [0, 0, 0, 0], 0],
      [4, 70, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 0], // long rows: whole vectors and tails
    ];
    for (const [h, w, kernel, stride, dilation, pads, padValue] of cases) {
      const out = [0, 1].map((d) =>
        Math.floor(
          ([h, w][d] + pads[2 * d] + pads[2 * d + 1] - dilation[d] * (kernel[d] - 1) - 1) /
            stride[d],
        ) + 1
      );
      const win: Windows = { kernel, stride, dilation, pads, out };
      const rows = 3, n = rows * h * w, m = rows * kernel[0] * kernel[1] * out[0] * out[1];
      const what = JSON.stringify(win);
      const x = rand(n), cols = rand(m);
      const want = new Float32Array(m), got = heapArray("float32", m)!;
      im2colKernel(x, want, rows, h, w, win, padValue);
      assert(wasmIm2col(inHeap(x), got, rows, h, w, win, padValue), what);
      sameBits(got, want, `im2col ${what}`);
      const wantBack = new Float32Array(n), gotBack = heapArray("float32", n)!;
      gotBack.fill(NaN); // col2im zeroes its output first
      col2imKernel(cols, wantBack, rows, h, w, win);
      assert(wasmCol2im(inHeap(cols), gotBack, rows, h, w, win), what);
      sameBits(gotBack, wantBack, `col2im ${what}`);
    }
    // A column stride above 1 is left to the JS loops.
    const win: Windows = {
      kernel: [2, 2],
      stride: [1, 2],
      dilation: [1, 1],
      pads: [0, 0, 0, 0],
      out: [3, 2],
    };
    assert(!wasmIm2col(inHeap(rand(20)), heapArray("float32", 24)!, 1, 4, 5, win, 0));
  },
});

Deno.test({
  name:
    "wasm elementwise on the thread pool: unary, binary (every split), row kernels, copies, im2col/col2im and Adam give one thread's bits",
  ignore,
  async fn() {
    const n = 200003, x = inHeap(rand(n)), y = inHeap(rand(n));
    const row = inHeap(rand(200)), col = inHeap(rand(1000));
    const win: Windows = {
      kernel: [3, 3],
      stride: [2, 1],
      dilation: [1, 2],
      pads: [1, 1, 2, 2],
      out: [15, 30],
    };
    // Each case runs once on one thread and once on the pool; the outputs must match.
    const cases: [string, (out: Float32Array) => boolean, number][] = [
      ...(["neg", "relu", "erf", "gelu", "exp", "sigmoid"] as const).map((
        op,
      ): [string, (o: Float32Array) => boolean, number] => [
        op,
        (o) => wasmUnary(op, x, o, n),
        n,
      ]),
      ["add vv", (o) => wasmBinary("add", x, [1], y, [1], [n], o), n],
      ["mul vs", (o) => wasmBinary("mul", x, [1], y, [0], [n], o), n],
      ["sub sv", (o) => wasmBinary("sub", x, [0], y, [1], [n], o), n],
      ["rows + bias", (o) => wasmBinary("add", x, [200, 1], row, [0, 1], [1000, 200], o), 200000],
      [
        "few long rows",
        (o) => wasmBinary("div", x, [50000, 1], y, [50000, 1], [4, 50000], o),
        200000,
      ],
      [
        "rows * per-row scalar",
        (o) => wasmBinary("mul", x, [200, 1], col, [1, 0], [1000, 200], o),
        200000,
      ],
      // row kernels: rows split anywhere (odd row lengths leave scalar tails at each split)
      ["softmax", (o) => wasmSoftmax(x, o, 199, 1005, false), 199 * 1005],
      ["logSoftmax", (o) => wasmSoftmax(x, o, 199, 1005, true), 199 * 1005],
      ["row sums", (o) => wasmRowSum(x, o, 1999, 100), 1999],
      ["im2col", (o) => wasmIm2col(x, o, 20, 30, 30, win, -1), 20 * 9 * 15 * 30],
      ["col2im", (o) => wasmCol2im(x, o, 20, 30, 30, win), 20 * 30 * 30],
      [
        "permute (0, 2, 1, 3)",
        (o) => wasmStridedCopy(x, o, [16, 4, 64, 32], [8192, 32, 128, 1], 0),
        131072,
      ],
      [
        "5-D permute",
        (o) => wasmStridedCopy(x, o, [2, 3, 4, 50, 80], [48000, 4000, 12000, 80, 1], 7),
        96000,
      ],
      [
        "layerNorm and its row statistics",
        (o) => wasmLayerNorm(x, o, 999, 201, 1e-5, col, y, o.subarray(999 * 201)),
        999 * 201 + 2 * 999,
      ],
    ];
    const adam = (o: Float32Array[]) =>
      wasmAdam([x, y, inHeap(x.slice()), inHeap(y.map(Math.abs))], [o[0], o[1], o[2]], n, {
        decayP: true,
        addWd: false,
        lerpUp: true,
        decay: 0.999,
        wd: 0.01,
        c1: 0.1,
        b2: 0.999,
        c2: 0.001,
        bc: 0.5,
        eps: 1e-8,
        step: 0.001,
        sign: 1,
      });
    const runAll = () => {
      const outs = cases.map(([what, f, len]) => {
        const o = heapArray("float32", len)!;
        assert(f(o), what);
        return o;
      });
      const a = [0, 1, 2].map(() => heapArray("float32", n)!);
      assert(adam(a), "adam");
      return [...outs, ...a];
    };
    const gt = heapArray("bool", 200000)! as unknown as Uint8Array;
    try {
      setMatmulThreads(1);
      assert(mapPool() === null);
      const one = runAll();
      const gtRef = heapArray("bool", 200000)! as unknown as Uint8Array;
      assert(wasmBinary("gt", x, [200, 1], row, [0, 1], [1000, 200], gtRef));
      setMatmulThreads(2);
      const t0 = Date.now(); // workers start in the background
      while (!mapPool() && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 20));
      assert(mapPool(), "the pool's workers started");
      const two = runAll();
      assert(wasmBinary("gt", x, [200, 1], row, [0, 1], [1000, 200], gt));
      const names = [...cases.map((c) => c[0]), "adam p", "adam m", "adam v"];
      one.forEach((o, i) => sameBits(two[i], o, names[i]));
      for (let i = 0; i < gt.length; i++) assert(gt[i] === gtRef[i], `gt [${i}]`);
    } finally {
      setMatmulThreads(navigator.hardwareConcurrency);
    }
  },
});

Deno.test({
  name: "wasm strided copy: permutations and slices read the same values as the JS loop",
  ignore,
  fn() {
    const x = inHeap(rand(4 * 6 * 8 * 33));
    // [4, 6, 8, 33] -> permute(0, 2, 1, 3); a slice of the last dim; a transposed last dim
    // (stride 33: not contiguous, declined).
    const cases: [number[], number[], number, boolean][] = [
      [[4, 8, 6, 33], [6 * 8 * 33, 33, 8 * 33, 1], 0, true],
      [[4, 6, 8, 20], [6 * 8 * 33, 8 * 33, 33, 1], 5, true],
      [[4, 6, 33, 8], [6 * 8 * 33, 8 * 33, 1, 33], 0, false],
    ];
    for (const [shape, strides, offset, applies] of cases) {
      const n = shape.reduce((p, q) => p * q, 1);
      const out = heapArray("float32", n)!;
      eq(wasmStridedCopy(x, out, shape, strides, offset), applies);
      if (!applies) continue;
      const idx = shape.map(() => 0);
      for (let o = 0; o < n; o++) {
        let p = offset;
        for (let d = 0; d < shape.length; d++) p += idx[d] * strides[d];
        assert(Object.is(out[o], x[p]), `[${shape}] at ${o}`);
        for (let d = shape.length - 1; d >= 0 && ++idx[d] === shape[d]; d--) idx[d] = 0;
      }
    }
  },
});

Deno.test({
  name: "cpu backend: large tensors live in the heap; matmul writes C in place and agrees",
  ignore: ignore || getBackend().name !== "cpu",
  async fn() {
    const heap = wasmMemory()!.heap;
    // m = 100 is not a multiple of the kernel's 6 rows: the last tile overhangs into slack.
    const a = tensor(rand(100 * 64).map((v) => (v === v && Math.abs(v) < 10 ? v : 1)), {
      shape: [100, 64],
    });
    const b = tensor(rand(64 * 48).map((v) => (v === v && Math.abs(v) < 10 ? v : 1)), {
      shape: [64, 48],
    });
    const c = matmul(a, b);
    assert(heap.addressOf(c._buf as Float32Array) > 0, "the product is a heap array");
    const [A, B, C] = await Promise.all([a.data(), b.data(), c.data()]);
    for (const [i, j] of [[0, 0], [99, 47], [97, 5], [50, 20]]) {
      let s = 0;
      for (let p = 0; p < 64; p++) s += A[i * 64 + p] * B[p * 48 + j];
      assert(Math.abs(C[i * 48 + j] - s) < 1e-4 * (1 + Math.abs(s)), `C[${i},${j}]`);
    }
    // The overhang stays in C's own block: a free block of exactly C's size, followed by a
    // live array, is not where the next product goes (it would overwrite the neighbour).
    const hole = heapArray("float32", 100 * 48)!, next = heapArray("float32", 4096)!;
    next.fill(7);
    heapGive(hole);
    const again = matmul(a, b);
    assert(next.every((v) => v === 7), "the neighbour is intact");
    heapGive(next);
    for (const t of [a, b, c, again]) t.dispose();
  },
});
