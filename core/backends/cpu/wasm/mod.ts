/**
 * The CPU backend's fast matmul: a WebAssembly SIMD kernel generated at run time (kernel.ts),
 * driven by a blocked, packing GEMM loop (gemm.ts), and spread over a pool of workers
 * (pool.ts) for large problems. `wasmMatmul` has the contract of matmulKernel in ../matmul.ts
 * and returns false when this runtime cannot run it (no Wasm SIMD), so the caller falls back.
 *
 * Threads: navigator.hardwareConcurrency (capped at 16), or $PAPERLAB_THREADS when set (1
 * disables workers), or `setMatmulThreads(n)`. Matmuls under THREAD_MIN_FLOPS run in the calling
 * thread only; the pool starts on the first matmul above it. On a machine busy with other
 * work the pool can lose to one thread, so large matmuls use it only while it has been
 * faster lately (see rateOne/ratePool). Workers need read access to their module (Deno's
 * --allow-read); without it they do not start and every matmul runs on the calling thread.
 *
 * Memory: the kernels' shared Wasm memory (memory.ts) holds every thread's packing scratch
 * and the heap. Operands that live in the heap (the CPU backend's large tensors) are read in
 * place and C is written straight into the output where its tiles fit; anything else is
 * copied through a temporary heap block. A batch too big for the memory is done in halves.
 */
import type { MatmulDims } from "../../../backend.ts";
import { envVar } from "../../../env.ts";
import { checkExtents, trivialProduct } from "../blas.ts";
import { GemmWorker, type KernelExports, type Problem, scratchAddress } from "./gemm.ts";
import { buildGemmModule, hasRelaxedSimd, hasSimd, MR, NR } from "./kernel.ts";
import { type Heap, MAX_THREADS, memoryImport, wasmMemory } from "./memory.ts";
import { type Io, layoutFor, Pool } from "./pool.ts";
import { elementwiseModule } from "./elementwise.ts";

/** Below this many flops (2 m n k per batch item) a matmul stays on the calling thread. */
export const THREAD_MIN_FLOPS = 4e6;

interface State {
  module: WebAssembly.Module;
  g: GemmWorker;
  relaxed: boolean;
  heap: Heap; // the kernels' memory is heap.memory
}

let state: State | null | undefined; // undefined: not tried yet; null: unavailable
let pool: Pool | null = null;
let threads = defaultThreads();
/**
 * Whether the pool pays off here: on a machine busy with other work its workers get
 * descheduled mid-chunk and the caller waits on them, so two threads can be slower than one.
 * Large matmuls keep a running average of their GFLOP/s on one thread and on the pool, take
 * the faster, and every 16th one (64th when one is 1.5x faster) tries the other, to follow
 * changes in load.
 */
let rateOne = 0, ratePool = 0, poolRateThreads = 0, largeRuns = 0, adapt = true;

function defaultThreads(): number {
  const env = Number.parseInt(envVar("PAPERLAB_THREADS") ?? "", 10);
  const n = Number.isFinite(env) ? env : (navigator.hardwareConcurrency ?? 1);
  return Math.max(1, Math.min(MAX_THREADS, n));
}

/**
 * Sets how many threads (the caller included) large matmuls use; 1 disables workers.
 * `adaptive: false` always uses the pool for large matmuls, even where one thread has been
 * faster (tests use it).
 */
export function setMatmulThreads(n: number, adaptive = true): void {
  threads = Math.max(1, Math.min(MAX_THREADS, Math.floor(n)));
  adapt = adaptive;
}

/** The number of threads large matmuls use. */
export function matmulThreads(): number {
  return init()?.heap.shared ? threads : 1;
}

/** What the kernel runs with (workers: pool workers started so far), for tests and benches. */
export function wasmMatmulInfo(): {
  available: boolean;
  relaxedSimd: boolean;
  threads: number;
  workers: number;
} {
  const s = init();
  const workers = pool?.ready() ?? 0;
  return { available: !!s, relaxedSimd: !!s?.relaxed, threads: matmulThreads(), workers };
}

/** Creates the instance once, in the shared kernel memory; null when Wasm SIMD is missing. */
function init(): State | null {
  if (state !== undefined) return state;
  state = null;
  const mem = hasSimd() ? wasmMemory() : null;
  if (!mem) return null;
  const relaxed = hasRelaxedSimd();
  const { memory, heap } = mem;
  const module = new WebAssembly.Module(buildGemmModule(relaxed, memoryImport(mem)));
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const g = new GemmWorker(memory, instance.exports as unknown as KernelExports, scratchAddress(0));
  state = { module, g, relaxed, heap };
  return state;
}

function getPool(s: State, size: number): Pool | null {
  if (!s.heap.shared || size < 2) return null;
  if (pool && pool.size >= size) return pool;
  pool?.terminate();
  try {
    pool = new Pool(s.heap.memory, s.module, size, elementwiseModule());
  } catch {
    pool = null; // no workers here: stay single-threaded
  }
  return pool;
}

const align = (bytes: number) => Math.ceil(bytes / 64) * 64;

/**
 * out[b] = op(A[b]) @ op(B[b]) as matmulKernel in ../matmul.ts. Returns false (and writes
 * nothing) when the Wasm kernel cannot run here or the problem does not fit its memory.
 */
export function wasmMatmul(
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
  d: MatmulDims,
): boolean {
  const s = init();
  if (!s) return false;
  if (trivialProduct(out, d)) return true;
  const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = d;
  const mPad = Math.ceil(m / MR) * MR, nPad = Math.ceil(n / NR) * NR;
  const flops = 2 * batch * m * n * k, large = flops >= THREAD_MIN_FLOPS;
  let T = large ? threads : 1;
  if (T > 1 && adapt) {
    const known = poolRateThreads === threads && rateOne > 0; // untried: try the pool
    const ratio = known ? Math.max(ratePool / rateOne, rateOne / ratePool) : 1;
    const explore = ++largeRuns % (ratio > 1.5 ? 64 : 16) === 0;
    if ((!known || ratePool >= rateOne) === explore) T = 1;
  }
  const p = T > 1 ? getPool(s, T) : null;
  const P: Problem = {
    batch,
    m,
    n,
    k,
    aOff: 0,
    aBatch: aBatchStride,
    rsA: transA ? 1 : k,
    csA: transA ? m : 1,
    bOff: 0,
    bBatch: bBatchStride,
    rsB: transB ? 1 : n,
    csB: transB ? k : 1,
    cAddr: 0,
    mPad,
    nPad,
    pbAddr: 0,
  };
  checkExtents(A, B, out, d);
  const aLen = (batch - 1) * aBatchStride + m * k, bLen = (batch - 1) * bBatchStride + k * n;
  // Operands already in the kernel memory (the CPU backend's heap arrays) are read in place;
  // others are copied into a temporary block, as is C unless it can be written straight
  // into `out` (whole NR-wide rows, and whole MR-tall tiles or room after out for the last).
  const { heap } = s;
  const aAt = heap.addressOf(A), bAt = heap.addressOf(B), outAt = heap.addressOf(out);
  const direct = outAt >= 0 && nPad === n &&
    (mPad === m || (batch === 1 && heap.room(out) >= 4 * mPad * n));
  const L = p ? layoutFor(P, T) : null;
  const aBytes = aAt < 0 ? align(4 * aLen) : 0, bBytes = bAt < 0 ? align(4 * bLen) : 0;
  const cBytes = direct ? 0 : align(4 * batch * mPad * nPad);
  const pbBytes = L?.nPack ? 4 * batch * k * nPad : 0;
  const tmpBytes = aBytes + bBytes + cBytes + pbBytes;
  const tmp = tmpBytes ? heap.alloc(tmpBytes) : 0;
  if (tmp < 0) {
    // Too big for the Wasm memory at once: do the batch in two halves.
    if (batch === 1) return false;
    const h = batch >> 1, mn = m * n;
    return wasmMatmul(A, B, out.subarray(0, h * mn), { ...d, batch: h }) &&
      wasmMatmul(
        A.subarray(h * aBatchStride),
        B.subarray(h * bBatchStride),
        out.subarray(h * mn),
        { ...d, batch: batch - h },
      );
  }
  P.aOff = (aAt >= 0 ? aAt : tmp) / 4;
  P.bOff = (bAt >= 0 ? bAt : tmp + aBytes) / 4;
  P.cAddr = direct ? outAt : tmp + aBytes + bBytes;
  P.pbAddr = tmp + aBytes + bBytes + cBytes;
  const io = new Copier(s.g.view(), P, aAt < 0 ? A : null, bAt < 0 ? B : null, direct ? null : out);
  // A pool whose workers are still starting runs the chunks on the caller alone: its rate
  // then says nothing about the pool (and would keep large matmuls off it for a long while).
  const poolWarm = !p || p.ready() >= T - 1;
  const t0 = performance.now();
  try {
    if (p && L) p.run(P, L, s.g, T, io);
    else {
      // One thread: copy in, multiply and copy out a few batch items at a time, so the copies
      // and the packing find the data in cache (~256 KiB of A, B and C per group).
      const group = Math.max(1, Math.floor(65536 / (m * k + k * n + mPad * nPad)));
      for (let b0 = 0; b0 < batch; b0 += group) {
        const b1 = Math.min(batch, b0 + group);
        io.copyIn(b0, b1);
        s.g.run(P, b0, b1, 0, m, 0, n);
        io.copyOut(b0, b1);
      }
    }
  } finally {
    if (tmp > 0) heap.release(tmp);
  }
  if (large && poolWarm) {
    const rate = flops / (performance.now() - t0 + 1e-3);
    if (!p) rateOne = rateOne ? 0.75 * rateOne + 0.25 * rate : rate;
    else if (poolRateThreads === T) ratePool = 0.75 * ratePool + 0.25 * rate;
    else [ratePool, poolRateThreads] = [rate, T];
  }
  return true;
}

/** Bytes the CPU backend leaves after a matmul's output so the kernel can write C in place
 * (the last MR-tall tile of a single matrix overhangs its m rows). */
export function matmulOutSlack(batch: number, m: number, n: number): number {
  return batch === 1 && n % NR === 0 ? 4 * (Math.ceil(m / MR) * MR - m) * n : 0;
}

/** Moves batch items' operands into the Wasm memory and their results (m x n of each padded C
 * block) out of it; a null operand or output is already in place. */
class Copier implements Io {
  constructor(
    private readonly heap: Float32Array,
    private readonly P: Problem,
    private readonly A: Float32Array | null,
    private readonly B: Float32Array | null,
    private readonly out: Float32Array | null,
  ) {}

  copyIn(b0: number, b1: number): void {
    const { P, heap } = this;
    // An operand broadcast over the batch (stride 0) is copied with the first items only.
    if (this.A && (P.aBatch > 0 || b0 === 0)) {
      const lo = b0 * P.aBatch, hi = (b1 - 1) * P.aBatch + P.m * P.k;
      heap.set(this.A.subarray(lo, hi), P.aOff + lo);
    }
    if (this.B && (P.bBatch > 0 || b0 === 0)) {
      const lo = b0 * P.bBatch, hi = (b1 - 1) * P.bBatch + P.k * P.n;
      heap.set(this.B.subarray(lo, hi), P.bOff + lo);
    }
  }

  copyOut(b0: number, b1: number): void {
    const { heap, out } = this, { m, n, mPad, nPad } = this.P, c = this.P.cAddr / 4;
    if (!out) return;
    for (let b = b0; b < b1; b++) {
      if (nPad === n) {
        const src = c + b * mPad * n;
        out.set(heap.subarray(src, src + m * n), b * m * n);
        continue;
      }
      for (let i = 0; i < m; i++) {
        const src = c + (b * mPad + i) * nPad, dst = (b * m + i) * n;
        if (n >= 64) out.set(heap.subarray(src, src + n), dst);
        else for (let j = 0; j < n; j++) out[dst + j] = heap[src + j];
      }
    }
  }
}

/**
 * The pool for elementwise map jobs, with its size, or null where there is none (one thread,
 * no shared memory) or its workers have not all started yet (a map job would then run on
 * the caller alone, paying for the hand-off for nothing). Starts the pool if needed.
 */
export function mapPool(): { pool: Pool; threads: number } | null {
  const s = init();
  if (!s || threads < 2) return null;
  const p = getPool(s, threads);
  return p && p.ready() >= threads - 1 ? { pool: p, threads } : null;
}

/** Stops the pool's workers (they never keep the process alive; this is for tidiness). */
export function shutdownMatmulPool(): void {
  pool?.terminate();
  pool = null;
}
