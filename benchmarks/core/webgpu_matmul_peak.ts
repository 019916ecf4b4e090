/**
 * Float32 matmul throughput on the WebGPU adapter, in GFLOP/s: paperlab beside tfjs's webgpu
 * backend and jax-js's webgpu device, as a share of a peak you name (`--peak`, TFLOP/s).
 *
 *   deno run -A benchmarks/core/webgpu_matmul_peak.ts [--sizes 256,512,1024,2048,4096]
 *     [--peak 67] [--peers paperlab,tfjs,jax-js] [--tiles 128x128/8x8/8,64x64/4x4/16]
 *     [--root DIR]
 *
 * Method. Each library multiplies a chain c <- c @ B (B ~ N(0, 1/n), so c keeps its scale)
 * R times back to back and reads c back once at the end; the time per product is the slope
 * (t(2R) - t(R)) / R, so the readback and Deno's device poll (~11 ms a wait) cancel out. R
 * makes R products take ~0.15 s; the median of 5 slopes is printed. Chaining makes every
 * product's result needed, so no library can skip or overlap one.
 *
 * `--tiles` also times paperlab's kernel with other tile shapes (BMxBN/TMxTN/BK, see
 * core/backends/webgpu/kernels/matmul.ts) through the kernel directly; each is first checked
 * against a float64 product on sampled rows, and its relative error is printed. `--root`
 * times another checkout's default kernel (a before/after comparison in one run).
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { defaultDevice, init as jaxInit, numpy as jnp } from "@jax-js/jax";
import * as M from "../../core/backends/webgpu/kernels/matmul.ts";
import type { WebGpuBackend } from "../../core/backends/webgpu/mod.ts";

const { values: opt } = parseArgs({
  options: {
    sizes: { type: "string", default: "256,512,1024,2048,4096" },
    peak: { type: "string" },
    peers: { type: "string", default: "paperlab,tfjs,jax-js" },
    tiles: { type: "string", default: "" },
    root: { type: "string" },
  },
});
const sizes = opt.sizes!.split(",").map(Number);
const peers = new Set(opt.peers!.split(","));
for (const p of peers) {
  if (!["paperlab", "tfjs", "jax-js"].includes(p)) {
    throw new Error(`webgpu_matmul_peak: unknown peer "${p}" (paperlab, tfjs, jax-js)`);
  }
}
const tiles = opt.tiles ? opt.tiles.split(",").map(parseTile) : [];
const peak = opt.peak ? Number(opt.peak) * 1e3 : undefined; // GFLOP/s

function parseTile(s: string): M.Tile {
  const m = /^(\d+)x(\d+)\/(\d+)x(\d+)\/(\d+)$/.exec(s);
  if (!m) throw new Error(`webgpu_matmul_peak: --tiles wants BMxBN/TMxTN/BK, got "${s}"`);
  const [bm, bn, tm, tn, bk] = m.slice(1).map(Number);
  return { bm, bn, tm, tn, bk };
}
const tileName = (t: M.Tile) => `${t.bm}x${t.bn}/${t.tm}x${t.tn}/${t.bk}`;

const here = new URL("../../mod.ts", import.meta.url).href;
const root = opt.root ? new URL(`file://${Deno.realPathSync(opt.root)}/mod.ts`).href : here;
const lab = await import(root) as typeof import("../../mod.ts");
const backend = await lab.setBackend("webgpu") as WebGpuBackend;
console.log(`paperlab webgpu: ${backend.deviceInfo}${opt.root ? ` (from ${opt.root})` : ""}`);

/** Host data: N(0, scale^2). */
function host(n: number, scale: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - Math.random())), t = 2 * Math.PI * Math.random();
    out[i] = r * Math.cos(t) * scale;
    if (i + 1 < n) out[i + 1] = r * Math.sin(t) * scale;
  }
  return out;
}

/** A chain of `r` products, awaited: its wall time in seconds. */
type Chain = (r: number) => Promise<number>;

/** Median slope (s per product) of a chain, with R sized to ~0.15 s of products. */
async function perProduct(chain: Chain): Promise<number> {
  await chain(2); // warm-up: compilation, buffer pools
  const one = Math.max(1e-6, ((await chain(4)) - (await chain(2))) / 2);
  const r = Math.max(2, Math.min(400, Math.ceil(0.15 / one)));
  const slopes = [];
  for (let i = 0; i < 5; i++) slopes.push(((await chain(2 * r)) - (await chain(r))) / r);
  slopes.sort((a, b) => a - b);
  return Math.max(1e-9, slopes[2]);
}

const timed = async (f: () => Promise<void>) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1e3;
};

/** ‖got - ref‖ / ‖ref‖ over rows `rows` of a @ b (n x n, row-major), ref in float64. */
function relError(a: Float32Array, b: Float32Array, got: Float32Array, n: number, rows: number[]) {
  let num = 0, den = 0;
  const acc = new Float64Array(n);
  for (const i of rows) {
    acc.fill(0);
    for (let k = 0; k < n; k++) {
      const x = a[i * n + k];
      for (let j = 0; j < n; j++) acc[j] += x * b[k * n + j];
    }
    for (let j = 0; j < n; j++) {
      const g = got[i * n + j];
      if (!Number.isFinite(g)) return NaN;
      num += (g - acc[j]) ** 2, den += acc[j] ** 2;
    }
  }
  return Math.sqrt(num / den);
}

const tfReady = peers.has("tfjs") && await tf.setBackend("webgpu").catch(() => false);
if (peers.has("tfjs") && !tfReady) console.warn("tfjs: the webgpu backend did not start");
const jaxReady = peers.has("jax-js") &&
  (await jaxInit().catch(() => [] as string[])).includes("webgpu");
if (jaxReady) defaultDevice("webgpu");
else if (peers.has("jax-js")) console.warn("jax-js: no webgpu device");

const columns: string[] = [];
const rows = new Map<number, Map<string, string>>();
const put = (n: number, col: string, v: string) => {
  if (!columns.includes(col)) columns.push(col);
  if (!rows.has(n)) rows.set(n, new Map());
  rows.get(n)!.set(col, v);
};
const rate = (n: number, s: number) => {
  const g = (2 * n ** 3) / s / 1e9;
  return `${g.toFixed(0)}${peak ? ` (${((100 * g) / peak).toFixed(0)}%)` : ""}`;
};

for (const n of sizes) {
  const a0 = host(n * n, 1), b0 = host(n * n, 1 / Math.sqrt(n));
  const sample = [0, n >> 1, n - 1];

  if (peers.has("paperlab")) {
    const B = lab.keep(lab.tensor(b0, { shape: [n, n] })),
      A = lab.keep(lab.tensor(a0, { shape: [n, n] }));
    const chain: Chain = (r) =>
      timed(async () => {
        let c = lab.scope(() => A.matmul(B));
        for (let i = 1; i < r; i++) {
          const next = lab.scope(() => c.matmul(B)); // (frees matmul's internal 3-D views)
          c.dispose();
          c = next;
        }
        await c.data();
        c.dispose();
      });
    const first = lab.scope(() => A.matmul(B));
    const err = relError(a0, b0, await first.data() as Float32Array, n, sample);
    first.dispose();
    put(n, "paperlab", rate(n, await perProduct(chain)));
    put(n, "paperlab err", err.toExponential(1));
    A.dispose(), B.dispose();
  }

  for (const tile of tiles) {
    const gpu = backend.gpu;
    const a = gpu.upload(a0, "float32"), b = gpu.upload(b0, "float32");
    const dims = (x: typeof a) => ({
      a: x,
      b,
      batch: 1,
      m: n,
      n,
      k: n,
      transA: false,
      transB: false,
      aBatchStride: 0,
      bBatchStride: 0,
    });
    const first = M.matmul(gpu, dims(a), tile);
    const got = await gpu.read(first, "float32", n * n) as Float32Array;
    gpu.free(first);
    const chain: Chain = (r) =>
      timed(async () => {
        let c = M.matmul(gpu, dims(a), tile);
        for (let i = 1; i < r; i++) {
          const next = M.matmul(gpu, dims(c), tile);
          gpu.free(c);
          c = next;
        }
        await gpu.read(c, "float32", n * n);
        gpu.free(c);
      });
    const name = tileName(tile);
    put(n, name, rate(n, await perProduct(chain)));
    put(n, `${name} err`, relError(a0, b0, got, n, sample).toExponential(1));
    gpu.free(a), gpu.free(b);
  }

  if (tfReady) {
    const A = tf.tensor(a0, [n, n]), B = tf.tensor(b0, [n, n]);
    const chain: Chain = (r) =>
      timed(async () => {
        let c = tf.matMul(A, B);
        for (let i = 1; i < r; i++) {
          const next = tf.matMul(c, B);
          c.dispose();
          c = next;
        }
        await c.data();
        c.dispose();
      });
    put(n, "tfjs", rate(n, await perProduct(chain)));
    A.dispose(), B.dispose();
  }

  if (jaxReady) {
    const A = jnp.array(a0, { shape: [n, n] }), B = jnp.array(b0, { shape: [n, n] });
    // jax-js functions take ownership of their arguments: `.ref` keeps A and B alive.
    const chain: Chain = (r) =>
      timed(async () => {
        let c = jnp.matmul(A.ref, B.ref);
        for (let i = 1; i < r; i++) c = jnp.matmul(c, B.ref);
        await c.data();
        if (c.refCount > 0) c.dispose();
      });
    put(n, "jax-js", rate(n, await perProduct(chain)));
    A.dispose(), B.dispose();
  }
  console.log(`${n}: ${[...rows.get(n)!].map(([k, v]) => `${k} ${v}`).join(", ")}`);
}

console.log(
  `\nGFLOP/s (median of 5 slopes)${peak ? `, % of ${peak / 1e3} TFLOP/s` : ""}; err: ` +
    "relative to float64 on 3 rows",
);
console.log(`| n | ${columns.join(" | ")} |`);
console.log(`|---|${columns.map(() => "---").join("|")}|`);
for (const [n, r] of rows) {
  console.log(`| ${n} | ${columns.map((c) => r.get(c) ?? "–").join(" | ")} |`);
}
