/**
 * CPU workloads beyond matmul, beside their peers in one run: an elementwise chain, softmax,
 * layerNorm, conv2d (forward, and forward + backward), an MLP training step and a small
 * transformer training step (both forward, backward and AdamW).
 *
 *   deno run -A benchmarks/core/ops_peers.ts --table [--torch] [--only NAME] [--peers a,b]
 *   deno bench -A benchmarks/core/ops_peers.ts
 *
 * The table gives "median / best" milliseconds per run, the peers interleaved round by round so
 * that a busy machine slows them alike; `--torch` adds PyTorch (CPU, 2 threads), timed by
 * torch_ops_peer.py on the same workload right after the others, and the ratio of paperlab's
 * median to PyTorch's. Peers: paperlab cpu (its matmuls through the system BLAS where one is
 * installed), paperlab wasm (the portable path: the Wasm kernel even where a BLAS is there; "–"
 * where none is), tfjs wasm (the forward-only ops and the MLP step).
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { manualSeed, setBackend } from "../../mod.ts";
import { type MedianBest, torchPeer } from "./_torch.ts";
import { blasInfo } from "../../core/backends/cpu/blas.ts";
import { paperlabRun, portable, type Run, tfjsRun, WORKLOADS } from "./_workloads.ts";

interface Peer {
  name: string;
  /** Builds a workload's inputs and returns one timed run (undefined: not measured). */
  setup(w: string): Run | undefined;
}

export { WORKLOADS };

await setBackend("cpu");
manualSeed(0);

const paperlab: Peer = { name: "paperlab cpu", setup: paperlabRun };
const paperlabWasm: Peer = { name: "paperlab wasm", setup: (w) => portable(() => paperlabRun(w)) };

// tfjs's wasm backend runs in Deno as in Node: point it at the .wasm files in the npm cache.
setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
const tfjsReady = await tf.setBackend("wasm");
const tfjs: Peer = {
  name: "tfjs wasm",
  setup: (w) => tfjsReady ? tfjsRun(w) : undefined,
};

export const PEERS: Peer[] = [paperlab, paperlabWasm, tfjs];

type Times = MedianBest;

async function measure(w: string, peers: Peer[]): Promise<(Times | undefined)[]> {
  const runs = peers.map((p) => p.setup(w));
  const reps: number[] = [];
  for (const r of runs) {
    if (!r) {
      reps.push(0);
      continue;
    }
    for (let i = 0; i < 3; i++) await r(); // compile, warm caches and pools
    const t0 = performance.now();
    await r();
    reps.push(Math.max(1, Math.round(20 / Math.max(performance.now() - t0, 0.001))));
  }
  const times: number[][] = runs.map(() => []);
  for (let round = 0; round < 15; round++) {
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i];
      if (!r) continue;
      const t0 = performance.now();
      for (let q = 0; q < reps[i]; q++) await r();
      times[i].push((performance.now() - t0) / reps[i]);
    }
  }
  return times.map((t) => {
    if (!t.length) return undefined;
    t.sort((x, y) => x - y);
    return { median: t[t.length >> 1], best: t[0] };
  });
}

if (Deno.args.includes("--table")) {
  const torch = Deno.args.includes("--torch");
  const pi = Deno.args.indexOf("--peers");
  const peers = pi >= 0
    ? PEERS.filter((p) => Deno.args[pi + 1].split(",").some((n) => p.name.startsWith(n)))
    : PEERS;
  const ours = peers.filter((p) => p.name.startsWith("paperlab"));
  const names = [
    ...peers.map((p) => p.name),
    ...(torch
      ? ["torch (2 threads)", ...ours.map((p) => `ratio (${p.name.replace("paperlab ", "")})`)]
      : []),
  ];
  const load = () => Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
  const blas = blasInfo();
  console.log(`system BLAS: ${blas.used ? `${blas.library} (${blas.core ?? "?"})` : "none"}`);
  console.log(`load average at start: ${load()}`);
  console.log(`| workload (ms) | ${names.join(" | ")} |`);
  console.log(`|---|${names.map(() => "---:").join("|")}|`);
  const only = Deno.args.indexOf("--only");
  for (const w of WORKLOADS) {
    if (only >= 0 && !w.startsWith(Deno.args[only + 1])) continue;
    const t = await measure(w, peers);
    const cells = t.map((v) => v ? `${v.median.toFixed(2)} / ${v.best.toFixed(2)}` : "–");
    if (torch) {
      const pt = torchPeer("torch_ops_peer.py", w);
      cells.push(pt ? `${pt.median.toFixed(2)} / ${pt.best.toFixed(2)}` : "–");
      for (const p of ours) {
        const v = t[peers.indexOf(p)];
        cells.push(pt && v ? `${(v.median / pt.median).toFixed(1)}x` : "–");
      }
    }
    console.log(`| ${w} | ${cells.join(" | ")} |`);
  }
  console.log(`load average at end: ${load()}`);
} else {
  for (const w of WORKLOADS) {
    for (const p of PEERS) {
      const r = p.setup(w);
      if (r) Deno.bench(`${w}: ${p.name}`, { group: w, baseline: p === paperlab }, r);
    }
  }
}
