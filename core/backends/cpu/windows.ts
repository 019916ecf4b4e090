/**
 * im2col and col2im (Backend.im2col, Backend.col2im) on the CPU: loops over kernel taps and
 * window rows, each window row a run of `ow` values read (or summed) at a fixed input row.
 * For each tap the windows whose input column falls outside the plane are worked out once
 * (a range of z), so the inner loops have no bounds checks; with stride 1 a run is a
 * contiguous slice, copied whole where it is long.
 */
import type { Windows } from "../../backend.ts";

/**
 * For each kernel column j, the windows z in [lo, hi) whose input column z sw + j dw - pl
 * lies inside [0, w), as [lo0, hi0, lo1, hi1, ...] (lo = hi where none does).
 */
export function tapRanges(w: number, win: Windows): Int32Array {
  const kw = win.kernel[1], sw = win.stride[1], dw = win.dilation[1], pl = win.pads[2];
  const ow = win.out[1], r = new Int32Array(2 * kw);
  for (let j = 0; j < kw; j++) {
    const offset = j * dw - pl;
    const lo = Math.min(ow, offset >= 0 ? 0 : Math.ceil(-offset / sw));
    const hi = Math.max(lo, Math.min(ow, Math.floor((w - 1 - offset) / sw) + 1));
    r[2 * j] = lo;
    r[2 * j + 1] = hi;
  }
  return r;
}

/** Runs at least this long are copied with TypedArray.set (a call costs ~30 loop steps). */
const SET_MIN = 48;

/** out [rows, K, L] = the taps of x [rows, h, w] (see Backend.im2col). */
export function im2colKernel(
  x: Float32Array,
  out: Float32Array,
  rows: number,
  h: number,
  w: number,
  win: Windows,
  padValue: number,
): void {
  const [kh, kw] = win.kernel, [sh, sw] = win.stride, [dh, dw] = win.dilation;
  const [pt, , pl] = win.pads, [oh, ow] = win.out;
  const plane = h * w, ranges = tapRanges(w, win);
  // Row by row: each row's plane stays in L1 while its K L taps are written in order.
  for (let r = 0, o = 0; r < rows; r++) {
    const xb = r * plane;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const offset = j * dw - pl, lo = ranges[2 * j], hi = ranges[2 * j + 1];
        for (let y = 0; y < oh; y++, o += ow) {
          const iy = y * sh + i * dh - pt;
          if (iy < 0 || iy >= h || lo >= hi) {
            for (let z = 0; z < ow; z++) out[o + z] = padValue;
            continue;
          }
          for (let z = 0; z < lo; z++) out[o + z] = padValue;
          const src = xb + iy * w + offset;
          if (sw === 1) {
            if (hi - lo >= SET_MIN) out.set(x.subarray(src + lo, src + hi), o + lo);
            else for (let z = lo; z < hi; z++) out[o + z] = x[src + z];
          } else {
            for (let z = lo; z < hi; z++) out[o + z] = x[src + z * sw];
          }
          for (let z = hi; z < ow; z++) out[o + z] = padValue;
        }
      }
    }
  }
}

/** out [rows, h, w] = the sum of cols [rows, K, L] at their taps (see Backend.col2im). */
export function col2imKernel(
  cols: Float32Array,
  out: Float32Array,
  rows: number,
  h: number,
  w: number,
  win: Windows,
): void {
  const [kh, kw] = win.kernel, [sh, sw] = win.stride, [dh, dw] = win.dilation;
  const [pt, , pl] = win.pads, [oh, ow] = win.out;
  const plane = h * w, ranges = tapRanges(w, win);
  out.fill(0, 0, rows * plane);
  for (let r = 0, c = 0; r < rows; r++) {
    const xb = r * plane;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const offset = j * dw - pl, lo = ranges[2 * j], hi = ranges[2 * j + 1];
        for (let y = 0; y < oh; y++, c += ow) {
          const iy = y * sh + i * dh - pt;
          if (iy < 0 || iy >= h || lo >= hi) continue;
          const dst = xb + iy * w + offset;
          if (sw === 1) { for (let z = lo; z < hi; z++) out[dst + z] += cols[c + z]; }
          else for (let z = lo; z < hi; z++) out[dst + z * sw] += cols[c + z];
        }
      }
    }
  }
}
