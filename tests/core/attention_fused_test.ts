/**
 * The fused attention kernel (Backend.attention, through F.scaledDotProductAttention and
 * ops/fused.ts) against the composition of primitives it replaces, on the current backend
 * (the WebGPU kernel under PAPERLAB_BACKEND=webgpu; ignored on backends without one): values
 * and gradients over query blocks and key tiles with partial ends, head sizes that are not
 * multiples of 4, causal and L < S, bool and float masks shared or per batch, rows with every
 * key masked, NaN rows, double backward, and the fallback for heads the kernel does not take.
 */
import { equal, ok as assert } from "node:assert/strict";
import { getBackend } from "../../core/backend.ts";
import { withoutFusedKernels } from "../../core/ops/fused.ts";
import type { AttentionOptions } from "../../core/functional.ts";
import { lcgRand } from "./_helpers.ts";
import { F, grad, memory, scope, type Tensor, tensor } from "../../mod.ts";

const rand = lcgRand(4242);
const randT = (shape: number[], lo = -2, hi = 2) =>
  tensor(rand(shape.reduce((a, b) => a * b, 1), lo, hi), { shape });

/** Max |a - b| over a and b, which must agree in shape and in where they are NaN. */
async function close(a: Tensor, b: Tensor, tol: number, what: string): Promise<void> {
  assert(a.shape.join() === b.shape.join(), `${what}: shapes [${a.shape}] vs [${b.shape}]`);
  const [x, y] = [await a.data(), await b.data()];
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]) || Number.isNaN(y[i])) {
      assert(Number.isNaN(x[i]) && Number.isNaN(y[i]), `${what}: [${i}] ${x[i]} vs ${y[i]}`);
    } else {
      assert(
        Math.abs(x[i] - y[i]) <= tol * (1 + Math.abs(y[i])),
        `${what}: [${i}] ${x[i]} vs ${y[i]}`,
      );
    }
  }
}

const ignore = !getBackend().attention;

/** Output and the gradients of sum(out * c) for q, k, v: fused, then composed. */
function both(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions) {
  const cot = randT([...q.shape.slice(0, -1), v.shape[v.ndim - 1]]);
  const run = () =>
    scope(() => {
      const f = ([a, b, c]: Tensor[]) => F.scaledDotProductAttention(a, b, c, o);
      return [f([q, k, v]), ...grad((x: Tensor[]) => f(x).mul(cot).sum())([q, k, v])];
    });
  return { fused: run(), comp: withoutFusedKernels(run) };
}

async function check(name: string, shapes: number[][], o: AttentionOptions = {}) {
  const [q, k, v] = shapes.map((s) => randT(s));
  const { fused, comp } = both(q, k, v, o);
  for (let i = 0; i < 4; i++) {
    await close(fused[i], comp[i], 2e-5, `${name}: ${["out", "dq", "dk", "dv"][i]}`);
  }
}

Deno.test({
  name: "fused attention equals its composition over tiles, odd heads, causal and L < S",
  ignore,
  async fn() {
    // 150 queries and keys: three query blocks and key tiles, partial at the end.
    await check("causal 150", [[2, 150, 16], [2, 150, 16], [2, 150, 16]], { isCausal: true });
    await check("plain 150", [[1, 150, 16], [1, 90, 16], [1, 90, 8]]);
    await check("heads 5 and 3", [[3, 17, 5], [3, 21, 5], [3, 21, 3]], { scale: 0.7 });
    await check("causal L < S", [[2, 2, 6, 8], [2, 2, 11, 8], [2, 2, 11, 8]], { isCausal: true });
    await check("causal L > S", [[1, 12, 8], [1, 5, 8], [1, 5, 4]], { isCausal: true });
    await check("head 128", [[2, 20, 128], [2, 33, 128], [2, 33, 128]]);
    await check("one query, one key", [[1, 1, 4], [1, 1, 4], [1, 1, 4]]);
  },
});

Deno.test({
  name: "fused attention takes bool and float masks, shared or per batch, and zeroes dead rows",
  ignore,
  async fn() {
    const qkv = [[2, 3, 5, 8], [2, 3, 7, 8], [2, 3, 7, 4]];
    const bools = (shape: number[], p = 0.4) =>
      tensor(rand(shape.reduce((a, b) => a * b, 1), 0, 1), { shape }).gt(p);
    await check("bool [S]", qkv, { attnMask: bools([7]) });
    await check("bool [L, S]", qkv, { attnMask: bools([5, 7]) });
    await check("bool [2, 3, 5, 7]", qkv, { attnMask: bools([2, 3, 5, 7]) });
    await check("float [2, 1, 1, 7]", qkv, { attnMask: randT([2, 1, 1, 7]) });
    await check("float [3, 5, 7]", qkv, { attnMask: randT([3, 5, 7]) });
    // Rows 1 and 3 of the mask admit no key: zeros, and no NaN reaches any gradient.
    const dead = tensor(
      Array.from(
        { length: 35 },
        (_, i) => !(i >= 7 && i < 14) && !(i >= 21 && i < 28) && i % 3 > 0,
      ),
      { shape: [5, 7] },
    );
    const [q, k, v] = qkv.map((s) => randT(s));
    const { fused, comp } = both(q, k, v, { attnMask: dead });
    for (let i = 0; i < 4; i++) await close(fused[i], comp[i], 2e-5, `dead rows ${i}`);
    const out = await fused[0].data();
    assert(out.every(Number.isFinite), "dead rows: finite output");
    for (const b of [0, 5]) { // batch entries (0, 0) and (1, 2), rows 1 and 3
      for (const r of [1, 3]) {
        for (let e = 0; e < 4; e++) assert(out[(b * 5 + r) * 4 + e] === 0, `dead row ${b} ${r}`);
      }
    }
    for (const g of fused.slice(1)) assert((await g.data()).every(Number.isFinite));
  },
});

Deno.test({
  name: "fused attention: a NaN query row gives a NaN output row and leaves the others",
  ignore,
  async fn() {
    const qd = rand(2 * 4 * 8, -2, 2);
    qd[8 * 2 + 3] = NaN; // batch 0, row 2
    const q = tensor(qd, { shape: [2, 4, 8] }), k = randT([2, 6, 8]), v = randT([2, 6, 8]);
    const y = F.scaledDotProductAttention(q, k, v);
    const comp = withoutFusedKernels(() => F.scaledDotProductAttention(q, k, v));
    await close(y, comp, 2e-5, "NaN row");
    const d = await y.data();
    for (let i = 0; i < d.length; i++) assert(Number.isNaN(d[i]) === (i >= 16 && i < 24), `[${i}]`);
  },
});

Deno.test({
  name: "fused attention's double backward equals the composition's",
  ignore,
  async fn() {
    const [q0, k0, v0] = [randT([2, 9, 6]), randT([2, 11, 6]), randT([2, 11, 5])];
    const mask = randT([9, 11]).gt(-1);
    const cot = randT([2, 9, 5]), dir = randT([2, 9, 6]);
    const loss = ([q, k, v]: Tensor[]) =>
      F.scaledDotProductAttention(q, k, v, { attnMask: mask }).mul(cot).sum();
    // The gradient of sum(grad_q(loss) * dir) with respect to q, k and v.
    const hvp = () =>
      scope(() =>
        grad((x: Tensor[]) => grad(loss, { createGraph: true })(x)[0].mul(dir).sum())([q0, k0, v0])
      );
    const [h1, h2] = [hvp(), withoutFusedKernels(hvp)];
    for (let i = 0; i < 3; i++) await close(h1[i], h2[i], 1e-4, `H dir ${"qkv"[i]}`);
  },
});

Deno.test({
  name: "fused attention: heads over 128 compose; no gradients leaves only the output alive",
  ignore,
  async fn() {
    await check("head 130", [[1, 4, 130], [1, 5, 130], [1, 5, 2]]);
    const [q, k, v] = [randT([2, 5, 8]), randT([2, 7, 8]), randT([2, 7, 8])];
    const mask = randT([7]).gt(0);
    const before = memory().tensors;
    const y = F.scaledDotProductAttention(q, k, v, { attnMask: mask });
    equal(memory().tensors, before + 1, "the mask's temporaries are freed");
    y.dispose();
  },
});
