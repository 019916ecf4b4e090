/**
 * core/linalg kernels against torch.linalg values (tests/fixtures/linalg_fft.json, made by
 * tests/fixtures/make_numeric_fixtures.py) plus algebraic properties on random matrices.
 */
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import {
  cholesky,
  det,
  eigh,
  inv,
  lstsq,
  luFactor,
  qr,
  slogdet,
  solve,
  svd,
} from "../../core/linalg/dense.ts";

type Mat = { shape: number[]; data: number[] };
const fx: any = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/linalg_fft.json", import.meta.url)),
).linalg;
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

/** Compares column j of two m x c matrices up to a sign per column. */
function closeUpToColumnSign(
  a: ArrayLike<number>,
  e: ArrayLike<number>,
  m: number,
  c: number,
  what: string,
) {
  for (let j = 0; j < c; j++) {
    let dot = 0;
    for (let i = 0; i < m; i++) dot += a[i * c + j] * e[i * c + j];
    const s = dot < 0 ? -1 : 1;
    for (let i = 0; i < m; i++) {
      assert(
        Math.abs(s * a[i * c + j] - e[i * c + j]) <= TOL,
        `${what}: column ${j} differs beyond sign`,
      );
    }
  }
}

function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      for (let j = 0; j < n; j++) out[i * n + j] += a[i * k + p] * b[p * n + j];
    }
  }
  return out;
}
const tr = (a: ArrayLike<number>, m: number, n: number) => {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = a[i * n + j];
  return out;
};
const eye = (n: number) => {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
};
/** Deterministic standard-normal-ish matrices (LCG + Box-Muller). */
function randn(len: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return Float64Array.from(
    { length: len },
    () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()),
  );
}

// ---------------------------------------------------------------------------- fixtures

Deno.test("linalg.cholesky: matches torch on SPD matrices", () => {
  for (const c of fx.cholesky) close(cholesky(c.a.data, c.a.shape[0]), c.l.data, "L");
});

Deno.test("linalg.qr: Q and R match torch exactly, including negative R diagonals", () => {
  for (const c of fx.qr) {
    const [m, n] = c.a.shape;
    const { q, r, qCols } = qr(c.a.data, m, n, c.mode);
    assertEquals([m, qCols], c.q.shape);
    close(q, c.q.data, `Q ${m}x${n} ${c.mode}`);
    close(r, c.r.data, `R ${m}x${n} ${c.mode}`);
  }
});

Deno.test("linalg.eigh: eigenvalues match torch and eigenvectors match up to sign", () => {
  for (const c of fx.eigh) {
    const n = c.a.shape[0];
    const { values, vectors } = eigh(c.a.data, n);
    close(values, c.values, "eigenvalues");
    closeUpToColumnSign(vectors, c.vectors.data, n, n, "eigenvectors");
  }
});

Deno.test("linalg.svd: S matches torch; U and Vh match up to sign; shapes follow fullMatrices", () => {
  for (const c of fx.svd) {
    const [m, n] = c.a.shape;
    const { u, s, vh } = svd(c.a.data, m, n, c.full);
    close(s, c.s, "S");
    assertEquals(u.length, c.u.data.length);
    assertEquals(vh.length, c.vh.data.length);
    const k = Math.min(m, n);
    // Vectors paired with singular values are unique up to sign (the fixture's are distinct);
    // the completion columns of full U / Vh are only unique as a subspace.
    const uc = c.u.shape[1];
    const pick = (x: ArrayLike<number>, rows: number, cols: number) =>
      Float64Array.from({ length: rows * k }, (_, i) => x[Math.floor(i / k) * cols + (i % k)]);
    closeUpToColumnSign(pick(u, m, uc), pick(c.u.data, m, uc), m, k, "U");
    const v = tr(vh, c.vh.shape[0], n), ve = tr(c.vh.data, c.vh.shape[0], n);
    closeUpToColumnSign(pick(v, n, c.vh.shape[0]), pick(ve, n, c.vh.shape[0]), n, k, "V");
  }
});

Deno.test("linalg.solve / inv / det / slogdet: match torch", () => {
  for (const c of fx.solve) {
    close(solve(c.a.data, c.b.data, c.a.shape[0], c.b.shape[1]), c.x.data, "X");
  }
  for (const c of fx.inv) close(inv(c.a.data, c.a.shape[0]), c.inv.data, "inv");
  for (const c of fx.det) {
    const n = c.a.shape[0];
    close([det(c.a.data, n)], [c.det], "det");
    const { sign, logabsdet } = slogdet(c.a.data, n);
    assertEquals(sign, c.sign);
    if (c.logabsdet === "-inf") assertEquals(logabsdet, -Infinity);
    else close([logabsdet], [c.logabsdet], "logabsdet");
  }
});

Deno.test("linalg.lstsq: matches torch for over-, exactly- and under-determined systems", () => {
  for (const c of fx.lstsq) {
    const [m, n] = c.a.shape;
    const { solution, rank } = lstsq(c.a.data, c.b.data, m, n, c.b.shape[1]);
    close(solution, c.x.data, `lstsq ${m}x${n}`);
    assertEquals(rank, Math.min(m, n));
  }
});

// ---------------------------------------------------------------------------- properties

Deno.test("linalg.qr: Q has orthonormal columns and A = QR on random shapes", () => {
  for (const [m, n] of [[7, 4], [4, 7], [6, 6], [9, 1], [1, 5]]) {
    const a = randn(m * n, m * 31 + n);
    for (const mode of ["reduced", "complete"] as const) {
      const { q, r, qCols: c } = qr(a, m, n, mode);
      close(matmul(tr(q, m, c), q, c, m, c), eye(c), "Q^T Q");
      close(matmul(q, r, m, c, n), a, "QR");
      for (let i = 0; i < c; i++) {
        for (let j = 0; j < Math.min(i, n); j++) assertEquals(r[i * n + j], 0);
      }
    }
  }
});

Deno.test("linalg.svd: A = U diag(S) Vh with orthonormal U, Vh and descending S", () => {
  for (const [m, n] of [[8, 5], [5, 8], [6, 6], [1, 4], [4, 1]]) {
    const a = randn(m * n, 7 * m + n), k = Math.min(m, n);
    for (const full of [true, false]) {
      const { u, s, vh } = svd(a, m, n, full);
      const uc = full ? m : k, vr = full ? n : k;
      for (let i = 1; i < k; i++) assert(s[i - 1] >= s[i]);
      close(matmul(tr(u, m, uc), u, uc, m, uc), eye(uc), "U^T U");
      close(matmul(vh, tr(vh, vr, n), vr, n, vr), eye(vr), "Vh Vh^T");
      const us = new Float64Array(m * vr); // U[:, :k] diag(S) padded to m x vr
      for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) us[i * vr + j] = u[i * uc + j] * s[j];
      close(matmul(us, vh, m, vr, n), a, "U S Vh");
    }
  }
});

Deno.test("linalg.svd: rank-deficient and zero matrices still give orthonormal U", () => {
  const a = [1, 2, 2, 4, 3, 6]; // 3 x 2, rank 1
  const { u, s } = svd(a, 3, 2, true);
  close(matmul(tr(u, 3, 3), u, 3, 3, 3), eye(3), "U^T U");
  assert(s[1] < 1e-14);
  const z = svd(new Float64Array(6), 2, 3, true);
  close(z.s, [0, 0], "S of zeros");
  close(matmul(z.u, tr(z.u, 2, 2), 2, 2, 2), eye(2), "U of zeros");
  close(matmul(z.vh, tr(z.vh, 3, 3), 3, 3, 3), eye(3), "Vh of zeros");
});

Deno.test("linalg.eigh: V diag(w) V^T reconstructs A and V is orthogonal (repeated eigenvalues too)", () => {
  const n = 7;
  const g = randn(n * n, 5);
  const a = matmul(g, tr(g, n, n), n, n, n);
  const cases = [a, eye(4).map((v) => 2 * v), Float64Array.from([0, 1, 1, 0])];
  for (const x of cases) {
    const d = Math.round(Math.sqrt(x.length));
    const { values, vectors } = eigh(x, d);
    for (let i = 1; i < d; i++) assert(values[i - 1] <= values[i]);
    close(matmul(tr(vectors, d, d), vectors, d, d, d), eye(d), "V^T V");
    const vd = vectors.map((v, i) => v * values[i % d]);
    close(matmul(vd, tr(vectors, d, d), d, d, d), x, "V diag(w) V^T");
  }
});

Deno.test("linalg.eigh and cholesky: read only the lower triangle, like torch", () => {
  const lower = [4, 999, 2, 3]; // upper entry 999 is ignored: A = [[4, 2], [2, 3]]
  close(eigh(lower, 2).values, eigh([4, 2, 2, 3], 2).values, "eigenvalues");
  close(cholesky(lower, 2), cholesky([4, 2, 2, 3], 2), "L");
});

Deno.test("linalg.inv: inv(A) A = I and solve agrees with inv(A) B", () => {
  const n = 9, a = randn(n * n, 11), b = randn(n * 2, 12);
  close(matmul(inv(a, n), a, n, n, n), eye(n), "inv(A) A");
  close(solve(a, b, n, 2), matmul(inv(a, n), b, n, n, 2), "solve vs inv");
  const f = luFactor(a, n);
  assertEquals(f.singularAt, -1);
  close([det(a, n)], [slogdet(a, n).sign * Math.exp(slogdet(a, n).logabsdet)], "det vs slogdet");
});

Deno.test("linalg.lstsq: rank-deficient tall system gives the minimum-norm solution", () => {
  // Columns 0 and 1 are equal: x0 + x1 is determined, the min-norm solution splits it evenly.
  const a = [1, 1, 0, 2, 2, 1, 3, 3, 0, 0, 0, 1];
  const b = [2, 5, 6, 1];
  const { solution, rank } = lstsq(a, b, 4, 3, 1);
  assertEquals(rank, 2);
  close([solution[0]], [solution[1]], "x0 = x1");
  close(solution, [1, 1, 1], "solution");
});

// ---------------------------------------------------------------------------- errors

Deno.test("linalg.cholesky: non-positive-definite matrix throws naming the leading minor", () => {
  assertThrows(
    () => cholesky([1, 2, 2, 1], 2),
    /linalg\.cholesky: matrix is not positive-definite \(leading minor 2\)/,
  );
  assertThrows(() => cholesky([-1], 1), /leading minor 1\)/);
  assertThrows(() => cholesky([1, 0, 0, NaN], 2), /leading minor 2\)/);
});

Deno.test("linalg.solve: singular matrix throws naming the op", () => {
  assertThrows(
    () => solve([1, 2, 2, 4], [1, 1], 2, 1),
    /^Error: linalg\.solve: matrix is singular/,
  );
  assertThrows(() => inv([1, 2, 3, 2, 4, 6, 1, 0, 1], 3), /linalg\.inv: matrix is singular/);
  assert(det([1, 2, 2, 4], 2) === 0); // -0 here, as in torch
  assertEquals(slogdet([0, 0, 0, 0], 2), { sign: 0, logabsdet: -Infinity });
});

Deno.test("linalg: bad sizes throw errors naming the op", () => {
  assertThrows(() => cholesky([1, 2, 3], 2), /linalg\.cholesky: input has 3 elements but a 2x2/);
  assertThrows(() => qr([1, 2, 3], 2, 2), /linalg\.qr: input has 3 elements/);
  assertThrows(() => qr([1], 1, 1, "r" as any), /linalg\.qr: mode must be/);
  assertThrows(() => eigh([1, 2], 2), /linalg\.eigh: input/);
  assertThrows(() => svd([1, 2, 3], 2, 2), /linalg\.svd: input/);
  assertThrows(() => svd([1, NaN], 1, 2), /linalg\.svd: input has a non-finite/);
  assertThrows(() => solve([1, 0, 0, 1], [1, 2, 3], 2, 1), /linalg\.solve: B has 3 elements/);
  assertThrows(() => inv([1, 2], 2), /linalg\.inv: input/);
  assertThrows(() => det([1, 2], -1), /linalg\.det: input rows must be a non-negative integer/);
  assertThrows(() => lstsq([1, 2], [1], 2, 1, 1), /linalg\.lstsq: B has 1 elements/);
});

Deno.test("linalg: empty (0 x 0) matrices follow torch conventions", () => {
  assertEquals(det([], 0), 1);
  assertEquals(inv([], 0).length, 0);
  assertEquals(eigh([], 0).values.length, 0);
  assertEquals(svd([], 0, 0).s.length, 0);
});
