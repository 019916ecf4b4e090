/**
 * core/fft/mod.ts (tensor-level torch.fft, complex as a trailing dim of 2) against PyTorch
 * values and gradients of sum(view_as_real(out) * r) (tests/fixtures/conv_linalg.json, made by
 * tests/fixtures/make_conv_linalg_fixtures.py), plus round trips, a double backward and errors.
 */
import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { close as closeTo, fixtureSection, T } from "./_conv_linalg.ts";
import * as fft from "../../core/fft/mod.ts";
import { grad, randn, setBackend, type Tensor, tensor } from "../../mod.ts";

// These ops run on the cpu backend only (their forward reads host memory); see hostValues.
await setBackend("cpu");

const fx = await fixtureSection("fft");
const close = closeTo;

const OPS: Record<string, (x: Tensor, o: any) => Tensor> = {
  fft: fft.fft,
  ifft: fft.ifft,
  rfft: fft.rfft,
  irfft: fft.irfft,
  rfft2: fft.rfft2,
  irfft2: fft.irfft2,
  fft2: fft.fft2,
  ifft2: fft.ifft2,
};

async function checkOp(name: string) {
  const cases = fx.filter((c: any) => c.op === name);
  assert(cases.length, `no fixtures for ${name}`);
  for (const c of cases) {
    const x = T(c.x, true);
    const what = `${name} ${JSON.stringify(c.opts)} x[${c.x.shape}]`;
    const y = OPS[name](x, c.opts);
    await close(y, c.outs[0], `${what} out`);
    y.mul(T(c.rs[0])).sum().backward();
    await close(x.grad, c.g_x, `${what} grad`);
  }
}

Deno.test("fft.fft / ifft: values and gradients match torch (odd lengths, n crop/pad, norms, dim)", async () => {
  await checkOp("fft");
  await checkOp("ifft");
});

Deno.test("fft.rfft: values and gradients match torch (odd/even lengths, n, norms, dim)", () =>
  checkOp("rfft"));

Deno.test("fft.irfft: values and Hermitian-weighted gradients match torch (odd/even n, crop/pad)", () =>
  checkOp("irfft"));

Deno.test("fft.rfft2 / irfft2 / fft2 / ifft2: values and gradients match torch (with s, norms)", async () => {
  for (const op of ["rfft2", "irfft2", "fft2", "ifft2"]) await checkOp(op);
});

Deno.test("fft: irfft(rfft(x), n) and ifft(fft(z)) round-trip for odd and even lengths", async () => {
  for (const n of [5, 8]) {
    const x = randn([3, n]);
    const back = fft.irfft(fft.rfft(x), { n });
    assert((await back.sub(x).abs().amax().item() as number) < 1e-5);
    const z = randn([2, n, 2]);
    const zz = fft.ifft(fft.fft(z, { norm: "ortho" }), { norm: "ortho" });
    assert((await zz.sub(z).abs().amax().item() as number) < 1e-5);
  }
});

Deno.test("fft.rfft: double backward (Hessian-vector product of |rfft x|^4) matches finite differences", async () => {
  const x = randn([7]), v = randn([7]);
  const f = (t: Tensor) => fft.abs(fft.rfft(t)).pow(4).sum();
  const gdot = (t: Tensor) => grad(f, { createGraph: true })(t).mul(v).sum();
  const hv = grad(gdot)(x);
  const eps = 1e-2;
  const fd = grad(f)(x.add(v.mul(eps))).sub(grad(f)(x.sub(v.mul(eps)))).div(2 * eps);
  const err = (await hv.sub(fd).abs().amax().item()) as number;
  const scale = (await fd.abs().amax().item()) as number;
  assert(err < 1e-2 * (1 + scale), `HVP off by ${err} (scale ${scale})`);
});

Deno.test("fft helpers: complex, real, imag, mul, conj, fftfreq, rfftfreq, fftshift match torch's definitions", async () => {
  const a = fft.complex(tensor([1, 2]), tensor([3, -1])), b = fft.complex(tensor([0.5, 1]));
  assert((await fft.mul(a, b).toArray()).toString() === "0.5,1.5,2,-1");
  assert((await fft.conj(a).toArray()).toString() === "1,-3,2,1");
  assert((await fft.imag(a).data()).join() === "3,-1");
  assert(
    (await fft.fftfreq(5).data()).join() === [0, 0.2, 0.4, -0.4, -0.2].map(Math.fround).join(),
  );
  assert((await fft.rfftfreq(4, 0.5).data()).join() === "0,0.5,1");
  assert((await fft.fftshift(tensor([0, 1, 2, -2, -1])).data()).join() === "-2,-1,0,1,2");
  assert((await fft.ifftshift(tensor([-2, -1, 0, 1, 2])).data()).join() === "0,1,2,-2,-1");
});

Deno.test("fft: clear errors for real input to fft, bad n and bad norm", () => {
  assertThrows(() => fft.fft(randn([4, 3])), /fft.fft: expected a complex tensor/);
  assertThrows(() => fft.rfft(randn([4]), { n: 0 }), /fft.rfft: invalid number of data points/);
  assertThrows(() => fft.irfft(randn([1, 2])), /fft.irfft: invalid number of data points \(0\)/);
  assertThrows(() => fft.ifft(randn([4, 2]), { norm: "none" as any }), /fft.ifft: norm must be/);
});
