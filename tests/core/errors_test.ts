/**
 * Misuse gives a clear Error that names the op and says what is wrong: shape mismatches, bad
 * dims, dtype misuse, use after dispose, and autograd misuse.
 */
import { rejects as assertRejects, throws as assertThrows } from "node:assert/strict";
import {
  cat,
  einsum,
  F,
  ones,
  setBackend,
  stack,
  type Tensor,
  tensor,
  valueAndGrad,
  zeros,
} from "../../mod.ts";
import "./_helpers.ts"; // selects the backend from $PAPERLAB_BACKEND

/** Asserts fn throws an Error whose message matches every pattern. */
function throwsWith(fn: () => unknown, ...patterns: RegExp[]): void {
  assertThrows(fn, (e: unknown) => {
    const msg = (e as Error).message;
    for (const p of patterns) {
      if (!p.test(msg)) throw new Error(`message "${msg}" does not match ${p}`);
    }
    return e instanceof Error;
  });
}

// ---------------------------------------------------------------------- shape mismatch
Deno.test("errors: add of non-broadcastable shapes names add and both shapes", () => {
  throwsWith(() => zeros([2, 3]).add(zeros([4])), /^add: /, /\[2, 3\]/, /\[4\]/, /broadcast/);
});

Deno.test("errors: matmul with mismatched inner dims names matmul and both shapes", () => {
  throwsWith(
    () => zeros([2, 3]).matmul(zeros([4, 5])),
    /^matmul: /,
    /\[2, 3\]/,
    /\[4, 5\]/,
    /3 vs 4/,
  );
  throwsWith(() => zeros([3]).matmul(zeros([4])), /^matmul: /, /3 vs 4/);
  throwsWith(
    () => zeros([2, 2, 3]).matmul(zeros([3, 3, 1])),
    /^matmul: batch dims/,
    /\[2, 2, 3\]/,
    /\[3, 3, 1\]/,
  );
  throwsWith(() => zeros([]).matmul(zeros([3])), /^matmul: /, /at least 1 dim/);
  throwsWith(() => zeros([2, 3]).bmm(zeros([2, 3, 1])), /^bmm: /, /3-D/);
  throwsWith(() => zeros([2]).mm(zeros([2, 2])), /^mm: /, /2-D/);
  throwsWith(() => zeros([2]).dot(zeros([3])), /^dot: /, /equal length/);
  throwsWith(
    () => einsum("ij,jk->ik", zeros([2, 3]), zeros([3])),
    /^einsum: /,
    /"jk"/,
    /operand 1/,
  );
});

Deno.test("errors: cat and stack of mismatched shapes name the op and the shapes", () => {
  throwsWith(
    () => cat([zeros([2, 3]), zeros([3, 4])], 0),
    /^cat: /,
    /\[2, 3\]/,
    /\[3, 4\]/,
    /outside dim 0/,
  );
  throwsWith(() => cat([], 0), /^cat: /, /non-empty/);
  throwsWith(() => stack([zeros([2, 3]), zeros([3, 2])]), /^stack: /, /same shape/);
});

Deno.test("errors: reshape to a shape of another size names reshape and the sizes", () => {
  throwsWith(() => zeros([2, 3]).reshape([4, 2]), /^reshape: /, /\[4, 2\]/, /6 elements/);
  throwsWith(() => zeros([2, 3]).reshape([-1, -1]), /^reshape: /, /only one dim can be -1/);
  throwsWith(() => zeros([2, 3]).expand([4, 3]), /^expand: /, /\[2, 3\]/, /\[4, 3\]/);
  throwsWith(() => zeros([2, 3]).view([5]), /^reshape: /, /6 elements/);
});

Deno.test("errors: functional ops name themselves on shape mismatch", () => {
  throwsWith(() => F.linear(zeros([2, 3]), zeros([4, 5])), /^linear: /, /\[2, 3\]/, /\[4, 5\]/);
  throwsWith(() => F.mseLoss(zeros([2]), zeros([3])), /^mseLoss: /, /\[2\]/, /\[3\]/);
  throwsWith(() => F.crossEntropy(zeros([2, 3]), zeros([2, 4])), /^crossEntropy: /, /\[2, 4\]/);
  throwsWith(() => F.layerNorm(zeros([2, 3]), [4]), /^layerNorm: /, /normalizedShape/);
  throwsWith(() => F.groupNorm(zeros([2, 3, 4]), 2), /^groupNorm: /, /divisible/);
  throwsWith(() => F.pad(zeros([1, 1, 3]), [3, 0], { mode: "reflect" }), /^pad: /, /reflect/);
});

// ------------------------------------------------------------------------------- dims
Deno.test("errors: a dim out of range names the op, the dim and the valid range", () => {
  throwsWith(() => zeros([2, 3]).sum(5), /^sum: /, /dim 5 out of range/, /2 dims/, /-2\.\.1/);
  throwsWith(() => zeros([2, 3]).sum([0, 0]), /^sum: /, /repeats/);
  throwsWith(() => zeros([2, 3]).mean(-3), /^mean: /, /dim -3/);
  throwsWith(() => zeros([2, 3]).amax(2), /^amax: /, /dim 2/);
  throwsWith(() => zeros([2, 3]).transpose(0, 2), /^transpose: /, /dim 2/);
  throwsWith(() => zeros([2, 3]).permute([0, 0]), /^permute: /, /repeated/);
  throwsWith(() => cat([zeros([2, 3]), zeros([2, 4])], 2), /^cat: /, /dim 2/);
  throwsWith(() => F.softmax(zeros([2, 3]), 2), /^softmax: /, /dim 2/);
  throwsWith(() => zeros([2, 3]).topk(4), /^topk: /, /k = 4/);
  throwsWith(() => zeros([2, 3]).select(1, 3), /^select: /, /index 3/);
});

// ----------------------------------------------------------------------------- dtypes
Deno.test("errors: requiresGrad on an int tensor is refused", () => {
  throwsWith(
    () => tensor([1, 2], { dtype: "int32", requiresGrad: true }),
    /^tensor: /,
    /float32/,
    /int32/,
  );
  throwsWith(() => tensor([1, 2]).requiresGrad_(), /^requiresGrad_: /, /int32/);
});

Deno.test("errors: mean of an int tensor asks for a float", () => {
  throwsWith(() => tensor([1, 2]).mean(), /^mean: /, /floating point/, /int32/);
});

Deno.test("errors: index ops refuse float indices and out-of-range indices", () => {
  throwsWith(() => zeros([2, 3]).gather(1, zeros([2, 1])), /^gather: /, /int32/, /float32/);
  throwsWith(() => zeros([2, 3]).gather(1, tensor([[5]])), /^gather: /, /index 5/, /size 3/);
  throwsWith(() => zeros([2, 3]).indexSelect(1, tensor([[0]])), /^indexSelect: /, /1-D/);
  throwsWith(() => zeros([2, 3]).maskedFill(tensor([1, 0, 1]), 1), /^maskedFill: /, /bool/);
  throwsWith(() => F.embedding(zeros([2]), zeros([3, 2])), /^embedding: /, /int32/);
  throwsWith(() => F.nllLoss(zeros([2, 3]), zeros([2])), /^nllLoss: /, /int32/);
});

Deno.test("errors: unknown dtypes and bool subtraction are refused", () => {
  throwsWith(() => tensor([1], { dtype: "float64" as any }), /^tensor: /, /unknown dtype/);
  throwsWith(() => tensor([true]).sub(tensor([false])), /^sub: /, /bool/);
});

// ----------------------------------------------------------------------- disposal
Deno.test("errors: use after dispose names the op and the tensor's shape", async () => {
  const dead = () => {
    const x = ones([2, 2]);
    x.dispose();
    return x;
  };
  throwsWith(() => dead().add(1), /^add: /, /\[2, 2\]/, /after dispose/);
  throwsWith(() => ones([2, 2]).mul(dead()), /^mul: /, /after dispose/);
  throwsWith(() => dead().sum(), /^sum: /, /after dispose/);
  throwsWith(() => ones([2, 2]).matmul(dead()), /^matmul: /, /after dispose/);
  throwsWith(() => dead().reshape([4]), /^reshape: /, /after dispose/);
  throwsWith(() => cat([ones([2, 2]), dead()]), /^cat: /, /after dispose/);
  await assertRejects(async () => await dead().data(), /^Error: data: .*after dispose/);
  // dispose is idempotent
  const x = ones([2]);
  x.dispose();
  x.dispose();
});

// --------------------------------------------------------------------------- autograd
Deno.test("errors: backward twice without retainGraph says to pass retainGraph", () => {
  const x = ones([2], { requiresGrad: true });
  const y = x.mul(x).sum();
  y.backward();
  throwsWith(() => y.backward(), /^backward: /, /already freed/, /retainGraph: true/);
  // With retainGraph the second pass works and accumulates.
  const z = x.mul(3).sum();
  z.backward(undefined, { retainGraph: true });
  z.backward();
});

Deno.test("errors: backward on a non-scalar without a gradient asks for one", () => {
  const x = ones([2], { requiresGrad: true });
  throwsWith(() => x.mul(2).backward(), /^backward: /, /scalar outputs/, /\[2\]/);
  throwsWith(() => x.mul(2).backward(ones([3])), /^backward: /, /\[3\]/, /\[2\]/);
  throwsWith(() => ones([2]).sum().backward(), /^backward: /, /does not require grad/);
  throwsWith(
    () => valueAndGrad((p: Tensor) => p.mul(2))(ones([2])),
    /^valueAndGrad: /,
    /scalar/,
  );
});

Deno.test("errors: an unknown backend lists the available ones", async () => {
  await assertRejects(() => setBackend("nope"), /setBackend: unknown backend "nope"; available/);
});
