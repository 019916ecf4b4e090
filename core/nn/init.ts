/**
 * `nn.init`: PyTorch's initialisers (torch.nn.init) with its fan computation and gains. Each
 * fills a tensor in place (`assign` under noGrad, temporaries freed) from the core's seeded
 * stream (`rand`, `randn`) and returns it. Names drop PyTorch's trailing underscore; the
 * numeric arguments keep PyTorch's positional order (`normal(w, 0, 0.02)`,
 * `uniform(w, -b, b)`), the string-valued ones of the Kaiming initialisers go in an options
 * object.
 */
import { erf } from "../backends/cpu/elementwise.ts"; // the host erf the CPU kernels use
import { noGrad } from "../autograd.ts";
import { scope } from "../memory.ts";
import { cat, stack } from "../ops/shape.ts";
import { full, rand, randn } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";

export type Nonlinearity =
  | "linear"
  | "conv1d"
  | "conv2d"
  | "conv3d"
  | "conv_transpose1d"
  | "conv_transpose2d"
  | "conv_transpose3d"
  | "sigmoid"
  | "tanh"
  | "relu"
  | "leaky_relu"
  | "selu";

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "conv1d":
    case "conv2d":
    case "conv3d":
    case "conv_transpose1d":
    case "conv_transpose2d":
    case "conv_transpose3d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case "selu":
      return 3 / 4;
  }
  throw new Error(`calculateGain: unsupported nonlinearity "${nonlinearity}"`);
}

/**
 * fan_in = size(1) * receptive field, fan_out = size(0) * receptive field, where the
 * receptive field is the product of the dims after the first two (PyTorch's convention, so a
 * Linear weight [out, in] has fan_in = in).
 */
export function calculateFanInAndFanOut(
  t: Tensor | readonly number[],
): { fanIn: number; fanOut: number } {
  const shape = "shape" in t ? t.shape : t;
  if (shape.length < 2) {
    throw new Error(
      `calculateFanInAndFanOut: fan in and fan out can not be computed for a tensor with fewer ` +
        `than 2 dimensions (shape [${shape}])`,
    );
  }
  const rf = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * rf, fanOut: shape[0] * rf };
}

/** Replaces t's values with make()'s, without recording and freeing every temporary. */
function fill(t: Tensor, make: () => Tensor): Tensor {
  scope(() => noGrad(() => void t.assign(make())));
  return t;
}

/** U(a, b). */
export function uniform(t: Tensor, a = 0, b = 1): Tensor {
  return fill(t, () => rand([...t.shape]).mul(b - a).add(a));
}

/** N(mean, std^2). */
export function normal(t: Tensor, mean = 0, std = 1): Tensor {
  return fill(t, () => randn([...t.shape]).mul(std).add(mean));
}

export function constant(t: Tensor, value: number): Tensor {
  return fill(t, () => full([...t.shape], value, { dtype: t.dtype }));
}
export const zeros = (t: Tensor): Tensor => constant(t, 0);
export const ones = (t: Tensor): Tensor => constant(t, 1);

/** U(-a, a) with a = gain sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010). */
export function xavierUniform(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  const a = Math.sqrt(3) * gain * Math.sqrt(2 / (fanIn + fanOut));
  return uniform(t, -a, a);
}

/** N(0, std^2) with std = gain sqrt(2 / (fan_in + fan_out)). */
export function xavierNormal(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  return normal(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

export interface KaimingOptions {
  /** The negative slope of the leaky_relu that follows (default 0). */
  a?: number;
  /** "fan_in" (default) preserves the forward variance, "fan_out" the backward one. */
  mode?: "fan_in" | "fan_out";
  /** Default "leaky_relu" (with slope `a`). */
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  const fan = (o.mode ?? "fan_in") === "fan_in" ? fanIn : fanOut;
  if (fan === 0) {
    throw new Error(`kaiming: cannot initialise a tensor with zero fan ([${t.shape}])`);
  }
  return calculateGain(o.nonlinearity ?? "leaky_relu", o.a ?? 0) / Math.sqrt(fan);
}

/** U(-bound, bound) with bound = gain sqrt(3 / fan) (He et al., 2015). */
export function kaimingUniform(t: Tensor, o: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, o);
  return uniform(t, -bound, bound);
}

/** N(0, std^2) with std = gain / sqrt(fan). */
export function kaimingNormal(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal(t, 0, kaimingStd(t, o));
}

/** erfinv elementwise for |x| < 1 (M. Giles, "Approximating the erfinv function", 2010). */
function erfinv(x: Tensor): Tensor {
  const w = x.rsub(1).mul(x.add(1)).log().neg();
  const horner = (v: Tensor, cs: number[]) =>
    cs.slice(1).reduce((p, c) => p.mul(v).add(c), v.mul(0).add(cs[0]));
  const central = horner(w.sub(2.5), [
    2.81022636e-08,
    3.43273939e-07,
    -3.5233877e-06,
    -4.39150654e-06,
    0.00021858087,
    -0.00125372503,
    -0.00417768164,
    0.246640727,
    1.50140941,
  ]);
  const tail = horner(w.sqrt().sub(3), [
    -0.000200214257,
    0.000100950558,
    0.00134934322,
    -0.00367342844,
    0.00573950773,
    -0.0076224613,
    0.00943887047,
    1.00167406,
    2.83297682,
  ]);
  return central.where(w.lt(5), tail).mul(x);
}

/**
 * N(mean, std^2) truncated to [a, b], by PyTorch's inverse-CDF method: uniform samples in
 * [2 cdf(a) - 1, 2 cdf(b) - 1] mapped through erfinv, then clamped to [a, b].
 */
export function truncNormal(t: Tensor, mean = 0, std = 1, a = -2, b = 2): Tensor {
  const cdf = (x: number) => (1 + erf(x / Math.SQRT2)) / 2;
  const l = 2 * cdf((a - mean) / std) - 1, u = 2 * cdf((b - mean) / std) - 1;
  return fill(
    t,
    () => erfinv(rand([...t.shape]).mul(u - l).add(l)).mul(std * Math.SQRT2).add(mean).clamp(a, b),
  );
}

/**
 * A (semi-)orthogonal matrix (Saxe et al., 2013) scaled by `gain`, over t viewed as
 * [size(0), numel / size(0)]: the Q of the QR decomposition of a Gaussian matrix with R's
 * diagonal made positive, as PyTorch computes it (transposed when there are fewer rows than
 * columns). Q comes from block Gram-Schmidt with re-orthogonalisation (BCGS2) in tensor ops,
 * so it runs on any backend without readback, in O(m n^2) for an m x n matrix (m >= n).
 */
export function orthogonal(t: Tensor, gain = 1): Tensor {
  if (t.ndim < 2) {
    throw new Error(`orthogonal: only tensors with 2 or more dimensions are supported`);
  }
  if (t.numel === 0) return t;
  const rows = t.shape[0], cols = t.numel / rows;
  const n = Math.min(rows, cols), m = Math.max(rows, cols), BLOCK = 16;
  return fill(t, () => {
    const V = randn([n, m]); // the n Gaussian vectors to orthonormalise, as rows
    let Qt: Tensor | null = null, Q: Tensor | null = null; // (j, m) and (m, j) so far
    for (let s = 0; s < n; s += BLOCK) {
      const [prevQt, prevQ] = [Qt, Q];
      [Qt, Q] = scope((): [Tensor, Tensor] => {
        let B = V.slice(0, s, Math.min(s + BLOCK, n)); // (b, m)
        // Twice is enough (Giraud et al., 2005): the second pass restores orthogonality.
        for (let pass = 0; prevQ && pass < 2; pass++) B = B.sub(B.matmul(prevQ).matmul(prevQt!));
        const done: Tensor[] = [];
        for (let i = 0; i < B.shape[0]; i++) {
          let r = B.select(0, i); // (m)
          const R = done.length ? stack(done) : null; // (i, m)
          for (let pass = 0; R && pass < 2; pass++) r = r.sub(R.matmul(r).matmul(R));
          done.push(r.div(r.norm()));
        }
        const Bq = stack(done); // (b, m)
        return [prevQt ? cat([prevQt, Bq], 0) : Bq, prevQ ? cat([prevQ, Bq.T], 1) : Bq.T];
      });
      prevQt?.dispose();
      prevQ?.dispose();
    }
    return (rows < cols ? Qt! : Q!).mul(gain).reshape([...t.shape]);
  });
}
