/**
 * The workloads of ops_peers.ts (CPU) and webgpu_bench.ts (WebGPU), built alike on any backend:
 * paperlab's on its current backend (`paperlabRun`), tfjs's on tfjs's current backend
 * (`tfjsRun`). Each returns one timed run, or undefined where that library lacks the workload.
 */
import * as tf from "@tensorflow/tfjs";
import { blasOn, setBlas } from "../../core/backends/cpu/blas.ts";
import { F, keep, nn, optim, randint, randn, scope, type Tensor } from "../../mod.ts";

/** One timed run of a workload. */
export type Run = () => Promise<void>;

/**
 * The run `make` builds, on the portable path: the system BLAS off for its duration (see
 * core/backends/cpu/blas.ts); undefined, without building it, where no BLAS is in use, so
 * the column reads "–".
 */
export function portable(make: () => Run | undefined): Run | undefined {
  const run = blasOn() ? make() : undefined;
  if (!run) return undefined;
  return async () => {
    setBlas(false);
    try {
      await run();
    } finally {
      setBlas(true);
    }
  };
}

export const WORKLOADS = [
  "elementwise gelu(2x+1)*x [1024,1024]",
  "softmax [256,1024]",
  "layerNorm [2048,256]",
  "conv2d [32,16,32,32] 3x3→32",
  "conv2d fwd+bwd [32,16,32,32] 3x3→32",
  "MLP step 64-256-256-10 b128 AdamW",
  "transformer step 2x(d128 h4 ff512) [16,64] AdamW",
] as const;

/**
 * A forward-only op on kept inputs: its first value is read back (which waits for the op, as
 * PyTorch's timing waits for its op: neither copies the whole result out) and it is freed.
 */
export function forward(inputs: Tensor[], f: (...x: Tensor[]) => Tensor): Run {
  const kept = inputs.map((x) => keep(x));
  return async () => {
    const y = scope(() => f(...kept));
    // (the flat view is freed by the scope: a view left alive would hold y's storage)
    const first = scope(() => y.reshape([-1]).narrow(0, 0, 1));
    await first.data();
    first.dispose();
    y.dispose();
  };
}

/** A training step: zeroGrad, loss, backward, step; the loss is read back. */
function trainStep(model: nn.Module, loss: () => Tensor): Run {
  const opt = new optim.AdamW(model.parameters(), { lr: 1e-3 });
  return async () => {
    const l = scope(() => {
      opt.zeroGrad();
      const l = loss();
      l.backward();
      opt.step();
      return l.detach();
    });
    await l.data();
    l.dispose();
  };
}

/** A workload on paperlab's current backend. */
export function paperlabRun(w: string): Run | undefined {
  switch (w) {
    case WORKLOADS[0]:
      return forward([randn([1024, 1024])], (x) => x.mul(2).add(1).gelu().mul(x));
    case WORKLOADS[1]:
      return forward([randn([256, 1024])], (x) => F.softmax(x, -1));
    case WORKLOADS[2]:
      return forward(
        [randn([2048, 256]), randn([256]), randn([256])],
        (x, weight, bias) => F.layerNorm(x, [256], { weight, bias }),
      );
    case WORKLOADS[3]:
      return forward(
        [randn([32, 16, 32, 32]), randn([32, 16, 3, 3]).mul(0.1), randn([32])],
        (x, wt, b) => F.conv2d(x, wt, b, { padding: 1 }),
      );
    case WORKLOADS[4]: {
      const x = keep(randn([32, 16, 32, 32]).requiresGrad_());
      const wt = keep(randn([32, 16, 3, 3]).mul(0.1).requiresGrad_());
      return async () => {
        const g = scope(() => {
          F.conv2d(x, wt, null, { padding: 1 }).square().mean().backward();
          const g = wt.grad!;
          x.grad!.dispose(); // (grads outlive the scope: unfreed, each run would leak one)
          x.grad = wt.grad = null;
          return g;
        });
        await g.data();
        g.dispose();
      };
    }
    case WORKLOADS[5]: {
      const model = new nn.Sequential(
        new nn.Linear(64, 256),
        new nn.ReLU(),
        new nn.Linear(256, 256),
        new nn.ReLU(),
        new nn.Linear(256, 10),
      );
      const x = keep(randn([128, 64])), y = keep(randint(0, 10, [128]));
      return trainStep(model, () => F.crossEntropy(model.forward(x), y));
    }
    case WORKLOADS[6]: {
      const o = { dimFeedforward: 512, dropout: 0, batchFirst: true };
      const model = new nn.Sequential(
        new nn.TransformerEncoderLayer(128, 4, o),
        new nn.TransformerEncoderLayer(128, 4, o),
      );
      const x = keep(randn([16, 64, 128])), y = keep(randn([16, 64, 128]));
      return trainStep(model, () => F.mseLoss(model.forward(x), y));
    }
  }
  return undefined;
}

/** A workload on tfjs's current backend. */
export function tfjsRun(w: string): Run | undefined {
  const op = (f: () => tf.Tensor): Run => async () => {
    const y = f();
    await y.data();
    y.dispose();
  };
  switch (w) {
    case WORKLOADS[0]: {
      const x = tf.randomNormal([1024, 1024]);
      // tfjs has no exact (erf) gelu op: x * Φ(x) written with its erf.
      return op(() =>
        tf.tidy(() => {
          const z = x.mul(2).add(1);
          return z.mul(tf.erf(z.mul(Math.SQRT1_2)).add(1).mul(0.5)).mul(x);
        })
      );
    }
    case WORKLOADS[1]: {
      const x = tf.randomNormal([256, 1024]);
      return op(() => tf.softmax(x));
    }
    case WORKLOADS[2]: {
      const x = tf.randomNormal([2048, 256]),
        g = tf.randomNormal([256]),
        b = tf.randomNormal([256]);
      return op(() =>
        tf.tidy(() => {
          const { mean, variance } = tf.moments(x, -1, true);
          return x.sub(mean).mul(tf.rsqrt(variance.add(1e-5))).mul(g).add(b);
        })
      );
    }
    case WORKLOADS[3]: {
      // NHWC, tfjs's layout.
      const x = tf.randomNormal([32, 32, 32, 16]) as tf.Tensor4D;
      const f = tf.randomNormal([3, 3, 16, 32], 0, 0.1) as tf.Tensor4D;
      const b = tf.randomNormal([32]);
      return op(() => tf.tidy(() => tf.conv2d(x, f, 1, "same").add(b)));
    }
    case WORKLOADS[5]: {
      const sizes = [64, 256, 256, 10];
      const ws = sizes.slice(0, 3).map((s, i) =>
        tf.variable(tf.randomNormal([s, sizes[i + 1]], 0, 0.05))
      );
      const bs = sizes.slice(1).map((s) => tf.variable(tf.zeros([s])));
      const x = tf.randomNormal([128, 64]);
      const y = tf.oneHot(tf.randomUniform([128], 0, 10, "int32"), 10);
      const opt = tf.train.adam(1e-3);
      return op(() =>
        opt.minimize(() => {
          let h: tf.Tensor = x;
          for (let i = 0; i < 3; i++) {
            h = h.matMul(ws[i]).add(bs[i]);
            if (i < 2) h = h.relu();
          }
          return tf.losses.softmaxCrossEntropy(y, h) as tf.Scalar;
        }, true)!
      );
    }
  }
  return undefined;
}
