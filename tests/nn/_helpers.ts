/**
 * Helpers for the nn / optim tests: the backend choice ($PAPERLAB_BACKEND, default cpu), the
 * PyTorch fixture (tests/fixtures/nn_optim.json, made by make_nn_fixtures.py), tensors from
 * its encoding, and closeness checks that name the case and the worst element.
 */
import assert from "node:assert/strict";
import { setBackend, type Tensor, tensor } from "../../mod.ts";

await setBackend(Deno.env.get("PAPERLAB_BACKEND") ?? "cpu");

/** A fixture tensor: flat data (non-finite floats as strings), shape, dtype if not float32. */
export interface Enc {
  shape: number[];
  data: (number | string)[];
  dtype?: "int32" | "bool";
}

const num = (v: number | string): number =>
  v === "nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : Number(v);

/** A tensor from a fixture tensor (float32 unless the fixture says int32 or bool). */
export function fromEnc(e: Enc, o: { requiresGrad?: boolean } = {}): Tensor {
  const vals = e.data.map(num);
  const dtype = e.dtype ?? "float32";
  const data = dtype === "float32" ? Float32Array.from(vals) : Int32Array.from(vals);
  return tensor(data, { shape: [...e.shape], dtype, requiresGrad: o.requiresGrad });
}

/** Fixture state dicts as tensors. */
export function stateFrom(sd: Record<string, Enc>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, fromEnc(v)]));
}

let fixture: any;
/** tests/fixtures/nn_optim.json (read once). */
export async function nnFixture(): Promise<any> {
  fixture ??= JSON.parse(
    await Deno.readTextFile(new URL("../fixtures/nn_optim.json", import.meta.url)),
  );
  return fixture;
}

/** |a - e| <= atol + rtol |e| elementwise (NaN only where NaN is expected). */
export function assertCloseArr(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  tol: { rtol?: number; atol?: number } = {},
): void {
  const rtol = tol.rtol ?? 1e-4, atol = tol.atol ?? 1e-5;
  assert.equal(
    actual.length,
    expected.length,
    `${what}: ${actual.length} values, expected ${expected.length}`,
  );
  let worst = -1, worstErr = 0, bad = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = Number.isNaN(e)
      ? Number.isNaN(a)
      : !Number.isFinite(e)
      ? a === e
      : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      bad++;
      const err = Math.abs(a - e);
      if (worst < 0 || err > worstErr || Number.isNaN(err)) [worst, worstErr] = [i, err];
    }
  }
  assert.ok(
    bad === 0,
    `${what}: ${bad}/${expected.length} values differ; worst at ${worst}: got ${
      actual[worst]
    }, expected ${expected[worst]}`,
  );
}

/** Compares a tensor with a fixture tensor (shape and values). */
export async function assertCloseEnc(
  t: Tensor,
  e: Enc,
  what: string,
  tol?: { rtol?: number; atol?: number },
): Promise<void> {
  assert.deepEqual([...t.shape], e.shape, `${what}: shape [${t.shape}], expected [${e.shape}]`);
  assertCloseArr(await t.data(), e.data.map(num), what, tol);
}

/** Sample mean and (population) variance of the values of t. */
export async function moments(t: Tensor): Promise<{ mean: number; variance: number }> {
  const d = await t.data();
  let s = 0;
  for (const v of d) s += v;
  const mean = s / d.length;
  let q = 0;
  for (const v of d) q += (v - mean) ** 2;
  return { mean, variance: q / d.length };
}
