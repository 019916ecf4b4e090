/**
 * Generated packing routines: they copy a slice of a strided matrix into the panel layout the
 * micro-kernel reads (see kernel.ts), in Wasm so packing stays a small fraction of the time
 * even for 64 x 64 matrices (a JS loop costs ~3-5 ns per float here; this ~0.3).
 *
 * pack(src, rs, cs, rows, cols, dst) writes dst[t][p][r] = M(t*R + r, p) for each R-tall
 * panel t, where M(i, p) is the float at src + i*rs + p*cs (byte strides), and zero for rows
 * past `rows`. For A, rows are i and cols are the K slice; for B, rows are j. One of the two
 * strides is 4 bytes in every matmul, which gives the two fast paths:
 * - rs = 4 (a panel's R floats are contiguous: A transposed, B not): copy R floats per step;
 * - cs = 4 (the K direction is contiguous: A not transposed, B transposed): read 4 steps of
 *   each row as one vector and transpose 4 x 4 blocks with shuffles.
 * Anything else (and the last, partial panel) takes a scalar loop.
 */
import { Fn, I32, V128 } from "./emit.ts";

/** Float lane indices -> the byte indices i8x16.shuffle wants. */
const lanes = (ls: number[]) => ls.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
const LO = lanes([0, 4, 1, 5]), HI = lanes([2, 6, 3, 7]); // interleave two rows
const LO2 = lanes([0, 1, 4, 5]), HI2 = lanes([2, 3, 6, 7]); // pairs of pairs

export function packFunction(R: number): Fn {
  const f = new Fn([I32, I32, I32, I32, I32, I32]);
  const [SRC, RS, CS, ROWS, COLS, DST] = [0, 1, 2, 3, 4, 5];
  const left = f.local(I32), r1 = f.local(I32), p = f.local(I32), end = f.local(I32);
  const d = f.local(I32);
  const rp = Array.from({ length: R }, () => f.local(I32)); // row pointers of the panel
  const v = Array.from({ length: 4 }, () => f.local(V128));
  const t = Array.from({ length: 4 }, () => f.local(V128));
  const step = R * 4; // bytes per packed k step

  /** Steps p..cols one float per row: rows past r1 get zeros. */
  const scalarSteps = () =>
    f.whileLt(p, COLS, () => {
      for (let i = 0; i < R; i++) {
        f.i32(i).get(r1).ltU().if_();
        f.get(d).get(rp[i]).f32Load().f32Store(4 * i);
        f.get(rp[i]).get(CS).add().set(rp[i]);
        f.else_().get(d).f32Zero().f32Store(4 * i).end();
      }
      f.inc(d, step).inc(p, 1);
    });

  /** Copy path (rs = 4): R contiguous floats per step, as vectors (and a pair). */
  const copySteps = () =>
    f.whileLt(p, COLS, () => {
      for (let q = 0; q + 4 <= R; q += 4) f.get(d).get(rp[0]).v128Load(4 * q).v128Store(4 * q);
      if (R % 4 === 2) f.get(d).get(rp[0]).i64Load(4 * (R - 2)).i64Store(4 * (R - 2));
      f.get(rp[0]).get(CS).add().set(rp[0]).inc(d, step).inc(p, 1);
    });

  /** Transpose path (cs = 4): 4 steps at a time, rows in groups of 4 (and a pair). */
  const transposeSteps = () => {
    f.get(COLS).i32(~3).and().set(end);
    f.whileLt(p, end, () => {
      for (let g = 0; g + 4 <= R; g += 4) {
        for (let i = 0; i < 4; i++) f.get(rp[g + i]).v128Load().set(v[i]);
        f.get(v[0]).get(v[1]).shuffle(LO).set(t[0]).get(v[0]).get(v[1]).shuffle(HI).set(t[1]);
        f.get(v[2]).get(v[3]).shuffle(LO).set(t[2]).get(v[2]).get(v[3]).shuffle(HI).set(t[3]);
        // Step j of the 4 gets lanes j of rows g..g+3.
        const col = [[0, 2, LO2], [0, 2, HI2], [1, 3, LO2], [1, 3, HI2]] as const;
        col.forEach(([x, y, sh], j) => {
          f.get(d).get(t[x]).get(t[y]).shuffle([...sh]).v128Store(j * step + 4 * g);
        });
      }
      if (R % 4 === 2) {
        const g = R - 2;
        f.get(rp[g]).v128Load().set(v[0]).get(rp[g + 1]).v128Load().set(v[1]);
        f.get(v[0]).get(v[1]).shuffle(LO).set(t[0]).get(v[0]).get(v[1]).shuffle(HI).set(t[1]);
        for (let j = 0; j < 4; j++) f.get(d).get(t[j >> 1]).store64Lane(j & 1, j * step + 4 * g);
      }
      for (let i = 0; i < R; i++) f.inc(rp[i], 16);
      f.inc(d, 4 * step).inc(p, 4);
    });
  };

  // for each panel: r1 = min(R, rows left)
  f.get(ROWS).set(left).get(DST).set(d);
  f.block().loop().get(left).eqz().brIf(1);
  f.get(left).i32(R).get(left).i32(R).ltU().select().set(r1);
  for (let i = 0; i < R; i++) f.get(SRC).get(RS).i32(i).mul().add().set(rp[i]);
  f.i32(0).set(p);
  f.get(r1).i32(R).eq().if_();
  {
    f.get(RS).i32(4).eq().if_();
    copySteps();
    f.else_().get(CS).i32(4).eq().if_();
    transposeSteps();
    f.end();
    scalarSteps();
    f.end();
  }
  f.else_();
  scalarSteps();
  f.end();
  f.get(SRC).get(RS).i32(R).mul().add().set(SRC);
  f.get(left).get(r1).sub().set(left).br(0).end().end();
  return f;
}
