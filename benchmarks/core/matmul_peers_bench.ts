/**
 * float32 matmul on the CPU beside its peers, in one process:
 * - paperlab cpu (through the backend as every op calls it: the system BLAS where one is
 *   installed, else the Wasm SIMD kernel, threaded),
 * - paperlab wasm: the portable Wasm kernel, threaded, even where a BLAS is installed,
 * - paperlab scalar: the scalar loop the CPU backend had before (the "before" column),
 * - tfjs wasm (@tensorflow/tfjs-backend-wasm, its .wasm files read from the npm cache),
 * - jax-js wasm (@jax-js/jax, device "wasm").
 * PyTorch (2 threads) is timed by torch_peer.py on the same shapes.
 *
 *   deno bench -A benchmarks/core/matmul_peers_bench.ts                  # Deno's bench table
 *   deno run -A benchmarks/core/matmul_peers_bench.ts --table [--torch]  # GFLOP/s table
 *
 * Each run reads back the result's first value, which waits for the product as PyTorch's timing
 * does, without copying the whole result out (which PyTorch's timing does not do either; until
 * the seventh session every JS peer here read the whole result back).
 *
 * `--table` prints "median / best" GFLOP/s of repeated runs, the peers interleaved round by round
 * so a busy machine slows them alike; `--torch` adds PyTorch (2 threads), run by
 * torch_peer.py right after the others on each shape; `--slow` includes the scalar loop at
 * 1024 (about 2 s a run); `--only NAME` measures one shape.
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { defaultDevice, init as jaxInit, numpy as np } from "@jax-js/jax";
import { scalarMatmul } from "../../core/backends/cpu/matmul.ts";
import {
  matmulThreads,
  setMatmulThreads,
  wasmMatmulInfo,
} from "../../core/backends/cpu/wasm/mod.ts";
import { bmmT } from "../../core/ops/matmul.ts";
import { type MedianBest, torchPeer } from "./_torch.ts";
import { portable } from "./_workloads.ts";
import { blasInfo } from "../../core/backends/cpu/blas.ts";
import { keep, manualSeed, randn, scope, setBackend, type Tensor } from "../../mod.ts";

interface Shape {
  name: string;
  batch: number;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
}

export const SHAPES: Shape[] = [
  { name: "256", batch: 1, m: 256, n: 256, k: 256 },
  { name: "512", batch: 1, m: 512, n: 512, k: 512 },
  { name: "1024", batch: 1, m: 1024, n: 1024, k: 1024 },
  { name: "[64,64,64]@[64,64,64]", batch: 64, m: 64, n: 64, k: 64 },
  { name: "[16,128,32]@[16,32,128]", batch: 16, m: 128, n: 128, k: 32 },
  { name: "512 Aᵀ@B", batch: 1, m: 512, n: 512, k: 512, transA: true },
  { name: "512 A@Bᵀ", batch: 1, m: 512, n: 512, k: 512, transB: true },
  { name: "1024 Aᵀ@B", batch: 1, m: 1024, n: 1024, k: 1024, transA: true },
  { name: "1024 A@Bᵀ", batch: 1, m: 1024, n: 1024, k: 1024, transB: true },
];

const flops = (s: Shape) => 2 * s.batch * s.m * s.n * s.k;
/** Stored operand shapes (transposed operands are stored transposed). */
const aShape = (s: Shape): [number, number, number] =>
  s.transA ? [s.batch, s.k, s.m] : [s.batch, s.m, s.k];
const bShape = (s: Shape): [number, number, number] =>
  s.transB ? [s.batch, s.n, s.k] : [s.batch, s.k, s.n];
const size = (sh: number[]) => sh.reduce((x, y) => x * y, 1);

type Run = () => Promise<void>;
interface Peer {
  name: string;
  /** Prepares operands for a shape and returns one timed run (undefined: not measured). */
  setup(s: Shape): Run | undefined;
}

await setBackend("cpu");
manualSeed(0);
const threads = matmulThreads();
const paperlab: Peer = {
  name: "paperlab cpu",
  setup(s) {
    const a = keep(randn(aShape(s))), b = keep(randn(bShape(s)));
    return async () => {
      const c: Tensor = bmmT(a, b, !!s.transA, !!s.transB);
      // (the flat view is freed by the scope: a view left alive would hold c's storage)
      const first = scope(() => c.reshape([-1]).narrow(0, 0, 1));
      await first.data();
      first.dispose();
      c.dispose();
    };
  },
};

const paperlabWasm: Peer = {
  name: "paperlab wasm",
  setup: (s) => portable(() => paperlab.setup(s)),
};

const paperlab1: Peer = {
  name: "paperlab 1 thread",
  setup(s) {
    const run = paperlab.setup(s)!;
    return async () => {
      setMatmulThreads(1);
      try {
        await run();
      } finally {
        setMatmulThreads(threads);
      }
    };
  },
};

const scalar: Peer = {
  name: "scalar (before)",
  setup(s) {
    if (flops(s) > 2 * 512 ** 3 * 1.01 && !Deno.args.includes("--slow")) return undefined;
    const A = Float32Array.from({ length: size(aShape(s)) }, Math.random);
    const B = Float32Array.from({ length: size(bShape(s)) }, Math.random);
    const out = new Float32Array(s.batch * s.m * s.n);
    const { batch, m, n, k } = s;
    return () => {
      scalarMatmul(A, B, out, {
        batch,
        m,
        n,
        k,
        transA: !!s.transA,
        transB: !!s.transB,
        aBatchStride: m * k,
        bBatchStride: k * n,
      });
      return Promise.resolve();
    };
  },
};

// tfjs's wasm backend runs in Deno as in Node: point it at the .wasm files in the npm cache.
setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
const tfjsReady = await tf.setBackend("wasm");
const tfjs: Peer = {
  name: "tfjs wasm",
  setup(s) {
    if (!tfjsReady) return undefined;
    const a = tf.randomNormal(aShape(s)) as tf.Tensor3D,
      b = tf.randomNormal(bShape(s)) as tf.Tensor3D;
    return async () => {
      const c = tf.matMul(a, b, !!s.transA, !!s.transB);
      const first = tf.tidy(() => c.reshape([-1]).slice(0, 1));
      await first.data();
      first.dispose();
      c.dispose();
    };
  },
};

const jaxDevices = await jaxInit();
defaultDevice("wasm");
const jax: Peer = {
  name: "jax-js wasm",
  setup(s) {
    if (!jaxDevices.includes("wasm")) return undefined;
    const a = np.array(Float32Array.from({ length: size(aShape(s)) }, Math.random)).reshape(
      aShape(s),
    );
    const b = np.array(Float32Array.from({ length: size(bShape(s)) }, Math.random)).reshape(
      bShape(s),
    );
    return async () => {
      const x = s.transA ? a.ref.transpose([0, 2, 1]) : a.ref;
      const y = s.transB ? b.ref.transpose([0, 2, 1]) : b.ref;
      const c = np.matmul(x, y);
      await c.flatten().slice([0, 1]).data();
    };
  },
};

export const PEERS: Peer[] = [paperlab, paperlabWasm, paperlab1, scalar, tfjs, jax];

/** GFLOP/s: the median and the best of the timed samples. */
type Rate = MedianBest;

/** GFLOP/s per peer for one shape, peers interleaved over rounds. */
async function measure(s: Shape): Promise<(Rate | undefined)[]> {
  const runs = PEERS.map((p) => p.setup(s));
  const times: number[][] = runs.map(() => []);
  // Warm up: compiles, starts thread pools, and lets paperlab learn whether its pool pays
  // off on this machine right now (see core/backends/cpu/wasm/mod.ts).
  const warm = Math.max(1, Math.min(32, Math.ceil(1e8 / flops(s))));
  for (const r of runs) for (let i = 0; r && i < (r === runs[0] ? warm : 1); i++) await r();
  const rounds = flops(s) > 1e9 ? 7 : 15;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i];
      if (!r || (PEERS[i] === scalar && round >= 3)) continue; // the scalar loop is slow
      // >= ~200 MFLOP per sample (20 until the seventh session): a single small product after
      // the other peers ran pays for waking threads and cold caches, which PyTorch, timed in
      // its own loop, never does.
      const reps = Math.max(1, Math.round(2e8 / flops(s)));
      const t0 = performance.now();
      for (let q = 0; q < reps; q++) await r();
      times[i].push((performance.now() - t0) / reps);
    }
  }
  return times.map((t) => {
    if (!t.length) return undefined;
    t.sort((x, y) => x - y);
    return { median: flops(s) / (t[t.length >> 1] * 1e6), best: flops(s) / (t[0] * 1e6) };
  });
}

if (Deno.args.includes("--table")) {
  const info = wasmMatmulInfo(), blas = blasInfo();
  console.log(
    `paperlab: system BLAS ${blas.used ? `${blas.library} (${blas.core ?? "?"})` : "none"}, ` +
      `relaxed SIMD ${info.relaxedSimd}, ${info.threads} threads; ` +
      `tfjs wasm: ${tfjsReady ? "ok" : "unavailable"} (simd ${
        tf.env().getBool("WASM_HAS_SIMD_SUPPORT")
      }, threads ${tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT")}); jax-js: ${jaxDevices}`,
  );
  const torch = Deno.args.includes("--torch");
  const names = [...PEERS.map((p) => p.name), ...(torch ? ["torch (2 threads)"] : [])];
  const load = () => Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
  console.log(`load average at start: ${load()}`);
  console.log(`| shape | ${names.join(" | ")} |`);
  console.log(`|---|${names.map(() => "---:").join("|")}|`);
  const only = Deno.args.indexOf("--only");
  for (const s of SHAPES) {
    if (only >= 0 && s.name !== Deno.args[only + 1]) continue;
    const g = await measure(s);
    if (torch) g.push(torchPeer("torch_peer.py", s.name));
    const cells = g.map((v) =>
      v === undefined || Number.isNaN(v.median)
        ? "–"
        : `${v.median.toFixed(1)} / ${v.best.toFixed(1)}`
    );
    console.log(`| ${s.name} | ${cells.join(" | ")} |`);
  }
  console.log(`load average at end: ${load()}`);
  Deno.exit(0); // jax-js's wasm worker pool would keep the process alive
} else {
  for (const s of SHAPES) {
    for (const p of PEERS) {
      const r = p.setup(s);
      if (!r) continue;
      Deno.bench(`matmul ${s.name}: ${p.name}`, {
        group: `matmul ${s.name}`,
        baseline: p === paperlab,
      }, r);
    }
  }
}
