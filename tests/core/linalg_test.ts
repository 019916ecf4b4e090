/**
 * core/linalg/mod.ts (tensor-level torch.linalg) against PyTorch values and gradients
 * (tests/fixtures/conv_linalg.json, made by tests/fixtures/make_conv_linalg_fixtures.py).
 * eigh and svd are compared through sign-invariant quantities (eigenvalues, squared vector
 * entries, U S Vh) and the gradients of losses built from them.
 */
import { ok as assert, throws as assertThrows } from "node:assert/strict";
import { close as closeTo, fixtureSection, type J, T } from "./_conv_linalg.ts";
import * as linalg from "../../core/linalg/mod.ts";
import { eye, grad, randn, setBackend, type Tensor, tensor } from "../../mod.ts";

// These ops run on the cpu backend only (their forward reads host memory); see hostValues.
await setBackend("cpu");

const fx = await fixtureSection("linalg");
const close = (t: Tensor | null, j: J, what: string, tol = 2e-4) => closeTo(t, j, what, tol);

/** For each fixture case of `name`: outputs of fn, then gradients of sum(out_i * r_i). */
async function check(name: string, fn: (...a: Tensor[]) => Tensor[], tol = 2e-4) {
  assert(fx[name]?.length, `no fixtures for ${name}`);
  for (const [ci, c] of fx[name].entries()) {
    const ins = c.inputs.map((j: J) => T(j, true));
    const outs = fn(...ins, c);
    const what = `${name} #${ci}`;
    for (let i = 0; i < outs.length; i++) await close(outs[i], c.outs[i], `${what} out${i}`, tol);
    outs.map((o, i) => o.mul(T(c.rs[i])).sum()).reduce((a, b) => a.add(b)).backward();
    for (const [k, x] of ["a", "b"].slice(0, ins.length).entries()) {
      await close(ins[k].grad, c[`g_${x}`], `${what} grad ${x}`, tol);
    }
  }
}

Deno.test("linalg.solve: values and gradients match torch (batched, vector B, broadcast B)", () =>
  check("solve", (a, b) => [linalg.solve(a, b)]));

Deno.test("linalg.inv / det / slogdet: values and gradients match torch", async () => {
  await check("inv", (a) => [linalg.inv(a)]);
  await check("det", (a) => [linalg.det(a)]);
  await check("slogdet", (a) => [linalg.slogdet(a).logabsdet]);
});

Deno.test("linalg.cholesky: lower and upper factors and their gradients match torch", () =>
  check("cholesky", (a, c: any) => [linalg.cholesky(a, { upper: c.upper })]));

Deno.test("linalg.eigh: eigenvalues, squared eigenvectors and their gradient match torch", () =>
  check("eigh", (a) => {
    const { eigenvalues: w, eigenvectors: V } = linalg.eigh(a);
    return [w, V.mul(V)];
  }));

Deno.test("linalg.svd: S, |U|, |Vh|, U S Vh and sign-invariant gradients match torch", async () => {
  await check("svd", (a) => {
    const { U, S, Vh } = linalg.svd(a, { fullMatrices: false });
    return [U.mul(U), S, Vh.mul(Vh), U.mul(S.unsqueeze(-2)).matmul(Vh)];
  });
  await check("svdFull", (a) => {
    const { U, S, Vh } = linalg.svd(a);
    assert(U.shape.join() === "4,4" && Vh.shape.join() === "2,2");
    return [U.narrow(1, 0, 2).abs(), S, Vh.abs()];
  });
  const { U } = linalg.svd(randn([5, 2]));
  const err = await U.mT.matmul(U).sub(eye(5)).abs().amax().item();
  assert((err as number) < 1e-5, `full U is not orthogonal: ${err}`);
  await check("svdvals", (a) => [linalg.svdvals(a)]);
});

Deno.test("linalg.qr: Q, R (LAPACK signs) and gradients match torch for m >= n", () =>
  check("qr", (a) => {
    const { Q, R } = linalg.qr(a);
    return [Q, R];
  }));

Deno.test("linalg.lstsq: tall and minimum-norm wide solutions and gradients match torch", () =>
  check("lstsq", (a, b) => [linalg.lstsq(a, b).solution]));

Deno.test("linalg.norm: vector and matrix norms (fro, nuc, 2, -2, 1, -1, inf, p) and gradients match torch", () =>
  check("norm", (a, c: any) => [linalg.norm(a, c.opts.ord, c.opts.dim, c.opts)]));

Deno.test("linalg.solve: double backward agrees with finite differences of the gradient", async () => {
  const A = randn([3, 3]).add(eye(3).mul(4)), b = randn([3]), v = randn([3, 3]);
  const f = (a: Tensor) => linalg.solve(a, b).square().sum();
  const gdot = (a: Tensor) => grad((p: Tensor) => f(p), { createGraph: true })(a).mul(v).sum(); // <grad f(a), v>
  const hv = grad(gdot)(A);
  const eps = 1e-2;
  const g1 = grad(f)(A.add(v.mul(eps))), g0 = grad(f)(A.sub(v.mul(eps)));
  const fd = g1.sub(g0).div(2 * eps);
  const err = (await hv.sub(fd).abs().amax().item()) as number;
  const scale = (await fd.abs().amax().item()) as number;
  assert(err < 2e-2 * (1 + scale), `Hessian-vector product off by ${err} (scale ${scale})`);
});

Deno.test("linalg.solve: left: false solves X A = B", async () => {
  const A = randn([3, 3]).add(eye(3).mul(4)), B = randn([2, 3]);
  const X = linalg.solve(A, B, { left: false });
  const err = await X.matmul(A).sub(B).abs().amax().item();
  assert((err as number) < 1e-5, `residual ${err}`);
});

Deno.test("linalg.qr: backward of a wide matrix throws a clear error", () => {
  const A = randn([2, 4]).requiresGrad_();
  assertThrows(
    () => linalg.qr(A).R.sum().backward(),
    /linalg.qr: backward is implemented for m >= n/,
  );
});

Deno.test("linalg.eigvalsh: gradient V diag(g) V^T is finite for repeated eigenvalues", async () => {
  const A = eye(3).requiresGrad_();
  linalg.eigvalsh(A).sum().backward();
  await close(A.grad, { shape: [3, 3], data: [1, 0, 0, 0, 1, 0, 0, 0, 1] }, "grad");
});

Deno.test("linalg: clear errors for non-square, singular and non-positive-definite input", () => {
  assertThrows(() => linalg.inv(randn([2, 3])), /linalg.inv: expected square matrices/);
  assertThrows(() => linalg.solve(randn([3]), randn([3])), /linalg.solve: expected a matrix/);
  assertThrows(() => linalg.inv(tensor([[1, 2], [2, 4]])), /linalg.inv: matrix is singular/);
  assertThrows(() => linalg.cholesky(tensor([[1, 2], [2, 1]])), /not positive-definite/);
  assertThrows(() => linalg.solve(eye(3), randn([2, 1])), /linalg.solve: B \[2, 1\]/);
  assertThrows(() => linalg.norm(randn([2, 2, 2]), 3), /linalg.norm: with ord 3/);
});

Deno.test("linalg: hostValues refuses tensors of other backends instead of reading back", () => {
  const fake = { device: "webgpu", numel: 1 } as unknown as Tensor;
  assertThrows(() => linalg.hostValues("linalg.svd", fake), /linalg.svd: runs on the cpu backend/);
});
