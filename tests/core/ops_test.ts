/**
 * Every core op against PyTorch, in value and gradient: one Deno.test per case of
 * tests/fixtures/core_ops.json (made by tests/fixtures/make_core_fixtures.py). Each case runs
 * its op through OPS below, compares the outputs (dtype, shape, values), then backpropagates
 * sum(out * cot) and compares every input's gradient with PyTorch's.
 *
 * Runs on any backend: PAPERLAB_BACKEND=webgpu deno test -A tests/core/ops_test.ts
 */
import { ok as assert } from "node:assert/strict";
import {
  cat,
  einsum,
  F,
  manualSeed,
  maskedSelect,
  nonzero,
  oneHot,
  ones,
  rand,
  stack,
  type Tensor,
  where,
} from "../../mod.ts";
import {
  assertClose,
  assertTensorClose,
  decodeNum,
  DEFAULT_TOL,
  type Enc,
  type EncInput,
  fromEnc,
  loadFixture,
  type Tol,
} from "./_helpers.ts";

interface Case {
  name: string;
  op: string;
  inputs: EncInput[];
  kwargs: Kw;
  out: Enc | Enc[];
  cot?: Enc | (Enc | null)[];
  grads?: (Enc | null)[];
}

type Kw = Record<string, any>;
type Out = Tensor | Tensor[];
type OpFn = (x: Tensor[], k: Kw) => Out | Promise<Out>;

/** The options object of a functional op: kwargs plus the tensors named in kw.tensorKw. */
function named(x: Tensor[], k: Kw, npos: number): Kw {
  const o: Kw = { ...k };
  delete o.tensorKw;
  (k.tensorKw as string[] | undefined ?? []).forEach((n, i) => (o[n] = x[npos + i]));
  return o;
}

/** The second operand of a binary op: a tensor input or kw.scalar. */
const other = (x: Tensor[], k: Kw) => (x.length > 1 ? x[1] : decodeNum(k.scalar));
const vi = (r: { values: Tensor; indices: Tensor }) => [r.values, r.indices];
const keep = (k: Kw) => ({ keepdim: k.keepdim ?? false });

const BINARY = [
  "mul",
  "div",
  "pow",
  "remainder",
  "maximum",
  "minimum",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "logicalAnd",
  "logicalOr",
  "logicalXor",
] as const;
const UNARY = [
  "neg",
  "abs",
  "exp",
  "log",
  "log1p",
  "expm1",
  "sqrt",
  "rsqrt",
  "square",
  "reciprocal",
  "sin",
  "cos",
  "tanh",
  "sigmoid",
  "relu",
  "erf",
  "sign",
  "floor",
  "ceil",
  "round",
  "trunc",
  "isnan",
  "isinf",
  "isfinite",
  "logicalNot",
  "silu",
] as const;

/** Op key of the fixture -> our public API. */
const OPS: Record<string, OpFn> = {
  // ------------------------------------------------------------------- elementwise
  ...Object.fromEntries(BINARY.map((op) => [op, (x: Tensor[], k: Kw) => x[0][op](other(x, k))])),
  add: (x, k) => x[0].add(other(x, k), k.alpha !== undefined ? { alpha: k.alpha } : undefined),
  sub: (x, k) => x[0].sub(other(x, k), k.alpha !== undefined ? { alpha: k.alpha } : undefined),
  rsub: (x, k) => x[0].rsub(decodeNum(k.scalar)),
  ...Object.fromEntries(UNARY.map((op) => [op, (x: Tensor[]) => x[0][op]()])),
  leakyRelu: (x, k) => x[0].leakyRelu(k.negativeSlope),
  elu: (x, k) => x[0].elu(k.alpha),
  gelu: (x, k) => x[0].gelu({ approximate: k.approximate }),
  softplus: (x, k) => x[0].softplus({ beta: k.beta, threshold: k.threshold }),
  clamp: (x, k) => {
    const names: string[] = k.tensorKw ?? [];
    const bound = (n: "min" | "max") =>
      names.includes(n) ? x[1 + names.indexOf(n)] : k[n] === undefined ? null : decodeNum(k[n]);
    return x[0].clamp(bound("min"), bound("max"));
  },
  where: (x, k) => {
    let i = 1;
    const a = "a" in k ? decodeNum(k.a) : x[i++];
    const b = "b" in k ? decodeNum(k.b) : x[i++];
    return where(x[0], a, b);
  },
  // -------------------------------------------------------------------- reductions
  sum: (x, k) => x[0].sum(k.dim, keep(k)),
  mean: (x, k) => x[0].mean(k.dim, keep(k)),
  prod: (x, k) => x[0].prod(k.dim, keep(k)),
  amax: (x, k) => x[0].amax(k.dim, keep(k)),
  amin: (x, k) => x[0].amin(k.dim, keep(k)),
  max: (x, k) => (k.dim === undefined ? x[0].max() : vi(x[0].max(k.dim, keep(k)))),
  min: (x, k) => (k.dim === undefined ? x[0].min() : vi(x[0].min(k.dim, keep(k)))),
  argmax: (x, k) => x[0].argmax(k.dim, keep(k)),
  argmin: (x, k) => x[0].argmin(k.dim, keep(k)),
  var: (x, k) => x[0].var(k.dim, { correction: k.correction, ...keep(k) }),
  std: (x, k) => x[0].std(k.dim, { correction: k.correction, ...keep(k) }),
  logsumexp: (x, k) => x[0].logsumexp(k.dim, keep(k)),
  norm: (x, k) => x[0].norm(decodeNum(k.p ?? 2), k.dim, keep(k)),
  cumsum: (x, k) => x[0].cumsum(k.dim),
  cumprod: (x, k) => x[0].cumprod(k.dim),
  all: (x, k) => x[0].all(k.dim, keep(k)),
  any: (x, k) => x[0].any(k.dim, keep(k)),
  sort: (x, k) => vi(x[0].sort(k.dim ?? -1, { descending: k.descending })),
  argsort: (x, k) => x[0].argsort(k.dim ?? -1, { descending: k.descending }),
  topk: (x, k) => vi(x[0].topk(k.k, k.dim ?? -1, { largest: k.largest })),
  // ------------------------------------------------------------------------- shape
  reshape: (x, k) => x[0].reshape(k.shape),
  view: (x, k) => x[0].view(k.shape),
  flatten: (x, k) => x[0].flatten(k.startDim, k.endDim),
  unflatten: (x, k) => x[0].unflatten(k.dim, k.sizes),
  squeeze: (x, k) => x[0].squeeze(k.dim),
  unsqueeze: (x, k) => x[0].unsqueeze(k.dim),
  transpose: (x, k) => x[0].transpose(k.dim0, k.dim1),
  permute: (x, k) => x[0].permute(k.dims),
  T: (x) => x[0].T,
  mT: (x) => x[0].mT,
  expand: (x, k) => x[0].expand(k.shape),
  expandAs: (x) => x[0].expandAs(x[1]),
  broadcastTo: (x, k) => x[0].broadcastTo(k.shape),
  contiguous: (x) => x[0].contiguous(),
  cat: (x, k) => cat(x, k.dim),
  stack: (x, k) => stack(x, k.dim),
  split: (x, k) => x[0].split(k.size, k.dim),
  chunk: (x, k) => x[0].chunk(k.chunks, k.dim),
  narrow: (x, k) => x[0].narrow(k.dim, k.start, k.length),
  select: (x, k) => x[0].select(k.dim, k.index),
  repeat: (x, k) => x[0].repeat(k.reps),
  tile: (x, k) => x[0].tile(k.reps),
  flip: (x, k) => x[0].flip(k.dims),
  roll: (x, k) => x[0].roll(k.shifts, k.dims),
  tril: (x, k) => x[0].tril(k.diagonal),
  triu: (x, k) => x[0].triu(k.diagonal),
  slice: (x, k) => x[0].slice(k.dim, k.start, k.end ?? undefined, k.step),
  pad: (x, k) =>
    F.pad(x[0], k.pads, {
      mode: k.mode,
      value: k.value === undefined ? undefined : decodeNum(k.value),
    }),
  // ---------------------------------------------------------------------- indexing
  indexSelect: (x, k) => x[0].indexSelect(k.dim, x[1]),
  gather: (x, k) => x[0].gather(k.dim, x[1]),
  scatter: (x, k) => x[0].scatter(k.dim, x[1], x[2] ?? decodeNum(k.value)),
  scatterAdd: (x, k) => x[0].scatterAdd(k.dim, x[1], x[2]),
  maskedFill: (x, k) => x[0].maskedFill(x[1], x[2] ?? decodeNum(k.value)),
  // Asynchronous in the core: the result's size depends on the data.
  maskedSelect: (x) => maskedSelect(x[0], x[1]),
  nonzero: (x) => nonzero(x[0]),
  // The core requires numClasses (inferring it would need a readback).
  oneHot: (x, k) => oneHot(x[0], k.numClasses),
  take: (x) => x[0].take(x[1]),
  // --------------------------------------------------------------- matrix products
  matmul: (x) => x[0].matmul(x[1]),
  mm: (x) => x[0].mm(x[1]),
  bmm: (x) => x[0].bmm(x[1]),
  dot: (x) => x[0].dot(x[1]),
  outer: (x) => x[0].outer(x[1]),
  einsum: (x, k) => einsum(k.equation, ...x),
  // -------------------------------------------------------------------- functional
  softmax: (x, k) => F.softmax(x[0], k.dim),
  logSoftmax: (x, k) => F.logSoftmax(x[0], k.dim),
  crossEntropy: (x, k) => F.crossEntropy(x[0], x[1], named(x, k, 2)),
  nllLoss: (x, k) => F.nllLoss(x[0], x[1], named(x, k, 2)),
  mseLoss: (x, k) => F.mseLoss(x[0], x[1], k),
  l1Loss: (x, k) => F.l1Loss(x[0], x[1], k),
  smoothL1Loss: (x, k) => F.smoothL1Loss(x[0], x[1], k),
  binaryCrossEntropy: (x, k) => F.binaryCrossEntropy(x[0], x[1], named(x, k, 2)),
  binaryCrossEntropyWithLogits: (x, k) =>
    F.binaryCrossEntropyWithLogits(x[0], x[1], named(x, k, 2)),
  klDiv: (x, k) => F.klDiv(x[0], x[1], k),
  cosineSimilarity: (x, k) => F.cosineSimilarity(x[0], x[1], k),
  linear: (x) => F.linear(x[0], x[1], x[2]),
  dropout: (x, k) => F.dropout(x[0], k),
  layerNorm: (x, k) => F.layerNorm(x[0], k.normalizedShape, named(x, k, 1)),
  rmsNorm: (x, k) => F.rmsNorm(x[0], k.normalizedShape, named(x, k, 1)),
  batchNorm: (x, k) => {
    const o = named(x, k, 1);
    const y = F.batchNorm(x[0], o.runningMean ?? null, o.runningVar ?? null, o);
    // The running statistics are updated in place: compare them after the call.
    return o.runningMean ? [y, o.runningMean, o.runningVar] : y;
  },
  groupNorm: (x, k) => F.groupNorm(x[0], k.numGroups, named(x, k, 1)),
  embedding: (x, k) => F.embedding(x[0], x[1], k),
  scaledDotProductAttention: (x, k) =>
    F.scaledDotProductAttention(x[0], x[1], x[2], named(x, k, 3)),
  normalize: (x, k) => F.normalize(x[0], k),
};

/**
 * Per-op tolerance overrides (values and gradients), only where float32 evaluation order
 * legitimately differs from PyTorch's kernels.
 */
const TOL: Record<string, Partial<Tol>> = {};

const fx = await loadFixture<{ cases: Case[] }>("core_ops.json");

for (const c of fx.cases) {
  Deno.test(`${c.op}: ${c.name}`, async () => {
    const fn = OPS[c.op];
    assert(fn, `no op "${c.op}" in the test table`);
    const tol = { ...DEFAULT_TOL, ...TOL[c.op] };
    const inputs = c.inputs.map((e) => fromEnc(e, e.requiresGrad));
    const out = await fn(inputs, c.kwargs);
    const outs = Array.isArray(out) ? out : [out];
    const expected = Array.isArray(c.out) ? c.out : [c.out];
    if (outs.length !== expected.length) {
      throw new Error(`${c.op}: ${c.name}: ${outs.length} outputs, expected ${expected.length}`);
    }
    for (let i = 0; i < outs.length; i++) {
      const what = `${c.op}: ${c.name}: output ${i}`;
      await assertTensorClose(outs[i], expected[i], what, tol);
    }
    if (!c.grads) return;
    const cots = Array.isArray(c.cot) ? c.cot : [c.cot ?? null];
    let loss: Tensor | null = null;
    outs.forEach((o, i) => {
      const cot = cots[i];
      if (!cot) return;
      const term = o.mul(fromEnc(cot)).sum();
      loss = loss ? loss.add(term) : term;
    });
    assert(loss, `${c.op}: ${c.name}: no differentiable output`);
    (loss as Tensor).backward();
    for (let i = 0; i < inputs.length; i++) {
      const g = c.grads[i];
      if (!g) continue;
      const what = `${c.op}: ${c.name}: grad of input ${i}`;
      const got = inputs[i].grad;
      if (!got) {
        // No gradient reached this input: PyTorch's must then be all zeros.
        assertClose(new Float32Array(g.data.length), g.data.map(decodeNum), what, tol);
        continue;
      }
      await assertTensorClose(got, g, what, tol);
    }
  });
}

// --------------------------------------------------- behaviour not captured by values

Deno.test("dropout: training keeps about 1 - p of the values, scaled by 1 / (1 - p)", async () => {
  manualSeed(7);
  const p = 0.3, n = 20000;
  const x = ones([n], { requiresGrad: true });
  const y = F.dropout(x, { p, training: true });
  const v = await y.data();
  let kept = 0;
  for (const e of v) {
    assert(e === 0 || Math.abs(e - 1 / (1 - p)) < 1e-6, `dropout value ${e}`);
    if (e !== 0) kept++;
  }
  // Binomial(n, 0.7): std ~ 65, so 4 std is ~ 0.013 of n.
  assert(Math.abs(kept / n - (1 - p)) < 0.013, `kept fraction ${kept / n}`);
  y.sum().backward();
  const g = await x.grad!.data();
  for (let i = 0; i < n; i++) assert(g[i] === v[i], `grad ${g[i]} differs from mask ${v[i]}`);
});

Deno.test("dropout: mean is preserved and the mask depends on the seed", async () => {
  manualSeed(1);
  const x = rand([4000]).add(1);
  const a = await F.dropout(x, { p: 0.5 }).data();
  manualSeed(1);
  const x2 = rand([4000]).add(1);
  const b = await F.dropout(x2, { p: 0.5 }).data();
  assertClose(a, b, "dropout with the same seed", { rtol: 0, atol: 0 });
  const mx = await x.mean().item() as number;
  const my = Array.from(a).reduce((s, v) => s + v, 0) / a.length;
  assert(Math.abs(my - mx) < 0.1, `dropout mean ${my} vs ${mx}`);
  assert(await F.dropout(x, { p: 1 }).sum().item() === 0, "p = 1 zeroes everything");
});
