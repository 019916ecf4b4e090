/**
 * torch.linalg on tensors: svd svdvals qr eigh cholesky solve inv det slogdet lstsq norm
 * vectorNorm matrixNorm, over float32 tensors with batch dims [..., m, n].
 *
 * Forward passes run the Float64Array kernels of dense.ts on host data, one matrix of the batch
 * at a time. They read the input synchronously, which only the cpu backend allows (its buffers
 * are host Float32Arrays, see `hostValues`); on another backend they throw, since an op never
 * reads back implicitly. Backward rules are written in tensor ops (so they run anywhere and
 * double backward works where the rule's own ops are differentiable). Ops with several outputs
 * (svd, qr, eigh) record one packed output [..., sizes] that the results are slices of, so each
 * result's gradient reaches the one backward rule.
 */
import { isGradEnabled, noGrad, record } from "../autograd.ts";
import { fromArrayOn } from "../ops/creation.ts";
import { broadcastShapes, fmtShape, normDim, numelOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import * as K from "./dense.ts";

/**
 * Internal: the values of a float32 tensor as the cpu backend's host Float32Array (no copy;
 * do not write to it). Throws on other backends: these ops would otherwise need a readback.
 */
export function hostValues(op: string, x: Tensor): Float32Array {
  if (x.device !== "cpu") {
    throw new Error(
      `${op}: runs on the cpu backend only for now; move the tensor there first ` +
        `(read it with await x.data(), then setBackend("cpu") and tensor(values, { shape }))`,
    );
  }
  return (x._buf as Float32Array).subarray(0, x.numel);
}

const f32 = (like: Tensor, v: ArrayLike<number>, shape: number[]) =>
  fromArrayOn(like, v, "float32", shape);

/** Checks x is [..., m, n] (square when asked) and returns its batch shape, m, n and count. */
function matrices(op: string, x: Tensor, square = false) {
  if (x.ndim < 2) {
    throw new Error(`${op}: expected a matrix or a batch of matrices, got ${fmtShape(x.shape)}`);
  }
  const [m, n] = x.shape.slice(-2);
  if (square && m !== n) {
    throw new Error(`${op}: expected square matrices, got ${fmtShape(x.shape)}`);
  }
  const batch = x.shape.slice(0, -2);
  return { batch, m, n, count: numelOf(batch) };
}

/** Runs `fn` on each m x n matrix of x (float64 copies) and concatenates the outputs. */
function perMatrix(
  op: string,
  x: Tensor,
  size: number,
  fn: (a: Float64Array, out: Float32Array, at: number) => void,
): Float32Array {
  const { m, n, count } = matrices(op, x);
  const src = hostValues(op, x);
  const out = new Float32Array(count * size);
  for (let b = 0; b < count; b++) {
    fn(Float64Array.from(src.subarray(b * m * n, (b + 1) * m * n)), out, b * size);
  }
  return out;
}

/** The n x n identity on x's backend, broadcastable against [..., n, n]. */
const eyeLike = (x: Tensor, n: number) => {
  const v = new Float32Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  return f32(x, v, [n, n]);
};
/** diag_embed: [..., n] -> [..., n, n]. */
const diagEmbed = (d: Tensor) => d.unsqueeze(-1).mul(eyeLike(d, d.shape[d.ndim - 1]));

/**
 * E_ij = v_j - v_i with exact zeros (the diagonal, repeated values) replaced by 1: the terms
 * they divide are then zero whenever only the values are differentiated.
 */
function gaps(v: Tensor): Tensor {
  const E = v.unsqueeze(-2).sub(v.unsqueeze(-1));
  return E.where(E.ne(0), 1);
}

/** Splits a packed [..., total] tensor into slices reshaped to [..., ...shape]. */
function unpack(p: Tensor, shapes: number[][]): Tensor[] {
  const lead = p.shape.slice(0, -1);
  let at = 0;
  return shapes.map((s) => {
    const len = numelOf(s);
    const t = p.narrow(-1, at, len).reshape([...lead, ...s]);
    at += len;
    return t;
  });
}

// ----------------------------------------------------------------------- LU family

/** torch.linalg.solve(A, B): X with A X = B (or X A = B with left: false); B may be a vector. */
export function solve(A: Tensor, B: Tensor, o: { left?: boolean } = {}): Tensor {
  const op = "linalg.solve";
  const { n } = matrices(op, A, true);
  if (o.left === false) return solve(A.mT, B.mT).mT;
  const vector = B.ndim === 1 ||
    (B.ndim === A.ndim - 1 && B.shape.join() === A.shape.slice(0, -1).join());
  const Bm = vector ? B.float().unsqueeze(-1) : B.float();
  if (Bm.ndim < 2 || Bm.shape[Bm.ndim - 2] !== n) {
    throw new Error(`${op}: B ${fmtShape(B.shape)} does not match A ${fmtShape(A.shape)}`);
  }
  const k = Bm.shape[Bm.ndim - 1];
  const batch = broadcastShapes(op, A.shape.slice(0, -2), Bm.shape.slice(0, -2));
  const X = solveCore(A.float().expand([...batch, n, n]), Bm.expand([...batch, n, k]));
  return vector ? X.squeeze(-1) : X;
}

function solveCore(A: Tensor, B: Tensor): Tensor {
  const op = "linalg.solve";
  const { n, count } = matrices(op, A);
  const k = B.shape[B.ndim - 1];
  const a = hostValues(op, A), b = hostValues(op, B);
  const out = new Float32Array(count * n * k);
  for (let i = 0; i < count; i++) {
    out.set(
      K.solve(a.subarray(i * n * n, (i + 1) * n * n), b.subarray(i * n * k, (i + 1) * n * k), n, k),
      i * n * k,
    );
  }
  const X = f32(A, out, [...B.shape]);
  // dB = A^{-T} g, dA = -dB X^T
  return record(X, "linalg.solve", [A, B], (g) => {
    const gB = solveCore(A.mT, g);
    return [gB.matmul(X.mT).neg(), gB];
  });
}

/** torch.linalg.inv. */
export function inv(A: Tensor): Tensor {
  const op = "linalg.inv";
  const { batch, n } = matrices(op, A, true);
  const x = A.float();
  const out = f32(x, perMatrix(op, x, n * n, (a, o, at) => o.set(K.inv(a, n), at)), [
    ...batch,
    n,
    n,
  ]);
  // d inv = -inv^T g inv^T
  return record(out, op, [x], (g) => [out.mT.matmul(g).matmul(out.mT).neg()]);
}

/** torch.linalg.det; the gradient g det A^{-T} needs A to be invertible. */
export function det(A: Tensor): Tensor {
  const op = "linalg.det";
  const { batch, n } = matrices(op, A, true);
  const x = A.float();
  const out = f32(x, perMatrix(op, x, 1, (a, o, at) => (o[at] = K.det(a, n))), batch);
  return record(out, op, [x], (g) => [inv(x).mT.mul(g.mul(out).unsqueeze(-1).unsqueeze(-1))]);
}

/** torch.linalg.slogdet: det A = sign exp(logabsdet); logabsdet's gradient is A^{-T}. */
export function slogdet(A: Tensor): { sign: Tensor; logabsdet: Tensor } {
  const op = "linalg.slogdet";
  const { batch, n } = matrices(op, A, true);
  const x = A.float();
  const both = perMatrix(op, x, 2, (a, o, at) => {
    const r = K.slogdet(a, n);
    o[at] = r.sign;
    o[at + 1] = r.logabsdet;
  });
  const sign = f32(x, both.filter((_, i) => i % 2 === 0), batch);
  const lad = f32(x, both.filter((_, i) => i % 2 === 1), batch);
  const logabsdet = record(lad, op, [x], (g) => [inv(x).mT.mul(g.unsqueeze(-1).unsqueeze(-1))]);
  return { sign, logabsdet };
}

// ----------------------------------------------------------------------- cholesky

/**
 * torch.linalg.cholesky: lower L with A = L L^T (or upper U = L^T), reading A's lower triangle.
 * Backward (Murray 2016, as PyTorch): gA = L^{-T} Φ(L^T gL) L^{-1}, Φ = symmetrised tril.
 */
export function cholesky(A: Tensor, o: { upper?: boolean } = {}): Tensor {
  const op = "linalg.cholesky";
  const { batch, n } = matrices(op, A, true);
  const x = A.float();
  const L = f32(x, perMatrix(op, x, n * n, (a, out, at) => out.set(K.cholesky(a, n), at)), [
    ...batch,
    n,
    n,
  ]);
  const out = record(L, op, [x], (gL) => {
    const P = L.mT.matmul(gL).tril(); // tril(L^T gL)
    const phi = P.add(P.tril(-1).mT).mul(0.5); // 0.5 (P + strict-lower(P)^T)
    const Li = inv(L);
    return [Li.mT.matmul(phi).matmul(Li)];
  });
  return o.upper ? out.mT : out;
}

// ----------------------------------------------------------------------- eigh

/**
 * torch.linalg.eigh: eigenvalues ascending and orthonormal eigenvectors (columns; signs
 * arbitrary) of symmetric matrices, reading the lower triangle. Backward as PyTorch:
 * gA = V (diag(gw) + F ∘ skew(V^T gV)) V^T with F_ij = 1/(w_j - w_i), off the diagonal;
 * eigenvector gradients need distinct eigenvalues.
 */
export function eigh(A: Tensor): { eigenvalues: Tensor; eigenvectors: Tensor } {
  const op = "linalg.eigh";
  const { batch, n } = matrices(op, A, true);
  const x = A.float();
  const packed = f32(
    x,
    perMatrix(op, x, n + n * n, (a, o, at) => {
      const r = K.eigh(a, n);
      o.set(r.values, at);
      o.set(r.vectors, at + n);
    }),
    [...batch, n + n * n],
  );
  const P = record(packed, op, [x], (g) => {
    const [w, V] = unpack(P, [[n], [n, n]]);
    const [gw, gV] = unpack(g, [[n], [n, n]]);
    const M = V.mT.matmul(gV);
    const skew = M.sub(M.mT).mul(0.5);
    const I = eyeLike(x, n);
    const inner = skew.div(gaps(w)).mul(I.rsub(1)).add(diagEmbed(gw));
    return [V.matmul(inner).matmul(V.mT)];
  });
  const [eigenvalues, eigenvectors] = unpack(P, [[n], [n, n]]);
  return { eigenvalues, eigenvectors };
}

/**
 * torch.linalg.eigvalsh: the eigenvalues (ascending) of symmetric matrices. Its gradient
 * V diag(g) V^T is defined for repeated eigenvalues too; double backward goes through `eigh`.
 */
export function eigvalsh(A: Tensor): Tensor {
  const { eigenvalues: w, eigenvectors: V } = noGrad(() => eigh(A));
  const x = A.float();
  return record(w.detach(), "linalg.eigvalsh", [x], (g) => {
    const v = isGradEnabled() ? eigh(x).eigenvectors : V;
    return [v.mul(g.unsqueeze(-2)).matmul(v.mT)];
  });
}

// ----------------------------------------------------------------------- svd

export interface SVD {
  U: Tensor;
  S: Tensor;
  Vh: Tensor;
}

/**
 * torch.linalg.svd: A = U diag(S) Vh, S descending. `fullMatrices` (default true, as PyTorch)
 * gives square U and Vh; their extra columns/rows get no gradient. Backward is PyTorch's
 * formula and needs distinct, nonzero singular values when U or Vh are differentiated.
 */
export function svd(A: Tensor, o: { fullMatrices?: boolean } = {}): SVD {
  const op = "linalg.svd";
  const full = o.fullMatrices ?? true;
  const { batch, m, n } = matrices(op, A);
  const k = Math.min(m, n), uc = full ? m : k, vr = full ? n : k;
  const x = A.float();
  const shapes = [[m, uc], [k], [vr, n]];
  const packed = f32(
    x,
    perMatrix(op, x, m * uc + k + vr * n, (a, out, at) => {
      const r = K.svd(a, m, n, full);
      out.set(r.u, at);
      out.set(r.s, at + m * uc);
      out.set(r.vh, at + m * uc + k);
    }),
    [...batch, m * uc + k + vr * n],
  );
  const P = record(packed, op, [x], (g) => {
    let [U, S, Vh] = unpack(P, shapes);
    let [gU, gS, gVh] = unpack(g, shapes);
    if (full) {
      [U, gU, Vh, gVh] = [
        U.narrow(-1, 0, k),
        gU.narrow(-1, 0, k),
        Vh.narrow(-2, 0, k),
        gVh.narrow(-2, 0, k),
      ];
    }
    return [svdBackward(gU, gS, gVh, U, S, Vh)];
  });
  const [U, S, Vh] = unpack(P, shapes);
  return { U, S, Vh };
}

/** PyTorch's svd_backward for real inputs (reduced factors U [m, k], S [k], Vh [k, n]). */
function svdBackward(
  gU: Tensor,
  gS: Tensor,
  gVh: Tensor,
  U: Tensor,
  S: Tensor,
  Vh: Tensor,
): Tensor {
  const m = U.shape[U.ndim - 2], n = Vh.shape[Vh.ndim - 1];
  const skew = (X: Tensor) => X.sub(X.mT);
  const UhgU = skew(U.mT.matmul(gU)), VhgV = skew(Vh.matmul(gVh.mT));
  const S2 = S.mul(S);
  const E = gaps(S2);
  let gA = UhgU.mul(S.unsqueeze(-2)).add(VhgV.mul(S.unsqueeze(-1))).div(E).add(diagEmbed(gS));
  if (m > n) {
    // gA = [U gA + (I - U U^T) gU S^{-1}] Vh
    const gUSinv = gU.div(S.unsqueeze(-2));
    gA = U.matmul(gA).add(gUSinv).sub(U.matmul(U.mT.matmul(gUSinv))).matmul(Vh);
  } else if (m < n) {
    // gA = U [gA Vh + S^{-1} gVh (I - V Vh)]
    const SinvgVh = gVh.div(S.unsqueeze(-1));
    gA = U.matmul(gA.matmul(Vh).add(SinvgVh).sub(SinvgVh.matmul(Vh.mT).matmul(Vh)));
  } else gA = U.matmul(gA).matmul(Vh);
  return gA;
}

/**
 * torch.linalg.svdvals: the singular values (descending). Its gradient U diag(g) Vh is defined
 * even for repeated or zero singular values; double backward goes through `svd`.
 */
export function svdvals(A: Tensor): Tensor {
  const { U, S, Vh } = noGrad(() => svd(A, { fullMatrices: false }));
  const x = A.float();
  return record(S.detach(), "linalg.svdvals", [x], (g) => {
    const f = isGradEnabled() ? svd(x, { fullMatrices: false }) : { U, Vh };
    return [f.U.mul(g.unsqueeze(-2)).matmul(f.Vh)];
  });
}

// ----------------------------------------------------------------------- qr

/**
 * torch.linalg.qr (LAPACK's signs: R's diagonal may be negative). Modes "reduced" (default),
 * "complete", "r" (Q is then an empty tensor). Backward for m >= n in the reduced mode:
 * gA = (gQ + Q copyltu(M)) R^{-T} with M = R gR^T - gQ^T Q.
 */
export function qr(
  A: Tensor,
  o: { mode?: "reduced" | "complete" | "r" } = {},
): { Q: Tensor; R: Tensor } {
  const op = "linalg.qr";
  const mode = o.mode ?? "reduced";
  const { batch, m, n } = matrices(op, A);
  const qc = mode === "complete" ? m : Math.min(m, n);
  const x = A.float();
  const shapes = [[m, qc], [qc, n]];
  const packed = f32(
    x,
    perMatrix(op, x, m * qc + qc * n, (a, out, at) => {
      const r = K.qr(a, m, n, mode === "complete" ? "complete" : "reduced");
      out.set(r.q, at);
      out.set(r.r, at + m * qc);
    }),
    [...batch, m * qc + qc * n],
  );
  const P = record(packed, op, [x], (g) => {
    if (m < n || (mode === "complete" && m !== n)) {
      throw new Error(
        `${op}: backward is implemented for m >= n in the reduced mode, got ${fmtShape(A.shape)}`,
      );
    }
    const [Q, R] = unpack(P, shapes);
    const [gQ, gR] = unpack(g, shapes);
    const M = R.matmul(gR.mT).sub(gQ.mT.matmul(Q));
    const copyltu = M.tril().add(M.tril(-1).mT);
    const B = gQ.add(Q.matmul(copyltu)); // gA = B R^{-T}, i.e. R gA^T = B^T
    return [solve(R, B.mT).mT];
  });
  const [Q, R] = unpack(P, shapes);
  return { Q: mode === "r" ? f32(x, [], [0]) : Q, R };
}

// ----------------------------------------------------------------------- lstsq

/**
 * torch.linalg.lstsq(A, B).solution: the least-squares solution of A X = B for A [..., m, n],
 * B [..., m, k] (batches broadcast), minimum-norm when m < n. Gradients assume A has full rank.
 */
export function lstsq(A: Tensor, B: Tensor, o: { rcond?: number } = {}): { solution: Tensor } {
  const op = "linalg.lstsq";
  const { m, n } = matrices(op, A);
  const vector = B.ndim === A.ndim - 1;
  const Bm = vector ? B.float().unsqueeze(-1) : B.float();
  if (Bm.shape[Bm.ndim - 2] !== m) {
    throw new Error(
      `${op}: B ${fmtShape(B.shape)} does not have the ${m} rows of A ${fmtShape(A.shape)}`,
    );
  }
  const k = Bm.shape[Bm.ndim - 1];
  const batch = broadcastShapes(op, A.shape.slice(0, -2), Bm.shape.slice(0, -2));
  const a = A.float().expand([...batch, m, n]), b = Bm.expand([...batch, m, k]);
  const av = hostValues(op, a), bv = hostValues(op, b);
  const count = numelOf(batch), out = new Float32Array(count * n * k);
  for (let i = 0; i < count; i++) {
    const r = K.lstsq(
      av.subarray(i * m * n, (i + 1) * m * n),
      bv.subarray(i * m * k, (i + 1) * m * k),
      m,
      n,
      k,
      o.rcond,
    );
    out.set(r.solution, i * n * k);
  }
  const X = record(f32(a, out, [...batch, n, k]), op, [a, b], (g) => {
    if (m >= n) {
      // X = C^{-1} A^T B, C = A^T A: gB = A Y, gA = (B - A X) Y^T - A Y X^T with Y = C^{-1} g.
      const Y = solve(a.mT.matmul(a), g);
      return [b.sub(a.matmul(X)).matmul(Y.mT).sub(a.matmul(Y).matmul(X.mT)), a.matmul(Y)];
    }
    // X = A^T Z, Z = D^{-1} B, D = A A^T: gB = W = D^{-1} A g, gA = Z g^T - W X^T - Z W^T A.
    const D = a.matmul(a.mT);
    const Z = solve(D, b), W = solve(D, a.matmul(g));
    return [Z.matmul(g.mT).sub(W.matmul(X.mT)).sub(Z.matmul(W.mT).matmul(a)), W];
  });
  return { solution: vector ? X.squeeze(-1) : X };
}

// ----------------------------------------------------------------------- norms

type Ord = number | "fro" | "nuc" | "inf" | "-inf";
const numOrd = (o: Ord): number | string => o === "inf" ? Infinity : o === "-inf" ? -Infinity : o;

/** torch.linalg.vector_norm: sum(|x|^ord)^(1/ord) over `dim` (all dims by default). */
export function vectorNorm(
  x: Tensor,
  ord: Ord = 2,
  dim?: number | number[],
  o: { keepdim?: boolean } = {},
): Tensor {
  const p = numOrd(ord);
  if (typeof p !== "number") {
    throw new Error(`linalg.vectorNorm: ord must be a number, got "${ord}"`);
  }
  return x.float().norm(p, dim, { keepdim: o.keepdim });
}

/**
 * torch.linalg.matrix_norm over the two dims `dim` (default [-2, -1]): "fro", "nuc", 2 / -2
 * (largest / smallest singular value), 1 / -1 (max / min column sum of |x|), inf / -inf (rows).
 */
export function matrixNorm(
  x: Tensor,
  ord: Ord = "fro",
  dim: number[] = [-2, -1],
  o: { keepdim?: boolean } = {},
): Tensor {
  const op = "linalg.matrixNorm";
  if (dim.length !== 2) throw new Error(`${op}: dim must name two dims, got ${fmtShape(dim)}`);
  const [r, c] = dim.map((d) => normDim(op, d, x.ndim));
  if (r === c) throw new Error(`${op}: dims ${fmtShape(dim)} name the same dim`);
  const keep = { keepdim: true };
  const p = numOrd(ord), a = x.float();
  let out: Tensor;
  if (p === "fro") out = a.norm(2, [r, c], keep);
  else if (p === "nuc" || p === 2 || p === -2) {
    const rest = [...a.shape.keys()].filter((d) => d !== r && d !== c);
    const sv = svdvals(a.permute([...rest, r, c])); // (..., k)
    const red = p === "nuc" ? sv.sum(-1) : p === 2 ? sv.amax(-1) : sv.amin(-1);
    out = red;
    for (const d of [r, c].sort((u, v) => u - v)) out = out.unsqueeze(d);
  } else if (p === 1 || p === -1) {
    const cols = a.abs().sum(r, keep);
    out = p === 1 ? cols.amax(c, keep) : cols.amin(c, keep);
  } else if (p === Infinity || p === -Infinity) {
    const rows = a.abs().sum(c, keep);
    out = p === Infinity ? rows.amax(r, keep) : rows.amin(r, keep);
  } else {throw new Error(
      `${op}: unsupported ord ${ord}; use "fro", "nuc", 2, -2, 1, -1, "inf", "-inf"`,
    );}
  return o.keepdim ? out : out.squeeze([r, c]);
}

/**
 * torch.linalg.norm: without `ord`, the 2-norm of the flattened input (or over `dim`, the
 * Frobenius norm for two dims). With `ord`, a vector norm for one dim (or a 1-D input) and a
 * matrix norm for two dims (or a 2-D input).
 */
export function norm(
  x: Tensor,
  ord?: Ord,
  dim?: number | number[],
  o: { keepdim?: boolean } = {},
): Tensor {
  const dims = dim === undefined ? undefined : Array.isArray(dim) ? dim : [dim];
  if (ord === undefined) {
    if (dims?.length === 2) return matrixNorm(x, "fro", dims, o);
    return vectorNorm(x, 2, dims, o);
  }
  const nd = dims ? dims.length : x.ndim;
  if (nd === 2) return matrixNorm(x, ord, dims ?? [-2, -1], o);
  if (nd === 1) return vectorNorm(x, ord, dims ?? [0], o);
  if (ord === "fro" || ord === "nuc") return matrixNorm(x, ord, dims ?? [-2, -1], o);
  throw new Error(
    `linalg.norm: with ord ${ord}, give a 1-D or 2-D input or one or two dims; got ${
      fmtShape(x.shape)
    }` +
      (dims ? ` and dim ${fmtShape(dims)}` : ""),
  );
}
