/**
 * In-context linear regression prompts (Garg et al. 2022, "What can transformers learn
 * in-context?"): for each of n prompts a weight vector w ~ N(0, I_d) is drawn, then k points
 * x_i ~ N(0, I_d) with targets y_i = w . x_i + eps_i, eps_i ~ N(0, noiseStd^2).
 *
 * The result is a Dataset whose x holds the points [n, k, d] and y the targets [n, k], with
 * the weights as an extra typed field `w` [n, d] (also `meta.w`, row-aligned, so `subset` and
 * `split` keep each prompt's weights). `regressionTokens` lays a prompt out as the token
 * sequence x_1, y_1, ..., x_k, y_k that sequence models read.
 */

import { Generator } from "../../core/random.ts";
import { checkInt, checkNumber, checkSeed, type Dataset, optionError } from "../dataset.ts";

/** Options of `linearRegression`. */
export interface RegressionOptions {
  /** Number of prompts. Default 256. */
  n?: number;
  /** Points per prompt. Default 16. */
  k?: number;
  /** Input dimension. Default 8. */
  d?: number;
  /** Std of the label noise. Default 0 (y = w . x exactly, up to float32 rounding). */
  noiseStd?: number;
  /** Std of the weights: w ~ N(0, wStd^2 I_d). Default 1. */
  wStd?: number;
  /** Seed. Default 0. */
  seed?: number;
}

/** A regression dataset: x = xs [n, k, d], y = ys [n, k], plus the weights. */
export interface RegressionDataset extends Dataset {
  /** The points x_i of every prompt, [n, k, d]. */
  x: Float32Array;
  /** The targets y_i, [n, k]. */
  y: Float32Array;
  /** The weights of each prompt, [n, d] row-major (the same array as meta.w). */
  w: Float32Array;
  /** [n, d]. */
  wShape: [number, number];
}

/** Generates the prompts (see the module comment). Draw order: per prompt, w then each x. */
export function linearRegression(options: RegressionOptions = {}): RegressionDataset {
  const G = "linearRegression";
  const { n = 256, k = 16, d = 8, noiseStd = 0, wStd = 1, seed = 0 } = options;
  checkInt(G, "n", n, 1);
  checkInt(G, "k", k, 1);
  checkInt(G, "d", d, 1);
  checkNumber(G, "noiseStd", noiseStd, 0);
  checkNumber(G, "wStd", wStd, 0);
  checkSeed(G, seed);
  if (n * k * d > 2 ** 28) throw optionError(G, "n * k * d", `is too large (${n * k * d})`);

  const gen = new Generator(seed);
  const noiseGen = gen.fork(); // separate stream: noise never changes w or x
  const xs = new Float32Array(n * k * d);
  const ys = new Float32Array(n * k);
  const ws = new Float32Array(n * d);
  for (let p = 0; p < n; p++) {
    for (let j = 0; j < d; j++) ws[p * d + j] = gen.normal(0, wStd);
    for (let i = 0; i < k; i++) {
      const off = (p * k + i) * d;
      let dot = 0;
      for (let j = 0; j < d; j++) {
        xs[off + j] = gen.normal();
        dot += ws[p * d + j] * xs[off + j]; // in float64 from the stored float32 values
      }
      ys[p * k + i] = noiseStd > 0 ? dot + noiseGen.normal(0, noiseStd) : dot;
    }
  }

  return {
    name: "linear-regression",
    x: xs,
    xShape: [n, k, d],
    y: ys,
    yShape: [n, k],
    w: ws,
    wShape: [n, d],
    meta: {
      generator: "linearRegression",
      w: ws,
      wShape: [n, d],
      options: { n, k, d, noiseStd, wStd, seed },
      perRow: ["w"],
    },
  };
}

/**
 * Interleaves each prompt into 2k tokens of width d + 1: the x-token of point i is
 * (x_i, 0) and its y-token is (y_i, 0, ..., 0, 1); the last coordinate flags y-tokens.
 * Returns Float32Array [n, 2k, d + 1] and its shape. A model predicts y_i at the position of
 * x_i (token 2i), having seen the i earlier (x, y) pairs.
 */
export function regressionTokens(ds: Dataset): { tokens: Float32Array; shape: number[] } {
  if (ds.xShape.length !== 3 || ds.yShape.length !== 2) {
    throw new Error(
      `regressionTokens: expected xs [n, k, d] and ys [n, k], got ${ds.xShape} and ${ds.yShape}`,
    );
  }
  const [n, k, d] = ds.xShape;
  const w = d + 1;
  const tokens = new Float32Array(n * 2 * k * w);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < k; i++) {
      const xt = ((p * k + i) * 2) * w;
      const yt = xt + w;
      tokens.set(ds.x.subarray((p * k + i) * d, (p * k + i + 1) * d), xt);
      tokens[yt] = ds.y[p * k + i];
      tokens[yt + d] = 1;
    }
  }
  return { tokens, shape: [n, 2 * k, w] };
}
