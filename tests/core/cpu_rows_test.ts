/**
 * The CPU backend's Wasm SIMD row kernels (core/backends/cpu/wasm/rows.ts, run through
 * wasm/elementwise.ts) against float64
 * references: exp and sigmoid over float32's whole range and its special values, softmax,
 * logSoftmax and layerNorm on row lengths that leave 0-3 values for the scalar tail; then the
 * fused ops through the Tensor API (ops/fused.ts) on the current backend (the WebGPU kernels
 * under PAPERLAB_BACKEND=webgpu) against their compositions of primitives, values and
 * gradients, double backward included.
 */
import { ok as assert } from "node:assert/strict";
import { getBackend } from "../../core/backend.ts";
import {
  wasmElementwiseAvailable,
  wasmLayerNorm,
  wasmSoftmax,
  wasmUnary,
} from "../../core/backends/cpu/wasm/elementwise.ts";
import { heapArray } from "../../core/backends/cpu/wasm/memory.ts";
import { withoutFusedKernels } from "../../core/ops/fused.ts";
import { lcgRand } from "./_helpers.ts";
import { F, grad, scope, type Tensor, tensor } from "../../mod.ts";

const rand = lcgRand(777);

/** exp or sigmoid of x by the Wasm kernel (on heap copies, as the backend's tensors). */
function expLike(op: "exp" | "sigmoid", x: Float32Array): Float32Array {
  const a = heapArray("float32", x.length)!, y = heapArray("float32", x.length)!;
  a.set(x);
  assert(wasmUnary(op, a, y, x.length));
  return y;
}

/** Whether the current backend (PAPERLAB_BACKEND) has the fused kernels. */
const fusedHere = !!getBackend().softmax && !!getBackend().layerNorm;

Deno.test({
  name: "cpu rows: exp within 2 ulp of Math.exp from -87.3 to 88.72; 0 below, Infinity above",
  ignore: !wasmElementwiseAvailable(),
  fn() {
    const x = new Float32Array([
      ...rand(20001, -87.3, 88.72),
      0,
      -0,
      1,
      88.72,
      -87.33,
      NaN,
      Infinity,
      -Infinity,
      88.73,
      -87.34,
      -200,
    ]);
    const y = expLike("exp", x);
    for (let i = 0; i < x.length; i++) {
      const v = x[i], e = Math.fround(Math.exp(v));
      if (Number.isNaN(v)) assert(Number.isNaN(y[i]), "exp(NaN) is NaN");
      else if (v > 88.72283935546875) assert(y[i] === Infinity, `exp(${v}) = ${y[i]}`);
      else if (v < -87.33654) assert(y[i] === 0, `exp(${v}) = ${y[i]}, expected 0 (flushed)`);
      else assert(Math.abs(y[i] - e) <= 2.4e-7 * e, `exp(${v}) = ${y[i]}, Math.exp ${e}`);
    }
  },
});

Deno.test({
  name: "cpu rows: sigmoid matches 1 / (1 + e^-x), saturating to exactly 0 and 1",
  ignore: !wasmElementwiseAvailable(),
  fn() {
    const x = new Float32Array([...rand(4099, -30, 30), -200, 200, -Infinity, Infinity, NaN]);
    const y = expLike("sigmoid", x);
    for (let i = 0; i < x.length; i++) {
      const want = 1 / (1 + Math.exp(-x[i]));
      if (Number.isNaN(x[i])) assert(Number.isNaN(y[i]));
      else assert(Math.abs(y[i] - want) <= 3e-7 * want + 1e-38, `sigmoid(${x[i]}) = ${y[i]}`);
    }
    assert(y[4099] === 0 && y[4100] === 1 && y[4101] === 0 && y[4102] === 1);
  },
});

/** Softmax / logSoftmax of one row in float64. */
function refSoftmax(row: number[], log: boolean): number[] {
  const m = Math.max(...row);
  const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
  return row.map((v) => log ? v - m - Math.log(s) : Math.exp(v - m) / s);
}

Deno.test({
  name: "cpu rows: softmax and logSoftmax on every tail length, rows of several blocks",
  ignore: !wasmElementwiseAvailable(),
  fn() {
    for (const [rows, cols] of [[3, 1], [2, 3], [5, 4], [7, 5], [4, 1023], [300, 1025]]) {
      const x = rand(rows * cols, -20, 20);
      for (const log of [false, true]) {
        const y = new Float32Array(rows * cols);
        assert(wasmSoftmax(x, y, rows, cols, log));
        for (let r = 0; r < rows; r++) {
          const want = refSoftmax([...x.subarray(r * cols, (r + 1) * cols)], log);
          want.forEach((w, j) => {
            const got = y[r * cols + j];
            const tol = log ? 2e-6 * Math.max(1, Math.abs(w)) : 1e-6 * w + 1e-12;
            assert(Math.abs(got - w) <= tol, `[${rows},${cols}] log=${log} r${r} c${j}`);
          });
        }
      }
    }
  },
});

Deno.test({
  name: "cpu rows: softmax special rows: NaN, all -Infinity, +Infinity, -Infinity entries",
  ignore: !wasmElementwiseAvailable(),
  fn() {
    const cols = 6, I = Infinity;
    // PyTorch 2.13 gives whole NaN rows for the first three, for softmax and log_softmax.
    const x = new Float32Array([
      ...[1, 2, NaN, 3, 4, 5],
      ...[-I, -I, -I, -I, -I, -I],
      ...[I, 1, 2, 3, 4, 5],
      ...[-I, 0, -I, 0, -I, -I],
    ]);
    const y = new Float32Array(x.length), l = new Float32Array(x.length);
    wasmSoftmax(x, y, 4, cols, false);
    wasmSoftmax(x, l, 4, cols, true);
    const row = (a: Float32Array, r: number) => [...a.subarray(r * cols, (r + 1) * cols)];
    assert(row(y, 0).every(Number.isNaN) && row(l, 0).every(Number.isNaN), "a NaN row");
    assert(row(y, 1).every(Number.isNaN) && row(l, 1).every(Number.isNaN), "all -inf");
    assert(row(y, 2).every(Number.isNaN), "softmax with +inf is NaN (as PyTorch)");
    assert(row(l, 2).every(Number.isNaN), "logSoftmax with +inf is NaN (as PyTorch)");
    assert(row(y, 3).join() === "0,0.5,0,0.5,0,0", `masked row ${row(y, 3)}`);
    assert(Math.abs(l[3 * cols + 1] + Math.LN2) < 1e-7 && l[3 * cols] === -I);
  },
});

Deno.test({
  name: "cpu rows: layerNorm with and without weight and bias, tails, row statistics",
  ignore: !wasmElementwiseAvailable(),
  fn() {
    for (const [rows, cols] of [[3, 1], [4, 3], [6, 8], [5, 257]]) {
      const x = rand(rows * cols, -3, 5), w = rand(cols), b = rand(cols);
      for (const affine of [false, true]) {
        const y = new Float32Array(rows * cols), st = new Float32Array(2 * rows);
        assert(wasmLayerNorm(x, y, rows, cols, 1e-5, affine ? w : null, affine ? b : null, st));
        for (let r = 0; r < rows; r++) {
          const v = [...x.subarray(r * cols, (r + 1) * cols)];
          const mean = v.reduce((a, t) => a + t, 0) / cols;
          const rstd = 1 / Math.sqrt(v.reduce((a, t) => a + (t - mean) ** 2, 0) / cols + 1e-5);
          assert(Math.abs(st[2 * r] - mean) < 1e-5 && Math.abs(st[2 * r + 1] - rstd) < 1e-3 * rstd);
          v.forEach((t, j) => {
            const want = (t - mean) * rstd * (affine ? w[j] : 1) + (affine ? b[j] : 0);
            assert(Math.abs(y[r * cols + j] - want) < 2e-5 * Math.max(1, rstd), `${rows}x${cols}`);
          });
        }
      }
    }
  },
});

async function close(a: Tensor, b: Tensor, tol: number, what: string) {
  const [x, y] = [await a.data(), await b.data()];
  assert(x.length === y.length, what);
  for (let i = 0; i < x.length; i++) {
    assert(
      Math.abs(x[i] - y[i]) <= tol * Math.max(1, Math.abs(y[i])) ||
        (Number.isNaN(x[i]) && Number.isNaN(y[i])) || x[i] === y[i],
      `${what}[${i}]: ${x[i]} vs ${y[i]}`,
    );
  }
}

Deno.test({
  name: "fused softmax / logSoftmax / layerNorm equal their compositions, gradients included",
  ignore: !fusedHere,
  async fn() {
    const x0 = tensor(rand(2 * 3 * 7, -4, 4), { shape: [2, 3, 7] });
    const w0 = tensor(rand(21), { shape: [3, 7] }), b0 = tensor(rand(21), { shape: [3, 7] });
    const c = tensor(rand(42), { shape: [2, 3, 7] }); // cotangent
    const loss = ([x, w, b]: Tensor[]) =>
      F.softmax(x, -1).mul(c).sum()
        .add(F.logSoftmax(x, -1).mul(c).square().sum())
        .add(F.layerNorm(x, [3, 7], { weight: w, bias: b }).mul(c).sum())
        .add(F.layerNorm(x, [7]).mul(c).square().sum());
    const fused = scope(() => grad(loss)([x0, w0, b0]));
    const comp = withoutFusedKernels(() => scope(() => grad(loss)([x0, w0, b0])));
    for (let i = 0; i < 3; i++) await close(fused[i], comp[i], 2e-5, `grad ${"xwb"[i]}`);
    // Double backward: the gradient of sum(grad_x(loss) * v) with respect to x and w.
    const v = tensor(rand(42), { shape: [2, 3, 7] });
    const hvp = () =>
      scope(() =>
        grad(([x, w]: Tensor[]) => grad(loss, { createGraph: true })([x, w, b0])[0].mul(v).sum())([
          x0,
          w0,
        ])
      );
    const [h1, h2] = [hvp(), withoutFusedKernels(hvp)];
    await close(h1[0], h2[0], 1e-4, "H v (x)");
    await close(h1[1], h2[1], 1e-4, "H v (w)");
  },
});

/**
 * Fused softmax, logSoftmax and layerNorm of a [rows, cols] tensor against their compositions,
 * with an all -Infinity row, a NaN in one row and an Infinity in another (rows 3, 5 and 7,
 * modulo rows).
 */
async function fusedRowsMatch(rows: number, cols: number) {
  const d = rand(rows * cols, -6, 6);
  const [r3, r5, r7] = [3, 5, 7].map((r) => r % rows);
  d.fill(-Infinity, r3 * cols, (r3 + 1) * cols);
  d[r5 * cols + 2] = NaN;
  d[r7 * cols] = Infinity;
  const x = tensor(d, { shape: [rows, cols] });
  const w = tensor(rand(cols)), b = tensor(rand(cols));
  const ops = (x: Tensor) => [
    F.softmax(x, -1),
    F.logSoftmax(x, -1),
    F.layerNorm(x, [cols], { weight: w, bias: b }),
  ];
  const fused = scope(() => ops(x)), comp = withoutFusedKernels(() => scope(() => ops(x)));
  for (let i = 0; i < 3; i++) await close(fused[i], comp[i], 2e-5, `[${rows}, ${cols}], op ${i}`);
}

Deno.test({
  name: "fused softmax / logSoftmax / layerNorm over many short rows (a thread per row on webgpu)",
  ignore: !fusedHere,
  async fn() {
    for (const cols of [9, 128]) await fusedRowsMatch(1100, cols);
  },
});

Deno.test({
  name: "fused softmax / logSoftmax / layerNorm: rows sharing a workgroup, partial last workgroups",
  ignore: !fusedHere,
  async fn() {
    // On webgpu: 32 threads a row and 8 rows a workgroup up to 1,024 values (the last
    // workgroup partly empty), 256 threads and one row past that; special rows share their
    // workgroup with ordinary ones.
    for (const [rows, cols] of [[7, 129], [9, 256], [5, 257], [3, 1000], [10, 1024], [3, 1025]]) {
      await fusedRowsMatch(rows, cols);
    }
  },
});
