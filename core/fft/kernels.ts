/**
 * Complex FFT kernels on split Float64Array re/im arrays, with torch.fft semantics:
 * X[k] = sum_j x[j] exp(-2 pi i j k / n) forward, exp(+...) inverse, and the "backward"
 * normalisation by default (forward unscaled, inverse divided by n).
 *
 * - Powers of two: iterative radix-2 Cooley-Tukey (bit-reversal, then butterflies).
 * - Other lengths: Bluestein's chirp-z algorithm, which rewrites the DFT as a convolution
 *   (2 j k = j^2 + k^2 - (k - j)^2) computed with power-of-two FFTs of length >= 2n - 1.
 *
 * Batched functions take a stride-free [batch, n] layout (rows are contiguous). Twiddle tables
 * and Bluestein chirps are cached per length. No dependency on the Tensor class.
 */

/** torch.fft's `norm`: which direction is scaled (by 1/n), or 1/sqrt(n) both ways. */
export type FftNorm = "backward" | "forward" | "ortho";

function scaleFor(n: number, inverse: boolean, norm: FftNorm): number {
  if (norm === "ortho") return 1 / Math.sqrt(n);
  if (norm === "backward") return inverse ? 1 / n : 1;
  if (norm === "forward") return inverse ? 1 : 1 / n;
  throw new Error(`fft: norm must be "backward", "forward" or "ortho", got ${String(norm)}`);
}

function checkLength(op: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${op}: invalid number of data points (${n}); the length must be >= 1`);
  }
}

// ---------------------------------------------------------------------------------------------
// Radix-2

interface Radix2Plan {
  /** cos/sin of -2 pi k / n for k < n/2 (forward twiddles). */
  cos: Float64Array;
  sin: Float64Array;
  /** Bit-reversed index of each position. */
  rev: Uint32Array;
}

const radix2Plans = new Map<number, Radix2Plan>();

function radix2Plan(n: number): Radix2Plan {
  let plan = radix2Plans.get(n);
  if (plan) return plan;
  const half = n >> 1;
  const cos = new Float64Array(half), sin = new Float64Array(half);
  for (let k = 0; k < half; k++) {
    // Each twiddle computed directly (not by recurrence) to keep errors at one ulp.
    cos[k] = Math.cos((2 * Math.PI * k) / n);
    sin[k] = -Math.sin((2 * Math.PI * k) / n);
  }
  const bits = Math.log2(n);
  const rev = new Uint32Array(n);
  for (let i = 1; i < n; i++) rev[i] = (rev[i >> 1] >> 1) | ((i & 1) << (bits - 1));
  plan = { cos, sin, rev };
  radix2Plans.set(n, plan);
  return plan;
}

/** Unnormalised in-place radix-2 FFT of re/im[off .. off+n), n a power of two. */
function radix2(re: Float64Array, im: Float64Array, off: number, n: number, inverse: boolean) {
  if (n === 1) return;
  const { cos, sin, rev } = radix2Plan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (j > i) {
      let t = re[off + i];
      re[off + i] = re[off + j];
      re[off + j] = t;
      t = im[off + i];
      im[off + i] = im[off + j];
      im[off + j] = t;
    }
  }
  const sgn = inverse ? -1 : 1; // inverse uses the conjugate twiddles
  for (let len = 2; len <= n; len <<= 1) {
    const halfLen = len >> 1, step = n / len;
    for (let start = off; start < off + n; start += len) {
      for (let k = 0; k < halfLen; k++) {
        const wr = cos[k * step], wi = sgn * sin[k * step];
        const a = start + k, b = a + halfLen;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Bluestein (chirp-z) for lengths that are not powers of two

interface BluesteinPlan {
  /** Power-of-two convolution length m >= 2n - 1. */
  m: number;
  /** Chirp w_j = exp(-i pi j^2 / n), j < n. */
  wRe: Float64Array;
  wIm: Float64Array;
  /** FFT (length m) of the kernel b_j = conj(w_|j|) wrapped around circularly. */
  bRe: Float64Array;
  bIm: Float64Array;
  /** Scratch for the padded sequence a (reused across calls; kernels are synchronous). */
  aRe: Float64Array;
  aIm: Float64Array;
}

const bluesteinPlans = new Map<number, BluesteinPlan>();

function bluesteinPlan(n: number): BluesteinPlan {
  let plan = bluesteinPlans.get(n);
  if (plan) return plan;
  let m = 1;
  while (m < 2 * n - 1) m <<= 1;
  const wRe = new Float64Array(n), wIm = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    // j^2 mod 2n keeps the angle small (and exact for j < 2^26), so cos/sin stay accurate.
    const angle = (Math.PI * ((j * j) % (2 * n))) / n;
    wRe[j] = Math.cos(angle);
    wIm[j] = -Math.sin(angle);
  }
  const bRe = new Float64Array(m), bIm = new Float64Array(m);
  bRe[0] = wRe[0];
  bIm[0] = -wIm[0];
  for (let j = 1; j < n; j++) {
    bRe[j] = bRe[m - j] = wRe[j];
    bIm[j] = bIm[m - j] = -wIm[j];
  }
  radix2(bRe, bIm, 0, m, false);
  plan = { m, wRe, wIm, bRe, bIm, aRe: new Float64Array(m), aIm: new Float64Array(m) };
  bluesteinPlans.set(n, plan);
  return plan;
}

/** Unnormalised forward DFT of re/im[off .. off+n) in place, any n, via Bluestein. */
function bluestein(re: Float64Array, im: Float64Array, off: number, n: number) {
  const { m, wRe, wIm, bRe, bIm, aRe, aIm } = bluesteinPlan(n);
  // a_j = x_j w_j, zero-padded to m.
  aRe.fill(0, n);
  aIm.fill(0, n);
  for (let j = 0; j < n; j++) {
    const xr = re[off + j], xi = im[off + j];
    aRe[j] = xr * wRe[j] - xi * wIm[j];
    aIm[j] = xr * wIm[j] + xi * wRe[j];
  }
  // Circular convolution a * b = IFFT(FFT(a) FFT(b)).
  radix2(aRe, aIm, 0, m, false);
  for (let k = 0; k < m; k++) {
    const r = aRe[k] * bRe[k] - aIm[k] * bIm[k];
    aIm[k] = aRe[k] * bIm[k] + aIm[k] * bRe[k];
    aRe[k] = r;
  }
  radix2(aRe, aIm, 0, m, true);
  // X_k = w_k (a * b)_k / m (the 1/m completes the inner inverse FFT).
  for (let k = 0; k < n; k++) {
    const cr = aRe[k] / m, ci = aIm[k] / m;
    re[off + k] = cr * wRe[k] - ci * wIm[k];
    im[off + k] = cr * wIm[k] + ci * wRe[k];
  }
}

// ---------------------------------------------------------------------------------------------
// Public kernels

/** Unnormalised transform of one length-n row at `off`, either direction, any n >= 1. */
function transformRow(re: Float64Array, im: Float64Array, off: number, n: number, inv: boolean) {
  if ((n & (n - 1)) === 0) return radix2(re, im, off, n, inv);
  // Inverse through the forward transform: IDFT(x) = conj(DFT(conj(x))).
  if (inv) { for (let j = 0; j < n; j++) im[off + j] = -im[off + j]; }
  bluestein(re, im, off, n);
  if (inv) { for (let j = 0; j < n; j++) im[off + j] = -im[off + j]; }
}

/**
 * torch.fft.fft / torch.fft.ifft of one complex vector of length n = re.length, IN PLACE
 * (re and im are overwritten with the result, and also returned for convenience).
 */
export function fft1d(
  re: Float64Array,
  im: Float64Array,
  inverse = false,
  norm: FftNorm = "backward",
): { re: Float64Array; im: Float64Array } {
  return fftBatch(re, im, re.length, inverse, norm);
}

/**
 * Batched complex FFT along the last axis, IN PLACE: re/im hold [batch, n] row-major, every
 * row is transformed. Throws "fft: ..." when the lengths disagree or n < 1.
 */
export function fftBatch(
  re: Float64Array,
  im: Float64Array,
  n: number,
  inverse = false,
  norm: FftNorm = "backward",
): { re: Float64Array; im: Float64Array } {
  const op = inverse ? "fft.ifft" : "fft.fft";
  checkLength(op, n);
  if (re.length !== im.length || re.length % n !== 0) {
    throw new Error(
      `${op}: re (${re.length}) and im (${im.length}) must both hold [batch, ${n}] values`,
    );
  }
  const scale = scaleFor(n, inverse, norm);
  for (let off = 0; off < re.length; off += n) {
    transformRow(re, im, off, n, inverse);
    if (scale !== 1) {
      for (let j = off; j < off + n; j++) {
        re[j] *= scale;
        im[j] *= scale;
      }
    }
  }
  return { re, im };
}

/**
 * torch.fft.rfft along the last axis: x holds [batch, n] real values; returns the
 * non-redundant half of the spectrum, [batch, floor(n/2) + 1] complex as new re/im arrays.
 */
export function rfft(
  x: ArrayLike<number>,
  n: number,
  norm: FftNorm = "backward",
): { re: Float64Array; im: Float64Array } {
  checkLength("fft.rfft", n);
  if (x.length % n !== 0) {
    throw new Error(`fft.rfft: input has ${x.length} values, not a multiple of n = ${n}`);
  }
  const batch = x.length / n, half = (n >> 1) + 1;
  const rowRe = new Float64Array(n), rowIm = new Float64Array(n);
  const re = new Float64Array(batch * half), im = new Float64Array(batch * half);
  const scale = scaleFor(n, false, norm);
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < n; j++) rowRe[j] = x[b * n + j];
    rowIm.fill(0);
    transformRow(rowRe, rowIm, 0, n, false);
    for (let k = 0; k < half; k++) {
      re[b * half + k] = rowRe[k] * scale;
      im[b * half + k] = rowIm[k] * scale;
    }
  }
  return { re, im };
}

/**
 * torch.fft.irfft along the last axis: re/im hold [batch, inLen] half-spectra; returns
 * [batch, n] real values. The default output length is n = 2 (inLen - 1). As in torch, the
 * input is cropped or zero-padded to floor(n/2) + 1 bins, the spectrum is completed by
 * Hermitian symmetry X[n-k] = conj(X[k]), and the imaginary parts of the DC bin and (for even
 * n) the Nyquist bin are ignored.
 */
export function irfft(
  re: ArrayLike<number>,
  im: ArrayLike<number>,
  inLen: number,
  n = 2 * (inLen - 1),
  norm: FftNorm = "backward",
): Float64Array {
  checkLength("fft.irfft", inLen);
  checkLength("fft.irfft", n);
  if (re.length !== im.length || re.length % inLen !== 0) {
    throw new Error(
      `fft.irfft: re (${re.length}) and im (${im.length}) must both hold [batch, ${inLen}] values`,
    );
  }
  const batch = re.length / inLen, half = (n >> 1) + 1;
  const use = Math.min(half, inLen); // bins read from the input; the rest are zero
  const rowRe = new Float64Array(n), rowIm = new Float64Array(n);
  const out = new Float64Array(batch * n);
  const scale = scaleFor(n, true, norm);
  for (let b = 0; b < batch; b++) {
    rowRe.fill(0);
    rowIm.fill(0);
    for (let k = 0; k < use; k++) {
      rowRe[k] = re[b * inLen + k];
      rowIm[k] = im[b * inLen + k];
    }
    rowIm[0] = 0; // DC is real
    if (n % 2 === 0) rowIm[n >> 1] = 0; // so is the Nyquist bin
    for (let k = half; k < n; k++) { // Hermitian completion
      rowRe[k] = rowRe[n - k];
      rowIm[k] = -rowIm[n - k];
    }
    transformRow(rowRe, rowIm, 0, n, true);
    for (let j = 0; j < n; j++) out[b * n + j] = rowRe[j] * scale;
  }
  return out;
}
