/**
 * WebGPU ops beside their peers in the same run: paperlab's webgpu backend, tfjs's webgpu
 * backend and jax-js's webgpu device. Matmul at 256, 512 and 1024 (float32, square); softmax
 * [256, 1024], layerNorm [2048, 256] and attention (32 heads of 256 x 64), where paperlab runs
 * both its fused kernel and the composition of primitives it replaces ("composed"), to show
 * what fusing saves.
 * `deno bench -A benchmarks/core/webgpu_bench.ts`
 *
 * Fusion (core/backends/webgpu/fusion.ts) is measured the same way: an elementwise chain, a
 * matmul with a bias and activation epilogue, a loss reduction with an elementwise prologue
 * and epilogue, and training steps (MLP; the transformer too on a hardware adapter, where it
 * takes milliseconds rather than seconds) run "fused" and "unfused" (`fusion.enabled = false`:
 * one kernel per op), beside tfjs's webgpu backend and jax-js's jit-compiled chain. Matmul
 * runs at 2048 and 4096 as well on a hardware adapter.
 *
 * Every iteration awaits a readback of the result, so the GPU work is inside the timing; the
 * readback itself (a map of n^2 floats) is part of every peer's number alike. Each library
 * runs once per size before timing, so shader compilation is left out. On a software adapter
 * (llvmpipe) the numbers measure a CPU rasteriser, not a GPU; the adapter is printed first.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import {
  type Array as JArray,
  defaultDevice,
  init as jaxInit,
  jit,
  nn as jnn,
  numpy as jnp,
} from "@jax-js/jax";
import type { WebGpuBackend } from "../../core/backends/webgpu/mod.ts";
import { withoutFusedKernels } from "../../core/ops/fused.ts";
import { F, keep, manualSeed, randn, scope, setBackend, type Tensor } from "../../mod.ts";
import { forward, paperlabRun, type Run, tfjsRun, WORKLOADS } from "./_workloads.ts";

const backend = await setBackend("webgpu") as WebGpuBackend;
console.log(`paperlab webgpu: ${backend.deviceInfo}`);
const software = backend.deviceInfo.includes("(software)");
const SIZES = software ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096];
manualSeed(0);

const tfReady = await tf.setBackend("webgpu").catch(() => false);
if (!tfReady) console.warn("tfjs: the webgpu backend did not start; its benches are skipped");

const jaxDevices = await jaxInit().catch(() => [] as string[]);
const jaxReady = jaxDevices.includes("webgpu");
if (jaxReady) defaultDevice("webgpu");
else console.warn("jax-js: no webgpu device; its benches are skipped");

for (const n of SIZES) {
  const group = `matmul ${n}`;

  const a = keep(randn([n, n])), b = keep(randn([n, n]));
  const ours = async () => {
    const c = a.matmul(b);
    await c.data();
    c.dispose();
  };
  await ours();
  Deno.bench(`${group}: paperlab webgpu`, { group, baseline: true }, ours);

  if (tfReady) {
    const ta = tf.randomNormal([n, n]), tb = tf.randomNormal([n, n]);
    const peer = async () => {
      const c = tf.matMul(ta, tb);
      await c.data();
      c.dispose();
    };
    await peer();
    Deno.bench(`${group}: tfjs webgpu`, { group }, peer);
  }

  if (jaxReady) {
    const host = () => Float32Array.from({ length: n * n }, () => Math.random() * 2 - 1);
    const ja = jnp.array(host(), { shape: [n, n] }), jb = jnp.array(host(), { shape: [n, n] });
    // jax-js functions take ownership of their arguments: pass `.ref` to keep the inputs.
    const peer = async () => {
      const c = jnp.matmul(ja.ref, jb.ref);
      await c.data();
      if (c.refCount > 0) c.dispose();
    };
    await peer();
    Deno.bench(`${group}: jax-js webgpu`, { group }, peer);
  }
}

/** A bench of one forward op: compute, read back, free. */
function opBench(f: () => Tensor): () => Promise<void> {
  return async () => {
    const y = scope(f);
    await y.data();
    y.dispose();
  };
}

/**
 * Registers paperlab's fused run of `f` (the group's baseline) and its composed run (the fused
 * kernels hidden while it is queued), each run once first. The composed run must be an async
 * function: Deno.bench awaits only those, and times a plain function that returns a promise as
 * if it were synchronous (which made earlier "composed" rows far too fast).
 */
async function fusedAndComposed(group: string, f: () => Tensor): Promise<void> {
  const fused = opBench(f);
  const comp = async () => {
    await withoutFusedKernels(fused);
  };
  await fused();
  await comp();
  Deno.bench(`${group}: paperlab webgpu fused`, { group, baseline: true }, fused);
  Deno.bench(`${group}: paperlab webgpu composed`, { group }, comp);
}

{
  const group = "softmax [256,1024]";
  const x = keep(randn([256, 1024]));
  await fusedAndComposed(group, () => F.softmax(x, -1));
  if (tfReady) {
    const tx = tf.randomNormal([256, 1024]);
    const peer = async () => {
      const y = tf.softmax(tx);
      await y.data();
      y.dispose();
    };
    await peer();
    Deno.bench(`${group}: tfjs webgpu`, { group }, peer);
  }
  if (jaxReady) {
    const jx = jnp.array(Float32Array.from({ length: 256 * 1024 }, Math.random), {
      shape: [256, 1024],
    });
    const peer = async () => {
      const y = jnn.softmax(jx.ref, -1);
      await y.data();
      if (y.refCount > 0) y.dispose();
    };
    await peer();
    Deno.bench(`${group}: jax-js webgpu`, { group }, peer);
  }
}

{
  const group = "layerNorm [2048,256]";
  const x = keep(randn([2048, 256])), w = keep(randn([256])), b = keep(randn([256]));
  await fusedAndComposed(group, () => F.layerNorm(x, [256], { weight: w, bias: b }));
  if (tfReady) {
    const tx = tf.randomNormal([2048, 256]),
      tw = tf.randomNormal([256]),
      tb = tf.randomNormal([256]);
    const peer = async () => {
      const y = tf.tidy(() => {
        const { mean, variance } = tf.moments(tx, -1, true);
        return tx.sub(mean).mul(tf.rsqrt(variance.add(1e-5))).mul(tw).add(tb);
      });
      await y.data();
      y.dispose();
    };
    await peer();
    Deno.bench(`${group}: tfjs webgpu`, { group }, peer);
  }
}

{
  // Self-attention of 32 heads (batch 4 x 8 heads) of 256 positions, head size 64.
  const [B, H, L, E] = [4, 8, 256, 64];
  const group = `attention [${B},${H},${L},${E}]`;
  const [q, k, v] = [0, 1, 2].map(() => keep(randn([B, H, L, E])));
  await fusedAndComposed(group, () => F.scaledDotProductAttention(q, k, v));
  if (tfReady) {
    const [tq, tk, tv] = [0, 1, 2].map(() => tf.randomNormal([B * H, L, E]));
    const peer = async () => {
      const y = tf.tidy(() =>
        tf.matMul(tf.softmax(tf.matMul(tq, tk, false, true).mul(1 / Math.sqrt(E))), tv)
      );
      await y.data();
      y.dispose();
    };
    await peer();
    Deno.bench(`${group}: tfjs webgpu`, { group }, peer);
  }
  if (jaxReady) {
    // jax-js lays attention out as [B, L, N, H]; jit lets it fuse what it can.
    const arr = () =>
      jnp.array(Float32Array.from({ length: B * H * L * E }, () => Math.random() * 2 - 1), {
        shape: [B, L, H, E],
      });
    const [jq, jk, jv] = [arr(), arr(), arr()];
    const att = jit((a: JArray, b: JArray, c: JArray) => jnn.dotProductAttention(a, b, c));
    const peer = async () => {
      const y = att(jq.ref, jk.ref, jv.ref);
      await y.data();
      if (y.refCount > 0) y.dispose();
    };
    await peer();
    Deno.bench(`${group}: jax-js webgpu`, { group }, peer);
  }
}

/** A run with elementwise fusion off (one kernel per op). */
const unfused = (run: Run): Run => async () => {
  backend.fusion.enabled = false;
  try {
    await run();
  } finally {
    backend.fusion.enabled = true;
  }
};

/** Fusion's own workloads: a matmul epilogue, and a reduction's prologue and epilogue. */
const EPILOGUES: Record<string, () => Run> = {
  "linear + bias + gelu [512,512]x[512,512]ᵀ": () =>
    forward(
      [randn([512, 512]), randn([512, 512]), randn([512])],
      (x, w, b) => F.linear(x, w, b).gelu(),
    ),
  "mseLoss [1024,1024]": () =>
    forward([randn([1024, 1024]), randn([1024, 1024])], (x, y) => F.mseLoss(x, y)),
};

const fusionWorkloads: string[] = [WORKLOADS[0], ...Object.keys(EPILOGUES), WORKLOADS[5]];
if (!software) fusionWorkloads.push(WORKLOADS[6]);
for (const group of fusionWorkloads) {
  const make = () => EPILOGUES[group]?.() ?? paperlabRun(group)!;
  const fused = make(), plain = unfused(make());
  await fused();
  await plain();
  Deno.bench(`${group}: paperlab webgpu fused`, { group, baseline: true }, fused);
  Deno.bench(`${group}: paperlab webgpu unfused`, { group }, plain);
  const peer = tfReady ? tfjsRun(group) : undefined;
  if (peer) {
    await peer();
    Deno.bench(`${group}: tfjs webgpu`, { group }, peer);
  }
  if (jaxReady && group === WORKLOADS[0]) {
    const jx = jnp.array(Float32Array.from({ length: 1024 * 1024 }, () => Math.random() * 2 - 1), {
      shape: [1024, 1024],
    });
    const chain = jit((x: JArray) => jnn.gelu(x.ref.mul(2).add(1), { approximate: false }).mul(x));
    const jpeer = async () => {
      const y = chain(jx.ref);
      await y.data();
      if (y.refCount > 0) y.dispose();
    };
    await jpeer();
    Deno.bench(`${group}: jax-js webgpu (jit)`, { group }, jpeer);
  }
}
