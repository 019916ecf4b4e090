/**
 * Tensor lifetimes: reference-counted storage, scopes that free what they created, and the
 * `memory()` counters. GPU buffers are not garbage collected, so every tensor is freed either
 * explicitly (`dispose`, `using`) or by the innermost `scope` it was created in.
 */
import type { Backend, Buf } from "./backend.ts";
import { bytesPer, type DType } from "./dtype.ts";

/** A backend buffer shared by the tensors that view it (reshape shares storage). */
export class Storage {
  refs = 1;
  constructor(
    readonly backend: Backend,
    readonly buf: Buf,
    readonly dtype: DType,
    readonly size: number,
  ) {
    const c = counter(backend.name);
    c.buffers++;
    c.bytes += size * bytesPer(dtype);
  }
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs > 0) return;
    const c = counter(this.backend.name);
    c.buffers--;
    c.bytes -= this.size * bytesPer(this.dtype);
    this.backend.free(this.buf);
  }
}

/** What a disposable tensor needs to offer to be tracked. */
export interface Tracked {
  readonly isDisposed: boolean;
  readonly device: string;
  dispose(): void;
}

const counters = new Map<string, { tensors: number; buffers: number; bytes: number }>();
function counter(name: string) {
  let c = counters.get(name);
  if (!c) counters.set(name, c = { tensors: 0, buffers: 0, bytes: 0 });
  return c;
}

const scopes: Set<Tracked>[] = [];

/** Called by every new tensor: counts it and hands it to the innermost scope. */
export function track(t: Tracked): void {
  counter(t.device).tensors++;
  if (scopes.length) scopes[scopes.length - 1].add(t);
}

/** Called once when a tensor is disposed. */
export function untrack(t: Tracked): void {
  counter(t.device).tensors--;
  for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i].delete(t)) break;
}

/** Exempts a tensor from every enclosing scope's clean-up (it must then be disposed by hand). */
export function keep<T extends Tracked>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(v: unknown, out: Set<Tracked>, seen = new Set<unknown>()): void {
  if (v === null || typeof v !== "object" || seen.has(v)) return;
  seen.add(v);
  if ((v as { [TENSOR]?: true })[TENSOR]) {
    out.add(v as Tracked);
    return;
  }
  if (v instanceof Map) { for (const x of v.values()) collect(x, out, seen); }
  else if (Array.isArray(v)) { for (const x of v) collect(x, out, seen); }
  else if (Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out, seen);
  }
}

/** Brand that marks tensors for `scope`'s search of returned values. */
export const TENSOR: unique symbol = Symbol.for("paperlab.tensor");

/**
 * Runs `fn` and disposes every tensor it created, except the tensors in its result (found in
 * arrays, plain objects and Maps) and those passed to `keep`. The function must be
 * synchronous: tensors created after an `await` would escape the scope.
 */
export function scope<T>(fn: () => T): T {
  const mine = new Set<Tracked>();
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of mine) if (!t.isDisposed) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of mine) if (!t.isDisposed) t.dispose();
    throw new Error("scope: fn returned a Promise; scopes take synchronous functions");
  }
  const out = new Set<Tracked>();
  collect(result, out);
  for (const t of mine) if (!out.has(t) && !t.isDisposed) t.dispose();
  // Results survive into the enclosing scope, which then owns them.
  if (scopes.length) { for (const t of out) if (mine.has(t)) scopes[scopes.length - 1].add(t); }
  return result;
}

/** Alias of `scope` (tfjs's name). */
export const tidy: typeof scope = scope;

export interface MemoryInfo {
  /** Live (undisposed) tensors on all backends. */
  tensors: number;
  /** Bytes held by live buffers on all backends. */
  bytes: number;
  /** The same counts per backend name, with the number of buffers. */
  backends: Record<string, { tensors: number; buffers: number; bytes: number }>;
}

/** Live tensors and bytes, in total and per backend. */
export function memory(): MemoryInfo {
  const backends: MemoryInfo["backends"] = {};
  let tensors = 0, bytes = 0;
  for (const [name, c] of counters) {
    backends[name] = { ...c };
    tensors += c.tensors;
    bytes += c.bytes;
  }
  return { tensors, bytes, backends };
}
