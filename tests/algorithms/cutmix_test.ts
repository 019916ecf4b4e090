import assert from "node:assert/strict";
import {
  cutmix,
  cutout,
  mixedCrossEntropy,
  mixedTargets,
  mixup,
  randBox,
  sampleBeta,
} from "../../algorithms/cutmix/mod.ts";
import { F, Generator, manualSeed, randn, tensor } from "../../mod.ts";

/** N images of shape [C, H, W] where image i is filled with the value i + 1. */
function constantImages(n: number, c: number, h: number, w: number) {
  const data = new Float32Array(n * c * h * w);
  for (let i = 0; i < n; i++) data.fill(i + 1, i * c * h * w, (i + 1) * c * h * w);
  return tensor(data, { shape: [n, c, h, w] });
}
const labels = (n: number) => tensor(Int32Array.from({ length: n }, (_, i) => i % 10));

Deno.test("sampleBeta: moments of Beta(α, α) match 1/2 and 1/(4(2α+1))", () => {
  for (const alpha of [1, 0.4, 3]) {
    const g = new Generator(7);
    const xs = Array.from({ length: 20000 }, () => sampleBeta(alpha, alpha, g));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
    assert.ok(xs.every((x) => x >= 0 && x <= 1));
    assert.ok(Math.abs(mean - 0.5) < 0.01, `alpha ${alpha}: mean ${mean}`);
    assert.ok(Math.abs(v - 1 / (4 * (2 * alpha + 1))) < 0.005, `alpha ${alpha}: var ${v}`);
  }
});

Deno.test("randBox: sides are floor(sqrt(1 - λ) W), clipped inside the image", () => {
  const g = new Generator(1);
  for (let t = 0; t < 500; t++) {
    const lam = g.uniform();
    const b = randBox(32, 32, lam, g);
    assert.ok(0 <= b.x0 && b.x0 <= b.x1 && b.x1 <= 32 && 0 <= b.y0 && b.y0 <= b.y1 && b.y1 <= 32);
    const side = 2 * Math.floor(Math.floor(32 * Math.sqrt(1 - lam)) / 2);
    assert.ok(b.x1 - b.x0 <= side && b.y1 - b.y0 <= side);
  }
  const full = randBox(8, 8, 1, g);
  assert.equal((full.x1 - full.x0) * (full.y1 - full.y0), 0, "λ = 1 pastes nothing");
});

Deno.test("cutmix: λ is the exact fraction of pixels kept from x_A, the box holds x_B", async () => {
  manualSeed(3);
  const n = 8, h = 10, w = 12;
  for (let trial = 0; trial < 5; trial++) {
    const b = cutmix(constantImages(n, 2, h, w), labels(n));
    const v = await b.x.data();
    const { y0, y1, x0, x1 } = b.box!;
    assert.ok(Math.abs(b.lam - (1 - ((y1 - y0) * (x1 - x0)) / (h * w))) < 1e-12);
    for (let i = 0; i < n; i++) {
      let kept = 0;
      for (let c = 0; c < 2; c++) {
        for (let r = 0; r < h; r++) {
          for (let q = 0; q < w; q++) {
            const px = v[((i * 2 + c) * h + r) * w + q];
            const inBox = r >= y0 && r < y1 && q >= x0 && q < x1;
            assert.equal(px, inBox ? b.index[i] + 1 : i + 1);
            if (px === i + 1) kept++;
          }
        }
      }
      if (b.index[i] !== i) assert.ok(Math.abs(kept / (2 * h * w) - b.lam) < 1e-12);
    }
    const yB = await b.yB.data();
    for (let i = 0; i < n; i++) assert.equal(yB[i], b.index[i] % 10);
  }
});

Deno.test("cutmix and mixup: the same manualSeed gives the same batch", async () => {
  const x = randn([6, 1, 8, 8]), y = labels(6);
  for (const fn of [cutmix, mixup]) {
    manualSeed(11);
    const a = fn(x, y);
    manualSeed(11);
    const b = fn(x, y);
    assert.equal(a.lam, b.lam);
    assert.deepEqual(a.index, b.index);
    assert.deepEqual(await a.x.data(), await b.x.data());
    const c = fn(x, y); // the stream moved on
    assert.ok(c.lam !== b.lam || c.index.join() !== b.index.join());
  }
});

Deno.test("cutmix: each input pixel reaches the batch exactly once (gradient of sum is 1)", async () => {
  manualSeed(5);
  const x = randn([5, 3, 6, 6]).requiresGrad_();
  cutmix(x, labels(5)).x.sum().backward();
  assert.ok((await x.grad!.data()).every((g) => Math.abs(g - 1) < 1e-6));
});

Deno.test("cutmix: adjusted λ is biased above E[λ] = 1/2 by border clipping", () => {
  manualSeed(2);
  const x = randn([4, 1, 16, 16]), y = labels(4);
  let s = 0;
  for (let t = 0; t < 400; t++) s += cutmix(x, y).lam;
  assert.ok(s / 400 > 0.55 && s / 400 < 0.8, `mean adjusted λ ${s / 400}`);
});

Deno.test("mixup: x̃ = λ x_A + (1 - λ) x_B", async () => {
  manualSeed(4);
  const x = randn([6, 2, 4, 4]), y = labels(6);
  const b = mixup(x, y, { alpha: 0.4 });
  const xv = await x.data(), mv = await b.x.data(), per = 2 * 16;
  for (let i = 0; i < 6; i++) {
    for (let k = 0; k < per; k++) {
      const want = b.lam * xv[i * per + k] + (1 - b.lam) * xv[b.index[i] * per + k];
      assert.ok(Math.abs(mv[i * per + k] - want) < 1e-5);
    }
  }
});

Deno.test("mixedCrossEntropy equals cross-entropy against the soft targets ỹ", async () => {
  manualSeed(8);
  const b = cutmix(randn([8, 1, 8, 8]), labels(8));
  const logits = randn([8, 10]).requiresGrad_();
  const l1 = mixedCrossEntropy(logits, b);
  const l2 = F.crossEntropy(logits, mixedTargets(b, 10));
  assert.ok(Math.abs(Number(await l1.item()) - Number(await l2.item())) < 1e-5);
  const t = await mixedTargets(b, 10).sum(1).data();
  assert.ok(t.every((v) => Math.abs(v - 1) < 1e-6), "soft targets sum to 1");
  l1.backward();
  assert.ok(Number(await logits.grad!.abs().sum().item()) > 0, "gradient reaches the logits");
});

Deno.test("prob = 0 leaves the batch unmixed with λ = 1", () => {
  const x = randn([4, 1, 8, 8]), y = labels(4);
  for (const fn of [cutmix, mixup]) {
    const b = fn(x, y, { prob: 0 });
    assert.equal(b.x, x);
    assert.equal(b.lam, 1);
  }
  assert.deepEqual(cutout(x, { prob: 0 }).shape, [4, 1, 8, 8]);
});

Deno.test("cutout: zeroes one clipped square per image, the same across channels", async () => {
  manualSeed(9);
  const n = 20, h = 8, w = 8;
  const out = await cutout(constantImages(n, 3, h, w), { size: 4 }).data();
  for (let i = 0; i < n; i++) {
    const zero = (c: number) =>
      Array.from({ length: h * w }, (_, p) => out[(i * 3 + c) * h * w + p] === 0);
    const z0 = zero(0);
    assert.deepEqual(zero(1), z0);
    assert.deepEqual(zero(2), z0);
    const count = z0.filter(Boolean).length;
    assert.ok(count >= 4 && count <= 16, `image ${i}: ${count} zeroed pixels`);
  }
});

Deno.test("augmentations reject bad options and shapes with clear errors", () => {
  const x = randn([4, 1, 8, 8]), y = labels(4);
  assert.throws(() => cutmix(x, y, { alpha: 0 }), /cutmix: alpha must be > 0/);
  assert.throws(() => mixup(x, y, { prob: 2 }), /mixup: prob must be in \[0, 1\]/);
  assert.throws(() => cutmix(randn([4, 64]), y), /cutmix: expected x of shape \[N, C, H, W\]/);
  assert.throws(() => cutmix(x, labels(3)), /cutmix: expected labels y of shape \[4\]/);
  assert.throws(() => cutout(x, { size: -1 }), /cutout: size must be a non-negative integer/);
  assert.throws(() => sampleBeta(-1, 1), /sampleBeta: a and b must be > 0/);
});
