/**
 * Optional fast path for the CPU backend's float32 matmul: `cblas_sgemm` of a system BLAS
 * (OpenBLAS), called through Deno's FFI. The portable path (the Wasm SIMD kernel of ./wasm/)
 * stays the default wherever this one is not available, and its results differ from it only
 * by float32 rounding (both accumulate in float32, in different orders).
 *
 * It is used when all of these hold:
 * - the process may load native libraries (`--allow-ffi`, or `-A`); it never prompts;
 * - `$PAPERLAB_BLAS` is unset or `auto` (then OpenBLAS is looked up by its usual names), or
 *   names a library file or path with a CBLAS interface (then failing to load it is an
 *   error); `0`, `off` or `none` turns the path off;
 * - `setBlas(false)` has not been called (tests and benchmarks use it to time both paths).
 *
 * Threads: the library runs single-threaded, and large matmuls are split over the Wasm pool's
 * threads instead (wasm/elementwise.ts poolSgemm: batch items, or blocks of rows), each
 * thread with its own handle on the library (one copy in the process). OpenBLAS's own threading is process-wide
 * state: changing its thread count while another thread is inside a call is unsafe, and
 * `deno test --parallel` runs several test files, each with its own pool, in one process. Its
 * threads also spin for ~0.1 s after each call, which took a core from the pool's elementwise
 * work (a transformer step's binary ops 7.5 -> 11.8 ms; measured).
 *
 * Before the library loads, where the user has not set them: OPENBLAS_NUM_THREADS=1, and
 * OPENBLAS_CORETYPE from the CPU's flags in /proc/cpuinfo (Debian's OpenBLAS 0.3.21 takes the
 * AVX-512 Sapphire Rapids VMs of our CI for a "Prescott" and runs its SSE3 kernels: 1024 x 1024
 * at ~33 GFLOP/s a core instead of ~150 with its SkylakeX ones; measured).
 *
 * Install it with `apt-get install libopenblas0-pthread` (Debian, Ubuntu) or your system's
 * OpenBLAS package; `.ci/run` does this where it can.
 */

import type { MatmulDims } from "../../backend.ts";
import { envVar, granted } from "../../env.ts";

const CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112;

/** cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc). */
const sgemmDef = <P extends "buffer" | "pointer">(p: P) =>
  ({
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      p,
      "i32",
      p,
      "i32",
      "f32",
      p,
      "i32",
    ],
    result: "void",
  }) as const;
const SYMBOLS = {
  cblas_sgemm: sgemmDef("buffer"),
  /** The same function on raw addresses (the pool's threads address the shared Wasm memory). */
  sgemm_at: { name: "cblas_sgemm", ...sgemmDef("pointer") },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Library names tried when $PAPERLAB_BLAS does not name one. */
const DEFAULT_NAMES: Record<string, string[]> = {
  linux: ["libopenblas.so.0", "libopenblas.so"],
  darwin: ["libopenblas.dylib", "libopenblas.0.dylib"],
  windows: ["libopenblas.dll", "openblas.dll"],
};

interface State {
  lib: Lib;
  /** The file or name it was loaded from. */
  library: string;
  /** OpenBLAS's kernel set ("SkylakeX", "Haswell", ...), null for other BLAS libraries. */
  core: string | null;
}

let state: State | null | undefined; // undefined: not tried yet; null: unavailable
let enabled = true;

/**
 * OpenBLAS's core type for this CPU from /proc/cpuinfo's flags (Linux x86-64 only), or null
 * where there is nothing to add to OpenBLAS's own detection.
 */
function coreType(): string | null {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return null;
  if (!granted({ name: "read", path: "/proc/cpuinfo" })) return null;
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/cpuinfo");
  } catch {
    return null;
  }
  const line = text.split("\n").find((l) => l.startsWith("flags"));
  if (!line) return null;
  const flags = new Set(line.split(":")[1].trim().split(/\s+/));
  const has = (...f: string[]) => f.every((x) => flags.has(x));
  if (has("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")) return "SkylakeX";
  if (has("avx2", "fma")) return "Haswell";
  return null;
}

/** Sets OpenBLAS's environment settings that the user left unset (read when it loads). */
function prepareOpenBlasEnv(): void {
  const set = (name: string, value: string | null) => {
    if (value === null || !granted({ name: "env", variable: name })) return;
    if (Deno.env.get(name) === undefined) Deno.env.set(name, value);
  };
  set("OPENBLAS_NUM_THREADS", "1");
  set("OPENBLAS_CORETYPE", coreType());
}

function load(): State | null {
  if (state !== undefined) return state;
  state = null;
  const choice = envVar("PAPERLAB_BLAS")?.trim() ?? "";
  if (["0", "off", "none", "false"].includes(choice.toLowerCase())) return null;
  const explicit = choice !== "" && choice.toLowerCase() !== "auto";
  if (typeof Deno.dlopen !== "function" || !granted({ name: "ffi" })) {
    if (explicit) {
      throw new Error(
        `PAPERLAB_BLAS=${choice}: loading a BLAS library needs FFI permission (--allow-ffi)`,
      );
    }
    return null;
  }
  const names = explicit ? [choice] : DEFAULT_NAMES[Deno.build.os] ?? [];
  prepareOpenBlasEnv();
  const errors: string[] = [];
  for (const name of names) {
    let lib: Lib;
    try {
      lib = Deno.dlopen(name, SYMBOLS);
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
      continue;
    }
    const corename = lib.symbols.openblas_get_corename?.();
    const core = corename ? Deno.UnsafePointerView.getCString(corename) : null;
    state = { lib, library: name, core };
    return state;
  }
  if (explicit) {
    throw new Error(
      `PAPERLAB_BLAS=${choice}: could not load a CBLAS library with cblas_sgemm (${
        errors.join("; ")
      }); unset it, or set it to 0 to use the portable Wasm kernel`,
    );
  }
  return null;
}

/** Turns the BLAS path on or off for this process (it is on wherever it loads). */
export function setBlas(on: boolean): void {
  enabled = on;
}

/** Whether matmuls go through a system BLAS here, and which. */
export function blasInfo(): {
  available: boolean;
  used: boolean;
  library: string | null;
  core: string | null;
} {
  const s = load();
  return {
    available: !!s,
    used: !!s && enabled,
    library: s?.library ?? null,
    core: s?.core ?? null,
  };
}

/** Whether the BLAS path is on (it loads here and setBlas(false) was not called). */
export function blasOn(): boolean {
  return enabled && !!load();
}

/** A batch of row-major A blocks against one B: one tall matrix, one call. */
export function foldsIntoOne(d: MatmulDims): boolean {
  return d.batch > 1 && d.bBatchStride === 0 && !d.transA && d.aBatchStride === d.m * d.k;
}

/** Writes an empty product (nothing) or one with k = 0 (zeros) and returns true; else false. */
export function trivialProduct(out: Float32Array, d: MatmulDims): boolean {
  const size = d.batch * d.m * d.n;
  if (size === 0) return true;
  if (d.k !== 0) return false;
  out.fill(0, 0, size);
  return true;
}

/** Throws unless the operands hold the extents a batched matmul reads and writes. */
export function checkExtents(A: Float32Array, B: Float32Array, out: Float32Array, d: MatmulDims) {
  const { batch, m, n, k, aBatchStride, bBatchStride } = d;
  const aLen = (batch - 1) * aBatchStride + m * k, bLen = (batch - 1) * bBatchStride + k * n;
  if (A.length < aLen || B.length < bLen || out.length < batch * m * n) {
    throw new Error(
      `matmul: operands hold ${A.length}, ${B.length} and ${out.length} floats, need ${aLen}, ${bLen}, ${
        batch * m * n
      }`,
    );
  }
}

/**
 * out[b] = op(A[b]) @ op(B[b]) as matmulKernel in ./matmul.ts, through cblas_sgemm on the
 * calling thread. Returns false (and writes nothing) where the BLAS path is off or missing.
 */
export function blasMatmul(
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
  d: MatmulDims,
): boolean {
  if (!enabled) return false;
  const s = load();
  if (!s) return false;
  if (trivialProduct(out, d)) return true;
  const { batch, m, n, k, transA, transB, aBatchStride, bBatchStride } = d;
  // The library reads and writes raw memory: check every extent first.
  checkExtents(A, B, out, d);
  const sgemm = s.lib.symbols.cblas_sgemm;
  const tA = transA ? CBLAS_TRANS : CBLAS_NO_TRANS, tB = transB ? CBLAS_TRANS : CBLAS_NO_TRANS;
  const lda = transA ? m : k, ldb = transB ? k : n;
  if (foldsIntoOne(d)) {
    sgemm(CBLAS_ROW_MAJOR, tA, tB, batch * m, n, k, 1, A, lda, B, ldb, 0, out, n);
    return true;
  }
  for (let b = 0; b < batch; b++) {
    const a = batch === 1 ? A : A.subarray(b * aBatchStride);
    const bb = batch === 1 ? B : B.subarray(b * bBatchStride);
    const c = batch === 1 ? out : out.subarray(b * m * n);
    sgemm(CBLAS_ROW_MAJOR, tA, tB, m, n, k, 1, a, lda, bb, ldb, 0, c, n);
  }
  return true;
}

/**
 * The pool's map function for matmul items through cblas_sgemm, on byte addresses in the
 * shared Wasm memory. Arguments: (a, b, c, count, r0, rStep, rows, block, n, k, transA,
 * transB, lda, ldb, aStep, bStep, cStep): item i of the `count` is C (rows_i x n) =
 * op(A) (rows_i x k) op(B) at a + i aStep, b + i bStep, c + i cStep, where rows_i = min(block,
 * rows - (r0 + i rStep)): batch items (rStep 0, block = rows = m) or blocks of one matrix's
 * rows. Every thread of the pool has this function (wasm/elementwise.ts, wasm/worker.ts) and
 * loads the library for itself, in the same process (so with the caller's permissions and
 * $PAPERLAB_BLAS); the caller posts such items only where blasOn() holds for it.
 */
export function sgemmItems(memory: WebAssembly.Memory): (...args: number[]) => void {
  let base: Deno.PointerObject | null = null;
  return (a, b, c, count, r0, rStep, rows, block, n, k, tA, tB, lda, ldb, aS, bS, cS) => {
    const s = load();
    if (!s) throw new Error("matmul: the system BLAS did not load in a pool thread");
    base ??= Deno.UnsafePointer.of(new Uint8Array(memory.buffer));
    const at = (addr: number) => Deno.UnsafePointer.offset(base!, addr);
    const transA = tA ? CBLAS_TRANS : CBLAS_NO_TRANS, transB = tB ? CBLAS_TRANS : CBLAS_NO_TRANS;
    for (let i = 0; i < count; i++) {
      const m = Math.min(block, rows - (r0 + i * rStep));
      const pa = at(a + i * aS), pb = at(b + i * bS), pc = at(c + i * cS);
      s.lib.symbols.sgemm_at(
        CBLAS_ROW_MAJOR,
        transA,
        transB,
        m,
        n,
        k,
        1,
        pa,
        lda,
        pb,
        ldb,
        0,
        pc,
        n,
      );
    }
  };
}
