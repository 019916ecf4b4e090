/**
 * Core microbenchmarks on the CPU backend, with tfjs's CPU backend beside them as a peer in
 * the same run: `deno bench -A benchmarks/core/cpu_bench.ts`.
 * Groups: matmul at 128 and 256, softmax over [256, 1024], and one training step of an MLP
 * 64-256-256-10 on batch 128 (forward, backward, SGD update).
 */
import * as tf from "@tensorflow/tfjs";
import { F, keep, manualSeed, noGrad, randint, randn, scope, type Tensor } from "../../mod.ts";

await tf.setBackend("cpu");
manualSeed(0);

for (const n of [128, 256]) {
  const a = keep(randn([n, n])), b = keep(randn([n, n]));
  const ta = tf.randomNormal([n, n]), tb = tf.randomNormal([n, n]);
  Deno.bench(`matmul ${n}: paperlab cpu`, { group: `matmul ${n}`, baseline: true }, async () => {
    const c = a.matmul(b);
    await c.data();
    c.dispose();
  });
  Deno.bench(`matmul ${n}: tfjs cpu`, { group: `matmul ${n}` }, async () => {
    const c = tf.matMul(ta, tb);
    await c.data();
    c.dispose();
  });
}

{
  const x = keep(randn([256, 1024]));
  const tx = tf.randomNormal([256, 1024]);
  Deno.bench("softmax [256,1024]: paperlab cpu", { group: "softmax", baseline: true }, async () => {
    const y = scope(() => F.softmax(x, -1));
    await y.data();
    y.dispose();
  });
  Deno.bench("softmax [256,1024]: tfjs cpu", { group: "softmax" }, async () => {
    const y = tf.softmax(tx);
    await y.data();
    y.dispose();
  });
}

{
  const sizes = [64, 256, 256, 10];
  const x = keep(randn([128, 64])), y = keep(randint(0, 10, [128]));
  const params: Tensor[] = [];
  for (let i = 0; i < 3; i++) {
    params.push(keep(randn([sizes[i + 1], sizes[i]]).mul(0.05).requiresGrad_()));
    params.push(keep(randn([sizes[i + 1]]).mul(0.01).requiresGrad_()));
  }
  const step = () =>
    scope(() => {
      let h = x;
      for (let i = 0; i < 3; i++) {
        h = F.linear(h, params[2 * i], params[2 * i + 1]);
        if (i < 2) h = h.relu();
      }
      const loss = F.crossEntropy(h, y);
      loss.backward();
      noGrad(() => {
        for (const p of params) {
          p.assign(p.sub(p.grad!.mul(0.01)));
          p.grad!.dispose();
          p.grad = null;
        }
      });
      return loss.detach();
    });
  Deno.bench("MLP step: paperlab cpu", { group: "mlp-step", baseline: true }, async () => {
    const l = step();
    await l.data();
    l.dispose();
  });

  const tw = sizes.slice(0, 3).map((s, i) =>
    tf.variable(tf.randomNormal([s, sizes[i + 1]], 0, 0.05))
  );
  const tbias = sizes.slice(1).map((s) => tf.variable(tf.zeros([s])));
  const tX = tf.randomNormal([128, 64]);
  const tY = tf.oneHot(tf.randomUniform([128], 0, 10, "int32"), 10);
  const opt = tf.train.sgd(0.01);
  Deno.bench("MLP step: tfjs cpu", { group: "mlp-step" }, async () => {
    const l = opt.minimize(() => {
      let h: tf.Tensor2D = tX as tf.Tensor2D;
      for (let i = 0; i < 3; i++) {
        h = tf.add(tf.matMul(h, tw[i]), tbias[i]) as tf.Tensor2D;
        if (i < 2) h = tf.relu(h);
      }
      return tf.losses.softmaxCrossEntropy(tY, h) as tf.Scalar;
    }, true)!;
    await l.data();
    l.dispose();
  });
}
