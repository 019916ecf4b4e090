/**
 * WebGPU matmul beside its peers in the same run: paperlab's webgpu backend, tfjs's webgpu
 * backend and jax-js's webgpu device, at 256, 512 and 1024 (float32, square).
 * `deno bench -A benchmarks/core/webgpu_bench.ts`
 *
 * Every iteration awaits a readback of the result, so the GPU work is inside the timing; the
 * readback itself (a map of n^2 floats) is part of every peer's number alike. Each library
 * runs once per size before timing, so shader compilation is left out. On a software adapter
 * (llvmpipe) the numbers measure a CPU rasteriser, not a GPU; the adapter is printed first.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { defaultDevice, init as jaxInit, numpy as jnp } from "@jax-js/jax";
import { keep, manualSeed, randn, setBackend } from "../../mod.ts";

const SIZES = [256, 512, 1024];

const backend = await setBackend("webgpu");
console.log(`paperlab webgpu: ${backend.deviceInfo}`);
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
