/**
 * Matrix products. One primitive, a batched matmul whose operands may be read transposed
 * (so backward passes and `linear` need no transpose copies); matmul's 1-D and broadcasting
 * rules, bmm, mm, dot, outer and einsum are built on it.
 */
import { record } from "../autograd.ts";
import { broadcastShapes, fmtShape, numelOf, stridesOf } from "../shape.ts";
import { fromBuf, live, type Tensor } from "../tensor.ts";

/**
 * out[b] = op(a[b]) @ op(b[b]) for 3-D a and b, op = transpose when asked. A batch of 1
 * broadcasts against the other operand's batch. float32 only.
 */
export function bmmT(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  live("matmul", a, b);
  if (a.ndim !== 3 || b.ndim !== 3) {
    throw new Error(
      `matmul: internal batched operands must be 3-D, got ${fmtShape(a.shape)}, ${
        fmtShape(b.shape)
      }`,
    );
  }
  if (a.dtype !== "float32" || b.dtype !== "float32") {
    throw new Error(`matmul: expected float32 operands, got ${a.dtype} and ${b.dtype}`);
  }
  const [ba, ra, ca] = a.shape, [bb, rb, cb] = b.shape;
  const [m, k] = transA ? [ca, ra] : [ra, ca];
  const [k2, n] = transB ? [cb, rb] : [rb, cb];
  if (k !== k2) {
    throw new Error(
      `matmul: inner dims differ: ${fmtShape(a.shape)}${transA ? "ᵀ" : ""} @ ${fmtShape(b.shape)}${
        transB ? "ᵀ" : ""
      } (${k} vs ${k2})`,
    );
  }
  if (ba !== bb && ba !== 1 && bb !== 1) {
    throw new Error(`matmul: batch sizes ${ba} and ${bb} do not broadcast`);
  }
  const batch = Math.max(ba, bb);
  const buf = a._backend.matmul(a._buf, b._buf, {
    batch,
    m,
    n,
    k,
    transA,
    transB,
    aBatchStride: ba === 1 ? 0 : ra * ca,
    bBatchStride: bb === 1 ? 0 : rb * cb,
  });
  const out = fromBuf(a._backend, buf, [batch, m, n], "float32");
  return record(out, "matmul", [a, b], (g) => {
    // out = op(A) op(B); dA = g op(B)^T, dB = op(A)^T g, laid out like the stored operand.
    let ga = transA ? bmmT(b, g, transB, true) : bmmT(g, b, false, !transB);
    let gb = transB ? bmmT(g, a, true, transA) : bmmT(a, g, !transA, false);
    if (ba === 1 && batch > 1) ga = ga.sum(0, { keepdim: true });
    if (bb === 1 && batch > 1) gb = gb.sum(0, { keepdim: true });
    return [ga, gb];
  });
}

/** PyTorch's matmul: dot for 1-D x 1-D, matrix products with broadcast batch dims. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  live("matmul", a, b);
  if (a.ndim === 0 || b.ndim === 0) {
    throw new Error(
      `matmul: both arguments need at least 1 dim, got ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      }`,
    );
  }
  // int32 @ int32 stays int32 as in PyTorch; the product runs in float32 (exact below 2^24).
  const ints = a.dtype === "int32" && b.dtype === "int32";
  a = a.float();
  b = b.float();
  const av = a.ndim === 1, bv = b.ndim === 1;
  const A = av ? a.reshape([1, a.shape[0]]) : a; // (.., m, k)
  const B = bv ? b.reshape([b.shape[0], 1]) : b; // (.., k, n)
  const [m, k] = A.shape.slice(-2), [k2, n] = B.shape.slice(-2);
  if (k !== k2) {
    throw new Error(
      `matmul: shapes ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      } cannot be multiplied (${k} vs ${k2})`,
    );
  }
  const batchA = A.shape.slice(0, -2), batchB = B.shape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes("matmul", batchA, batchB);
  } catch {
    throw new Error(
      `matmul: batch dims of ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be broadcast`,
    );
  }
  const nb = numelOf(batch);
  const as3 = (t: Tensor, tb: readonly number[], r: number, c: number) =>
    numelOf(tb) === 1 ? t.reshape([1, r, c]) : t.expand([...batch, r, c]).reshape([nb, r, c]); // expand is free when shapes agree
  const out = bmmT(as3(A, batchA, m, k), as3(B, batchB, k, n));
  const shape = [...batch, ...(av ? [] : [m]), ...(bv ? [] : [n])];
  return ints ? out.reshape(shape).round().int() : out.reshape(shape);
}

export function mm(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 2 || b.ndim !== 2) {
    throw new Error(`mm: expected 2-D tensors, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  }
  return matmul(a, b);
}

export function bmm(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 3 || b.ndim !== 3 || a.shape[0] !== b.shape[0]) {
    throw new Error(
      `bmm: expected 3-D tensors with equal batch, got ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      }`,
    );
  }
  return matmul(a, b);
}

export function dot(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 1 || b.ndim !== 1 || a.shape[0] !== b.shape[0]) {
    throw new Error(
      `dot: expected 1-D tensors of equal length, got ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      }`,
    );
  }
  return matmul(a, b);
}

export function outer(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 1 || b.ndim !== 1) {
    throw new Error(
      `outer: expected 1-D tensors, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`,
    );
  }
  return a.unsqueeze(1).mul(b.unsqueeze(0));
}

/** Parses an einsum equation, expanding "..." into fresh letters for each operand. */
function parseEinsum(eq: string, ops: Tensor[]): { ins: string[]; out: string } {
  const [lhs, rhs] = eq.replace(/\s/g, "").split("->");
  const ins = lhs.split(",");
  if (ins.length !== ops.length) {
    throw new Error(`einsum: equation has ${ins.length} operands but ${ops.length} were given`);
  }
  const fresh = "ABCDEFGHIJKLMNOPQRSTUVWXYZ".split("").filter((c) => !eq.includes(c));
  let ell = 0;
  const expanded = ins.map((s, i) => {
    if (!s.includes("...")) return s;
    const n = ops[i].ndim - (s.length - 3);
    ell = Math.max(ell, n);
    return s.replace("...", fresh.slice(ell - n, ell).join(""));
  });
  expanded.forEach((s, i) => {
    if (s.length !== ops[i].ndim || !/^[a-zA-Z]*$/.test(s)) {
      throw new Error(
        `einsum: subscripts "${ins[i]}" do not match operand ${i} of shape ${
          fmtShape(ops[i].shape)
        }`,
      );
    }
  });
  let out: string;
  if (rhs === undefined) {
    const counts = new Map<string, number>();
    for (const c of expanded.join("")) counts.set(c, (counts.get(c) ?? 0) + 1);
    out = fresh.slice(0, ell).join("") +
      [...counts].filter(([c, n]) => n === 1 && !fresh.includes(c))
        .map(([c]) => c).sort().join("");
  } else out = rhs.replace("...", fresh.slice(0, ell).join(""));
  return { ins: expanded, out };
}

/** Takes repeated subscripts of one operand onto their diagonal ("ii->i"). */
function diagonalize(t: Tensor, s: string): [Tensor, string] {
  for (let i = 0; i < s.length; i++) {
    const j = s.indexOf(s[i], i + 1);
    if (j < 0) continue;
    if (t.shape[i] !== t.shape[j]) {
      throw new Error(
        `einsum: repeated subscript "${s[i]}" has sizes ${t.shape[i]} and ${t.shape[j]}`,
      );
    }
    const st = stridesOf(t.shape);
    const shape = t.shape.filter((_, d) => d !== j), strides = st.filter((_, d) => d !== j);
    strides[i] = st[i] + st[j];
    return diagonalize(t.asStrided(shape, strides, 0), s.slice(0, j) + s.slice(j + 1));
  }
  return [t, s];
}

/**
 * Einstein summation over any number of operands, contracted pairwise with matmul. All-int32
 * operands give int32 (computed in float32, exact below 2^24).
 */
export function einsum(eq: string, ...operands: Tensor[]): Tensor {
  if (operands.length && operands.every((t) => t.dtype === "int32")) {
    return einsum(eq, ...operands.map((t) => t.float())).round().int();
  }
  const { ins, out } = parseEinsum(eq, operands);
  let terms = operands.map((t, i) => diagonalize(t.float(), ins[i]));
  const needed = (k: number, extra: string) =>
    new Set((out + extra + terms.slice(k).map((t) => t[1]).join("")).split(""));
  // Sum out subscripts that appear in one operand only and not in the output.
  terms = terms.map(([t, s], i) => {
    const others = out + terms.filter((_, j) => j !== i).map((u) => u[1]).join("");
    const drop = [...s].map((c, d) => (others.includes(c) ? -1 : d)).filter((d) => d >= 0);
    return drop.length ? [t.sum(drop), [...s].filter((c) => others.includes(c)).join("")] : [t, s];
  });
  let [acc, as] = terms[0];
  for (let k = 1; k < terms.length; k++) {
    const [t, ts] = terms[k];
    const later = needed(k + 1, "");
    const batch = [...as].filter((c) => ts.includes(c) && later.has(c));
    const contract = [...as].filter((c) => ts.includes(c) && !later.has(c));
    const left = [...as].filter((c) => !ts.includes(c));
    const right = [...ts].filter((c) => !as.includes(c));
    const size = (
      c: string,
    ) => (as.includes(c) ? acc.shape[as.indexOf(c)] : t.shape[ts.indexOf(c)]);
    const prod = (cs: string[]) => cs.reduce((n, c) => n * size(c), 1);
    const A = acc.permute([...batch, ...left, ...contract].map((c) => as.indexOf(c)))
      .reshape([prod(batch), prod(left), prod(contract)]);
    const B = t.permute([...batch, ...contract, ...right].map((c) => ts.indexOf(c)))
      .reshape([prod(batch), prod(contract), prod(right)]);
    acc = bmmT(A, B).reshape([...batch, ...left, ...right].map(size));
    as = [...batch, ...left, ...right].join("");
  }
  const drop = [...as].map((c, d) => (out.includes(c) ? -1 : d)).filter((d) => d >= 0);
  if (drop.length) {
    acc = acc.sum(drop);
    as = [...as].filter((c) => out.includes(c)).join("");
  }
  for (const c of out) {
    if (!as.includes(c)) throw new Error(`einsum: output subscript "${c}" is not in any input`);
  }
  return acc.permute([...out].map((c) => as.indexOf(c)));
}
