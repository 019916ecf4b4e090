/**
 * The safetensors file format (https://github.com/huggingface/safetensors), as pure bytes <->
 * records: no file I/O and no Tensor dependency (core/io wraps these with Deno file access).
 *
 * Layout: an 8-byte little-endian unsigned header length N, then N bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { str: str } }`
 * (padded with spaces), then the data buffer; offsets are relative to the buffer's start, and
 * the tensors must cover the buffer exactly, without overlaps or holes. Values are
 * little-endian (like every platform Deno runs on).
 */

import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from "./half_float.ts";

export {
  bf16ArrayToF32,
  bf16BitsToF32,
  f16ArrayToF32,
  f16BitsToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "./half_float.ts";

/** Bytes per element of each dtype the decoder reads. */
const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/**
 * Dtypes the decoder reads, and the array each becomes: F32, F16, BF16 and F64 -> Float32Array
 * (F64 is rounded to float32), I32, I64, I16, I8 -> Int32Array (I64 must fit in int32),
 * BOOL and U8 -> Uint8Array (BOOL as 0/1).
 */
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;
/** Valid safetensors dtypes this codec does not convert (named as such in the error). */
const UNSUPPORTED = ["U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F4", "C64"];

/** One decoded tensor: the file's dtype, its shape, and the converted values (row-major). */
export interface SafetensorsRecord {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/** The contents of a safetensors file. */
export interface SafetensorsContents {
  metadata: Record<string, string> | undefined;
  tensors: Map<string, SafetensorsRecord>;
}

const fail = (msg: string): never => {
  throw new Error(`safetensors: ${msg}`);
};

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Parses and validates a safetensors file. Every problem throws an Error starting
 * "safetensors:" that names it: a file too short for the length prefix, a header length beyond
 * the file, a header that is not UTF-8 JSON object, a malformed entry, an unknown or
 * unsupported dtype, offsets out of range (truncated data), a byte size that does not match
 * shape x dtype, overlapping tensors, bytes covered by no tensor, an I64 value outside int32.
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContents {
  if (bytes.length < 8) {
    fail(`file is ${bytes.length} bytes, too short for the 8-byte header length (truncated?)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (8 + headerLen > bytes.length) {
    fail(
      `header length ${headerLen} exceeds the file size (${bytes.length} bytes): ` +
        "truncated or not a safetensors file",
    );
  }
  let header: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header must be a JSON object");
  }
  const entries = header as Record<string, unknown>;

  let metadata: Record<string, string> | undefined;
  if ("__metadata__" in entries) {
    const meta = entries.__metadata__;
    if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
      fail("__metadata__ must be an object mapping strings to strings");
    }
    for (const [k, v] of Object.entries(meta as object)) {
      if (typeof v !== "string") {
        fail(`__metadata__ value of '${k}' is a ${typeof v}, not a string`);
      }
    }
    metadata = { ...(meta as Record<string, string>) };
  }

  const dataStart = 8 + headerLen, dataLen = bytes.length - dataStart;
  const layout = Object.entries(entries).filter(([name]) => name !== "__metadata__")
    .map(([name, entry]) => parseEntry(name, entry, dataLen));

  // The buffer must be covered exactly: sorted by offset, each tensor starts where the last ended.
  const sorted = [...layout].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0, last = "";
  for (const t of sorted) {
    if (t.begin < covered) fail(`tensors '${last}' and '${t.name}' overlap in the data buffer`);
    if (t.begin > covered) {
      fail(`data bytes [${covered}, ${t.begin}) belong to no tensor (holes are not allowed)`);
    }
    covered = t.end;
    last = t.name;
  }
  if (covered !== dataLen) {
    fail(`data buffer has ${dataLen} bytes but the tensors cover only ${covered} (trailing bytes)`);
  }

  const tensors = new Map<string, SafetensorsRecord>();
  for (const t of layout) {
    // slice() copies into a fresh, aligned ArrayBuffer that the typed arrays can view.
    const raw = bytes.slice(dataStart + t.begin, dataStart + t.end);
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: convert(t.name, t.dtype, raw) });
  }
  return { metadata, tensors };
}

/** A validated header entry: dtype known, offsets in range and sized shape x dtype. */
interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, entry: unknown, dataLen: number): Entry {
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e !== "object" || e === null) fail(`tensor '${name}' entry must be an object`);
  const dtype = e.dtype as SafetensorsDtype;
  if (typeof dtype !== "string") fail(`tensor '${name}' has no dtype string`);
  if (UNSUPPORTED.includes(dtype)) fail(`tensor '${name}' has unsupported dtype '${dtype}'`);
  if (!Object.hasOwn(DTYPE_BYTES, dtype)) fail(`tensor '${name}' has unknown dtype '${dtype}'`);
  const shape = e.shape as number[];
  const isIndex = (d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    fail(
      `tensor '${name}' shape must be a list of non-negative integers: ${JSON.stringify(shape)}`,
    );
  }
  const offs = e.data_offsets as number[];
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isIndex) || offs[0] > offs[1]) {
    fail(
      `tensor '${name}' data_offsets must be [begin, end], begin <= end: ${JSON.stringify(offs)}`,
    );
  }
  const [begin, end] = offs;
  if (end > dataLen) {
    fail(
      `tensor '${name}' data_offsets [${begin}, ${end}] are out of range: ` +
        `the data buffer has only ${dataLen} bytes (truncated file?)`,
    );
  }
  const need = numel(shape) * DTYPE_BYTES[dtype];
  if (end - begin !== need) {
    fail(
      `tensor '${name}' spans ${end - begin} bytes but shape [${shape}] of ${dtype} needs ${need}`,
    );
  }
  return { name, dtype, shape, begin, end };
}

/** Converts one tensor's little-endian bytes to its decoded array. */
function convert(
  name: string,
  dtype: SafetensorsDtype,
  raw: Uint8Array,
): Float32Array | Int32Array | Uint8Array {
  const buf = raw.buffer as ArrayBuffer;
  switch (dtype) {
    case "F32":
      return new Float32Array(buf);
    case "F64":
      return Float32Array.from(new Float64Array(buf));
    case "F16":
      return f16ArrayToF32(new Uint16Array(buf));
    case "BF16":
      return bf16ArrayToF32(new Uint16Array(buf));
    case "I32":
      return new Int32Array(buf);
    case "I16":
      return Int32Array.from(new Int16Array(buf));
    case "I8":
      return Int32Array.from(new Int8Array(buf));
    case "U8":
      return raw;
    case "BOOL":
      return raw.map((v) => (v ? 1 : 0));
    case "I64": {
      // Keep the low words; a value fits in int32 iff its high word is the low word's sign.
      const words = new Int32Array(buf);
      const out = new Int32Array(words.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = words[2 * i], hi = words[2 * i + 1];
        if (hi !== lo >> 31) {
          const v = new DataView(buf).getBigInt64(8 * i, true);
          fail(`tensor '${name}' (I64) holds ${v} at index ${i}, which does not fit in int32`);
        }
        out[i] = lo;
      }
      return out;
    }
  }
}

/** Dtypes the encoder writes. */
export type EncodableDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "BOOL";

/** A tensor to encode: values row-major, `data.length` equal to the product of `shape`. */
export interface TensorToEncode {
  dtype: EncodableDtype;
  shape: number[];
  data: ArrayLike<number>;
}

/**
 * Serialises tensors and optional string metadata to safetensors bytes that Python's
 * safetensors reads. Data is laid out in insertion order; the JSON header is padded with spaces
 * to a multiple of 8 bytes. F16/BF16 values are rounded to nearest even; I32/I64 values must be
 * integers in range (I64: safe integers); BOOL stores nonzero as 1. Throws "safetensors: ..." on
 * a reserved name, an unknown dtype, a bad shape, a data length that does not match the shape,
 * an unrepresentable integer or a non-string metadata value.
 */
export function encodeSafetensors(
  tensors: Record<string, TensorToEncode>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        fail(`__metadata__ value of '${k}' must be a string, got ${typeof v}`);
      }
    }
    header.__metadata__ = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === "__metadata__") fail("'__metadata__' is reserved and cannot name a tensor");
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}' shape must be an array of non-negative integers`);
    }
    const n = numel(t.shape);
    if (t.data.length !== n) {
      fail(`tensor '${name}' has ${t.data.length} values but shape [${t.shape}] needs ${n}`);
    }
    const chunk = encodeValues(name, t.dtype, t.data);
    header[name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + chunk.length],
    };
    chunks.push(chunk);
    offset += chunk.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setUint32(0, headerLen, true); // the high word stays 0
  out.fill(0x20, 8, 8 + headerLen); // space padding
  out.set(json, 8);
  let at = 8 + headerLen;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The little-endian bytes of one tensor's values stored as `dtype`. */
function encodeValues(name: string, dtype: EncodableDtype, data: ArrayLike<number>): Uint8Array {
  const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const checkInts = (lo: number, hi: number) => {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!Number.isInteger(v) || v < lo || v > hi) {
        fail(`tensor '${name}' (${dtype}) value ${v} at index ${i} is not a representable integer`);
      }
    }
  };
  switch (dtype) {
    case "F32":
      return bytesOf(Float32Array.from(data));
    case "F64":
      return bytesOf(Float64Array.from(data));
    case "F16":
      return bytesOf(f32ArrayToF16(data));
    case "BF16":
      return bytesOf(f32ArrayToBf16(data));
    case "BOOL":
      return Uint8Array.from(data, (v) => (v ? 1 : 0));
    case "I32":
      checkInts(-(2 ** 31), 2 ** 31 - 1);
      return bytesOf(Int32Array.from(data));
    case "I64":
      checkInts(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      return bytesOf(BigInt64Array.from(Array.from(data), (v) => BigInt(v)));
    default:
      return fail(`tensor '${name}': cannot encode dtype '${dtype}'`);
  }
}
