/**
 * core/io/safetensors.ts: save/load round trips (float32, int32, bool, metadata, atomic write),
 * files written by PyTorch's safetensors (tests/fixtures/*.safetensors with their values in
 * dtypes_expected.json, made by tests/fixtures/make_numeric_fixtures.py) and clear errors.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import {
  loadSafetensors,
  loadSafetensorsBytes,
  safetensorsBytes,
  saveSafetensors,
} from "../../core/io/safetensors.ts";
import { decodeSafetensors } from "../../core/io/safetensors_format.ts";
import { randn, setBackend, type Tensor, tensor } from "../../mod.ts";

// The same tests run on every backend: $PAPERLAB_BACKEND (default cpu).
await setBackend(Deno.env.get("PAPERLAB_BACKEND") ?? "cpu");

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;
const expected: any = JSON.parse(await Deno.readTextFile(fixture("dtypes_expected.json")));
const num = (v: number | string) =>
  v === "nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : (v as number);

async function sameValues(t: Tensor, values: (number | string)[], what: string) {
  const got = Array.from(await t.data());
  assertEquals(got.length, values.length, `${what}: length`);
  values.forEach((v, i) => {
    const e = t.dtype === "float32" ? Math.fround(num(v)) : num(v);
    assert(Object.is(got[i], e) || got[i] === e, `${what}[${i}]: ${got[i]} vs ${e}`);
  });
}

Deno.test("saveSafetensors / loadSafetensors: float32, int32, bool and scalar tensors round-trip with names, order and metadata", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/model.safetensors`;
  const tensors = {
    "layer.weight": randn([3, 4]),
    "layer.bias": tensor([0.5, -1.5, NaN]),
    steps: tensor([[1, -2], [2147483647, -2147483648]], { dtype: "int32" }),
    mask: tensor([true, false, true]),
    scalar: tensor(3.25),
  };
  await saveSafetensors(path, tensors, { format: "pt" });
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]); // no temp file left
  const loaded = await loadSafetensors(path);
  assertEquals(Object.keys(loaded), Object.keys(tensors));
  for (const [name, t] of Object.entries(tensors)) {
    const l = loaded[name];
    assertEquals([l.dtype, l.shape], [t.dtype, t.shape], name);
    assertEquals(Array.from(await l.data()), Array.from(await t.data()), name);
  }
  assertEquals(decodeSafetensors(await Deno.readFile(path)).metadata, { format: "pt" });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("safetensorsBytes / loadSafetensorsBytes: in-memory round trip accepts a Map", async () => {
  const m = new Map([["b", tensor([1, 2, 3], { dtype: "int32" })], ["a", tensor([[1.5]])]]);
  const back = loadSafetensorsBytes(await safetensorsBytes(m));
  assertEquals(Object.keys(back), ["b", "a"]);
  assertEquals(Array.from(await back.a.data()), [1.5]);
});

Deno.test("loadSafetensors: a PyTorch state dict (tiny_model) loads with the same names, shapes and values", async () => {
  const want = expected.tiny_model;
  const loaded = await loadSafetensors(fixture("tiny_model.safetensors"));
  assertEquals(Object.keys(loaded).sort(), Object.keys(want).sort());
  for (const [name, e] of Object.entries<any>(want)) {
    const t = loaded[name];
    assertEquals(t.shape, e.shape, name);
    assertEquals(t.dtype, e.dtype === "torch.int64" ? "int32" : "float32", name);
    await sameValues(t, e.values, name);
  }
});

Deno.test("loadSafetensors: F32, F16, BF16, I32, I64 and BOOL written by PyTorch load as float32/int32/bool", async () => {
  const loaded = await loadSafetensors(fixture("dtypes.safetensors"));
  const dtypeOf: Record<string, string> = {
    F32: "float32",
    F16: "float32",
    BF16: "float32",
    I32: "int32",
    I64: "int32",
    BOOL: "bool",
  };
  for (const [name, e] of Object.entries<any>(expected.dtypes)) {
    assertEquals([loaded[name].dtype, loaded[name].shape], [dtypeOf[e.dtype], e.shape], name);
    await sameValues(loaded[name], e.values, name);
  }
});

Deno.test("loadSafetensors: missing, truncated and corrupt files throw errors naming the file", async () => {
  const dir = await Deno.makeTempDir();
  await rejects(
    loadSafetensors(`${dir}/nope.safetensors`),
    /cannot read .*nope.safetensors: file not found/,
  );
  const good = await Deno.readFile(fixture("tiny_model.safetensors"));
  const cut = `${dir}/cut.safetensors`;
  await Deno.writeFile(cut, good.subarray(0, good.length - 10));
  await rejects(
    loadSafetensors(cut),
    /loadSafetensors: .*cut.safetensors: safetensors: .*truncated/,
  );
  const junk = `${dir}/junk.safetensors`;
  await Deno.writeFile(junk, new TextEncoder().encode("\x10\0\0\0\0\0\0\0not json at all!"));
  await rejects(
    loadSafetensors(junk),
    /junk.safetensors: safetensors: header is not valid UTF-8 JSON/,
  );
  await Deno.writeFile(junk, new Uint8Array(3));
  await rejects(loadSafetensors(junk), /junk.safetensors: .*too short/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("saveSafetensors: an unwritable path fails with the path and leaves no temp file", async () => {
  const dir = await Deno.makeTempDir();
  await rejects(
    saveSafetensors(`${dir}/missing/sub/x.safetensors`, { a: tensor([1]) }),
    /saveSafetensors: cannot write .*missing\/sub\/x.safetensors/,
  );
  assertEquals([...Deno.readDirSync(dir)].length, 0);
  await Deno.remove(dir, { recursive: true });
});
