/**
 * core/io/safetensors_format against files written by Python's safetensors
 * (tests/fixtures/*.safetensors, made by tests/fixtures/make_numeric_fixtures.py), round trips,
 * float16/bfloat16 rounding against torch, and one test per corruption case.
 */
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import {
  bf16BitsToF32,
  decodeSafetensors,
  encodeSafetensors,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "../../core/io/safetensors_format.ts";

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url);
const expected: any = JSON.parse(await Deno.readTextFile(fixture("dtypes_expected.json")));
const num = (v: number | string) =>
  typeof v === "number" ? v : v === "nan" ? NaN : v === "inf" ? Infinity : -Infinity;

/** Exact equality with NaN equal to NaN and -0 distinct from 0 (Object.is). */
function same(actual: ArrayLike<number>, values: (number | string)[], what: string) {
  assertEquals(actual.length, values.length, `${what}: length`);
  for (let i = 0; i < values.length; i++) {
    assert(Object.is(actual[i], num(values[i])), `${what}[${i}]: ${actual[i]} vs ${values[i]}`);
  }
}

/** A safetensors file from a header object and raw data bytes (header padded to 8). */
function build(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = typeof header === "string" ? header : JSON.stringify(header);
  const text = json.padEnd(Math.ceil(json.length / 8) * 8, " ");
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}
const f32 = (n: number, begin = 0) => ({
  dtype: "F32",
  shape: [n],
  data_offsets: [begin, begin + 4 * n],
});

// ---------------------------------------------------------------------------- Python's files

Deno.test("safetensors: reads every dtype written by Python with the same values", async () => {
  const { metadata, tensors } = decodeSafetensors(
    await Deno.readFile(fixture("dtypes.safetensors")),
  );
  assertEquals(metadata, { source: "paperlab" });
  for (const [name, e] of Object.entries(expected.dtypes) as [string, any][]) {
    const t = tensors.get(name)!;
    assertEquals([t.dtype, t.shape], [e.dtype, e.shape], name);
    same(t.data, e.values, name);
  }
  assert(tensors.get("f16")!.data instanceof Float32Array);
  assert(tensors.get("bf16")!.data instanceof Float32Array);
  assert(tensors.get("i64")!.data instanceof Int32Array);
  assert(tensors.get("bool")!.data instanceof Uint8Array);
});

Deno.test("safetensors: reads a torch.nn state dict with the same names, shapes and values", async () => {
  const { metadata, tensors } = decodeSafetensors(
    await Deno.readFile(fixture("tiny_model.safetensors")),
  );
  assertEquals(metadata, { format: "pt" });
  assertEquals([...tensors.keys()].sort(), Object.keys(expected.tiny_model).sort());
  for (const [name, e] of Object.entries(expected.tiny_model) as [string, any][]) {
    const t = tensors.get(name)!;
    assertEquals(t.shape, e.shape, name);
    assertEquals(t.dtype, e.dtype === "torch.int64" ? "I64" : "F32", name);
    same(t.data, e.values, name);
  }
});

// ---------------------------------------------------------------------------- round trips

Deno.test("safetensors: encode then decode round-trips every encodable dtype and metadata", () => {
  const bytes = encodeSafetensors({
    flag: { dtype: "BOOL", shape: [3], data: [1, 0, 7] }, // odd size first: data stays in order
    w: { dtype: "F32", shape: [2, 3], data: [0.5, -1, 2, 3.25, -0, 1e-3] },
    h: { dtype: "F16", shape: [3], data: [1, -2.5, 65504] },
    b: { dtype: "BF16", shape: [2], data: [1, -3.140625] },
    d: { dtype: "F64", shape: [1], data: [0.25] },
    i: { dtype: "I32", shape: [2, 2], data: Int32Array.from([1, -2, 2147483647, -2147483648]) },
    l: { dtype: "I64", shape: [2], data: [-5, 2 ** 31 - 1] },
    empty: { dtype: "F32", shape: [0, 4], data: [] },
    scalar: { dtype: "F32", shape: [], data: [7] },
  }, { format: "pt", note: "round trip" });
  const { metadata, tensors } = decodeSafetensors(bytes);
  assertEquals(metadata, { format: "pt", note: "round trip" });
  assertEquals([...tensors.keys()], ["flag", "w", "h", "b", "d", "i", "l", "empty", "scalar"]);
  same(tensors.get("flag")!.data, [1, 0, 1], "flag");
  same(tensors.get("w")!.data, [0.5, -1, 2, 3.25, -0, Math.fround(1e-3)], "w");
  same(tensors.get("h")!.data, [1, -2.5, 65504], "h");
  same(tensors.get("b")!.data, [1, -3.140625], "b");
  same(tensors.get("d")!.data, [0.25], "d");
  same(tensors.get("i")!.data, [1, -2, 2147483647, -2147483648], "i");
  same(tensors.get("l")!.data, [-5, 2 ** 31 - 1], "l");
  assertEquals(tensors.get("empty")!.shape, [0, 4]);
  assertEquals(tensors.get("scalar")!.shape, []);
});

Deno.test("safetensors: encoded header is space-padded JSON ending on an 8-byte boundary", () => {
  const bytes = encodeSafetensors({ x: { dtype: "F32", shape: [1], data: [1] } });
  const n = new DataView(bytes.buffer).getUint32(0, true);
  assertEquals(new DataView(bytes.buffer).getUint32(4, true), 0);
  assertEquals((8 + n) % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assertEquals(JSON.parse(text), { x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } });
  assert(/^\{.*\} *$/.test(text));
  assertEquals(bytes.length, 8 + n + 4);
});

Deno.test("safetensors: re-encoding Python's state dict reproduces its values", async () => {
  const src = decodeSafetensors(await Deno.readFile(fixture("tiny_model.safetensors")));
  const records = Object.fromEntries(
    [...src.tensors].map((
      [k, t],
    ) => [k, { dtype: t.dtype as "F32" | "I64", shape: t.shape, data: t.data }]),
  );
  const back = decodeSafetensors(encodeSafetensors(records, src.metadata));
  assertEquals(back, src);
});

// ---------------------------------------------------------------------------- half precision

Deno.test("float16/bfloat16: encoding rounds to nearest even exactly like torch", () => {
  const r = expected.rounding;
  r.x.forEach((x: number | string, i: number) => {
    assertEquals(f32ToF16Bits(num(x)), r.f16_bits[i], `f16 of ${x}`);
    assertEquals(f32ToBf16Bits(num(x)), r.bf16_bits[i], `bf16 of ${x}`);
  });
});

Deno.test("float16/bfloat16: every non-NaN bit pattern decodes and re-encodes to itself", () => {
  for (let h = 0; h < 65536; h++) {
    const a = f16BitsToF32(h), b = bf16BitsToF32(h);
    if (!Number.isNaN(a)) assertEquals(f32ToF16Bits(a), h);
    else assert(Number.isNaN(f16BitsToF32(f32ToF16Bits(a))));
    if (!Number.isNaN(b)) assertEquals(f32ToBf16Bits(b), h);
    else assert(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(b))));
  }
});

// ---------------------------------------------------------------------------- corruption

const valid = build({ a: f32(2), b: f32(1, 8) }, new Uint8Array(12));

Deno.test("safetensors: a file shorter than 8 bytes is reported as too short", () => {
  assertThrows(
    () => decodeSafetensors(new Uint8Array(5)),
    /^Error: safetensors: file is 5 bytes, too short/,
  );
});

Deno.test("safetensors: a header length beyond the file is reported", () => {
  const bad = valid.slice();
  new DataView(bad.buffer).setUint32(0, 1000, true);
  assertThrows(
    () => decodeSafetensors(bad),
    /safetensors: header length 1000 exceeds the file size/,
  );
  new DataView(bad.buffer).setUint32(4, 1, true); // > 2^32
  assertThrows(() => decodeSafetensors(bad), /safetensors: header length 4294968296 exceeds/);
});

Deno.test("safetensors: a header that is not JSON, not UTF-8 or not an object is reported", () => {
  assertThrows(
    () => decodeSafetensors(build("{not json")),
    /safetensors: header is not valid UTF-8 JSON/,
  );
  const bytes = build("{}");
  bytes[9] = 0xff; // invalid UTF-8 byte inside the header
  assertThrows(() => decodeSafetensors(bytes), /safetensors: header is not valid UTF-8 JSON/);
  assertThrows(() => decodeSafetensors(build([1, 2])), /safetensors: header must be a JSON object/);
});

Deno.test("safetensors: a truncated data buffer gives offsets out of range naming the tensor", () => {
  assertThrows(
    () => decodeSafetensors(valid.subarray(0, valid.length - 2)),
    /safetensors: tensor 'b' data_offsets \[8, 12\] are out of range: the data buffer has only 10 bytes/,
  );
});

Deno.test("safetensors: overlapping tensors are reported by name", () => {
  const bytes = build({ a: f32(2), b: f32(2, 4) }, new Uint8Array(12));
  assertThrows(() => decodeSafetensors(bytes), /safetensors: tensors 'a' and 'b' overlap/);
});

Deno.test("safetensors: offsets that do not match shape x dtype size are reported", () => {
  const bytes = build({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8));
  assertThrows(
    () => decodeSafetensors(bytes),
    /safetensors: tensor 'a' spans 8 bytes but shape \[3\] of F32 needs 12/,
  );
});

Deno.test("safetensors: holes and trailing bytes in the data buffer are reported", () => {
  assertThrows(
    () => decodeSafetensors(build({ a: f32(1, 4) }, new Uint8Array(8))),
    /safetensors: data bytes \[0, 4\) belong to no tensor/,
  );
  assertThrows(
    () => decodeSafetensors(build({ a: f32(1) }, new Uint8Array(6))),
    /safetensors: data buffer has 6 bytes but the tensors cover only 4/,
  );
});

Deno.test("safetensors: unknown and unsupported dtypes are reported with the tensor name", () => {
  const entry = (dtype: string) =>
    build({ t: { dtype, shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1));
  assertThrows(
    () => decodeSafetensors(entry("Q7")),
    /safetensors: tensor 't' has unknown dtype 'Q7'/,
  );
  assertThrows(
    () => decodeSafetensors(entry("F8_E4M3")),
    /safetensors: tensor 't' has unsupported dtype 'F8_E4M3'/,
  );
});

Deno.test("safetensors: malformed entries and metadata are reported", () => {
  const dec = (h: unknown) => () => decodeSafetensors(build(h, new Uint8Array(4)));
  assertThrows(dec({ a: 3 }), /safetensors: tensor 'a' entry must be an object/);
  assertThrows(dec({ a: { ...f32(1), shape: [-1] } }), /safetensors: tensor 'a' shape must be/);
  assertThrows(
    dec({ a: { ...f32(1), data_offsets: [4, 0] } }),
    /safetensors: tensor 'a' data_offsets must be/,
  );
  assertThrows(
    dec({ a: { shape: [1], data_offsets: [0, 4] } }),
    /safetensors: tensor 'a' has no dtype/,
  );
  assertThrows(
    dec({ __metadata__: { k: 1 }, a: f32(1) }),
    /safetensors: __metadata__ value of 'k'/,
  );
  assertThrows(dec({ __metadata__: [], a: f32(1) }), /safetensors: __metadata__ must be an object/);
});

Deno.test("safetensors: an I64 value outside int32 is reported with the tensor and index", () => {
  const data = new Uint8Array(16);
  new DataView(data.buffer).setBigInt64(8, 1n << 40n, true);
  const bytes = build({ steps: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, data);
  assertThrows(
    () => decodeSafetensors(bytes),
    /safetensors: tensor 'steps' \(I64\) holds 1099511627776 at index 1, which does not fit in int32/,
  );
});

Deno.test("safetensors: encoding rejects bad names, dtypes, lengths, integers and metadata", () => {
  const enc = (t: any, m?: any) => () => encodeSafetensors(t, m);
  assertThrows(
    enc({ __metadata__: { dtype: "F32", shape: [], data: [1] } }),
    /safetensors: '__metadata__' is reserved/,
  );
  assertThrows(
    enc({ a: { dtype: "U16", shape: [1], data: [1] } }),
    /safetensors: tensor 'a': cannot encode dtype 'U16'/,
  );
  assertThrows(
    enc({ a: { dtype: "F32", shape: [2, 2], data: [1] } }),
    /safetensors: tensor 'a' has 1 values but shape \[2,2\] needs 4/,
  );
  assertThrows(
    enc({ a: { dtype: "F32", shape: [-1], data: [] } }),
    /safetensors: tensor 'a' shape must be/,
  );
  assertThrows(
    enc({ a: { dtype: "I32", shape: [1], data: [2 ** 31] } }),
    /safetensors: tensor 'a' \(I32\) value 2147483648/,
  );
  assertThrows(
    enc({ a: { dtype: "I64", shape: [1], data: [0.5] } }),
    /value 0.5 at index 0 is not a representable integer/,
  );
  assertThrows(enc({}, { k: 1 }), /safetensors: __metadata__ value of 'k' must be a string/);
});
