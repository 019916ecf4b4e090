import assert from "node:assert/strict";
import { accuracy, auc, expectedCalibrationError, perplexity, psnr } from "../../lab/metrics.ts";
import { fmtMeanStd, meanStd, overSeeds } from "../../lab/stats.ts";

Deno.test("accuracy: counts rows whose arg-max equals the label", () => {
  const scores = [0.1, 0.9, 0.8, 0.2, 0.3, 0.7];
  assert.equal(accuracy(scores, [1, 0, 0]), 2 / 3);
});

Deno.test("auc: perfect ranking is 1, reversed is 0, ties get half credit", () => {
  assert.equal(auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  assert.equal(auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
  assert.equal(auc([0.5, 0.5], [0, 1]), 0.5);
  assert.throws(() => auc([1, 2], [1, 1]), /positive and one negative/);
});

Deno.test("psnr: an MSE of 0.01 on unit range is 20 dB", () => {
  assert.ok(Math.abs(psnr([0, 0, 0, 0], [0.1, -0.1, 0.1, -0.1]) - 20) < 1e-9);
});

Deno.test("perplexity: exp of the mean NLL", () => {
  assert.ok(Math.abs(perplexity(Math.log(7)) - 7) < 1e-12);
});

Deno.test("expectedCalibrationError: a calibrated predictor scores 0, an overconfident one more", () => {
  // Confidence 0.75 and right 3 times out of 4: calibrated.
  const probs = [0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25];
  assert.ok(expectedCalibrationError(probs, [0, 0, 0, 1]) < 1e-12);
  const over = [1, 0, 1, 0, 1, 0, 1, 0];
  assert.ok(Math.abs(expectedCalibrationError(over, [0, 0, 0, 1]) - 0.25) < 1e-12);
});

Deno.test("meanStd: sample standard deviation over seeds", async () => {
  const m = meanStd([1, 2, 3]);
  assert.equal(m.mean, 2);
  assert.equal(m.std, 1);
  assert.equal(fmtMeanStd(m, 1), "2.0 ± 1.0");
  const r = await overSeeds([0, 1, 2, 3], (s) => ({ acc: s, twice: 2 * s }));
  assert.equal(r.acc.mean, 1.5);
  assert.equal(r.twice.values.length, 4);
});
