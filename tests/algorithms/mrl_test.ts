import assert from "node:assert/strict";
import {
  adaptiveRetrieval,
  MatryoshkaHead,
  matryoshkaLoss,
  nestingList,
  truncate,
} from "../../algorithms/mrl/mod.ts";
import { F, manualSeed, randn, tensor } from "../../mod.ts";

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
};

Deno.test("mrl: nestingList halves d down to the smallest size (the paper's M)", () => {
  assert.deepEqual(nestingList(2048), [8, 16, 32, 64, 128, 256, 512, 1024, 2048]);
  assert.deepEqual(nestingList(64, { smallest: 2 }), [2, 4, 8, 16, 32, 64]);
  assert.throws(() => nestingList(48), /not smallest \(8\) times a power of two/);
  assert.throws(() => nestingList(64, { smallest: 0 }), /smallest must be an integer/);
});

Deno.test("mrl: MRL has one head per prefix, MRL-E one tied head of width d", () => {
  const M = [2, 4, 8];
  const mrl = new MatryoshkaHead(M, 5);
  assert.deepEqual(
    mrl.namedParameters().map(([n, p]) => `${n}:${p.shape}`),
    [
      "nesting_classifier_0.weight:5,2",
      "nesting_classifier_0.bias:5",
      "nesting_classifier_1.weight:5,4",
      "nesting_classifier_1.bias:5",
      "nesting_classifier_2.weight:5,8",
      "nesting_classifier_2.bias:5",
    ],
  );
  const e = new MatryoshkaHead(M, 5, { efficient: true });
  assert.deepEqual(
    e.namedParameters().map(([n, p]) => `${n}:${p.shape}`),
    ["nesting_classifier_0.weight:5,8", "nesting_classifier_0.bias:5"],
  );
  const logits = e.forward(randn([3, 8]));
  assert.deepEqual(logits.map((l) => l.shape), [[3, 5], [3, 5], [3, 5]]);
});

Deno.test("mrl: the m-th logits depend only on z_{1:m} (nesting)", async () => {
  manualSeed(0);
  for (const efficient of [false, true]) {
    const head = new MatryoshkaHead([2, 4, 8], 3, { efficient });
    const z = randn([4, 8]);
    // Change only coordinates 3..8: the logits of m = 2 must not move, those of m = 8 must.
    const z2 = z.add(tensor([0, 0, 1, 1, 1, 1, 1, 1]));
    const [a, b] = [head.forward(z), head.forward(z2)];
    close(await a[0].data(), await b[0].data(), 0, `m = 2 (efficient=${efficient})`);
    assert.ok(await a[2].sub(b[2]).abs().max().item() as number > 1e-3);
  }
});

Deno.test("mrl: MRL-E's W^(m) is the first m columns of the one weight W", async () => {
  manualSeed(1);
  const head = new MatryoshkaHead([2, 4], 3, { efficient: true });
  const z = randn([5, 4]);
  const W = head.classifiers[0].weight, b = head.classifiers[0].bias!;
  const want = z.narrow(1, 0, 2).matmul(W.narrow(1, 0, 2).T).add(b);
  close(await head.logitsAt(z, 2).data(), await want.data(), 1e-6, "logits at m = 2");
  assert.throws(() => head.logitsAt(z, 3), /3 is not in the nesting list/);
});

Deno.test("mrl: the loss is Σ c_m CE(logits_m, y) (Eq. 1)", async () => {
  manualSeed(2);
  const head = new MatryoshkaHead([2, 4], 3);
  const z = randn([6, 4]), y = tensor([0, 1, 2, 0, 1, 2], { dtype: "int32" });
  const logits = head.forward(z);
  const ce = await Promise.all(logits.map((l) => F.crossEntropy(l, y).item()));
  const got = await matryoshkaLoss(logits, y, { weights: [0.5, 2] }).item() as number;
  assert.ok(Math.abs(got - (0.5 * (ce[0] as number) + 2 * (ce[1] as number))) < 1e-5);
  const unit = await matryoshkaLoss(logits, y).item() as number;
  assert.ok(Math.abs(unit - ((ce[0] as number) + (ce[1] as number))) < 1e-5);
  assert.throws(() => matryoshkaLoss(logits, y, { weights: [1] }), /1 weights c_m for 2/);
});

Deno.test("mrl: gradients of a small prefix's loss reach only z_{1:m}", async () => {
  manualSeed(3);
  const head = new MatryoshkaHead([2, 4], 3);
  const z = randn([4, 4], { requiresGrad: true });
  const y = tensor([0, 1, 2, 0], { dtype: "int32" });
  matryoshkaLoss([head.logitsAt(z, 2)], y).backward();
  const g = await z.grad!.data();
  for (let r = 0; r < 4; r++) {
    assert.ok(Math.abs(g[r * 4]) + Math.abs(g[r * 4 + 1]) > 0);
    assert.equal(g[r * 4 + 2], 0);
    assert.equal(g[r * 4 + 3], 0);
  }
  // The m = 4 head's parameters get no gradient from the m = 2 term.
  assert.equal(head.classifiers[1].weight.grad, null);
});

Deno.test("mrl: bad options are clear errors", () => {
  assert.throws(() => new MatryoshkaHead([4, 2], 3), /increasing positive integers/);
  assert.throws(() => new MatryoshkaHead([], 3), /must not be empty/);
  assert.throws(() => new MatryoshkaHead([2, 4], 0), /numClasses must be a positive integer/);
  assert.throws(() => new MatryoshkaHead([2, 8], 3).forward(randn([2, 4])), /fewer than/);
  assert.throws(() => truncate(randn([2, 4]), 5), /m must be an integer in \[1, 4\]/);
});

Deno.test("mrl: adaptive retrieval equals exact search when the shortlist is everything", async () => {
  manualSeed(4);
  const db = randn([30, 8]), q = randn([5, 8]);
  const exact = await adaptiveRetrieval(q, db, { shortlistDim: 8, shortlistSize: 30, topK: 3 })
    .data();
  // Brute force cosine nearest neighbours.
  const qn = F.normalize(q, { dim: -1 }), dn = F.normalize(db, { dim: -1 });
  const want = await qn.matmul(dn.T).topk(3, -1).indices.data();
  assert.deepEqual([...exact], [...want]);
  // A shortlist from 2-d prefixes re-ranked at 8 dims returns items of that shortlist.
  const funnel = await adaptiveRetrieval(q, db, { shortlistDim: 2, shortlistSize: 5 }).data();
  const short = await F.normalize(q.narrow(1, 0, 2), { dim: -1 })
    .matmul(F.normalize(db.narrow(1, 0, 2), { dim: -1 }).T).topk(5, -1).indices.data();
  for (let i = 0; i < 5; i++) {
    assert.ok([...short.slice(i * 5, i * 5 + 5)].includes(funnel[i]), `query ${i}`);
  }
  assert.throws(
    () => adaptiveRetrieval(q, db, { shortlistDim: 2, shortlistSize: 3, topK: 4 }),
    /topK must be in \[1, shortlistSize = 3\]/,
  );
});
