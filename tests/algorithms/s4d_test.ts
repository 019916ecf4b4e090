import assert from "node:assert/strict";
import {
  causalConv,
  causalConvLast,
  denseKernel,
  diagonalLegS,
  hippoLegS,
  initA,
  S4D,
  S4D_INITS,
  S4DKernel,
} from "../../algorithms/s4d/mod.ts";
import { manualSeed, randn } from "../../mod.ts";

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/**
 * y = 2 Re(C x_k) + D u_k by the recurrence x_k = Ā x_{k-1} + B̄ u_k (float64 on the host),
 * for u (H, L); Ā and B̄ from the kernel's Δ, A, B by ZOH or bilinear.
 */
async function recurrence(k: S4DKernel, u: ArrayLike<number>, L: number, D?: ArrayLike<number>) {
  const { dt, A, B, C } = k.ssm();
  const [dtv, ar, ai, br, bi, cr, ci] = await Promise.all(
    [dt, ...A, ...B, ...C].map((t) => t.data()),
  );
  const H = k.H, M = k.N / 2, y = new Float64Array(H * L);
  for (let h = 0; h < H; h++) {
    for (let n = 0; n < M; n++) {
      const i = h * M + n, d = dtv[h];
      const [zr, zi] = [d * ar[i], d * ai[i]]; // ΔA
      let Abar: [number, number], scale: [number, number]; // B̄ = scale · B
      if (k.disc === "zoh") {
        const e = Math.exp(zr);
        Abar = [e * Math.cos(zi), e * Math.sin(zi)];
        const [nr, ni] = [Abar[0] - 1, Abar[1]], den = ar[i] ** 2 + ai[i] ** 2; // (Ā - 1) / A
        scale = [(nr * ar[i] + ni * ai[i]) / den, (ni * ar[i] - nr * ai[i]) / den];
      } else {
        const [dr, di] = [1 - zr / 2, -zi / 2], den = dr * dr + di * di;
        const [pr, pi] = [1 + zr / 2, zi / 2];
        Abar = [(pr * dr + pi * di) / den, (pi * dr - pr * di) / den];
        scale = [(d * dr) / den, (-d * di) / den];
      }
      const Bb = [scale[0] * br[i] - scale[1] * bi[i], scale[0] * bi[i] + scale[1] * br[i]];
      let [xr, xi] = [0, 0];
      for (let l = 0; l < L; l++) {
        const v = u[h * L + l];
        [xr, xi] = [
          Abar[0] * xr - Abar[1] * xi + Bb[0] * v,
          Abar[0] * xi + Abar[1] * xr + Bb[1] * v,
        ];
        y[h * L + l] += 2 * (cr[i] * xr - ci[i] * xi);
      }
    }
    if (D) { for (let l = 0; l < L; l++) y[h * L + l] += D[h] * u[h * L + l]; }
  }
  return y;
}

Deno.test("S4D kernel equals unrolling the recurrence, for every init and both discretisations", async () => {
  manualSeed(0);
  const H = 3, L = 40;
  for (const init of S4D_INITS) {
    for (const disc of ["zoh", "bilinear"] as const) {
      const k = new S4DKernel(H, { N: 16, init, disc, dtMin: 0.01, dtMax: 0.2 });
      const u = randn([H, L]);
      const uv = await u.data();
      const want = await recurrence(k, uv, L);
      const K = k.forward(L);
      const scale = Math.max(...Array.from(want, Math.abs));
      for (const mode of ["fft", "direct"] as const) {
        const got = await causalConv(u, K, mode).data();
        const err = maxAbsDiff(got, want) / scale;
        assert.ok(err < 2e-4, `${init}/${disc}/${mode}: relative error ${err}`);
      }
    }
  }
});

Deno.test("S4D layer: y = K * u + D u before the GLU mixing matches the recurrence", async () => {
  manualSeed(1);
  const H = 4, L = 24, B = 2;
  const layer = new S4D(H, { N: 8, init: "inv" });
  const u = randn([B, L, H]);
  const ut = u.transpose(1, 2).contiguous(); // (B, H, L)
  const y = causalConv(ut, layer.kernel.forward(L)).add(ut.mul(layer.D.unsqueeze(-1)));
  const yv = await y.data(), uv = await ut.data(), D = await layer.D.data();
  for (let b = 0; b < B; b++) {
    const want = await recurrence(layer.kernel, uv.slice(b * H * L, (b + 1) * H * L), L, D);
    assert.ok(maxAbsDiff(yv.slice(b * H * L, (b + 1) * H * L), want) < 1e-3);
  }
});

Deno.test("S4D: shapes, forwardLast equals the last position, official parameter names", async () => {
  manualSeed(2);
  const layer = new S4D(6, { N: 10, mode: "direct" });
  const u = randn([3, 17, 6]);
  const y = layer.forward(u);
  assert.deepEqual(y.shape, [3, 17, 6]);
  assert.deepEqual(layer.kernel.forward(17).shape, [6, 17]);
  const last = layer.forwardLast(u);
  assert.deepEqual(last.shape, [3, 6]);
  assert.ok(maxAbsDiff(await last.data(), await y.select(1, 16).data()) < 1e-5);
  const K = layer.kernel.forward(17), ut = u.transpose(1, 2);
  const full = await causalConv(ut, K).select(-1, 16).data();
  assert.ok(maxAbsDiff(await causalConvLast(ut, K).data(), full) < 1e-4);
  const names = layer.namedParameters().map(([n, p]) => `${n}:${p.shape.join("x")}`).sort();
  assert.deepEqual(names, [
    "D:6",
    "kernel.A_imag:6x5",
    "kernel.C:6x5x2",
    "kernel.log_A_real:6x5",
    "kernel.log_dt:6",
    "output_linear.bias:12",
    "output_linear.weight:12x6",
  ]);
  assert.ok(Object.keys(layer.stateDict()).includes("kernel.B"), "B is a buffer");
});

Deno.test("S4D: a one-channel input (B, L, 1) is shared by all H channels", async () => {
  manualSeed(5);
  const layer = new S4D(5, { N: 8 });
  const u1 = randn([2, 9, 1]), uH = u1.expand([2, 9, 5]);
  for (const f of ["forward", "forwardLast"] as const) {
    const a = await layer[f](u1).data(), b = await layer[f](uH).data();
    assert.ok(maxAbsDiff(a, b) < 1e-5, f);
  }
  const K = layer.kernel.forward(9), ut = u1.transpose(1, 2);
  const viaFft = await causalConv(ut, K).data(),
    viaDirect = await causalConv(ut, K, "direct").data();
  assert.ok(maxAbsDiff(viaFft, viaDirect) < 1e-4);
});

Deno.test("S4D: gradients reach Δ, A, C, D and the mixing layer, not the buffer B", async () => {
  manualSeed(3);
  const layer = new S4D(4, { N: 8, disc: "bilinear" });
  layer.forward(randn([2, 12, 4])).square().sum().backward();
  for (const [name, p] of layer.namedParameters()) {
    assert.ok(p.grad, `${name} has a gradient`);
    assert.ok(Number(await p.grad!.abs().sum().item()) > 0, `${name}: nonzero gradient`);
  }
  assert.equal(layer.kernel.B.grad, null);
  assert.equal(layer.kernel.B.requiresGrad, false);
});

Deno.test("S4D inits: Lin, Inv and Real follow the paper's formulas; Δ is in [dtMin, dtMax]", async () => {
  const N = 8, H = 2;
  const im = async (init: "lin" | "inv") => Array.from(await initA(init, N, H).Aim.data());
  const lin = await im("lin"), inv = await im("inv");
  for (let n = 0; n < N / 2; n++) {
    assert.ok(Math.abs(lin[n] - Math.PI * n) < 1e-5);
    assert.ok(Math.abs(inv[n] - (N / Math.PI) * (N / (2 * n + 1) - 1)) < 1e-4);
    assert.ok(Math.abs(lin[N / 2 + n] - lin[n]) < 1e-6, "same A for every channel");
  }
  const real = await initA("real", N, H).Are.data();
  assert.deepEqual(Array.from(real.slice(0, 4)), [-1, -2, -3, -4]);
  manualSeed(4);
  const k = new S4DKernel(200, { dtMin: 0.01, dtMax: 0.05 });
  const dt = await k.logDt.exp().data();
  assert.ok(dt.every((v) => v >= 0.01 * (1 - 1e-6) && v <= 0.05 * (1 + 1e-6)));
  const Are = await k.logAReal.exp().neg().data();
  assert.ok(Are.every((v) => Math.abs(v + 0.5) < 1e-6), "Re A = -1/2");
});

Deno.test("S4D-LegS: V diag(λ) V^* (with conjugates) rebuilds HiPPO-LegS's normal part", () => {
  const N = 16, M = N / 2;
  const { AN } = hippoLegS(N);
  const d = diagonalLegS(N);
  let err = 0;
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0; // 2 Re Σ_k V_ik λ_k conj(V_jk)
      for (let k = 0; k < M; k++) {
        const [vr, vi, wr, wi] = [
          d.Vre[i * M + k],
          d.Vim[i * M + k],
          d.Vre[j * M + k],
          -d.Vim[j * M + k],
        ];
        const [lr, li] = [d.Are[k], d.Aim[k]];
        const [pr, pi] = [vr * lr - vi * li, vr * li + vi * lr];
        s += 2 * (pr * wr - pi * wi);
      }
      err = Math.max(err, Math.abs(s - AN[i * N + j]));
    }
  }
  assert.ok(err < 1e-8, `reconstruction error ${err}`);
  assert.ok(d.Aim.every((w, k) => w > 0 && (k === 0 || w >= d.Aim[k - 1])));
});

Deno.test("S4D-LegS: the (A_N, B/2) kernel approaches the HiPPO-LegS (A, B) kernel as N grows", () => {
  const errs = [16, 32, 64].map((N) => {
    const { A, AN, B } = hippoLegS(N);
    const Kf = denseKernel(A, B, N, 0.01, 300, 4);
    const Kd = denseKernel(AN, B.map((b) => b / 2), N, 0.01, 300, 4);
    let num = 0, den = 0;
    for (let i = 0; i < Kf.length; i++) (num += (Kf[i] - Kd[i]) ** 2), (den += Kf[i] ** 2);
    return Math.sqrt(num / den);
  });
  for (let i = 1; i < errs.length; i++) assert.ok(errs[i] < errs[i - 1], `errors ${errs}`);
  assert.ok(errs[2] < errs[0] / 2, `errors ${errs}`);
});

Deno.test("S4D rejects bad options with clear errors", () => {
  assert.throws(() => new S4DKernel(2, { N: 7 }), /S4D: N must be an even integer/);
  assert.throws(() => new S4DKernel(2, { init: "hippo" as never }), /S4D: unknown init "hippo"/);
  assert.throws(
    () => new S4DKernel(2, { dtMin: 0.1, dtMax: 0.01 }),
    /S4D: need 0 < dtMin <= dtMax/,
  );
  assert.throws(() => new S4DKernel(2, { disc: "euler" as never }), /S4D: disc must be/);
  assert.throws(() => new S4DKernel(2).forward(0), /S4D: L must be >= 1/);
  assert.throws(
    () => causalConv(randn([2, 3, 5]), randn([3, 4])),
    /causalConv: expected K of shape \[3, 5\]/,
  );
  assert.throws(
    () => causalConv(randn([3, 5]), randn([3, 5]), "fast" as never),
    /causalConv: mode must be/,
  );
  assert.throws(() => diagonalLegS(5), /diagonalLegS: N must be an even integer/);
});
