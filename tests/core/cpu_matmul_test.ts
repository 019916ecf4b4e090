/**
 * The CPU backend's Wasm SIMD matmul (core/backends/cpu/wasm/) against the scalar reference
 * loop, on many shapes: odd sizes, k = 0, m or n = 1, all four transpose combinations,
 * broadcast batch strides (0) on either side, NaN/Inf inputs, K/M/N past one cache block,
 * single-threaded and on the worker pool. Tolerance: float32 rounding scaled by k.
 *
 * The pool's workers are unref'd node:worker_threads workers blocked in Atomics.wait between
 * jobs: they hold no pending op or resource, so the tests keep Deno's sanitizers on.
 */
import { ok as assert } from "node:assert/strict";
import { scalarMatmul } from "../../core/backends/cpu/matmul.ts";
import {
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

interface Case {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Which operand is broadcast over the batch (batch stride 0). */
  bcast?: "a" | "b";
  /** Values to plant in A and B (at fixed positions). */
  special?: number[];
}

/** Runs one case through both kernels; throws naming the case and the worst element. */
function check(c: Case): void {
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
  scalarMatmul(A, B, want, batch, m, n, k, transA, transB, aStride, bStride);
  assert(wasmMatmul(A, B, got, batch, m, n, k, transA, transB, aStride, bStride), "wasm ran");
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
  wasmMatmul(A, B, out, 1, 2, 2, 2, false, false, 4, 4);
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
    scalarMatmul(A, B, want, batch, m, n, k, tA, tB, m * k, k * n);
    return { batch, m, n, k, tA, tB, A, B, want };
  });
  const runAll = (rounds: number) => {
    for (let r = 0; r < rounds; r++) {
      const c = cases[(r * 3 + (r >> 2)) % cases.length];
      const got = new Float32Array(c.want.length);
      wasmMatmul(c.A, c.B, got, c.batch, c.m, c.n, c.k, c.tA, c.tB, c.m * c.k, c.k * c.n);
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
  scalarMatmul(A as Float32Array, B as Float32Array, want, 3, 40, 30, 50, false, false, 2000, 0);
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
