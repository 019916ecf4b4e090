/**
 * Evaluation metrics on host arrays (read back once per evaluation, never per step):
 * accuracy, ROC AUC, PSNR, perplexity and expected calibration error.
 */

/** Fraction of rows whose arg-max over `numClasses` scores equals the label. */
export function accuracy(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = labels.length;
  if (!n) throw new Error("accuracy: no labels");
  if (scores.length % n) {
    throw new Error(`accuracy: ${scores.length} scores do not split into ${n} rows`);
  }
  const c = scores.length / n;
  let hit = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (scores[i * c + j] > scores[i * c + best]) best = j;
    if (c === 1 ? (scores[i] > 0 ? 1 : 0) === labels[i] : best === labels[i]) hit++;
  }
  return hit / n;
}

/** Area under the ROC curve for binary labels (ties get half credit: Mann-Whitney U). */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = labels.length;
  if (scores.length !== n) throw new Error(`auc: ${scores.length} scores for ${n} labels`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0, rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const rank = (i + j) / 2 + 1; // average rank of the tied block
    for (let k = i; k <= j; k++) {
      if (labels[order[k]]) {
        pos++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (!pos || !neg) throw new Error("auc: needs at least one positive and one negative label");
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Peak signal-to-noise ratio in dB between two signals with values up to `maxValue`. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, maxValue = 1): number {
  if (a.length !== b.length || !a.length) throw new Error("psnr: signals must have equal length");
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  const mse = se / a.length;
  return 10 * Math.log10((maxValue * maxValue) / mse);
}

/** exp of the mean negative log-likelihood (natural log) per token. */
export function perplexity(meanNll: number): number {
  return Math.exp(meanNll);
}

/**
 * Expected calibration error over `bins` equal-width confidence bins, from class
 * probabilities [n, C] (rows summing to 1) and labels.
 */
export function expectedCalibrationError(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  bins = 15,
): number {
  const n = labels.length;
  const c = probs.length / n;
  if (!Number.isInteger(c)) {
    throw new Error("expectedCalibrationError: probs do not split into rows");
  }
  const conf = new Float64Array(bins), acc = new Float64Array(bins), cnt = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (probs[i * c + j] > probs[i * c + best]) best = j;
    const p = probs[i * c + best];
    const b = Math.min(bins - 1, Math.floor(p * bins));
    conf[b] += p;
    acc[b] += best === labels[i] ? 1 : 0;
    cnt[b]++;
  }
  let e = 0;
  for (let b = 0; b < bins; b++) if (cnt[b]) e += Math.abs(acc[b] - conf[b]);
  return e / n;
}
