/**
 * The generated matmul kernel: one Wasm function that multiplies a packed block of A by a
 * packed block of B into C, built from a register-blocked MR x NR SIMD micro-kernel.
 *
 * Packed layouts (see gemm.ts, which writes them):
 * - A block: `mTiles` panels, each `kc` steps of MR consecutive floats (A[i0..i0+MR, p]).
 * - B block: `nTiles` panels, each `kc` steps of NR consecutive floats (B[p, j0..j0+NR]).
 * Both are zero-padded to whole panels, and C is padded to whole tiles, so the kernel never
 * handles edges: the padded rows and columns of C are simply not copied out.
 *
 * Micro-kernel: MR x NR accumulators live in MR * NR/4 v128 registers. Each k step loads NR/4
 * vectors of B and, for each of the MR rows, splats one float of A and does NR/4 fused
 * multiply-adds. With MR = 6, NR = 8 that is 12 accumulators + 2 B vectors + 1 splat = 15 of
 * the 16 xmm registers on x86-64 (V8 keeps one as scratch), and 12 FMAs per 8 loads. All
 * products are accumulated (no skipping of zeros), so NaN and Inf propagate as in the scalar
 * loop. Accumulation is in float32, as PyTorch does on CPU.
 */
import { buildModule, Fn, I32, type MemoryImport, V128 } from "./emit.ts";
import { packFunction } from "./pack.ts";

/**
 * Tile size. Measured on one core here (x86-64 with FMA, f32x4.relaxed_madd), GFLOP/s of the
 * kernel on L2-resident panels: 6x8 ~39-40, 5x8 ~38, 4x8 ~36, 2x16 ~37, 4x12 ~32, 8x8 ~33
 * (spills); a pure-FMA loop peaks at ~46.5.
 */
export const MR = 6;
export const NR = 8;
const UNROLL = 8; // k steps per iteration of the main k loop (4: ~1% slower, 1: ~15%)

/** Whether this runtime validates a tiny module using relaxed SIMD's f32x4.relaxed_madd. */
export function hasRelaxedSimd(): boolean {
  const f = new Fn([], [V128]);
  f.v128Zero().v128Zero().v128Zero().f32x4RelaxedMadd();
  return validate({ f }, false);
}

/** Whether this runtime supports 128-bit SIMD at all. */
export function hasSimd(): boolean {
  const f = new Fn([], [V128]);
  f.v128Zero().v128Zero().f32x4Add();
  return validate({ f }, false);
}

/** Whether shared Wasm memory (threads) works here. */
export function hasSharedMemory(): boolean {
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return typeof SharedArrayBuffer !== "undefined" && typeof Atomics !== "undefined";
  } catch {
    return false;
  }
}

function validate(fns: Record<string, Fn>, shared: boolean): boolean {
  try {
    return WebAssembly.validate(buildModule(fns, { initial: 1, maximum: 1, shared }));
  } catch {
    return false;
  }
}

/**
 * gemm(ap, bp, c, mTiles, nTiles, kc, ldc, accumulate): for every tile (it, jt),
 * C[it*MR.., jt*NR..] (=|+=) Apanel[it] x Bpanel[jt] over kc steps. Addresses and ldc (the
 * row pitch of C) are in bytes. Tiles are visited column-panel-major: one B panel (kc * NR
 * floats, 8 KiB at kc = 256) stays in L1 while all A panels of the block stream from L2.
 */
export function gemmFunction(relaxed: boolean, mr = MR, nr = NR): Fn {
  const NV = nr / 4; // v128 vectors per tile row
  const f = new Fn([I32, I32, I32, I32, I32, I32, I32, I32]);
  const [AP, BP, C, MT, NT, KC, LDC, ACCUM] = [0, 1, 2, 3, 4, 5, 6, 7];
  const jt = f.local(I32), it = f.local(I32), pa = f.local(I32), pb = f.local(I32);
  const cRow = f.local(I32), cTile = f.local(I32), kk = f.local(I32), bPanel = f.local(I32);
  const acc: number[][] = [];
  for (let i = 0; i < mr; i++) acc.push(Array.from({ length: NV }, () => f.local(V128)));
  const bv = Array.from({ length: NV }, () => f.local(V128));
  const av = f.local(V128);

  /** Emits `steps` unrolled k steps reading at pa/pb; offsets are compile-time constants. */
  const kSteps = (steps: number) => {
    for (let u = 0; u < steps; u++) {
      for (let v = 0; v < NV; v++) f.get(pb).v128Load((u * nr + 4 * v) * 4).set(bv[v]);
      for (let i = 0; i < mr; i++) {
        f.get(pa).load32Splat((u * mr + i) * 4).set(av);
        for (let v = 0; v < NV; v++) {
          if (relaxed) f.get(av).get(bv[v]).get(acc[i][v]).f32x4RelaxedMadd();
          else f.get(av).get(bv[v]).f32x4Mul().get(acc[i][v]).f32x4Add();
          f.set(acc[i][v]);
        }
      }
    }
    f.inc(pa, steps * mr * 4).inc(pb, steps * nr * 4);
  };
  /** `kk = count; while (kk-- > 0) body` (count pushed by the caller). */
  const countedLoop = (body: () => void) => {
    f.set(kk).get(kk).if_().loop();
    body();
    f.get(kk).i32(1).sub().tee(kk).brIf(0).end().end();
  };

  // for jt in 0..nTiles (B panel jt), for it in 0..mTiles (A panel it)
  f.get(BP).set(bPanel).i32(0).set(jt).block().loop();
  f.get(jt).get(NT).geU().brIf(1);
  f.get(C).get(jt).i32(nr * 4).mul().add().set(cTile);
  f.get(AP).set(pa).i32(0).set(it).block().loop();
  f.get(it).get(MT).geU().brIf(1);
  f.get(bPanel).set(pb);
  // Load C (accumulate) or start from zero.
  f.get(ACCUM).if_().get(cTile).set(cRow);
  for (let i = 0; i < mr; i++) {
    for (let v = 0; v < NV; v++) f.get(cRow).v128Load(16 * v).set(acc[i][v]);
    f.get(cRow).get(LDC).add().set(cRow);
  }
  f.else_();
  for (let i = 0; i < mr; i++) for (let v = 0; v < NV; v++) f.v128Zero().set(acc[i][v]);
  f.end();
  // k loop: kc / UNROLL unrolled iterations, then the kc % UNROLL rest one at a time.
  f.get(KC).i32(Math.log2(UNROLL)).shrU();
  countedLoop(() => kSteps(UNROLL));
  f.get(KC).i32(UNROLL - 1).and();
  countedLoop(() => kSteps(1));
  // Store the tile, then step to the next A panel (pa already points at it) and C tile.
  f.get(cTile).set(cRow);
  for (let i = 0; i < mr; i++) {
    for (let v = 0; v < NV; v++) f.get(cRow).get(acc[i][v]).v128Store(16 * v);
    f.get(cRow).get(LDC).add().set(cRow);
  }
  f.get(cTile).get(LDC).i32(mr).mul().add().set(cTile);
  f.inc(it, 1).br(0).end().end();
  // Next B panel.
  f.get(bPanel).get(KC).i32(nr * 4).mul().add().set(bPanel);
  f.inc(jt, 1).br(0).end().end();
  return f;
}

/** The kernel module's bytes (gemm, packA, packB), importing a memory with these limits. */
export function buildGemmModule(relaxed: boolean, memory: MemoryImport): Uint8Array<ArrayBuffer> {
  return buildModule(
    { gemm: gemmFunction(relaxed), packA: packFunction(MR), packB: packFunction(NR) },
    memory,
  );
}
