/**
 * The CPU backend's Wasm SIMD matmul (core/backends/cpu/wasm/) against the scalar reference
 * loop, on many shapes: odd sizes, k = 0, m or n = 1, all four transpose combinations,
 * broadcast batch strides (0) on either side, NaN/Inf inputs, K/M/N past one cache block,
 * single-threaded and on the worker pool. Tolerance: float32 rounding scaled by k. The same
 * cases run through the system BLAS path (core/backends/cpu/blas.ts) where one is installed;
 * `.ci/run` installs OpenBLAS, so CI runs them.
 *
 * The pool's workers are unref'd node:worker_threads workers blocked in Atomics.wait between
 * jobs: they hold no pending op or resource, so the tests keep Deno's sanitizers on.
 */
import { ok as assert } from "node:assert/strict";
import type { MatmulDims } from "../../core/backend.ts";
import { blasInfo, blasMatmul } from "../../core/backends/cpu/blas.ts";
import { scalarMatmul } from "../../core/backends/cpu/matmul.ts";
import { poolSgemm } from "../../core/backends/cpu/wasm/elementwise.ts";
import { heapArray } from "../../core/backends/cpu/wasm/memory.ts";
import {
  mapPool,
  setMatmulThreads,
  shutdownMatmulPool,
  THREAD_MIN_FLOPS,
  wasmMatmul,
  wasmMatmulInfo,
} from "../../core/backends/cpu/wasm/mod.ts";
import { manualSeed, randn } from "../../mod.ts";

let seed = 12345;
/** Deterministic uniform floats in [-1, 1). */
function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
    a[i] = (seed >>> 8) / (1 << 23) - 1;
  }
  return a;
}

/** A matmul's sizes, the batch strides following from `bcast`. */
interface Case extends Omit<MatmulDims, "aBatchStride" | "bBatchStride"> {
  /** Which operand is broadcast over the batch (batch stride 0). */
  bcast?: "a" | "b";
  /** Values to plant in A and B (at fixed positions). */
  special?: number[];
}

type Kernel = typeof wasmMatmul;

/** The sizes of a batched matmul, in Backend.matmul's order. */
const dims = (
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  aBatchStride: number,
  bBatchStride: number,
): MatmulDims => ({ batch, m, n, k, transA, transB, aBatchStride, bBatchStride });
const blas: Kernel = blasMatmul;

/**
 * Runs one case through `kernel` and the scalar loop; throws naming the case and the worst
 * element.
 */
function check(c: Case, kernel: Kernel = wasmMatmul): void {
  const { batch, m, n, k, transA, transB } = c;
  const aStride = c.bcast === "a" ? 0 : m * k, bStride = c.bcast === "b" ? 0 : k * n;
  const A = rand(c.bcast === "a" ? m * k : batch * m * k);
  const B = rand(c.bcast === "b" ? k * n : batch * k * n);
  c.special?.forEach((v, i) => {
    if (A.length) A[(i * 7919) % A.length] = v;
    if (B.length) B[(i * 104729 + 3) % B.length] = v;
  });
  const want = new Float32Array(batch * m * n).fill(7), got = new Float32Array(batch * m * n);
  got.fill(-7); // must be overwritten everywhere
  const d = dims(batch, m, n, k, transA, transB, aStride, bStride);
  scalarMatmul(A, B, want, d);
  assert(kernel(A, B, got, d), "kernel ran");
  // |a|, |b| < 1: the f32 accumulation error is at most about k * 2^-24 * k-ish; use k * 4e-7.
  const tol = 1e-6 + 4e-7 * k;
  for (let i = 0; i < want.length; i++) {
    const w = want[i], g = got[i];
    const ok = Number.isNaN(w)
      ? Number.isNaN(g)
      : !Number.isFinite(w)
      ? g === w
      : Math.abs(g - w) <= tol;
    if (!ok) {
      throw new Error(
        `matmul ${JSON.stringify(c)}: element ${i} is ${g}, scalar reference ${w} (tol ${tol})`,
      );
    }
  }
}

const TRANS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

Deno.test("cpu matmul: the Wasm SIMD kernel is available here", () => {
  const info = wasmMatmulInfo();
  assert(info.available, "WebAssembly SIMD should validate in Deno");
});

Deno.test("cpu matmul: odd sizes 1..67, all transpose combinations, single thread", () => {
  setMatmulThreads(1);
  const sizes = [1, 2, 3, 5, 6, 7, 8, 9, 13, 31, 64, 67];
  let cases = 0;
  for (const m of sizes) {
    for (const n of sizes) {
      for (const k of [1, 3, 8, 17, 67]) {
        const [transA, transB] = TRANS[(m + n + k) % 4];
        check({ batch: 1, m, n, k, transA, transB });
        cases++;
      }
    }
  }
  for (const [transA, transB] of TRANS) {
    for (const [m, n, k] of [[67, 1, 45], [1, 67, 45], [1, 1, 67], [33, 47, 2]]) {
      check({ batch: 2, m, n, k, transA, transB });
      cases++;
    }
  }
  assert(cases > 700);
});

Deno.test("cpu matmul: k = 0 gives zeros, empty m or n gives nothing", () => {
  for (const [transA, transB] of TRANS) {
    check({ batch: 3, m: 5, n: 7, k: 0, transA, transB });
    check({ batch: 2, m: 0, n: 7, k: 4, transA, transB });
    check({ batch: 2, m: 5, n: 0, k: 4, transA, transB });
  }
});

Deno.test("cpu matmul: broadcast batch strides (0) on either side", () => {
  for (const [transA, transB] of TRANS) {
    for (const bcast of ["a", "b"] as const) {
      check({ batch: 5, m: 13, n: 9, k: 21, transA, transB, bcast });
      check({ batch: 3, m: 1, n: 33, k: 7, transA, transB, bcast });
    }
  }
});

Deno.test("cpu matmul: NaN and Inf propagate as in the scalar loop (zeros not skipped)", () => {
  for (const [transA, transB] of TRANS) {
    check({ batch: 2, m: 9, n: 11, k: 13, transA, transB, special: [NaN] });
    check({ batch: 2, m: 9, n: 11, k: 13, transA, transB, special: [Infinity, -Infinity] });
    check({ batch: 1, m: 7, n: 17, k: 5, transA, transB, special: [0, Infinity, 0, NaN] });
  }
  // 0 * Inf = NaN must appear: A row of zeros against a column holding Inf.
  const A = new Float32Array(4), B = new Float32Array([Infinity, 1, 1, 1]);
  const out = new Float32Array(4);
  wasmMatmul(A, B, out, dims(1, 2, 2, 2, false, false, 4, 4));
  assert(Number.isNaN(out[0]) && Number.isNaN(out[2]) && out[1] === 0 && out[3] === 0);
});

Deno.test("cpu matmul: K, M and N past one cache block (KC, MC, NC)", () => {
  setMatmulThreads(1);
  for (const [transA, transB] of TRANS) {
    check({ batch: 1, m: 101, n: 37, k: 600, transA, transB });
    check({ batch: 1, m: 200, n: 9, k: 30, transA, transB });
  }
  check({ batch: 1, m: 7, n: 1100, k: 260, transA: false, transB: true });
});

Deno.test("cpu matmul: on the worker pool (threads on), every split of the work", async () => {
  setMatmulThreads(2, false); // no backing off to one thread on a busy machine
  try {
    // Shapes above the threading threshold: batch chunks, shared packed B split by rows,
    // and split by columns (m too small to split).
    const big: Omit<Case, "transA" | "transB">[] = [
      { batch: 16, m: 33, n: 35, k: 130 },
      { batch: 1, m: 150, n: 97, k: 300 },
      { batch: 1, m: 5, n: 1500, k: 300 },
      { batch: 3, m: 2, n: 700, k: 600, bcast: "a" },
      { batch: 1, m: 131, n: 64, k: 280, special: [NaN, Infinity] },
    ];
    for (const c of big) assert(2 * c.batch * c.m * c.n * c.k >= THREAD_MIN_FLOPS);
    // Workers start in the background; the caller does all chunks until they are up.
    for (const c of big) check({ ...c, transA: false, transB: false });
    await workersUp(1);
    for (let r = 0; r < 3; r++) {
      for (const [transA, transB] of TRANS) for (const c of big) check({ ...c, transA, transB });
    }
  } finally {
    setMatmulThreads(navigator.hardwareConcurrency);
  }
});

/** Waits (up to 20 s) until `n` pool workers have started. */
async function workersUp(n: number): Promise<void> {
  const t0 = Date.now();
  while (wasmMatmulInfo().workers < n && Date.now() - t0 < 20000) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert(wasmMatmulInfo().workers >= n, `${n} pool workers started`);
}

Deno.test("cpu matmul: back-to-back jobs in every mode, pool grown and shut down", async () => {
  // Batch chunks, shared packed B by rows and by columns, one after another, each checked
  // against a reference computed once: a chunk taken under the wrong job would show.
  const shapes = [
    [4, 40, 40, 700, false, true],
    [1, 100, 100, 220, true, false],
    [2, 5, 600, 700, false, false],
    [8, 30, 31, 300, true, true],
  ] as const;
  const cases = shapes.map(([batch, m, n, k, tA, tB]) => {
    const A = rand(batch * m * k), B = rand(batch * k * n);
    const want = new Float32Array(batch * m * n);
    scalarMatmul(A, B, want, dims(batch, m, n, k, tA, tB, m * k, k * n));
    return { batch, m, n, k, tA, tB, A, B, want };
  });
  const runAll = (rounds: number) => {
    for (let r = 0; r < rounds; r++) {
      const c = cases[(r * 3 + (r >> 2)) % cases.length];
      const got = new Float32Array(c.want.length);
      wasmMatmul(c.A, c.B, got, dims(c.batch, c.m, c.n, c.k, c.tA, c.tB, c.m * c.k, c.k * c.n));
      for (let i = 0; i < got.length; i++) {
        if (!(Math.abs(got[i] - c.want[i]) <= 1e-6 + 4e-7 * c.k)) {
          throw new Error(`round ${r}, shape ${JSON.stringify(shapes[cases.indexOf(c)])}: ${i}`);
        }
      }
    }
  };
  try {
    setMatmulThreads(2, false);
    runAll(1);
    await workersUp(1);
    runAll(60);
    setMatmulThreads(3, false); // replaces the pool with a bigger one
    runAll(1);
    await workersUp(2);
    runAll(60);
    setMatmulThreads(2, false); // the pool stays; its third thread sits out
    runAll(30);
    shutdownMatmulPool();
    runAll(30); // a new pool starts; the caller works alone until it is up
  } finally {
    setMatmulThreads(navigator.hardwareConcurrency);
  }
});

Deno.test("cpu matmul: through the tensor API, forward and backward", async () => {
  manualSeed(3);
  const a = randn([3, 40, 50], { requiresGrad: true }), b = randn([50, 30], { requiresGrad: true });
  const y = a.matmul(b);
  y.sum().backward();
  const [A, B, Y, gA, gB] = await Promise.all([a, b, y, a.grad!, b.grad!].map((t) => t.data()));
  const want = new Float32Array(3 * 40 * 30);
  scalarMatmul(
    A as Float32Array,
    B as Float32Array,
    want,
    dims(3, 40, 30, 50, false, false, 2000, 0),
  );
  for (let i = 0; i < want.length; i++) assert(Math.abs(Y[i] - want[i]) < 1e-4);
  // d sum / dA[i, p] = sum_j B[p, j]; d sum / dB[p, j] = sum over batch and i of A[b, i, p].
  for (let p = 0; p < 50; p++) {
    let s = 0;
    for (let j = 0; j < 30; j++) s += B[p * 30 + j];
    for (let i = 0; i < 120; i++) assert(Math.abs(gA[i * 50 + p] - s) < 1e-4);
    let t = 0;
    for (let i = 0; i < 120; i++) t += A[i * 50 + p];
    for (let j = 0; j < 30; j++) assert(Math.abs(gB[p * 30 + j] - t) < 1e-3);
  }
});

const noBlas = !blasInfo().available;

Deno.test({
  name: "cpu matmul (system BLAS): odd sizes, transposes, k = 0, broadcasts, NaN/Inf",
  ignore: noBlas,
  fn() {
    const sizes = [1, 2, 5, 7, 13, 64, 67];
    for (const m of sizes) {
      for (const n of sizes) {
        for (const k of [1, 8, 67]) {
          const [transA, transB] = TRANS[(m + n + k) % 4];
          check({ batch: 1, m, n, k, transA, transB }, blas);
        }
      }
    }
    for (const [transA, transB] of TRANS) {
      check({ batch: 3, m: 5, n: 7, k: 0, transA, transB }, blas);
      check({ batch: 2, m: 0, n: 7, k: 4, transA, transB }, blas);
      check({ batch: 3, m: 33, n: 47, k: 20, transA, transB }, blas);
      // bcast "b" with row-major A blocks is folded into one tall matrix.
      for (const bcast of ["a", "b"] as const) {
        check({ batch: 5, m: 13, n: 9, k: 21, transA, transB, bcast }, blas);
      }
      check({ batch: 2, m: 9, n: 11, k: 13, transA, transB, special: [NaN] }, blas);
      check({ batch: 1, m: 7, n: 17, k: 5, transA, transB, special: [0, Infinity, 0, NaN] }, blas);
      check({ batch: 1, m: 150, n: 97, k: 300, transA, transB }, blas); // threaded in OpenBLAS
    }
  },
});

Deno.test({
  name: "cpu matmul (system BLAS): operands too short are refused before the library reads them",
  ignore: noBlas,
  fn() {
    const A = new Float32Array(11), B = new Float32Array(12), out = new Float32Array(9);
    try {
      blasMatmul(A, B, out, dims(1, 3, 3, 4, false, false, 12, 12));
      assert(false, "should have thrown");
    } catch (e) {
      assert(
        /matmul: operands hold 11, 12 and 9 floats, need 12, 12, 9/.test(String(e)),
        String(e),
      );
    }
  },
});

Deno.test({
  name: "cpu matmul (system BLAS): items and row blocks split over the pool give one call's bits",
  ignore: noBlas,
  async fn() {
    const fresh = (n: number, values?: Float32Array) => {
      const a = heapArray("float32", n)!;
      if (values) a.set(values);
      return a;
    };
    const cases: [number, number, number, number, boolean, boolean, number, number][] = [
      [64, 64, 32, 64, true, false, 64 * 64, 64 * 32], // attention-like, transposed A
      [16, 33, 47, 20, false, true, 0, 47 * 20], // A broadcast over the batch, odd sizes
      [5, 7, 3, 130, true, true, 7 * 130, 3 * 130],
      [1, 151, 97, 300, false, false, 0, 0], // one matrix: a block of rows a thread
      [1, 151, 97, 300, true, true, 0, 0],
      [6, 25, 40, 30, false, true, 25 * 30, 0], // B shared: one tall matrix, rows split
    ];
    try {
      setMatmulThreads(2, false);
      const t0 = Date.now(); // workers start in the background
      while (!mapPool() && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 20));
      assert(mapPool(), "the pool's workers started");
      for (const [batch, m, n, k, tA, tB, aS, bS] of cases) {
        const what = JSON.stringify([batch, m, n, k, tA, tB, aS, bS]);
        const A = fresh((batch - 1) * aS + m * k, rand((batch - 1) * aS + m * k));
        const B = fresh((batch - 1) * bS + k * n, rand((batch - 1) * bS + k * n));
        const split = fresh(batch * m * n), one = fresh(batch * m * n);
        const want = new Float32Array(batch * m * n);
        split.fill(NaN);
        const d = dims(batch, m, n, k, tA, tB, aS, bS);
        assert(poolSgemm(A, B, split, d), `${what}: pool ran`);
        assert(blasMatmul(A, B, one, d), `${what}: one thread`);
        scalarMatmul(A, B, want, d);
        for (let i = 0; i < want.length; i++) {
          assert(Object.is(split[i], one[i]), `${what} [${i}]: ${split[i]} vs ${one[i]}`);
          assert(Math.abs(split[i] - want[i]) <= 1e-6 + 4e-7 * k, `${what} [${i}] vs scalar`);
        }
      }
      // Outside the heap, no split: the caller falls back.
      const plain = new Float32Array(2 * 4 * 4);
      assert(!poolSgemm(plain, plain, plain, dims(2, 4, 4, 4, false, false, 16, 16)));
    } finally {
      setMatmulThreads(navigator.hardwareConcurrency);
    }
  },
});

Deno.test("cpu matmul: PAPERLAB_BLAS naming a missing library is a clear error", async () => {
  const code = `import { matmul, tensor } from "${new URL("../../mod.ts", import.meta.url)}";
    await matmul(tensor([[1, 2]]), tensor([[3], [4]])).data();`;
  const run = (blasEnv: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env: { PAPERLAB_BLAS: blasEnv, PAPERLAB_BACKEND: "cpu" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const bad = await run("/nonexistent/libnoblas.so");
  const err = new TextDecoder().decode(bad.stderr);
  assert(!bad.success, "the run should fail");
  assert(err.includes("PAPERLAB_BLAS=/nonexistent/libnoblas.so: could not load"), err);
  const off = await run("0"); // off: the Wasm kernel, no error
  assert(off.success, new TextDecoder().decode(off.stderr));
});
