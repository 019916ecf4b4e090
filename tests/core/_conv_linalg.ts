/**
 * Shared by the tests that read tests/fixtures/conv_linalg.json (made by
 * tests/fixtures/make_conv_linalg_fixtures.py): one section of it, a tensor from a fixture
 * entry, and a relative-tolerance comparison that names the case and index.
 */
import { ok as assert } from "node:assert/strict";
import { type Tensor, tensor } from "../../mod.ts";

export type J = { shape: number[]; data: number[] };

/** One top-level section of the fixture ("linalg", "fft", ...). */
export async function fixtureSection(name: string): Promise<any> {
  const all = JSON.parse(
    await Deno.readTextFile(new URL("../fixtures/conv_linalg.json", import.meta.url)),
  );
  return all[name];
}

/** A float32 tensor from a fixture entry. */
export const T = (j: J, requiresGrad = false): Tensor =>
  tensor(Float32Array.from(j.data), { shape: j.shape, requiresGrad });

/** Asserts t equals the fixture within tol * (1 + |expected|) elementwise. */
export async function close(t: Tensor | null, j: J, what: string, tol = 1e-4): Promise<void> {
  assert(t, `${what}: missing`);
  assert(t.shape.join() === j.shape.join(), `${what}: shape [${t.shape}] vs [${j.shape}]`);
  const a = await t.data();
  for (let i = 0; i < j.data.length; i++) {
    const d = Math.abs(a[i] - j.data[i]);
    assert(d <= tol * (1 + Math.abs(j.data[i])), `${what}[${i}]: ${a[i]} vs ${j.data[i]}`);
  }
}
