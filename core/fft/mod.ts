/**
 * torch.fft on tensors: fft ifft rfft irfft fft2 ifft2 rfft2 irfft2 fftn ifftn rfftn irfftn,
 * plus fftfreq, rfftfreq, fftshift, ifftshift and a few complex helpers.
 *
 * Complex values are float32 tensors with a trailing dim of size 2 holding (re, im), the layout
 * of torch.view_as_real: a complex [B, n] signal is a [B, n, 2] tensor. `dim` options count
 * the complex tensor's own dims, i.e. exclude the trailing (re, im) dim. Gradients are those of
 * the real view, which is what PyTorch reports for a real loss of complex tensors.
 *
 * Forward passes run the host kernels of kernels.ts (float64), reading the input synchronously,
 * which only the cpu backend allows; elsewhere they throw (ops never read back implicitly).
 * Backward rules are the adjoint transforms, written with these same ops, so double backward
 * works: fft's adjoint is an unnormalised inverse transform (ifft with the dual norm); rfft's is
 * the real part of the inverse transform of the zero-padded half spectrum; irfft's is rfft with
 * the interior bins doubled, since each stands for itself and its Hermitian mirror.
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend.ts";
import { hostValues } from "../linalg/mod.ts";
import { fromArrayOn } from "../ops/creation.ts";
import { stack } from "../ops/shape.ts";
import { fmtShape, normDim } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { fftBatch, type FftNorm, irfft as irfftKernel, rfft as rfftKernel } from "./kernels.ts";

export type { FftNorm };

export interface FftOptions {
  /** Signal length: the input is cropped or zero-padded to n (irfft: the output length). */
  n?: number;
  /** The signal dim (default -1, the last dim of the complex or real tensor). */
  dim?: number;
  /** "backward" (default: inverse scaled by 1/n), "forward" or "ortho" (1/sqrt(n) both ways). */
  norm?: FftNorm;
}

export interface FftNOptions {
  /** Signal sizes per transformed dim (irfftn: the last one is the output length). */
  s?: number[];
  /** The transformed dims (default: the last len(s) dims, or all for fftn without s). */
  dim?: number[];
  norm?: FftNorm;
}

const DUAL: Record<FftNorm, FftNorm> = { backward: "forward", forward: "backward", ortho: "ortho" };

function checkNorm(op: string, norm: FftNorm): FftNorm {
  if (!(norm in DUAL)) {
    throw new Error(`${op}: norm must be "backward", "forward" or "ortho", got ${String(norm)}`);
  }
  return norm;
}

function checkComplex(op: string, z: Tensor): void {
  if (z.ndim < 2 || z.shape[z.ndim - 1] !== 2) {
    throw new Error(
      `${op}: expected a complex tensor with a trailing dim of 2 (re, im), got ${
        fmtShape(z.shape)
      }; for a real signal use rfft or complex(x)`,
    );
  }
}

/** Crops or zero-pads dim `d` of x to `n`. */
function resize(op: string, x: Tensor, d: number, n: number): Tensor {
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${op}: invalid number of data points (${n}); the length must be >= 1`);
  }
  const m = x.shape[d];
  if (n === m) return x;
  if (n < m) return x.narrow(d, 0, n);
  const pads = new Array(2 * x.ndim).fill(0);
  pads[2 * (x.ndim - 1 - d) + 1] = n - m;
  return x.pad(pads);
}

// ------------------------------------------------------------------ primitives (last dim)

/** Complex transform along dim -2 of z [..., n, 2]. */
function c2c(z: Tensor, inverse: boolean, norm: FftNorm): Tensor {
  const op = inverse ? "fft.ifft" : "fft.fft";
  const n = z.shape[z.ndim - 2];
  const src = hostValues(op, z);
  const len = src.length / 2;
  const re = new Float64Array(len), im = new Float64Array(len);
  for (let i = 0; i < len; i++) [re[i], im[i]] = [src[2 * i], src[2 * i + 1]];
  fftBatch(re, im, n, inverse, norm);
  const out = new Float32Array(2 * len);
  for (let i = 0; i < len; i++) [out[2 * i], out[2 * i + 1]] = [re[i], im[i]];
  const y = fromArrayOn(z, out, "float32", [...z.shape]);
  return record(y, op, [z], (g) => [c2c(g, !inverse, DUAL[norm])]);
}

/** Real-to-half-spectrum transform along the last dim: [..., n] -> [..., n/2 + 1, 2]. */
function r2c(x: Tensor, norm: FftNorm): Tensor {
  const n = x.shape[x.ndim - 1], h = (n >> 1) + 1;
  const { re, im } = rfftKernel(hostValues("fft.rfft", x), n, norm);
  const out = new Float32Array(2 * re.length);
  for (let i = 0; i < re.length; i++) [out[2 * i], out[2 * i + 1]] = [re[i], im[i]];
  const y = fromArrayOn(x, out, "float32", [...x.shape.slice(0, -1), h, 2]);
  // Adjoint: Re(F^H [g; 0]) = real part of the unnormalised inverse of the zero-padded g.
  return record(
    y,
    "fft.rfft",
    [x],
    (g) => [c2c(resize("fft.rfft", g, g.ndim - 2, n), true, DUAL[norm]).select(-1, 0)],
  );
}

/** Half-spectrum-to-real transform: z [..., n/2 + 1, 2] -> [..., n]. */
function c2r(z: Tensor, n: number, norm: FftNorm): Tensor {
  const h = z.shape[z.ndim - 2];
  const src = hostValues("fft.irfft", z);
  const len = src.length / 2;
  const re = new Float64Array(len), im = new Float64Array(len);
  for (let i = 0; i < len; i++) [re[i], im[i]] = [src[2 * i], src[2 * i + 1]];
  const y = fromArrayOn(z, irfftKernel(re, im, h, n, norm), "float32", [
    ...z.shape.slice(0, -2),
    n,
  ]);
  return record(y, "fft.irfft", [z], (g) => {
    // Bins 1 .. n - h stand for themselves and their mirrors: weight 2; DC (and Nyquist) 1.
    const w = new Float32Array(h).map((_, k) => (k >= 1 && k <= n - h ? 2 : 1));
    return [r2c(g, DUAL[norm]).mul(fromArrayOn(z, w, "float32", [h, 1]))];
  });
}

// ------------------------------------------------------------------------------ 1-D

/** Moves signal dim d of a complex tensor to dim -2, runs fn, and moves it back. */
function alongComplex(z: Tensor, d: number, fn: (t: Tensor) => Tensor): Tensor {
  const last = z.ndim - 2;
  if (d === last) return fn(z);
  return fn(z.transpose(d, last)).transpose(d, last);
}

function complexDim(op: string, z: Tensor, dim = -1): number {
  checkComplex(op, z);
  return normDim(op, dim, z.ndim - 1);
}

/** torch.fft.fft of a complex tensor [..., 2] along `dim`. */
export function fft(z: Tensor, o: FftOptions = {}): Tensor {
  const op = "fft.fft", d = complexDim(op, z, o.dim), norm = checkNorm(op, o.norm ?? "backward");
  return alongComplex(
    z.float(),
    d,
    (t) => c2c(resize(op, t, t.ndim - 2, o.n ?? t.shape[t.ndim - 2]), false, norm),
  );
}

/** torch.fft.ifft of a complex tensor [..., 2] along `dim`. */
export function ifft(z: Tensor, o: FftOptions = {}): Tensor {
  const op = "fft.ifft", d = complexDim(op, z, o.dim), norm = checkNorm(op, o.norm ?? "backward");
  return alongComplex(
    z.float(),
    d,
    (t) => c2c(resize(op, t, t.ndim - 2, o.n ?? t.shape[t.ndim - 2]), true, norm),
  );
}

/** torch.fft.rfft of a real tensor along `dim`: n/2 + 1 complex bins [..., n/2 + 1, ..., 2]. */
export function rfft(x: Tensor, o: FftOptions = {}): Tensor {
  const op = "fft.rfft", norm = checkNorm(op, o.norm ?? "backward");
  if (x.ndim === 0) throw new Error(`${op}: expected at least 1 dim, got a scalar`);
  const d = normDim(op, o.dim ?? -1, x.ndim), last = x.ndim - 1;
  const xt = d === last ? x.float() : x.float().transpose(d, last);
  const y = r2c(resize(op, xt, last, o.n ?? xt.shape[last]), norm); // (..., h, 2)
  return d === last ? y : y.transpose(d, last);
}

/**
 * torch.fft.irfft of a half spectrum [..., m, 2] along `dim`: a real signal of length n
 * (default 2 (m - 1)). The imaginary parts of the DC and (even n) Nyquist bins are ignored.
 */
export function irfft(z: Tensor, o: FftOptions = {}): Tensor {
  const op = "fft.irfft", d = complexDim(op, z, o.dim), norm = checkNorm(op, o.norm ?? "backward");
  const last = z.ndim - 2;
  const t = d === last ? z.float() : z.float().transpose(d, last);
  const n = o.n ?? 2 * (t.shape[last] - 1);
  const y = c2r(resize(op, t, last, (n >> 1) + 1), n, norm); // (..., n)
  return d === last ? y : y.transpose(d, last);
}

// ------------------------------------------------------------------------------ n-D

function dimsFor(op: string, ndim: number, o: FftNOptions, all: boolean): number[] {
  const k = o.dim?.length ?? o.s?.length ?? (all ? ndim : 2);
  const dims = (o.dim ?? Array.from({ length: k }, (_, i) => i - k)).map((d) =>
    normDim(op, d, ndim)
  );
  if (o.s && o.s.length !== dims.length) {
    throw new Error(`${op}: s ${fmtShape(o.s)} and dim ${fmtShape(dims)} differ in length`);
  }
  if (new Set(dims).size !== dims.length) {
    throw new Error(`${op}: repeated dim in ${fmtShape(dims)}`);
  }
  return dims;
}

/** torch.fft.fftn over `dim` (default all) of a complex tensor. */
export function fftn(z: Tensor, o: FftNOptions = {}): Tensor {
  checkComplex("fft.fftn", z);
  const dims = dimsFor("fft.fftn", z.ndim - 1, o, true);
  return dims.reduce((t, d, i) => fft(t, { dim: d, n: o.s?.[i], norm: o.norm }), z);
}

/** torch.fft.ifftn over `dim` (default all) of a complex tensor. */
export function ifftn(z: Tensor, o: FftNOptions = {}): Tensor {
  checkComplex("fft.ifftn", z);
  const dims = dimsFor("fft.ifftn", z.ndim - 1, o, true);
  return dims.reduce((t, d, i) => ifft(t, { dim: d, n: o.s?.[i], norm: o.norm }), z);
}

/** torch.fft.rfftn: rfft over the last of `dim`, then fft over the others. */
export function rfftn(x: Tensor, o: FftNOptions = {}): Tensor {
  const dims = dimsFor("fft.rfftn", x.ndim, o, true);
  const k = dims.length - 1;
  const y = rfft(x, { dim: dims[k], n: o.s?.[k], norm: o.norm });
  return dims.slice(0, k).reduce((t, d, i) => fft(t, { dim: d, n: o.s?.[i], norm: o.norm }), y);
}

/** torch.fft.irfftn: ifft over all but the last of `dim`, then irfft over the last. */
export function irfftn(z: Tensor, o: FftNOptions = {}): Tensor {
  checkComplex("fft.irfftn", z);
  const dims = dimsFor("fft.irfftn", z.ndim - 1, o, true);
  const k = dims.length - 1;
  const t = dims.slice(0, k).reduce((t, d, i) => ifft(t, { dim: d, n: o.s?.[i], norm: o.norm }), z);
  return irfft(t, { dim: dims[k], n: o.s?.[k], norm: o.norm });
}

const two = (o: FftNOptions): FftNOptions => ({ ...o, dim: o.dim ?? [-2, -1] });
/** torch.fft.fft2: fftn over the last two dims. */
export const fft2 = (z: Tensor, o: FftNOptions = {}): Tensor => fftn(z, two(o));
/** torch.fft.ifft2: ifftn over the last two dims. */
export const ifft2 = (z: Tensor, o: FftNOptions = {}): Tensor => ifftn(z, two(o));
/** torch.fft.rfft2: rfftn over the last two dims. */
export const rfft2 = (x: Tensor, o: FftNOptions = {}): Tensor => rfftn(x, two(o));
/** torch.fft.irfft2: irfftn over the last two dims. */
export const irfft2 = (z: Tensor, o: FftNOptions = {}): Tensor => irfftn(z, two(o));

// ------------------------------------------------------------------------------ helpers

/** torch.fft.fftfreq: sample frequencies [0, 1, ..., -1] / (d n) (float32, default backend). */
export function fftfreq(n: number, d = 1, like?: Tensor): Tensor {
  const v = Float32Array.from(
    { length: n },
    (_, i) => (i < Math.ceil(n / 2) ? i : i - n) / (d * n),
  );
  return like ? fromArrayOn(like, v, "float32") : fromArrayOn(getBackend(), v, "float32");
}

/** torch.fft.rfftfreq: [0, 1, ..., n/2] / (d n). */
export function rfftfreq(n: number, d = 1, like?: Tensor): Tensor {
  const v = Float32Array.from({ length: (n >> 1) + 1 }, (_, i) => i / (d * n));
  return like ? fromArrayOn(like, v, "float32") : fromArrayOn(getBackend(), v, "float32");
}

/** torch.fft.fftshift: rolls the zero frequency to the centre of `dim` (default all dims). */
export function fftshift(x: Tensor, dim?: number | number[]): Tensor {
  const dims = dim === undefined ? [...x.shape.keys()] : Array.isArray(dim) ? dim : [dim];
  return x.roll(dims.map((d) => x.shape[normDim("fft.fftshift", d, x.ndim)] >> 1), dims);
}

/** torch.fft.ifftshift: the inverse of fftshift. */
export function ifftshift(x: Tensor, dim?: number | number[]): Tensor {
  const dims = dim === undefined ? [...x.shape.keys()] : Array.isArray(dim) ? dim : [dim];
  return x.roll(dims.map((d) => -(x.shape[normDim("fft.ifftshift", d, x.ndim)] >> 1)), dims);
}

/** A complex tensor [..., 2] from real and (default zero) imaginary parts. */
export function complex(re: Tensor, im?: Tensor): Tensor {
  const r = re.float();
  return stack([r, im ? im.float() : r.zerosLike()], -1);
}
/** The real part of a complex tensor. */
export const real = (z: Tensor): Tensor => (checkComplex("fft.real", z), z.select(-1, 0));
/** The imaginary part of a complex tensor. */
export const imag = (z: Tensor): Tensor => (checkComplex("fft.imag", z), z.select(-1, 1));
/** |z| (gradient 0 at z = 0). */
export const abs = (z: Tensor): Tensor => (checkComplex("fft.abs", z), z.norm(2, -1));
/** The complex conjugate. */
export const conj = (
  z: Tensor,
): Tensor => (checkComplex("fft.conj", z), z.mul(fromArrayOn(z, [1, -1], "float32")));
/** The complex product a b (broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  checkComplex("fft.mul", a);
  checkComplex("fft.mul", b);
  const [ar, ai, br, bi] = [real(a), imag(a), real(b), imag(b)];
  return complex(ar.mul(br).sub(ai.mul(bi)), ar.mul(bi).add(ai.mul(br)));
}
