/**
 * Tensors to and from safetensors files (Hugging Face's format; the byte codec is in
 * safetensors_format.ts). Saving reads the values back (`await t.data()`), so it is async on
 * every backend. Loading creates tensors on the current backend: F32, F16, BF16 and F64 become
 * float32; I32, I64 (values must fit in int32), I16, I8 and U8 become int32; BOOL becomes bool.
 */
import { tensor } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import {
  decodeSafetensors,
  type EncodableDtype,
  encodeSafetensors,
  type TensorToEncode,
} from "./safetensors_format.ts";

/** Named tensors: a plain object (e.g. a module's stateDict) or a Map, saved in their order. */
export type NamedTensors = Record<string, Tensor> | Map<string, Tensor>;

const FILE_DTYPE: Record<string, EncodableDtype> = { float32: "F32", int32: "I32", bool: "BOOL" };

/** The safetensors bytes of `tensors` (F32, I32 or BOOL by dtype) with optional metadata. */
export async function safetensorsBytes(
  tensors: NamedTensors,
  metadata?: Record<string, string>,
): Promise<Uint8Array> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const out: Record<string, TensorToEncode> = {};
  for (const [name, t] of entries) {
    const dtype = FILE_DTYPE[t.dtype];
    if (!dtype) {
      throw new Error(`saveSafetensors: tensor '${name}' has unsupported dtype ${t.dtype}`);
    }
    out[name] = { dtype, shape: [...t.shape], data: await t.data() };
  }
  return encodeSafetensors(out, metadata);
}

/** Tensors from safetensors bytes, in the file's header order. */
export function loadSafetensorsBytes(bytes: Uint8Array): Record<string, Tensor> {
  const { tensors } = decodeSafetensors(bytes);
  const out: Record<string, Tensor> = {};
  for (const [name, r] of tensors) {
    const dtype = r.dtype === "BOOL"
      ? "bool"
      : r.data instanceof Float32Array
      ? "float32"
      : "int32";
    out[name] = tensor(r.data, { dtype, shape: r.shape });
  }
  return out;
}

/**
 * Writes `tensors` to `path` atomically: the bytes go to `path.tmp-<random>`, which is then
 * renamed over `path`, so readers never see a half-written file.
 */
export async function saveSafetensors(
  path: string,
  tensors: NamedTensors,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = await safetensorsBytes(tensors, metadata);
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`saveSafetensors: cannot write ${path}: ${(e as Error).message}`);
  }
}

/** Reads a safetensors file; missing, truncated or corrupt files throw an Error naming it. */
export async function loadSafetensors(path: string): Promise<Record<string, Tensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message;
    throw new Error(`loadSafetensors: cannot read ${path}: ${why}`);
  }
  try {
    return loadSafetensorsBytes(bytes);
  } catch (e) {
    throw new Error(`loadSafetensors: ${path}: ${(e as Error).message}`);
  }
}
