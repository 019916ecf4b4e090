/**
 * Shared helpers for the core op tests: the backend choice, fixture loading (with the
 * "nan"/"inf"/"-inf" encoding of tests/fixtures/make_core_fixtures.py), tensors from encoded
 * fixtures, and closeness checks whose messages name the case, the max error and its index.
 *
 * The backend comes from $PAPERLAB_BACKEND (default cpu), through the public API only, so the
 * same tests run unchanged on every backend.
 */
import { type DType, setBackend, type Tensor, tensor } from "../../mod.ts";

await setBackend(Deno.env.get("PAPERLAB_BACKEND") ?? "cpu");

/** A fixture tensor: flat data (non-finite floats as strings), shape and dtype. */
export interface Enc {
  data: (number | string | boolean)[];
  shape: number[];
  dtype: DType;
}

/** A fixture input: an encoded tensor and whether it requires grad. */
export interface EncInput extends Enc {
  requiresGrad: boolean;
}

export interface Tol {
  rtol: number;
  atol: number;
}

/** float32 defaults: |actual - expected| <= atol + rtol * |expected|. */
export const DEFAULT_TOL: Tol = { rtol: 1e-4, atol: 1e-5 };

/** Reads tests/fixtures/<name> as JSON. */
export async function loadFixture<T = any>(name: string): Promise<T> {
  const url = new URL(`../fixtures/${name}`, import.meta.url);
  return JSON.parse(await Deno.readTextFile(url)) as T;
}

/** A number from the fixture encoding: "nan", "inf", "-inf", booleans, or numbers. */
export function decodeNum(v: unknown): number {
  if (v === "nan") return NaN;
  if (v === "inf") return Infinity;
  if (v === "-inf") return -Infinity;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "number") return v;
  throw new Error(`decodeNum: cannot decode ${JSON.stringify(v)}`);
}

/** The flat values of an encoded tensor as numbers. */
export function decodeData(e: Enc): number[] {
  return e.data.map(decodeNum);
}

/** A tensor (on the current backend) from an encoded fixture tensor. */
export function fromEnc(e: Enc, requiresGrad = false): Tensor {
  const vals = decodeData(e);
  const data = e.dtype === "float32"
    ? Float32Array.from(vals)
    : e.dtype === "int32"
    ? Int32Array.from(vals)
    : Uint8Array.from(vals);
  return tensor(data, { dtype: e.dtype, shape: [...e.shape], requiresGrad });
}

function fmt(v: number): string {
  return Object.is(v, -0) ? "-0" : String(v);
}

/**
 * Asserts two flat arrays agree: NaN only where NaN is expected, infinities exactly, exact
 * equality for integer/bool data (`exact`), else within tol. On failure the message names
 * `what`, the number of mismatches, the largest error and its index.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  tol: Tol = DEFAULT_TOL,
  exact = false,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  let bad = 0, worst = -1, worstErr = -1, firstSpecial = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a) || !Number.isFinite(e) || !Number.isFinite(a)) {
      const same = (Number.isNaN(e) && Number.isNaN(a)) || a === e;
      if (!same) {
        bad++;
        if (firstSpecial < 0) firstSpecial = i;
      }
      continue;
    }
    const err = Math.abs(a - e);
    const ok = exact ? a === e : err <= tol.atol + tol.rtol * Math.abs(e);
    if (!ok) bad++;
    if (!ok && err > worstErr) [worst, worstErr] = [i, err];
  }
  if (bad === 0) return;
  const at = worst >= 0 ? worst : firstSpecial;
  const err = worst >= 0 ? worstErr : NaN;
  const rule = exact ? "exact" : `rtol ${tol.rtol}, atol ${tol.atol}`;
  throw new Error(
    `${what}: ${bad} of ${expected.length} values differ (${rule}); max abs error ${err} ` +
      `at index ${at}: got ${fmt(actual[at])}, expected ${fmt(expected[at])}` +
      (firstSpecial >= 0 && firstSpecial !== at
        ? `; non-finite mismatch at index ${firstSpecial}: got ${fmt(actual[firstSpecial])}, ` +
          `expected ${fmt(expected[firstSpecial])}`
        : ""),
  );
}

/** Asserts a tensor matches an encoded expectation: dtype and shape exactly, then values. */
export async function assertTensorClose(
  actual: Tensor,
  expected: Enc,
  what: string,
  tol: Tol = DEFAULT_TOL,
): Promise<void> {
  if (actual.dtype !== expected.dtype) {
    throw new Error(`${what}: dtype ${actual.dtype}, expected ${expected.dtype}`);
  }
  if (actual.shape.join() !== expected.shape.join()) {
    throw new Error(`${what}: shape [${actual.shape}], expected [${expected.shape}]`);
  }
  const data = await actual.data();
  assertClose(data, decodeData(expected), what, tol, expected.dtype !== "float32");
}

/** A generator of deterministic uniform floats in [lo, hi) (a linear congruential generator). */
export function lcgRand(seed: number): (n: number, lo?: number, hi?: number) => Float32Array {
  return (n, lo = -1, hi = 1) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
      a[i] = lo + (hi - lo) * ((seed >>> 8) / (1 << 24));
    }
    return a;
  };
}
