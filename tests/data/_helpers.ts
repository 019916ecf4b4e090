/** Small assertions shared by the data tests. */

import assert from "node:assert/strict";

/** The bytes of a typed array (for exact comparisons across types). */
export function bytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** True when two typed arrays hold identical bytes. */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = bytes(a), y = bytes(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Occurrences of each label 0..k-1. */
export function counts(y: ArrayLike<number>, k: number): number[] {
  const c = new Array(k).fill(0);
  for (let i = 0; i < y.length; i++) c[y[i]]++;
  return c;
}

/** Asserts every class count is floor(n/k) or ceil(n/k). */
export function assertBalanced(y: ArrayLike<number>, k: number, what = "labels"): void {
  const c = counts(y, k);
  const lo = Math.floor(y.length / k), hi = Math.ceil(y.length / k);
  assert.ok(c.every((v) => v >= lo && v <= hi), `${what} not balanced: ${c}`);
}

/** Asserts `fn` throws an Error whose message matches `re`. */
export function assertThrowsMatch(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof Error && re.test(e.message));
}
