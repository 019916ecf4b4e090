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
 * median to PyTorch's. Peers: paperlab cpu, tfjs wasm (the forward-only ops and the MLP step).
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import {
  F,
  keep,
  manualSeed,
  nn,
  optim,
  randint,
  randn,
  scope,
  setBackend,
  type Tensor,
} from "../../mod.ts";
import { type MedianBest, torchPeer } from "./_torch.ts";

type Run = () => Promise<void>;
interface Peer {
  name: string;
  /** Builds a workload's inputs and returns one timed run (undefined: not measured). */
  setup(w: string): Run | undefined;
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

await setBackend("cpu");
manualSeed(0);

/**
 * A forward-only op on kept inputs: its first value is read back (which waits for the op, as
 * PyTorch's timing waits for its op: neither copies the whole result out) and it is freed.
 */
function forward(inputs: Tensor[], f: (...x: Tensor[]) => Tensor): Run {
  const kept = inputs.map((x) => keep(x));
  return async () => {
    const y = scope(() => f(...kept));
    const first = y.reshape([-1]).narrow(0, 0, 1);
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

const paperlab: Peer = {
  name: "paperlab cpu",
  setup(w) {
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
  },
};

// tfjs's wasm backend runs in Deno as in Node: point it at the .wasm files in the npm cache.
setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
const tfjsReady = await tf.setBackend("wasm");
const tfjs: Peer = {
  name: "tfjs wasm",
  setup(w) {
    if (!tfjsReady) return undefined;
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
  },
};

export const PEERS: Peer[] = [paperlab, tfjs];

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
  const names = [...peers.map((p) => p.name), ...(torch ? ["torch (2 threads)", "ratio"] : [])];
  const load = () => Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
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
      cells.push(pt && t[0] ? `${(t[0].median / pt.median).toFixed(1)}x` : "–");
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
