/**
 * core/conv.ts against PyTorch (tests/fixtures/conv_linalg.json, made by
 * tests/fixtures/make_conv_linalg_fixtures.py): values and input/weight/bias gradients of the
 * loss sum(out * r), a double backward, PyTorch's tie rule for max pooling and the errors.
 */
import { ok as assert, throws as assertThrows } from "node:assert/strict";
import {
  adaptiveAvgPool1d,
  adaptiveAvgPool2d,
  avgPool1d,
  avgPool2d,
  conv1d,
  conv2d,
  convTranspose2d,
  fold,
  interpolate,
  maxPool1d,
  type MaxPool1dOptions,
  maxPool2d,
  type MaxPoolOptions,
  unfold,
} from "../../core/conv.ts";
import { grad, memory, randn, scope, setBackend, type Tensor, tensor } from "../../mod.ts";

// The same tests run on every backend: $PAPERLAB_BACKEND (default cpu).
await setBackend(Deno.env.get("PAPERLAB_BACKEND") ?? "cpu");

type J = { shape: number[]; data: number[] };
const fx: any = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/conv_linalg.json", import.meta.url)),
);
const T = (j: J, requiresGrad = false) =>
  tensor(Float32Array.from(j.data), { shape: j.shape, requiresGrad });

async function close(t: Tensor | null, j: J, what: string, tol = 1e-4): Promise<void> {
  assert(t, `${what}: missing`);
  assert(t.shape.join() === j.shape.join(), `${what}: shape [${t.shape}] vs [${j.shape}]`);
  const a = await t.data();
  for (let i = 0; i < j.data.length; i++) {
    const d = Math.abs(a[i] - j.data[i]);
    assert(d <= tol * (1 + Math.abs(j.data[i])), `${what}[${i}]: ${a[i]} vs ${j.data[i]}`);
  }
}

/** Backpropagates sum(out * r) and compares outputs and gradients with the fixture. */
async function check(c: any, outs: Tensor[], inputs: [string, Tensor][], what: string) {
  for (let i = 0; i < outs.length; i++) await close(outs[i], c.outs[i], `${what} out${i}`);
  outs.map((o, i) => o.mul(T(c.rs[i])).sum()).reduce((a, b) => a.add(b)).backward();
  for (const [name, t] of inputs) await close(t.grad, c[`g_${name}`], `${what} grad ${name}`);
}

const CONV = { conv1d, conv2d, convTranspose2d } as const;

Deno.test("conv1d/conv2d/convTranspose2d: values and x, weight, bias gradients match PyTorch (stride, padding incl. same, dilation, groups, unbatched)", async () => {
  for (const c of fx.conv) {
    const x = T(c.x, true), w = T(c.w, true), b = c.b ? T(c.b, true) : null;
    const out = CONV[c.op as keyof typeof CONV](x, w, b, c.opts);
    const ins: [string, Tensor][] = [["x", x], ["w", w]];
    if (b) ins.push(["b", b]);
    await check(c, [out], ins, `${c.op} ${JSON.stringify(c.opts)} x[${c.x.shape}]`);
  }
});

Deno.test("conv2d: double backward (d/dw of |dL/dx|^2) matches PyTorch", async () => {
  const d = fx.doubleBackward;
  const x = T(d.x, true), w = T(d.w, true), r = T(d.r);
  const [gx] = grad((p: Tensor[]) => conv2d(p[0], p[1], null, d.opts).mul(r).sum(), {
    createGraph: true,
  })([x, w]);
  await close(gx, d.gx, "gx");
  gx.square().sum().backward();
  await close(w.grad, d.ggw, "ggw");
});

const POOL: Record<string, (x: Tensor, a: any) => Tensor> = {
  maxPool2d: (x, a) => maxPool2d(x, a.kernelSize, a),
  avgPool2d: (x, a) => avgPool2d(x, a.kernelSize, a),
  adaptiveAvgPool2d: (x, a) => adaptiveAvgPool2d(x, a.outputSize),
  interpolate: (x, a) => interpolate(x, a),
  unfold: (x, a) => unfold(x, a.kernelSize, a),
  fold: (x, a) => fold(x, a.outputSize, a.kernelSize, a),
  maxPool1d: (x, a) => maxPool1d(x, a.kernelSize, a),
  avgPool1d: (x, a) => avgPool1d(x, a.kernelSize, a),
  adaptiveAvgPool1d: (x, a) => adaptiveAvgPool1d(x, a.outputSize),
};

Deno.test("max/avg/adaptiveAvg pooling (1-D, 2-D), interpolate, unfold and fold: values and gradients match PyTorch", async () => {
  for (const c of fx.pool) {
    const x = T(c.x, true);
    await check(c, [POOL[c.op](x, c.args)], [["x", x]], `${c.op} ${JSON.stringify(c.args)}`);
  }
});

Deno.test("maxPool1d/2d: ties send the whole gradient to the first maximum, and indices match PyTorch", async () => {
  const x = tensor([[[[1, 1], [1, 1]]]], { requiresGrad: true });
  maxPool2d(x, 2).sum().backward();
  assert((await x.grad!.data()).join() === "1,0,0,0");
  for (const c of fx.pool.filter((c: any) => c.op.startsWith("maxPool"))) {
    const o: MaxPoolOptions & MaxPool1dOptions = c.args;
    const { indices } = c.op === "maxPool1d"
      ? maxPool1d(T(c.x), c.args.kernelSize, { ...o, returnIndices: true })
      : maxPool2d(T(c.x), c.args.kernelSize, { ...o, returnIndices: true });
    assert(indices.dtype === "int32");
    await close(indices, c.indices, `indices ${JSON.stringify(c.args)}`, 0);
  }
});

Deno.test("maxPool2d: NaN in a window propagates", async () => {
  const x = tensor([[[[1, NaN], [3, 2]]]]);
  assert(Number.isNaN((await maxPool2d(x, 2).data())[0]));
});

Deno.test("fold: is the adjoint of unfold (<unfold x, y> = <x, fold y>)", async () => {
  const x = randn([2, 3, 5, 6]);
  const o = { padding: 1, stride: 2, dilation: [1, 2] };
  const cols = unfold(x, [3, 2], o);
  const y = randn([...cols.shape]);
  // <unfold(x), y> = <x, fold(y)>
  const lhs = (await cols.mul(y).sum().item()) as number;
  const rhs = (await x.mul(fold(y, [5, 6], [3, 2], o)).sum().item()) as number;
  assert(Math.abs(lhs - rhs) < 1e-3 * (1 + Math.abs(lhs)), `${lhs} vs ${rhs}`);
});

Deno.test("conv2d: a 1x1 kernel equals a per-pixel linear map", async () => {
  const x = randn([2, 3, 4, 5]), w = randn([4, 3, 1, 1]);
  const ref = w.reshape([4, 3]).matmul(x.reshape([2, 3, 20])).reshape([2, 4, 4, 5]);
  const d = await conv2d(x, w).sub(ref).abs().amax().item();
  assert((d as number) < 1e-5);
});

Deno.test("conv and pooling ops: clear errors name the op for bad ranks, channels, groups and sizes", () => {
  const x = randn([1, 4, 5, 5]);
  assertThrows(() => conv2d(randn([5, 5]), randn([2, 4, 3, 3])), /conv2d: expected a 3-D/);
  assertThrows(() => conv2d(x, randn([2, 3, 3, 3])), /conv2d: input \[1, 4, 5, 5\] has 4 channels/);
  assertThrows(() => conv2d(x, randn([3, 2, 3, 3]), null, { groups: 2 }), /divisible by groups/);
  assertThrows(() => conv2d(x, randn([2, 4, 7, 7])), /conv2d: output size .* is not positive/);
  assertThrows(() => conv2d(x, randn([2, 4, 3, 3]), null, { padding: "same", stride: 2 }), /same/);
  assertThrows(
    () => conv2d(x, randn([2, 4, 3, 3]), randn([3])),
    /conv2d: bias must have shape \[2\]/,
  );
  assertThrows(() => conv1d(x, randn([2, 4, 3])), /conv1d: expected a 2-D/);
  assertThrows(
    () => convTranspose2d(x, randn([4, 2, 3, 3]), null, { stride: 2, outputPadding: 2 }),
    /convTranspose2d: outputPadding/,
  );
  assertThrows(() => maxPool2d(x, 2, { padding: 2 }), /maxPool2d: padding .* at most half/);
  assertThrows(() => avgPool2d(randn([4, 5]), 2), /avgPool2d: expected a 3-D/);
  assertThrows(() => maxPool2d(x, 7), /maxPool2d: output size/);
  assertThrows(() => interpolate(x, { size: 3, mode: "linear" }), /interpolate: mode "linear"/);
  assertThrows(() => interpolate(x, { mode: "bilinear" }), /exactly one of size and scaleFactor/);
  assertThrows(() => unfold(x, 6), /unfold: output size/);
});

Deno.test("conv ops in a scope: memory() stays flat across steps and cached indices survive", () => {
  const x = randn([2, 3, 8, 8]).requiresGrad_(), w = randn([4, 3, 3, 3]).requiresGrad_();
  const step = () =>
    scope(() => {
      const y = maxPool2d(conv2d(x, w, null, { padding: 1 }), 2, { stride: 1 });
      interpolate(avgPool2d(y, 2), { scaleFactor: 2, mode: "bilinear" }).sum().backward();
    });
  step();
  const before = memory().tensors;
  for (let i = 0; i < 3; i++) step();
  assert(memory().tensors === before, `${memory().tensors} live tensors vs ${before}`);
});
