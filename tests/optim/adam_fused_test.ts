/**
 * The fused Adam/AdamW update (Backend.adamStep, one pass) against adam.ts's composed tensor
 * ops on the same backend: the parameters and both moments must agree bit for bit after
 * several steps, for Adam and AdamW with and without weight decay, maximize, and a beta1
 * below 0.5 (lerp's other branch). The trajectories against PyTorch are in optimizers_test.ts.
 */
import { ok as assert } from "node:assert/strict";
import { getBackend } from "../../core/backend.ts";
import { withoutFusedKernels } from "../../core/ops/fused.ts";
import { optim, type Tensor, tensor } from "../../mod.ts";

function values(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
    a[i] = (seed >>> 8) / (1 << 23) - 1;
  }
  return a;
}

/** Five steps with fused kernels or without; the parameters and both moments after them. */
async function run(make: (p: Tensor[]) => optim.Adam, fused: boolean): Promise<Float32Array[]> {
  // 1,029 values: the Wasm SIMD update (arrays in the heap), with a partial last vector.
  const ps = [
    tensor(values(37, 1), { shape: [37] }),
    tensor(values(12, 2), { shape: [3, 4] }),
    tensor(values(1029, 3), { shape: [1029] }),
  ];
  for (const p of ps) p.requiresGrad_();
  const opt = make(ps);
  const steps = () => {
    for (let step = 0; step < 5; step++) {
      ps.forEach((p, i) =>
        p.grad = tensor(values(p.numel, 10 * step + i + 3), { shape: [...p.shape] })
      );
      opt.step();
    }
  };
  if (fused) steps();
  else withoutFusedKernels(steps);
  const out: Float32Array[] = [];
  for (const p of ps) {
    const s = opt.state.get(p)!;
    for (const t of [p, s.expAvg as Tensor, s.expAvgSq as Tensor]) {
      out.push(await t.data() as Float32Array);
    }
  }
  return out;
}

const CASES: [string, (p: Tensor[]) => optim.Adam][] = [
  ["Adam", (p) => new optim.Adam(p, { lr: 0.01 })],
  ["Adam weight decay, maximize", (p) => new optim.Adam(p, { weightDecay: 0.1, maximize: true })],
  ["AdamW", (p) => new optim.AdamW(p, { lr: 0.05 })],
  ["AdamW beta1 0.3, no decay", (p) => new optim.AdamW(p, { betas: [0.3, 0.9], weightDecay: 0 })],
];

for (const [name, make] of CASES) {
  Deno.test({
    name: `adamStep: fused update equals the composed ops bit for bit (${name})`,
    ignore: !getBackend().adamStep,
    async fn() {
      const [a, b] = [await run(make, true), await run(make, false)];
      a.forEach((x, k) => {
        for (let i = 0; i < x.length; i++) {
          assert(Object.is(x[i], b[k][i]), `${name}: tensor ${k} [${i}]: ${x[i]} vs ${b[k][i]}`);
        }
      });
    },
  });
}
