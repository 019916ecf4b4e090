/**
 * Finite-difference gradient checks of the differentiable ops (composites included), double
 * backward (Hessian-vector products against PyTorch values in tests/fixtures/core_ops.json,
 * via backward({ createGraph }), grad and valueAndGrad), and valueAndGrad over a tree.
 *
 * Each check compares the analytic gradient of L = sum(f(x) * c) (c a fixed random cotangent)
 * with central differences (L(x + h e_i) - L(x - h e_i)) / (2 h), L summed in float64 from
 * float32 outputs. With h = 1e-2 the truncation error is ~h^2 f'''/6 and the rounding error
 * ~1e-7 |L| / h, both well under the default tolerance (atol 1e-3 + rtol 1e-2); a sign error,
 * a missing factor or a 5% error in a rule fails it (see the self-test below). Inputs are kept
 * away from kinks (relu/abs at 0, ties, clamp bounds) by more than h.
 */
import { ok as assert, throws as assertThrows } from "node:assert/strict";
import {
  cat,
  type DType,
  einsum,
  F,
  grad,
  noGrad,
  scope,
  stack,
  type Tensor,
  tensor,
  valueAndGrad,
  where,
} from "../../mod.ts";
import { assertClose, assertTensorClose, type Enc, fromEnc, loadFixture } from "./_helpers.ts";

// ------------------------------------------------------------------- deterministic inputs

/** mulberry32: a small seeded PRNG, so inputs do not depend on the backend's generator. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let rng = prng(1);
const normal = (n: number, scale = 1) =>
  Array.from({ length: n }, () => {
    const u = 1 - rng(), v = rng();
    return scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  });
const uniform = (n: number, lo: number, hi: number) =>
  Array.from({ length: n }, () => lo + (hi - lo) * rng());
/** Values moved at least `margin` away from each of `points` (kinks of the op). */
const away = (vals: number[], points: number[] = [0], margin = 0.1) =>
  vals.map((v) => {
    for (const p of points) {
      if (Math.abs(v - p) < margin) return p + (v >= p ? margin : -margin);
    }
    return v;
  });
/** Distinct values (no ties) in random order: a shuffled, jittered grid. */
const distinct = (n: number, spacing = 0.3) => {
  const vals = Array.from({ length: n }, (_, i) => (i - n / 2) * spacing + 0.05 * rng());
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [vals[i], vals[j]] = [vals[j], vals[i]];
  }
  return vals;
};

interface In {
  shape: number[];
  values: number[];
  dtype?: DType;
  /** Differentiate with respect to this input (default: float32 inputs). */
  grad?: boolean;
}
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const nrm = (shape: number[], scale = 1): In => ({ shape, values: normal(numel(shape), scale) });
const uni = (shape: number[], lo: number, hi: number): In => ({
  shape,
  values: uniform(numel(shape), lo, hi),
});
const vals = (shape: number[], values: number[]): In => ({ shape, values });
const ints = (shape: number[], values: number[]): In => ({ shape, values, dtype: "int32" });
const bools = (shape: number[], values: number[]): In => ({ shape, values, dtype: "bool" });
const fixed = (i: In): In => ({ ...i, grad: false });

// ------------------------------------------------------------------------- the checker

interface CheckOptions {
  eps?: number;
  rtol?: number;
  atol?: number;
}

const mk = (i: In, requiresGrad: boolean): Tensor => {
  const dtype = i.dtype ?? "float32";
  const data = dtype === "float32"
    ? Float32Array.from(i.values)
    : dtype === "int32"
    ? Int32Array.from(i.values)
    : Uint8Array.from(i.values);
  return tensor(data, { dtype, shape: i.shape, requiresGrad });
};

/**
 * Throws unless the analytic gradient of sum(f(xs) * c) matches central differences for every
 * differentiated input. Also fails when every gradient is ~0 (a vacuous check).
 */
async function gradcheck(
  name: string,
  f: (xs: Tensor[]) => Tensor,
  inputs: In[],
  o: CheckOptions = {},
): Promise<void> {
  const eps = o.eps ?? 1e-2, rtol = o.rtol ?? 1e-2, atol = o.atol ?? 1e-3;
  const diff = inputs.map((i) => i.grad ?? (i.dtype ?? "float32") === "float32");
  // The analytic gradient (also fixes the output shape and the cotangent).
  const xs = inputs.map((i, k) => mk(i, diff[k]));
  const out = f(xs);
  const crng = prng(out.numel + 17);
  const cot = Array.from({ length: out.numel }, () => 2 * crng() - 1);
  const cotT = tensor(Float32Array.from(cot), { shape: [...out.shape] });
  out.mul(cotT).sum().backward();
  const analytic = await Promise.all(
    xs.map(async (x, k) =>
      diff[k] ? (x.grad ? await x.grad.data() : new Float32Array(x.numel)) : null
    ),
  );
  // L(x) in float64 from the float32 outputs.
  const loss = async (ins: In[]): Promise<number> => {
    const y = noGrad(() => scope(() => f(ins.map((i) => mk(i, false)))));
    const d = await y.data();
    y.dispose();
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i] * cot[i];
    return s;
  };
  let maxAbs = 0;
  for (let k = 0; k < inputs.length; k++) {
    if (!diff[k]) continue;
    const base = Float32Array.from(inputs[k].values);
    const numeric = new Float64Array(base.length);
    for (let i = 0; i < base.length; i++) {
      const plus = Float32Array.from(base), minus = Float32Array.from(base);
      plus[i] = base[i] + eps;
      minus[i] = base[i] - eps;
      const at = (v: Float32Array) =>
        inputs.map((inp, j) => (j === k ? { ...inp, values: Array.from(v) } : inp));
      // Divide by the float32 step actually taken.
      numeric[i] = ((await loss(at(plus))) - (await loss(at(minus)))) / (plus[i] - minus[i]);
    }
    const a = analytic[k]!;
    for (const v of a) maxAbs = Math.max(maxAbs, Math.abs(v));
    // assertClose takes (actual, expected): the numeric estimate is the reference.
    assertClose(a, numeric, `${name}: gradient of input ${k} vs finite differences`, {
      rtol,
      atol,
    });
  }
  assert(maxAbs > 1e-3, `${name}: every analytic gradient is ~0; the check would be vacuous`);
}

interface Spec extends CheckOptions {
  name: string;
  f: (x: Tensor[]) => Tensor;
  inputs: () => In[];
}

// -------------------------------------------------------------------------- the checks
const S23 = [2, 3], S34 = [3, 4];
const specs: Spec[] = [
  // elementwise
  { name: "add broadcast", f: ([a, b]) => a.add(b), inputs: () => [nrm([2, 3]), nrm([3])] },
  { name: "sub alpha", f: ([a, b]) => a.sub(b, { alpha: 2 }), inputs: () => [nrm(S23), nrm(S23)] },
  { name: "mul broadcast", f: ([a, b]) => a.mul(b), inputs: () => [nrm([2, 1, 3]), nrm([4, 1])] },
  { name: "div", f: ([a, b]) => a.div(b), inputs: () => [nrm(S23), uni(S23, 0.5, 2)] },
  {
    name: "pow tensor exponent",
    f: ([a, b]) => a.pow(b),
    inputs: () => [uni(S23, 0.5, 2), nrm(S23)],
  },
  { name: "pow scalar 3", f: ([a]) => a.pow(3), inputs: () => [nrm(S23)] },
  { name: "neg", f: ([a]) => a.neg(), inputs: () => [nrm(S23)] },
  { name: "abs", f: ([a]) => a.abs(), inputs: () => [{ ...nrm(S34), values: away(normal(12)) }] },
  { name: "exp", f: ([a]) => a.exp(), inputs: () => [nrm(S23)] },
  { name: "log", f: ([a]) => a.log(), inputs: () => [uni(S23, 0.5, 3)] },
  { name: "log1p", f: ([a]) => a.log1p(), inputs: () => [uni(S23, -0.5, 3)] },
  { name: "expm1", f: ([a]) => a.expm1(), inputs: () => [nrm(S23)] },
  { name: "sqrt", f: ([a]) => a.sqrt(), inputs: () => [uni(S23, 0.5, 3)] },
  { name: "rsqrt", f: ([a]) => a.rsqrt(), inputs: () => [uni(S23, 0.5, 3)] },
  { name: "square", f: ([a]) => a.square(), inputs: () => [nrm(S23)] },
  {
    name: "reciprocal",
    f: ([a]) => a.reciprocal(),
    inputs: () => [{ ...nrm(S23), values: away(normal(6), [0], 0.5) }],
  },
  { name: "sin", f: ([a]) => a.sin(), inputs: () => [nrm(S23, 2)] },
  { name: "cos", f: ([a]) => a.cos(), inputs: () => [nrm(S23, 2)] },
  { name: "tanh", f: ([a]) => a.tanh(), inputs: () => [nrm(S23)] },
  { name: "sigmoid", f: ([a]) => a.sigmoid(), inputs: () => [nrm(S23, 2)] },
  { name: "relu", f: ([a]) => a.relu(), inputs: () => [{ ...nrm(S34), values: away(normal(12)) }] },
  {
    name: "leakyRelu",
    f: ([a]) => a.leakyRelu(0.2),
    inputs: () => [{ ...nrm(S34), values: away(normal(12)) }],
  },
  {
    name: "elu",
    f: ([a]) => a.elu(0.7),
    inputs: () => [{ ...nrm(S34), values: away(normal(12)) }],
  },
  { name: "gelu exact", f: ([a]) => a.gelu(), inputs: () => [nrm(S34, 2)] },
  { name: "gelu tanh", f: ([a]) => a.gelu({ approximate: "tanh" }), inputs: () => [nrm(S34, 2)] },
  { name: "silu", f: ([a]) => a.silu(), inputs: () => [nrm(S34, 2)] },
  {
    name: "softplus beta threshold",
    f: ([a]) => a.softplus({ beta: 2, threshold: 3 }),
    inputs: () => [{ ...nrm(S34, 2), values: away(normal(12, 2), [1.5]) }],
  },
  { name: "erf", f: ([a]) => a.erf(), inputs: () => [nrm(S23)] },
  {
    name: "clamp scalar bounds",
    f: ([a]) => a.clamp(-0.5, 0.5),
    inputs: () => [{ ...nrm(S34), values: away(normal(12), [-0.5, 0.5]) }],
  },
  {
    name: "clamp tensor bounds",
    f: ([a, lo, hi]) => a.clamp(lo, hi),
    inputs:
      () => [vals([4], [-1, 0.1, 0.6, 2]), vals([4], [-0.5, -0.5, 0, 0]), vals([4], [1, 1, 1, 1])],
  },
  {
    name: "maximum",
    f: ([a, b]) => a.maximum(b),
    inputs: () => [vals([4], [0, 1, 2, -1]), vals([4], [0.5, 0.2, 3, -2])],
  },
  {
    name: "minimum broadcast",
    f: ([a, b]) => a.minimum(b),
    inputs: () => [vals([2, 2], [0, 1, 2, -1]), vals([2], [0.5, -0.3])],
  },
  {
    name: "where",
    f: ([c, a, b]) => where(c, a, b),
    inputs: () => [bools([2, 1], [1, 0]), nrm(S23), nrm([3])],
  },
  {
    name: "remainder",
    f: ([a]) => a.remainder(1.5),
    inputs: () => [vals([4], [0.4, 2.0, -1.0, 3.7])],
  },
  // reductions
  {
    name: "sum dims keepdim",
    f: ([a]) => a.sum([0, 2], { keepdim: true }),
    inputs: () => [nrm([2, 3, 2])],
  },
  { name: "mean", f: ([a]) => a.mean(-1), inputs: () => [nrm(S34)] },
  { name: "prod", f: ([a]) => a.prod(1), inputs: () => [uni(S34, 0.5, 1.5)] },
  {
    name: "prod with a zero",
    f: ([a]) => a.prod(1),
    inputs: () => [vals([2, 3], [0, 2, 3, 1.5, -1, 0.5])],
  },
  { name: "prod all", f: ([a]) => a.prod(), inputs: () => [uni(S23, -1.5, 1.5)] },
  { name: "amax no ties", f: ([a]) => a.amax(1), inputs: () => [vals(S34, distinct(12))] },
  { name: "amin dims", f: ([a]) => a.amin([0, 1]), inputs: () => [vals(S34, distinct(12))] },
  { name: "max dim values", f: ([a]) => a.max(0).values, inputs: () => [vals(S34, distinct(12))] },
  { name: "min all", f: ([a]) => a.min(), inputs: () => [vals(S34, distinct(12))] },
  { name: "var", f: ([a]) => a.var(1), inputs: () => [nrm(S34)] },
  { name: "std correction 0", f: ([a]) => a.std(0, { correction: 0 }), inputs: () => [nrm(S34)] },
  { name: "logsumexp", f: ([a]) => a.logsumexp(1), inputs: () => [nrm(S34, 2)] },
  { name: "logsumexp dims", f: ([a]) => a.logsumexp([0, 1]), inputs: () => [nrm(S34)] },
  { name: "norm 2", f: ([a]) => a.norm(2, 1), inputs: () => [nrm(S34)] },
  { name: "norm all", f: ([a]) => a.norm(), inputs: () => [nrm(S34)] },
  {
    name: "norm 1",
    f: ([a]) => a.norm(1, 0),
    inputs: () => [{ ...nrm(S34), values: away(normal(12)) }],
  },
  { name: "norm 3", f: ([a]) => a.norm(3, 1), inputs: () => [nrm(S34)] },
  {
    name: "norm 1.5",
    f: ([a]) => a.norm(1.5, 1),
    inputs: () => [{ ...nrm(S34), values: away(normal(12)) }],
  },
  { name: "norm inf", f: ([a]) => a.norm(Infinity, 1), inputs: () => [vals(S34, distinct(12))] },
  { name: "cumsum", f: ([a]) => a.cumsum(1), inputs: () => [nrm(S34)] },
  { name: "cumprod", f: ([a]) => a.cumprod(1), inputs: () => [uni(S34, -1.5, 1.5)] },
  {
    name: "cumprod with zeros",
    f: ([a]) => a.cumprod(1),
    inputs: () => [vals([3, 4], [0, 2, 0.5, 3, 2, 0, 1.5, -1, 1, 0.5, 0, 0])],
  },
  { name: "sort values", f: ([a]) => a.sort(1).values, inputs: () => [vals(S34, distinct(12))] },
  { name: "topk values", f: ([a]) => a.topk(2, 0).values, inputs: () => [vals(S34, distinct(12))] },
  // shape
  {
    name: "reshape permute",
    f: ([a]) => a.reshape([4, 3]).permute([1, 0]),
    inputs: () => [nrm(S34)],
  },
  { name: "transpose 3-D", f: ([a]) => a.transpose(0, 2), inputs: () => [nrm([2, 3, 2])] },
  { name: "expand", f: ([a]) => a.expand([2, 3, 4]), inputs: () => [nrm([3, 1])] },
  { name: "cat", f: ([a, b]) => cat([a, b], 1), inputs: () => [nrm([2, 2]), nrm([2, 3])] },
  { name: "stack", f: ([a, b]) => stack([a, b], -1), inputs: () => [nrm(S23), nrm(S23)] },
  {
    name: "split and chunk",
    f: ([a]) => {
      const [p, q] = a.split([1, 3], 1);
      const [r] = a.chunk(2, 0); // (2, 4)
      return cat([p.mul(2).sum(1), q.sum(1), r.sum(0)], 0); // (10)
    },
    inputs: () => [nrm(S34)],
  },
  {
    name: "narrow and select",
    f: ([a]) => a.narrow(1, 1, 2).select(0, -1),
    inputs: () => [nrm(S34)],
  },
  { name: "slice step", f: ([a]) => a.slice(1, 0, 4, 2), inputs: () => [nrm(S34)] },
  { name: "flip", f: ([a]) => a.flip([0, 1]), inputs: () => [nrm(S34)] },
  { name: "roll", f: ([a]) => a.roll([1, -1], [0, 1]), inputs: () => [nrm(S34)] },
  { name: "repeat", f: ([a]) => a.repeat([2, 1, 2]), inputs: () => [nrm(S23)] },
  { name: "tile", f: ([a]) => a.tile([2]), inputs: () => [nrm(S23)] },
  {
    name: "pad constant",
    f: ([a]) => F.pad(a, [1, 2, -1, 1], { value: 3 }),
    inputs: () => [nrm(S34)],
  },
  {
    name: "pad reflect",
    f: ([a]) => F.pad(a, [2, 1], { mode: "reflect" }),
    inputs: () => [nrm([1, 2, 4])],
  },
  {
    name: "pad replicate",
    f: ([a]) => F.pad(a, [1, 2, 2, 0], { mode: "replicate" }),
    inputs: () => [nrm([1, 1, 2, 3])],
  },
  {
    name: "pad circular",
    f: ([a]) => F.pad(a, [2, 1], { mode: "circular" }),
    inputs: () => [nrm([1, 2, 3])],
  },
  { name: "tril triu", f: ([a]) => a.tril(1).add(a.triu(-1).mul(2)), inputs: () => [nrm([3, 3])] },
  {
    name: "squeeze unsqueeze",
    f: ([a]) => a.unsqueeze(0).squeeze().mT,
    inputs: () => [nrm([3, 1, 2])],
  },
  // indexing
  {
    name: "indexSelect with repeats",
    f: ([a, i]) => a.indexSelect(0, i),
    inputs: () => [nrm(S34), ints([4], [2, 0, 2, 2])],
  },
  {
    name: "gather",
    f: ([a, i]) => a.gather(1, i),
    inputs: () => [nrm(S34), ints([3, 2], [0, 0, 3, 1, 2, 2])],
  },
  {
    name: "scatter x and src",
    f: ([a, i, s]) => a.scatter(1, i, s),
    inputs: () => [nrm(S34), ints([3, 2], [0, 2, 3, 1, 1, 0]), nrm([3, 2])],
  },
  {
    name: "scatterAdd duplicates",
    f: ([a, i, s]) => a.scatterAdd(0, i, s),
    inputs: () => [nrm([2, 3]), ints([3, 3], [0, 1, 1, 1, 1, 0, 0, 0, 0]), nrm([3, 3])],
  },
  {
    name: "maskedFill tensor value",
    f: ([a, m, v]) => a.maskedFill(m, v),
    inputs: () => [nrm(S23), bools([1, 3], [1, 0, 1]), nrm([])],
  },
  { name: "take", f: ([a, i]) => a.take(i), inputs: () => [nrm(S34), ints([2, 2], [11, 0, 5, 5])] },
  // matrix products
  { name: "matmul 2-D", f: ([a, b]) => a.matmul(b), inputs: () => [nrm(S34), nrm([4, 2])] },
  { name: "matmul 1-D @ 1-D", f: ([a, b]) => a.matmul(b), inputs: () => [nrm([4]), nrm([4])] },
  {
    name: "matmul 1-D @ batched",
    f: ([a, b]) => a.matmul(b),
    inputs: () => [nrm([3]), nrm([2, 3, 2])],
  },
  {
    name: "matmul broadcast batch",
    f: ([a, b]) => a.matmul(b),
    inputs: () => [nrm([2, 1, 2, 3]), nrm([3, 3, 2])],
  },
  { name: "bmm", f: ([a, b]) => a.bmm(b), inputs: () => [nrm([2, 2, 3]), nrm([2, 3, 2])] },
  { name: "mm", f: ([a, b]) => a.mm(b), inputs: () => [nrm(S23), nrm([3, 2])] },
  { name: "dot", f: ([a, b]) => a.dot(b), inputs: () => [nrm([5]), nrm([5])] },
  { name: "outer", f: ([a, b]) => a.outer(b), inputs: () => [nrm([3]), nrm([2])] },
  {
    name: "einsum batched attention scores",
    f: ([a, b]) => einsum("bhqd,bhkd->bhqk", a, b),
    inputs: () => [nrm([1, 2, 2, 3]), nrm([1, 2, 3, 3])],
  },
  {
    name: "einsum trace and diagonal",
    f: ([a]) => einsum("ii->i", a).add(einsum("ii", a)),
    inputs: () => [nrm([3, 3])],
  },
  {
    name: "einsum three operands",
    f: ([a, b, c]) => einsum("ij,jk,kl->il", a, b, c),
    inputs: () => [nrm([2, 3]), nrm([3, 2]), nrm([2, 2])],
  },
  {
    name: "einsum ellipsis",
    f: ([a, b]) => einsum("...ij,...jk->...ik", a, b),
    inputs: () => [nrm([2, 2, 3]), nrm([2, 3, 2])],
  },
  // functional
  { name: "softmax", f: ([a]) => F.softmax(a, 1), inputs: () => [nrm(S34, 2)] },
  { name: "logSoftmax dim 0", f: ([a]) => F.logSoftmax(a, 0), inputs: () => [nrm(S34, 2)] },
  {
    name: "crossEntropy indices weight smoothing ignoreIndex",
    f: ([x, y, w]) => F.crossEntropy(x, y, { weight: w, labelSmoothing: 0.1, ignoreIndex: 3 }),
    inputs: () => [nrm([4, 3], 2), ints([4], [0, 3, 2, 1]), fixed(uni([3], 0.5, 2))],
  },
  {
    name: "crossEntropy probabilities sum",
    f: ([x, y]) => F.crossEntropy(x, y, { reduction: "sum" }),
    inputs: () => [
      nrm([3, 4]),
      fixed(vals([3, 4], [0.1, 0.2, 0.3, 0.4, 1, 0, 0, 0, 0.25, 0.25, 0.25, 0.25])),
    ],
  },
  {
    name: "crossEntropy spatial none",
    f: ([x, y]) => F.crossEntropy(x, y, { reduction: "none" }),
    inputs: () => [nrm([2, 3, 2]), ints([2, 2], [0, 2, 1, 1])],
  },
  {
    name: "nllLoss weight",
    f: ([x, y, w]) => F.nllLoss(x, y, { weight: w }),
    inputs: () => [nrm([4, 3]), ints([4], [0, 2, 1, 1]), fixed(uni([3], 0.5, 2))],
  },
  { name: "mseLoss", f: ([a, b]) => F.mseLoss(a, b), inputs: () => [nrm(S34), nrm(S34)] },
  {
    name: "l1Loss",
    f: ([a, b]) => F.l1Loss(a, b, { reduction: "sum" }),
    inputs: () => [nrm(S23), fixed(vals(S23, [5, 5, 5, -5, -5, -5]))],
  },
  {
    name: "smoothL1Loss",
    f: ([a, b]) => F.smoothL1Loss(a, b, { beta: 0.5, reduction: "none" }),
    inputs: () => [
      { ...nrm(S34), values: away(normal(12), [-0.5, 0, 0.5]) },
      fixed(vals(S34, Array(12).fill(0))),
    ],
  },
  {
    name: "binaryCrossEntropy p and y",
    f: ([p, y]) => F.binaryCrossEntropy(p, y),
    inputs: () => [uni(S23, 0.1, 0.9), uni(S23, 0, 1)],
  },
  {
    name: "binaryCrossEntropyWithLogits posWeight x and y",
    f: ([x, y, pw]) => F.binaryCrossEntropyWithLogits(x, y, { posWeight: pw, reduction: "sum" }),
    inputs: () => [nrm(S23, 2), uni(S23, 0, 1), fixed(uni([3], 0.5, 2))],
  },
  {
    name: "klDiv input and target",
    f: ([a, b]) => F.klDiv(a, b, { reduction: "batchmean" }),
    inputs: () => [nrm(S34), uni(S34, 0.1, 1)],
  },
  {
    name: "klDiv logTarget",
    f: ([a, b]) => F.klDiv(a, b, { reduction: "sum", logTarget: true }),
    inputs: () => [nrm(S23), nrm(S23)],
  },
  {
    name: "cosineSimilarity",
    f: ([a, b]) => F.cosineSimilarity(a, b),
    inputs: () => [nrm(S34), nrm(S34)],
  },
  { name: "normalize p 2", f: ([a]) => F.normalize(a), inputs: () => [nrm(S34)] },
  {
    name: "linear",
    f: ([x, w, b]) => F.linear(x, w, b),
    inputs: () => [nrm([2, 3]), nrm([4, 3]), nrm([4])],
  },
  {
    name: "layerNorm weight bias",
    f: ([x, w, b]) => F.layerNorm(x, [4], { weight: w, bias: b }),
    inputs: () => [nrm(S34, 2), nrm([4]), nrm([4])],
  },
  {
    name: "rmsNorm weight",
    f: ([x, w]) => F.rmsNorm(x, [4], { weight: w }),
    inputs: () => [nrm(S34), nrm([4])],
  },
  {
    name: "batchNorm training",
    f: ([x, w, b]) => F.batchNorm(x, null, null, { training: true, weight: w, bias: b }),
    inputs: () => [nrm([4, 2, 2]), nrm([2]), nrm([2])],
  },
  {
    name: "groupNorm",
    f: ([x, w, b]) => F.groupNorm(x, 2, { weight: w, bias: b }),
    inputs: () => [nrm([2, 4, 2]), nrm([4]), nrm([4])],
  },
  // paddingIdx is left out: its row deliberately gets no gradient although it is used
  // (PyTorch's rule), which finite differences cannot confirm; ops_test compares it.
  {
    name: "embedding",
    f: ([i, w]) => F.embedding(i, w),
    inputs: () => [ints([2, 2], [0, 1, 2, 0]), nrm([3, 2])],
  },
  {
    name: "scaledDotProductAttention bool mask",
    f: ([q, k, v, m]) => F.scaledDotProductAttention(q, k, v, { attnMask: m }),
    inputs: () => [
      nrm([2, 2, 3]),
      nrm([2, 3, 3]),
      nrm([2, 3, 2]),
      bools([2, 3], [1, 0, 1, 1, 1, 0]),
    ],
  },
  {
    name: "scaledDotProductAttention causal",
    f: ([q, k, v]) => F.scaledDotProductAttention(q, k, v, { isCausal: true }),
    inputs: () => [nrm([1, 3, 2]), nrm([1, 3, 2]), nrm([1, 3, 2])],
  },
];

for (const s of specs) {
  Deno.test(`gradcheck: ${s.name}`, async () => {
    let h = 0;
    for (const ch of s.name) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
    rng = prng(h);
    await gradcheck(s.name, s.f, s.inputs(), s);
  });
}

Deno.test("gradcheck: rejects wrong gradients (sign error, missing factor, 5% off)", async () => {
  const x = () => [vals([4], [0.5, -1.2, 2.0, 0.8])];
  const cases: [string, (x: Tensor[]) => Tensor][] = [
    // value x, gradient -1 instead of +1
    ["sign error", ([a]) => a.detach().mul(2).sub(a)],
    // value x^2, gradient x instead of 2x
    ["missing factor 2", ([a]) => a.detach().mul(a)],
    // value x, gradient 0.95
    ["5% off", ([a]) => a.mul(0.95).add(a.detach().mul(0.05))],
  ];
  for (const [name, f] of cases) {
    let failed = false;
    try {
      await gradcheck(name, f, x());
    } catch {
      failed = true;
    }
    assert(failed, `gradcheck accepted a wrong gradient (${name})`);
  }
});

// ------------------------------------------------------ double backward: H v vs PyTorch

interface HvpCase {
  name: string;
  x: Enc;
  v: Enc;
  consts: Record<string, Enc>;
  value: Enc;
  grad: Enc;
  hvp: Enc;
}
const fx = await loadFixture<{ hvp: HvpCase[]; tree: Record<string, Enc> }>("core_ops.json");

/** The scalar functions of make_core_fixtures.py's hvp_fns, by name. */
function hvpFn(c: HvpCase): (x: Tensor) => Tensor {
  const k = Object.fromEntries(Object.entries(c.consts).map(([n, e]) => [n, fromEnc(e)]));
  switch (c.name) {
    case "tanh cubed":
      return (x) => x.tanh().pow(3).sum();
    case "softmax and logsumexp":
      return (x) => F.softmax(x, -1).mul(k.c).sum().add(x.logsumexp(-1).sum());
    case "mlp":
      return (x) => x.matmul(k.W).tanh().pow(2).sum().add(F.layerNorm(x, [4]).mul(k.c).sum());
    case "norm and gelu":
      return (x) => F.gelu(x).norm(2, 1).sum();
  }
  throw new Error(`no hvp function "${c.name}"`);
}

const HVP_TOL = { rtol: 1e-4, atol: 1e-5 };

for (const c of fx.hvp) {
  Deno.test(`double backward: ${c.name}: H v with backward({ createGraph: true })`, async () => {
    const f = hvpFn(c);
    const x = fromEnc(c.x, true), v = fromEnc(c.v);
    const y = f(x);
    await assertTensorClose(y, c.value, `${c.name}: value`, HVP_TOL);
    y.backward(undefined, { createGraph: true });
    const g = x.grad!;
    assert(g.requiresGrad, `${c.name}: createGraph must give a gradient with a graph`);
    await assertTensorClose(g, c.grad, `${c.name}: gradient`, HVP_TOL);
    x.grad = null;
    g.mul(v).sum().backward();
    await assertTensorClose(x.grad!, c.hvp, `${c.name}: H v`, HVP_TOL);
  });

  Deno.test(`double backward: ${c.name}: H v with grad and valueAndGrad`, async () => {
    const f = hvpFn(c);
    const x = fromEnc(c.x), v = fromEnc(c.v);
    const df = grad((t: Tensor) => f(t), { createGraph: true });
    const hv = grad((t: Tensor) => df(t).mul(v).sum())(x);
    await assertTensorClose(hv, c.hvp, `${c.name}: H v via grad`, HVP_TOL);
    const inner = valueAndGrad((t: Tensor) => f(t), { createGraph: true });
    const outer = valueAndGrad((t: Tensor) => inner(t).grads.mul(v).sum());
    const { value, grads } = outer(x);
    const gv = await (await inner(x)).grads.mul(v).sum().item();
    assertClose([await value.item() as number], [gv as number], `${c.name}: g . v`, HVP_TOL);
    await assertTensorClose(grads, c.hvp, `${c.name}: H v via valueAndGrad`, HVP_TOL);
    assert(x.grad === null, "valueAndGrad must not accumulate into .grad");
  });
}

Deno.test("double backward: without createGraph the gradient has no graph", () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  x.pow(3).sum().backward();
  assert(!x.grad!.requiresGrad);
});

// ------------------------------------------------------------- valueAndGrad over a tree

Deno.test("valueAndGrad: a tree of tensors gives gradients of the same structure", async () => {
  const t = fx.tree;
  const X = fromEnc(t.x);
  type P = { w: Tensor; b: Tensor; extra: [Tensor] };
  const params: P = { w: fromEnc(t.w), b: fromEnc(t.b), extra: [fromEnc(t.s)] };
  const f = (p: P) => X.matmul(p.w).add(p.b).pow(2).sum().mul(p.extra[0]).add(p.w.pow(3).sum());
  const { value, grads } = valueAndGrad(f)(params);
  assert(!value.requiresGrad, "value is detached without createGraph");
  assert(Object.keys(grads).sort().join() === "b,extra,w" && Array.isArray(grads.extra));
  await assertTensorClose(value, t.value, "tree: value");
  await assertTensorClose(grads.w, t.gw, "tree: grad w");
  await assertTensorClose(grads.b, t.gb, "tree: grad b");
  await assertTensorClose(grads.extra[0], t.gs, "tree: grad s");
  for (const p of [params.w, params.b, params.extra[0]]) {
    assert(p.grad === null && !p.requiresGrad, "parameters are left untouched");
  }
  // grad() gives the same tree; an unused parameter gets zeros.
  const g2 = grad((p: { a: Tensor; unused: Tensor }) => p.a.square().sum())({
    a: tensor([1, -2], { dtype: "float32" }),
    unused: tensor([[5, 6]], { dtype: "float32" }),
  });
  assertClose(await g2.a.data(), [2, -4], "grad a");
  assertClose(await g2.unused.data(), [0, 0], "grad of an unused parameter");
  assert(g2.unused.shape.join() === "1,2");
  assertThrows(() => valueAndGrad((p: Tensor) => p.mul(2))(tensor([1.5, 2])), /scalar/);
});
