/**
 * The one WebAssembly memory every Wasm kernel of the CPU backend works in (matmul, its
 * worker pool, the row kernels, the elementwise kernels), and the heap that hands out blocks
 * of it.
 *
 * Layout: the matmul pool's control block and each thread's packing scratch at the bottom
 * (gemm.ts's scratchAddress, for up to MAX_THREADS threads), then the heap.
 *
 * Where the memory can be shared (SharedArrayBuffer), the CPU backend keeps its large
 * tensors here, as typed-array views into the memory (`heapArray`): the kernels then read
 * and write them in place, with no copies in and out. A shared memory's views stay valid
 * when it grows (the old SharedArrayBuffer is never detached), which is what makes this
 * safe. Without shared memory the heap only serves the kernels' temporary blocks, and
 * tensors stay in ordinary typed arrays.
 *
 * Blocks are freed explicitly (the backend's `free`, when a tensor's storage is released),
 * or, for a view the program dropped without freeing, when the garbage collector collects
 * the view (a FinalizationRegistry). The memory never shrinks. Freed blocks are first kept
 * whole for the next request of their size (up to 128 MiB of them); past that, or when a
 * request finds no room, they are merged with free neighbours, and requests take the
 * smallest larger free block, split. A full heap makes `heapArray` return null, so the caller
 * falls back to ordinary arrays.
 */
import type { MemoryImport } from "./emit.ts";
import { scratchAddress } from "./gemm.ts";
import { hasSharedMemory } from "./kernel.ts";

const PAGE = 65536;
/** Threads the matmul pool may use (each has a scratch area below the heap). */
export const MAX_THREADS = 16;
/** Blocks are aligned to (and sized in multiples of) this many bytes. */
const ALIGN = 64;
const align = (bytes: number) => Math.ceil(bytes / ALIGN) * ALIGN;
/** Freed blocks kept whole for reuse, at most this many bytes (then all are merged). */
const CACHE_BYTES = 128 * 2 ** 20;

/** Free and live blocks of the memory above `base`, by byte address. */
export class Heap {
  #top: number; // the first byte never handed out
  readonly #live = new Map<number, number>(); // address -> size
  readonly #freeAt = new Map<number, number>(); // address -> size
  readonly #freeEnd = new Map<number, number>(); // end address -> address
  readonly #bySize = new Map<number, Set<number>>(); // size -> addresses
  // Freed blocks, kept whole by size for the next request of that size (a training step
  // frees and asks for the same sizes every step), merged into the free lists by trim().
  readonly #cache = new Map<number, number[]>();
  #cached = 0;
  readonly #buffers = new WeakSet<ArrayBufferLike>(); // the memory's buffers (one per growth)
  readonly #gc = new FinalizationRegistry<number>((addr) => this.release(addr));

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly base: number,
    readonly maxBytes: number,
    readonly shared: boolean,
  ) {
    this.#top = align(base);
    this.#buffers.add(memory.buffer);
  }

  /** Bytes handed out and not yet freed (tests, diagnostics). */
  liveBytes(): number {
    let n = 0;
    for (const s of this.#live.values()) n += s;
    return n;
  }

  /** The heap's extent: the highest address handed out so far (it never shrinks below). */
  top(): number {
    return this.#top;
  }

  /** A block of at least `bytes` bytes (aligned), or -1 when the memory is full. */
  alloc(bytes: number): number {
    const size = align(Math.max(bytes, 1));
    const hit = this.#cache.get(size)?.pop();
    if (hit !== undefined) {
      this.#cached -= size;
      this.#live.set(hit, size);
      return hit;
    }
    let addr = this.#fromFree(size);
    if (addr < 0 && this.#cached > 0) {
      this.trim();
      addr = this.#fromFree(size);
    }
    if (addr >= 0) this.#live.set(addr, size);
    return addr;
  }

  /** A block from the free lists (exact, else the smallest larger one split) or the top. */
  #fromFree(size: number): number {
    const exact = this.#bySize.get(size);
    if (exact?.size) {
      const addr = exact.values().next().value as number;
      this.#unfree(addr, size);
      return addr;
    }
    let best = -1, bestSize = Infinity;
    for (const [a, s] of this.#freeAt) {
      if (s > size && s < bestSize) [best, bestSize] = [a, s];
    }
    if (best >= 0) {
      this.#unfree(best, bestSize);
      this.#addFree(best + size, bestSize - size);
      return best;
    }
    // (A vector read just past the last block must stay inside the memory: keep ALIGN bytes
    // of headroom.)
    const need = this.#top + size + ALIGN;
    if (need > this.maxBytes || !this.#grow(need)) return -1;
    const addr = this.#top;
    this.#top += size;
    return addr;
  }

  /** Frees a block from `alloc`; false (and nothing done) if `addr` is not a live block. */
  release(addr: number): boolean {
    const size = this.#live.get(addr);
    if (size === undefined) return false;
    this.#live.delete(addr);
    let list = this.#cache.get(size);
    if (!list) this.#cache.set(size, list = []);
    list.push(addr);
    this.#cached += size;
    if (this.#cached > CACHE_BYTES) this.trim();
    return true;
  }

  /** Merges every cached free block into the free lists (neighbours joined, top lowered). */
  trim(): void {
    for (const [size, list] of this.#cache) for (const addr of list) this.#merge(addr, size);
    this.#cache.clear();
    this.#cached = 0;
  }

  #merge(addr: number, size: number): void {
    let start = addr, end = addr + size;
    const before = this.#freeEnd.get(start);
    if (before !== undefined) {
      this.#unfree(before, start - before);
      start = before;
    }
    const after = this.#freeAt.get(end);
    if (after !== undefined) {
      this.#unfree(end, after);
      end += after;
    }
    if (end === this.#top) this.#top = start; // the block at the top goes back to the top
    else this.#addFree(start, end - start);
  }

  /**
   * A typed array of n values in a new block, or null (an unshared memory, whose views would
   * be detached by growth, or a full heap). `slackBytes` more are reserved after its end (for
   * a kernel that overhangs it). Freed by `give`, or when collected.
   */
  array<T extends Float32Array | Int32Array | Uint8Array>(
    Ctor: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number },
    n: number,
    slackBytes = 0,
  ): T | null {
    if (!this.shared) return null;
    const addr = this.alloc(n * Ctor.BYTES_PER_ELEMENT + slackBytes);
    if (addr < 0) return null;
    const a = new Ctor(this.memory.buffer, addr, n);
    this.#gc.register(a, addr, a);
    return a;
  }

  /** Frees the block of an array from `array`; false if `a` is not one (nothing done). */
  give(a: ArrayBufferView): boolean {
    if (!this.#gc.unregister(a)) return false;
    return this.release(a.byteOffset);
  }

  /** The byte address of `a`'s data if it lies in this memory, else -1. */
  addressOf(a: ArrayBufferView): number {
    return this.#buffers.has(a.buffer) ? a.byteOffset : -1;
  }

  /** Bytes from `a`'s start to the end of its block, if `a` starts a live block; else -1. */
  room(a: ArrayBufferView): number {
    if (this.addressOf(a) < 0) return -1;
    return this.#live.get(a.byteOffset) ?? -1;
  }

  /**
   * Whether `a` starts a live block with room for n values rounded up to groups of four: a
   * kernel writing four values at a time may write it (the overhang stays in the block).
   */
  wholeVectors(a: ArrayBufferView, n: number): boolean {
    return this.room(a) >= Math.ceil(n / 4) * 4 * (a as Uint8Array).BYTES_PER_ELEMENT;
  }

  #f32: Float32Array | null = null;
  /** The whole memory as floats (a new view after growth). */
  f32(): Float32Array {
    if (this.#f32?.length !== this.memory.buffer.byteLength / 4) {
      this.#f32 = new Float32Array(this.memory.buffer);
    }
    return this.#f32;
  }

  #grow(bytes: number): boolean {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return true;
    const pages = Math.ceil((bytes - have) / PAGE);
    const room = this.maxBytes / PAGE - have / PAGE;
    try {
      // Grow by at least a quarter, so a growing workload does not grow page by page.
      this.memory.grow(Math.min(room, Math.max(pages, Math.ceil(have / PAGE / 4))));
    } catch {
      return false; // the system refused the memory
    }
    this.#buffers.add(this.memory.buffer);
    return true;
  }

  #addFree(addr: number, size: number): void {
    this.#freeAt.set(addr, size);
    this.#freeEnd.set(addr + size, addr);
    let set = this.#bySize.get(size);
    if (!set) this.#bySize.set(size, set = new Set());
    set.add(addr);
  }

  #unfree(addr: number, size: number): void {
    this.#freeAt.delete(addr);
    this.#freeEnd.delete(addr + size);
    const set = this.#bySize.get(size)!;
    set.delete(addr);
    if (!set.size) this.#bySize.delete(size);
  }
}

export interface WasmMemory {
  memory: WebAssembly.Memory;
  shared: boolean;
  /** The memory's maximum in pages (modules importing it declare the same). */
  maxPages: number;
  heap: Heap;
}

/** How a module built for this memory declares its import (the memory's size now). */
export function memoryImport(m: WasmMemory): MemoryImport {
  return { initial: m.memory.buffer.byteLength / PAGE, maximum: m.maxPages, shared: m.shared };
}

let state: WasmMemory | null | undefined; // undefined: not tried; null: no Wasm here

/** The kernels' memory, created on first use; null where WebAssembly is missing. */
export function wasmMemory(): WasmMemory | null {
  if (state !== undefined) return state;
  state = null;
  if (typeof WebAssembly === "undefined") return null;
  const base = align(scratchAddress(MAX_THREADS));
  const initial = Math.ceil(base / PAGE) + 16;
  const canShare = hasSharedMemory();
  for (const [shared, maxPages] of [[true, 32768], [true, 8192], [false, 32768]] as const) {
    if (shared && !canShare) continue;
    try {
      const memory = new WebAssembly.Memory({ initial, maximum: maxPages, shared });
      state = { memory, shared, maxPages, heap: new Heap(memory, base, maxPages * PAGE, shared) };
      break;
    } catch { /* try a smaller or unshared memory */ }
  }
  return state;
}

/** A typed array for the CPU backend in the shared heap, or null (see Heap.array). */
export function heapArray(dtype: "float32", n: number, slackBytes?: number): Float32Array | null;
export function heapArray(
  dtype: "float32" | "int32" | "bool",
  n: number,
  slackBytes?: number,
): Float32Array | Int32Array | Uint8Array | null;
export function heapArray(
  dtype: "float32" | "int32" | "bool",
  n: number,
  slackBytes = 0,
): Float32Array | Int32Array | Uint8Array | null {
  const heap = wasmMemory()?.heap;
  if (!heap) return null;
  return dtype === "float32"
    ? heap.array(Float32Array, n, slackBytes)
    : dtype === "int32"
    ? heap.array(Int32Array, n, slackBytes)
    : heap.array(Uint8Array, n, slackBytes);
}

/** Returns a heap array's block (true), or false if `a` is not a live heap array. */
export function heapGive(a: ArrayBufferView): boolean {
  return state?.heap.give(a) ?? false;
}
