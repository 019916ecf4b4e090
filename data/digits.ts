/**
 * The 8x8 hand-written digits (1,797 images, 10 classes): the test set of the UCI "Optical
 * Recognition of Handwritten Digits" data, as shipped by scikit-learn (`load_digits`) and
 * converted once by data/digits/convert.py into data/digits/digits.bin. See
 * data/digits/README.md for provenance, licence and the byte format.
 */

import type { TypedDataset } from "./dataset.ts";

/** Where the shipped file lives, next to this module. */
export const DIGITS_URL: URL = new URL("./digits/digits.bin", import.meta.url);

const MAGIC = "DIGITS01";
const HEADER_BYTES = 16;

/** Options of `loadDigits`. */
export interface DigitsOptions {
  /** Scale pixels from 0..16 to [0, 1] (pixel / 16). Default true; false keeps 0..16. */
  normalize?: boolean;
}

/**
 * Loads the digits synchronously from the file next to this module (works from any working
 * directory). Returns x: Float32Array [1797, 64] (8x8 images, row-major), y: Int32Array [1797]
 * of digits 0..9, numClasses 10. Throws an Error naming the file if it is missing or corrupt.
 * For a module loaded over http(s) use `loadDigitsAsync`.
 */
export function loadDigits(options: DigitsOptions = {}): TypedDataset<Float32Array, Int32Array> {
  if (DIGITS_URL.protocol !== "file:") {
    throw new Error(
      `loadDigits: ${DIGITS_URL.href} is not a local file; use loadDigitsAsync() instead`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(DIGITS_URL);
  } catch (e) {
    throw new Error(
      `loadDigits: cannot read ${DIGITS_URL.pathname} (${(e as Error).message}); ` +
        "regenerate it with `python data/digits/convert.py`",
    );
  }
  return parseDigits(bytes, options, DIGITS_URL.pathname);
}

/** Like `loadDigits`, but also works when this module is loaded over http(s) (uses fetch). */
export async function loadDigitsAsync(
  options: DigitsOptions = {},
): Promise<TypedDataset<Float32Array, Int32Array>> {
  if (DIGITS_URL.protocol === "file:") return loadDigits(options);
  const res = await fetch(DIGITS_URL);
  if (!res.ok) throw new Error(`loadDigits: cannot fetch ${DIGITS_URL.href} (HTTP ${res.status})`);
  return parseDigits(new Uint8Array(await res.arrayBuffer()), options, DIGITS_URL.href);
}

/** Parses the bytes of digits.bin (format in data/digits/README.md); `source` names the file. */
export function parseDigits(
  bytes: Uint8Array,
  options: DigitsOptions = {},
  source = "digits.bin",
): TypedDataset<Float32Array, Int32Array> {
  const { normalize = true } = options;
  const fail = (why: string) =>
    new Error(`loadDigits: ${source} is not a valid digits file: ${why}`);
  if (bytes.length < HEADER_BYTES) throw fail(`only ${bytes.length} bytes`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== MAGIC) throw fail(`bad magic '${magic}'`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(8, true);
  const f = view.getUint32(12, true);
  if (bytes.length !== HEADER_BYTES + n * f + n) {
    throw fail(`expected ${HEADER_BYTES + n * f + n} bytes for ${n} x ${f}, got ${bytes.length}`);
  }

  const pixels = bytes.subarray(HEADER_BYTES, HEADER_BYTES + n * f);
  const labels = bytes.subarray(HEADER_BYTES + n * f);
  const scale = normalize ? 1 / 16 : 1;
  const x = new Float32Array(n * f);
  for (let i = 0; i < x.length; i++) {
    if (pixels[i] > 16) throw fail(`pixel ${i} is ${pixels[i]} (> 16)`);
    x[i] = pixels[i] * scale;
  }
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (labels[i] > 9) throw fail(`label ${i} is ${labels[i]} (> 9)`);
    y[i] = labels[i];
  }

  return {
    name: "digits",
    x,
    xShape: [n, f],
    y,
    yShape: [n],
    numClasses: 10,
    meta: {
      imageShape: [8, 8],
      normalize,
      source: "UCI ML hand-written digits (optdigits test set) via scikit-learn load_digits",
      licence: "CC BY 4.0 (UCI Machine Learning Repository)",
      file: source,
    },
  };
}
