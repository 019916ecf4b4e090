/**
 * The blocked GEMM driver around the generated kernel (kernel.ts), shared by the calling
 * thread and the pool's workers. It follows the GotoBLAS/BLIS loop nest:
 *
 *   for jc in cols step NC                      (B block: KC x NC, packed once, ~1 MiB in L2)
 *     for pc in 0..k step KC                    (one K slice; C accumulates over slices)
 *       pack B[pc.., jc..] into NR-wide panels
 *       for ic in rows step MC                  (A block: MC x KC, packed, ~96 KiB in L2)
 *         pack A[ic.., pc..] into MR-tall panels
 *         kernel: every MR x NR tile of C[ic.., jc..] (B panel in L1, A panels from L2)
 *
 * Packing (generated Wasm, pack.ts) reads each operand through (row, column) strides, so a
 * transposed operand is only a different stride pair: transA/transB cost the same as the
 * forward case. Packing zero-pads the last panels, and C (in Wasm memory) is padded to whole
 * MR x NR tiles, so the kernel has no edge cases; the caller copies the m x n part out.
 * With several threads and one matrix, B is instead packed whole once and shared (packSlice,
 * runPacked; see pool.ts).
 *
 * Block sizes: L1 is 48 KiB and L2 2 MiB per core here; MC 48-192, KC 256-512 and NC 512-2048
 * all measured within a few percent of each other, so these are middle values.
 */
import { MR, NR } from "./kernel.ts";

export const MC = 96; // rows of A per packed block (multiple of MR)
export const KC = 256; // depth of one K slice
export const NC = 1024; // columns of B per packed block (multiple of NR)

/** Floats of scratch (packed A and B blocks) each thread needs. */
export const SCRATCH_FLOATS = MC * KC + KC * NC;

/**
 * Memory layout: the pool's control block at address 0, then one scratch area per thread
 * (thread 0 is the caller), then the operands and C (see mod.ts).
 */
export const CONTROL_BYTES = 4096;
export function scratchAddress(thread: number): number {
  return CONTROL_BYTES + thread * SCRATCH_FLOATS * 4;
}

/** The kernel module's exports (kernel.ts, pack.ts); addresses and strides in bytes. */
export interface KernelExports {
  gemm(
    ap: number,
    bp: number,
    c: number,
    mT: number,
    nT: number,
    kc: number,
    ldc: number,
    acc: number,
  ): void;
  packA(src: number, rs: number, cs: number, rows: number, cols: number, dst: number): void;
  packB(src: number, rs: number, cs: number, rows: number, cols: number, dst: number): void;
}

/**
 * One matmul, described by numbers only (so it can be posted to workers through shared
 * memory). Offsets and strides count floats in the Wasm memory: A[b](i, p) is at
 * aOff + b * aBatch + i * rsA + p * csA, likewise B[b](p, j); C is at byte address cAddr as
 * `batch` blocks of mPad x nPad floats.
 */
export interface Problem {
  batch: number;
  m: number;
  n: number;
  k: number;
  aOff: number;
  aBatch: number;
  rsA: number;
  csA: number;
  bOff: number;
  bBatch: number;
  rsB: number;
  csB: number;
  cAddr: number;
  mPad: number;
  nPad: number;
  /** Byte address of B packed whole (all K slices), when threads share one packing. */
  pbAddr: number;
}

/** The problem's fields in a fixed order, for the shared control block. */
export const PROBLEM_KEYS: (keyof Problem)[] = [
  "batch",
  "m",
  "n",
  "k",
  "aOff",
  "aBatch",
  "rsA",
  "csA",
  "bOff",
  "bBatch",
  "rsB",
  "csB",
  "cAddr",
  "mPad",
  "nPad",
  "pbAddr",
];

/** One thread's view of the kernel: its packing scratch and the Wasm function. */
export class GemmWorker {
  private heap: Float32Array;
  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly k: KernelExports,
    private readonly scratch: number, // byte address of this thread's scratch
  ) {
    this.heap = new Float32Array(memory.buffer);
  }

  /** The memory as floats, refreshed if it grew since the last call. */
  view(): Float32Array {
    if (this.heap.buffer.byteLength !== this.memory.buffer.byteLength) {
      this.heap = new Float32Array(this.memory.buffer);
    }
    return this.heap;
  }

  /** C[b][i0:i1, j0:j1] for batch items b0..b1 (i0, j0 multiples of MR, NR). */
  run(
    P: Problem,
    b0: number,
    b1: number,
    i0: number,
    i1: number,
    j0: number,
    j1: number,
  ): void {
    const { packA, packB, gemm } = this.k;
    const ap = this.scratch, bp = ap + MC * KC * 4;
    const ldc = P.nPad * 4;
    for (let bt = b0; bt < b1; bt++) {
      const aBase = 4 * (P.aOff + bt * P.aBatch), bBase = 4 * (P.bOff + bt * P.bBatch);
      const cBase = P.cAddr + bt * P.mPad * ldc;
      for (let jc = j0; jc < j1; jc += NC) {
        const nc = Math.min(NC, j1 - jc), nTiles = Math.ceil(nc / NR);
        for (let pc = 0; pc < P.k; pc += KC) {
          const kc = Math.min(KC, P.k - pc);
          packB(bBase + 4 * (pc * P.rsB + jc * P.csB), 4 * P.csB, 4 * P.rsB, nc, kc, bp);
          for (let ic = i0; ic < i1; ic += MC) {
            const mc = Math.min(MC, i1 - ic);
            packA(aBase + 4 * (ic * P.rsA + pc * P.csA), 4 * P.rsA, 4 * P.csA, mc, kc, ap);
            const c = cBase + ic * ldc + jc * 4;
            gemm(ap, bp, c, Math.ceil(mc / MR), nTiles, kc, ldc, pc > 0 ? 1 : 0);
          }
        }
      }
    }
  }

  /**
   * Packs K slice `s` of B[bt] (all n columns) into the shared packed B at P.pbAddr, where
   * slice s starts at float bt * k * nPad + s * KC * nPad and panel t of it at t * kc * NR.
   */
  packSlice(P: Problem, bt: number, s: number): void {
    const pc = s * KC, kc = Math.min(KC, P.k - pc);
    const src = 4 * (P.bOff + bt * P.bBatch + pc * P.rsB);
    this.k.packB(src, 4 * P.csB, 4 * P.rsB, P.n, kc, P.pbAddr + 4 * (bt * P.k + pc) * P.nPad);
  }

  /** C[bt][i0:i1, j0:j1] against the shared packed B (every slice packed beforehand). */
  runPacked(P: Problem, bt: number, i0: number, i1: number, j0: number, j1: number): void {
    const { packA, gemm } = this.k;
    const ap = this.scratch, ldc = P.nPad * 4;
    const aBase = 4 * (P.aOff + bt * P.aBatch), cBase = P.cAddr + bt * P.mPad * ldc;
    for (let pc = 0; pc < P.k; pc += KC) {
      const kc = Math.min(KC, P.k - pc), slice = P.pbAddr + 4 * (bt * P.k + pc) * P.nPad;
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = Math.min(MC, i1 - ic);
        packA(aBase + 4 * (ic * P.rsA + pc * P.csA), 4 * P.rsA, 4 * P.csA, mc, kc, ap);
        for (let jc = j0; jc < j1; jc += NC) {
          const nTiles = Math.ceil(Math.min(NC, j1 - jc) / NR), c = cBase + ic * ldc + jc * 4;
          gemm(ap, slice + 4 * jc * kc, c, Math.ceil(mc / MR), nTiles, kc, ldc, pc > 0 ? 1 : 0);
        }
      }
    }
  }
}
