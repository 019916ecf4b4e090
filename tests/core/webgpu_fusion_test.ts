/**
 * Lazy fusion on the WebGPU backend (core/backends/webgpu/fusion.ts): elementwise chains, and
 * matmuls with an elementwise epilogue, run as one kernel with the eager kernels' results;
 * a matmul never runs twice; pending buffers keep their inputs alive and never run when freed
 * unread, expressions too large for one kernel are split, and a training loop (whose
 * optimizer state feeds itself step after step) keeps GPU memory flat. Runs in the webgpu pass
 * (PAPERLAB_BACKEND=webgpu); skipped on other backends.
 */
import assert from "node:assert/strict";
import "./_helpers.ts";
import { getBackend } from "../../core/backend.ts";
import type { WebGpuBackend } from "../../core/backends/webgpu/mod.ts";
import { bmmT } from "../../core/ops/matmul.ts";
import { F, keep, manualSeed, nn, optim, randn, scope, type Tensor, tensor } from "../../mod.ts";

const be = getBackend() as WebGpuBackend;
const ignore = be.name !== "webgpu";
const dispatches = () => be.poolStats().dispatches;

/** Runs f with fusion on and off: both results' data and the dispatches each queued. */
async function fusedAndEager(f: () => Tensor) {
  const out = [];
  for (const on of [true, false]) {
    be.fusion.enabled = on;
    try {
      const d0 = dispatches();
      const y = scope(f);
      const data = await y.data() as Float32Array; // (a pending result runs here)
      out.push({ data, n: dispatches() - d0 });
      y.dispose();
    } finally {
      be.fusion.enabled = true;
    }
  }
  return { fused: out[0], eager: out[1] };
}

/** Equal within float32 rounding (a compiler may contract a * b + c into an fma), NaN = NaN. */
function close(what: string, a: ArrayLike<number>, b: ArrayLike<number>) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x === y || (x !== x && y !== y)) continue;
    if (!(Math.abs(x - y) <= 1e-6 + 1e-6 * Math.abs(y))) {
      assert.fail(`${what}: [${i}] fused ${x} vs eager ${y}`);
    }
  }
}

Deno.test({
  name: "fusion: an elementwise chain runs as one kernel per shared intermediate, as eager",
  ignore,
  fn: async () => {
    manualSeed(1);
    const x = keep(randn([64, 300]));
    // gelu written out, z (1 + erf(z / sqrt 2)) / 2, reads z = 2x + 1 twice, so z is computed
    // once and the rest reads it: 2 kernels where the eager backend queues one per op (and one
    // per scalar constant).
    const gelu = (z: Tensor) => z.mul(0.5).mul(z.mul(Math.SQRT1_2).erf().add(1));
    const r = await fusedAndEager(() => gelu(x.mul(2).add(1)).mul(x));
    assert.equal(r.fused.n, 2);
    assert.ok(r.eager.n >= 10, `eager queued ${r.eager.n} dispatches`);
    close("gelu chain", r.fused.data, r.eager.data);
    // gelu as one op reads z once: the whole chain is one kernel.
    const r1 = await fusedAndEager(() => x.mul(2).add(1).gelu().mul(x));
    assert.equal(r1.fused.n, 1);
    close("gelu op chain", r1.fused.data, r.eager.data);
    x.dispose();
  },
});

Deno.test({
  name: "fusion: broadcast operands, where, comparisons, casts and NaN rules match eager",
  ignore,
  fn: async () => {
    manualSeed(2);
    const vals = [NaN, Infinity, -Infinity, 0, -0, 0.5, -2.5, 1, 3, -1];
    const x = keep(
      tensor(Array.from({ length: 4 * 5 * 6 }, (_, i) => vals[i % 10] * (1 + i / 7)))
        .reshape([4, 5, 6]),
    );
    const bias = keep(randn([6])), col = keep(randn([4, 1, 1]));
    const r = await fusedAndEager(() => {
      const pos = x.gt(0);
      const a = x.mul(bias).sqrt().add(x.isnan().float());
      const b = x.exp().sub(col).maximum(bias).remainder(1.5).pow(2);
      return a.where(pos, b).add(pos.logicalNot().float().mul(x.sign()));
    });
    assert.ok(r.fused.n < r.eager.n, `fused ${r.fused.n} vs eager ${r.eager.n} dispatches`);
    close("mixed expression", r.fused.data, r.eager.data);
    for (const t of [x, bias, col]) t.dispose();
  },
});

Deno.test({
  name: "fusion: a pending result outlives its freed inputs; one freed unread never runs",
  ignore,
  fn: async () => {
    const a = randn([1000]);
    const host = await a.data() as Float32Array;
    const b = a.mul(3).add(1);
    a.dispose(); // b's expression still reads a's buffer
    const bd = await b.data();
    for (let i = 0; i < host.length; i++) {
      // rounded after each op, or once where the compiler contracts into an fma (NVIDIA does)
      const twice = Math.fround(Math.fround(host[i] * 3) + 1), once = Math.fround(host[i] * 3 + 1);
      assert.ok(bd[i] === twice || bd[i] === once, `[${i}] ${bd[i]} vs ${twice}`);
    }
    b.dispose();

    const c = randn([1000]);
    await c.data();
    const d0 = dispatches();
    const e = c.exp().mul(2);
    e.dispose();
    c.dispose();
    assert.equal(dispatches(), d0, "a freed pending result was computed");
  },
});

Deno.test({
  name: "fusion: an operand given twice is computed once; a second consumer reads it",
  ignore,
  fn: async () => {
    const x = keep(randn([257]));
    const r = await fusedAndEager(() => {
      const y = x.exp();
      return y.mul(y).add(y.sin()); // y inlined in mul (both operands), read by sin's chain
    });
    assert.equal(r.fused.n, 2);
    close("shared operand", r.fused.data, r.eager.data);
    x.dispose();
  },
});

Deno.test({
  name: "fusion: expressions beyond one kernel's ops and bindings are split, as eager",
  ignore,
  fn: async () => {
    manualSeed(3);
    const x = keep(randn([33, 17]));
    // 150 ops in a row: more than one kernel takes.
    const long = await fusedAndEager(() => {
      let y = x;
      for (let i = 0; i < 75; i++) y = y.mul(0.999).add(Math.sin(i) * 0.01);
      return y;
    });
    assert.ok(long.fused.n > 1 && long.fused.n < long.eager.n);
    close("150-op chain", long.fused.data, long.eager.data);
    // 20 distinct inputs, strided and broadcast: more than one kernel's bindings.
    const xs = Array.from({ length: 20 }, (_, i) => keep(randn(i % 2 ? [17] : [17, 33])));
    const wide = await fusedAndEager(() =>
      xs.reduce<Tensor>((s, t, i) => s.add(i % 2 ? t.mul(i) : t.transpose(0, 1).tanh()), x)
    );
    close("20 inputs", wide.fused.data, wide.eager.data);
    for (const t of [x, ...xs]) t.dispose();
  },
});

Deno.test({
  name: "fusion: a late-computed intermediate that would overflow the bindings is recomputed",
  ignore,
  fn: async () => {
    // s reads 15 distinct inputs (one kernel binds 16 buffers, its output included) and
    // inlines p = x0 * x1. A second consumer then computes p; reading p as well as x0 and x1
    // would take a 17th binding, so s's kernel recomputes p.
    const xs = Array.from({ length: 15 }, () => keep(randn([300])));
    const r = await fusedAndEager(() => {
      const p = xs[0].mul(xs[1]);
      let s = p.add(xs[0]);
      for (const x of xs.slice(1)) s = s.add(x);
      const q = p.mul(3);
      return s.mul(q.sum().mul(0).add(1)); // q computed (by the sum) before s runs
    });
    close("15 inputs and a late intermediate", r.fused.data, r.eager.data);
    for (const t of xs) t.dispose();
  },
});

/** Runs f with fusion on, returning the matmul and reduction kernels it ran and its dispatches. */
async function counted(f: () => Promise<void>) {
  const { matmul, reduce } = be.fusion.runs, d0 = dispatches();
  await f();
  const r = be.fusion.runs;
  return { matmuls: r.matmul - matmul, reduce: r.reduce - reduce, dispatches: dispatches() - d0 };
}

Deno.test({
  name: "fusion: a matmul's elementwise epilogue (bias, activation, comparison) is one kernel",
  ignore,
  fn: async () => {
    manualSeed(5);
    const x = keep(randn([37, 50])), w = keep(randn([70, 50])), b = keep(randn([70]));
    const x3 = keep(randn([3, 50, 20])), w3 = keep(randn([3, 33, 50]));
    await Promise.all([x, w, b, x3, w3].map((t) => t.data()));
    const lin = await fusedAndEager(() => F.linear(x, w, b).gelu().mul(2));
    assert.equal(lin.fused.n, 1);
    close("linear + bias + gelu", lin.fused.data, lin.eager.data);
    // Transposed and batched operands, a broadcast operand in the epilogue, a bool result.
    const bat = await fusedAndEager(() => bmmT(x3, w3, true, true).add(b.narrow(0, 0, 33)).tanh());
    assert.equal(bat.fused.n, 1);
    close("batched, transposed", bat.fused.data, bat.eager.data);
    const cmp = await fusedAndEager(() =>
      bmmT(x.reshape([1, 37, 50]), w.reshape([1, 70, 50]), false, true).gt(b).float()
    );
    assert.equal(cmp.fused.n, 1);
    close("comparison", cmp.fused.data, cmp.eager.data);
    for (const t of [x, w, b, x3, w3]) t.dispose();
  },
});

Deno.test({
  name: "fusion: a matmul runs once when its product or an epilogue intermediate is read again",
  ignore,
  fn: async () => {
    manualSeed(6);
    const a = keep(randn([40, 24])), b = keep(randn([24, 48])), c = keep(randn([48, 16]));
    await Promise.all([a, b, c].map((t) => t.data()));
    be.fusion.enabled = false;
    const ez = a.matmul(b), eh = ez.add(1), er = eh.relu(), ehc = eh.matmul(c);
    be.fusion.enabled = true;
    const host = await Promise.all([ez, er, ehc].map((t) => t.data()));
    for (const t of [ez, eh, er, ehc]) t.dispose();
    // The product is alive when its consumer runs: that kernel stores both.
    let got: (Float32Array | Uint8Array | Int32Array)[] = [];
    let n = await counted(async () => {
      const z = a.matmul(b), y = z.add(1).relu();
      got = [await y.data(), await z.data()];
      y.dispose(), z.dispose();
    });
    assert.deepEqual(n, { matmuls: 1, reduce: 0, dispatches: 1 });
    close("relu(z + 1)", got[0], host[1]);
    close("z", got[1], host[0]);
    // A second consumer computes the product; the first consumer's kernel then reads it.
    n = await counted(async () => {
      const z = a.matmul(b), y = z.add(1).relu(), w = z.mul(1);
      got = [await y.data(), await w.data()];
      for (const t of [z, y, w]) t.dispose();
    });
    assert.deepEqual(n, { matmuls: 1, reduce: 0, dispatches: 3 });
    close("relu(z + 1), second", got[0], host[1]);
    close("z * 1", got[1], host[0]);
    // h = z + 1 is inlined into relu(h), and later read by another matmul.
    n = await counted(async () => {
      const z = a.matmul(b), h = z.add(1), r = h.relu();
      got = [await r.data()];
      const hc = h.matmul(c);
      got.push(await hc.data());
      for (const t of [z, h, r, hc]) t.dispose();
    });
    assert.deepEqual(n, { matmuls: 2, reduce: 0, dispatches: 2 });
    close("relu(h)", got[0], host[1]);
    close("h @ c", got[1], host[2]);
    // Two products in one expression: one runs on its own, the other's kernel adds it.
    n = await counted(async () => {
      const z1 = a.matmul(b), z2 = a.matmul(b), y = z1.add(z2.mul(-1));
      got = [await y.data()];
      for (const t of [z1, z2, y]) t.dispose();
    });
    assert.deepEqual(n, { matmuls: 2, reduce: 0, dispatches: 2 });
    assert.ok(got[0].every((v) => v === 0));
    // Twelve alive intermediates over twelve more inputs: more outputs than one kernel binds.
    // The kernel that runs the product stores the first few; the rest read them.
    const xs = Array.from({ length: 12 }, () => keep(randn([40, 48])));
    await Promise.all(xs.map((t) => t.data()));
    be.fusion.enabled = false;
    const eager = [a.matmul(b)];
    for (const x of xs) eager.push(eager[eager.length - 1].add(x));
    be.fusion.enabled = true;
    const want = await Promise.all([eager[3].data(), eager[12].data()]);
    n = await counted(async () => {
      const hs = [a.matmul(b)];
      for (const x of xs) hs.push(hs[hs.length - 1].add(x));
      got = [await hs[12].data(), await hs[3].data()];
      for (const t of hs) t.dispose();
    });
    assert.equal(n.matmuls, 1);
    close("h12", got[0], want[1]);
    close("h3", got[1], want[0]);
    for (const t of [...eager, ...xs]) t.dispose();
    // A product freed unread never runs.
    n = await counted(() => Promise.resolve(a.matmul(b).dispose()));
    assert.deepEqual(n, { matmuls: 0, reduce: 0, dispatches: 0 });
    for (const t of [a, b, c]) t.dispose();
  },
});

Deno.test({
  name: "fusion: a reduction reads a pending input as its prologue and has an epilogue",
  ignore,
  fn: async () => {
    manualSeed(7);
    const vals = [NaN, 2, -3, 0.5];
    const x = keep(randn([64, 300])), y = keep(randn([64, 300]));
    const wide = keep(randn([8, 2100])), big = keep(randn([300_000]));
    const nan = keep(tensor(Array.from({ length: 640 }, (_, i) => i % 97 ? i / 7 : vals[i % 4])));
    await Promise.all([x, y, wide, big, nan].map((t) => t.data()));
    const cases: [string, () => Tensor, number][] = [
      ["mse", () => F.mseLoss(x, y), 1], // sum((x - y)^2) / n
      ["row norms", () => x.mul(x).sum(1).sqrt(), 1],
      ["column logsumexp", () => x.exp().sum(0).log(), 1],
      ["thread per output", () => wide.tanh().mean(0).mul(3), 1],
      ["two passes (long row)", () => big.mul(2).sum().add(1), 2],
      ["max with NaN", () => nan.reshape([64, 10]).abs().amax(1).neg(), 1],
      ["variance", () => x.var(1), 2],
      ["several reduced blocks", () => x.reshape([8, 8, 300]).exp().sum([0, 2]).mul(2), 3], // exp, copy, sum,
    ];
    for (const [what, f, n] of cases) {
      const r = await fusedAndEager(f);
      assert.equal(r.fused.n, n, `${what}: ${r.fused.n} dispatches`);
      assert.ok(r.eager.n > n, `${what}: eager ${r.eager.n} dispatches`);
      close(what, r.fused.data, r.eager.data);
    }
    // The sums are read again after their consumer ran: the reduction does not run again.
    const n = await counted(async () => {
      const s = x.sum(1), t = s.mul(2);
      const [td, sd] = [await t.data(), await s.data()];
      for (let i = 0; i < 64; i++) assert.equal(td[i], sd[i] * 2);
      s.dispose(), t.dispose();
    });
    assert.deepEqual(n, { matmuls: 0, reduce: 1, dispatches: 1 });
    for (const t of [x, y, wide, big, nan]) t.dispose();
  },
});

Deno.test({
  name: "fusion: a 1,000-step AdamW training loop keeps GPU buffers and live bytes flat",
  ignore,
  fn: async () => {
    manualSeed(4);
    const model = new nn.Sequential(new nn.Linear(8, 16), new nn.Tanh(), new nn.Linear(16, 1));
    const opt = new optim.AdamW(model.parameters(), { lr: 1e-2 });
    const x = keep(randn([32, 8]));
    const y = keep(x.sum(1, { keepdim: true }).sin());
    let base = be.poolStats();
    const losses: number[] = [];
    for (let step = 0; step < 1000; step++) {
      const loss = scope(() => {
        opt.zeroGrad();
        const l = F.mseLoss(model.forward(x), y);
        l.backward();
        opt.step();
        return l.detach();
      });
      if (step % 100 === 0) losses.push(await loss.item() as number);
      loss.dispose();
      if (step === 10) base = be.poolStats();
    }
    const end = be.poolStats();
    assert.equal(end.created, base.created, "GPU buffers were created after step 10");
    assert.ok(end.pooledBytes <= base.pooledBytes * 1.01 + 4096, "the pool grew");
    assert.ok(losses[9] < losses[0] * 0.2, `loss did not fall: ${losses}`);
    for (const t of [x, y]) t.dispose();
  },
});
