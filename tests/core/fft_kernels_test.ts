/**
 * core/fft kernels against torch.fft values (tests/fixtures/linalg_fft.json, made by
 * tests/fixtures/make_numeric_fixtures.py) plus round-trip and linearity properties.
 */
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { fft1d, fftBatch, irfft, rfft } from "../../core/fft/kernels.ts";

const fx: any = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/linalg_fft.json", import.meta.url)),
).fft;
const TOL = 1e-9;

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = TOL) {
  assertEquals(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert(
      d <= tol * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]}`,
    );
  }
}
const f64 = (x: number[]) => Float64Array.from(x);
function randn(len: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return Float64Array.from(
    { length: len },
    () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()),
  );
}

Deno.test("fft.fft / fft.ifft: match torch for power-of-two and other lengths (1..30)", () => {
  for (const c of fx.complex) {
    const f = fft1d(f64(c.re), f64(c.im));
    close(f.re, c.fft_re, `fft re n=${c.n}`);
    close(f.im, c.fft_im, `fft im n=${c.n}`);
    const i = fft1d(f64(c.re), f64(c.im), true);
    close(i.re, c.ifft_re, `ifft re n=${c.n}`);
    close(i.im, c.ifft_im, `ifft im n=${c.n}`);
  }
});

Deno.test("fft.fft: transforms in place and returns the same arrays", () => {
  const re = f64([1, 2, 3]), im = f64([0, 0, 0]);
  const out = fft1d(re, im);
  assert(out.re === re && out.im === im);
  close(re, [6, -1.5, -1.5], "re");
});

Deno.test("fft.rfft: matches torch for odd and even n", () => {
  for (const c of fx.rfft) {
    const { re, im } = rfft(c.x, c.n);
    close(re, c.re, `rfft re n=${c.n}`);
    close(im, c.im, `rfft im n=${c.n}`);
  }
});

Deno.test("fft.irfft: matches torch, ignoring DC/Nyquist imaginary parts, with cropping and padding", () => {
  for (const c of fx.irfft) {
    const y = irfft(c.re, c.im, c.in_len, c.n);
    close(y, c.y, `irfft in_len=${c.in_len} n=${c.n}`);
  }
  // The default output length is 2 (inLen - 1).
  const c = fx.irfft.find((e: { in_len: number; n: number }) => e.n === 2 * (e.in_len - 1));
  close(irfft(c.re, c.im, c.in_len), c.y, "default n");
});

Deno.test("fft: batched [batch, n] rows match torch along the last axis", () => {
  const b = fx.batched;
  const r = rfft(b.x.data, 12);
  close(r.re, b.rfft_re, "rfft re");
  close(r.im, b.rfft_im, "rfft im");
  const f = fftBatch(f64(b.z_re), f64(b.z_im), 6);
  close(f.re, b.fft_re, "fft re");
  close(f.im, b.fft_im, "fft im");
});

Deno.test("fft: ifft(fft(x)) = x and irfft(rfft(x), n) = x for many lengths", () => {
  for (let n = 1; n <= 70; n++) {
    const re = randn(n, n), im = randn(n, 1000 + n);
    const fr = Float64Array.from(re), fi = Float64Array.from(im);
    fft1d(fr, fi);
    fft1d(fr, fi, true);
    close(fr, re, `re n=${n}`, 1e-12);
    close(fi, im, `im n=${n}`, 1e-12);
    const h = rfft(re, n);
    close(irfft(h.re, h.im, (n >> 1) + 1, n), re, `irfft(rfft) n=${n}`, 1e-12);
  }
});

Deno.test("fft: matches a direct O(n^2) DFT for prime and composite lengths up to 257", () => {
  for (const n of [11, 45, 97, 100, 128, 257]) {
    const re = randn(n, 3 * n), im = randn(n, 5 * n);
    const f = fft1d(Float64Array.from(re), Float64Array.from(im));
    for (const k of [0, 1, n >> 1, n - 1]) {
      let sr = 0, si = 0;
      for (let j = 0; j < n; j++) {
        const a = (-2 * Math.PI * ((j * k) % n)) / n;
        sr += re[j] * Math.cos(a) - im[j] * Math.sin(a);
        si += re[j] * Math.sin(a) + im[j] * Math.cos(a);
      }
      close([f.re[k], f.im[k]], [sr, si], `DFT n=${n} k=${k}`, 1e-10 * n);
    }
  }
});

Deno.test("fft: norm 'ortho' preserves energy and 'forward' scales the forward transform", () => {
  const n = 12, re = randn(n, 1), im = new Float64Array(n);
  const o = fft1d(Float64Array.from(re), Float64Array.from(im), false, "ortho");
  const energy = (a: Float64Array, b: Float64Array) =>
    a.reduce((s, v, i) => s + v * v + b[i] * b[i], 0);
  close([energy(o.re, o.im)], [energy(re, im)], "Parseval");
  const fw = fft1d(Float64Array.from(re), Float64Array.from(im), false, "forward");
  const bw = fft1d(Float64Array.from(re), Float64Array.from(im));
  close(fw.re, bw.re.map((v) => v / n), "forward norm");
});

Deno.test("fft: invalid lengths and mismatched buffers throw errors naming the op", () => {
  assertThrows(
    () => fft1d(new Float64Array(0), new Float64Array(0)),
    /fft\.fft: invalid number of data points \(0\)/,
  );
  assertThrows(
    () => fftBatch(new Float64Array(6), new Float64Array(6), 4),
    /fft\.fft: re \(6\) and im \(6\)/,
  );
  assertThrows(() => fft1d(new Float64Array(2), new Float64Array(3), true), /fft\.ifft:/);
  assertThrows(() => rfft([1, 2, 3], 2), /fft\.rfft: input has 3 values/);
  assertThrows(() => irfft([1], [0], 1, 0), /fft\.irfft: invalid number of data points \(0\)/);
  assertThrows(() => irfft([1, 2, 3], [0, 0], 3), /fft\.irfft: re \(3\) and im \(2\)/);
  assertThrows(
    () => fft1d(new Float64Array(2), new Float64Array(2), false, "half" as any),
    /fft: norm must be/,
  );
});
