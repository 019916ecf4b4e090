/**
 * Low-dimensional classification toys: Gaussian mixtures (k components in d dimensions), two
 * moons and k-armed spirals, each with Gaussian noise.
 *
 * Classes are exactly balanced (each gets floor(n/k) or ceil(n/k) rows) and rows are in
 * random order. x is Float32Array [n, d] (d = 2 for moons and spirals), y Int32Array [n].
 */

import { Generator } from "../../core/random.ts";
import { checkInt, checkNumber, checkSeed, type TypedDataset } from "../dataset.ts";

/** Class labels 0..k-1, balanced, in random order. */
function balancedLabels(gen: Generator, n: number, k: number): Int32Array {
  const y = gen.permutation(n);
  for (let i = 0; i < n; i++) y[i] %= k;
  return y;
}

/** Options of `gaussianMixture`. */
export interface GaussianMixtureOptions {
  /** Number of points. Default 600. */
  n?: number;
  /** Number of components (classes). Default 3. */
  k?: number;
  /** Dimension. Default 2. */
  dim?: number;
  /** Std of the component means: mu_c ~ N(0, centerStd^2 I). Default 3. */
  centerStd?: number;
  /** Std of each component: x ~ N(mu_c, std^2 I). Default 1. */
  std?: number;
  /** Seed. Default 0. */
  seed?: number;
}

/**
 * Points from k isotropic Gaussians; label = component. `meta.means` holds the means
 * [k, dim] row-major.
 */
export function gaussianMixture(
  options: GaussianMixtureOptions = {},
): TypedDataset<Float32Array, Int32Array> {
  const G = "gaussianMixture";
  const { n = 600, k = 3, dim = 2, centerStd = 3, std = 1, seed = 0 } = options;
  checkInt(G, "n", n, 1);
  checkInt(G, "k", k, 1);
  checkInt(G, "dim", dim, 1);
  checkNumber(G, "centerStd", centerStd, 0);
  checkNumber(G, "std", std, 0);
  checkSeed(G, seed);

  const gen = new Generator(seed);
  const means = new Float32Array(k * dim);
  for (let i = 0; i < means.length; i++) means[i] = gen.normal(0, centerStd);
  const y = balancedLabels(gen, n, k);
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) x[i * dim + j] = means[y[i] * dim + j] + gen.normal(0, std);
  }
  return {
    name: "gaussian-mixture",
    x,
    xShape: [n, dim],
    y,
    yShape: [n],
    numClasses: k,
    meta: { generator: G, means, options: { n, k, dim, centerStd, std, seed } },
  };
}

/** Options of `twoMoons`. */
export interface MoonsOptions {
  /** Number of points. Default 500. */
  n?: number;
  /** Std of the Gaussian noise added to each coordinate. Default 0.1. */
  noise?: number;
  /** Seed. Default 0. */
  seed?: number;
}

/**
 * Two interleaved half circles (as scikit-learn's make_moons, with angles drawn uniformly):
 * class 0 is (cos t, sin t), class 1 is (1 - cos t, 0.5 - sin t), t ~ U[0, pi], plus noise.
 */
export function twoMoons(options: MoonsOptions = {}): TypedDataset<Float32Array, Int32Array> {
  const G = "twoMoons";
  const { n = 500, noise = 0.1, seed = 0 } = options;
  checkInt(G, "n", n, 1);
  checkNumber(G, "noise", noise, 0);
  checkSeed(G, seed);

  const gen = new Generator(seed);
  const y = balancedLabels(gen, n, 2);
  const x = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const t = gen.uniform(0, Math.PI);
    const [a, b] = y[i] === 0 ? [Math.cos(t), Math.sin(t)] : [1 - Math.cos(t), 0.5 - Math.sin(t)];
    x[2 * i] = a + (noise > 0 ? gen.normal(0, noise) : 0);
    x[2 * i + 1] = b + (noise > 0 ? gen.normal(0, noise) : 0);
  }
  return {
    name: "two-moons",
    x,
    xShape: [n, 2],
    y,
    yShape: [n],
    numClasses: 2,
    meta: { generator: G, options: { n, noise, seed } },
  };
}

/** Options of `spirals`. */
export interface SpiralsOptions {
  /** Number of points. Default 600. */
  n?: number;
  /** Number of arms (classes). Default 2. */
  arms?: number;
  /** Turns each arm makes from the centre to radius 1. Default 1. */
  turns?: number;
  /** Std of the Gaussian noise added to each coordinate. Default 0.05. */
  noise?: number;
  /** Seed. Default 0. */
  seed?: number;
}

/**
 * k interleaved spiral arms: arm c at s ~ U(0, 1] is radius s, angle
 * 2 pi (turns * s + c / arms), plus noise. Label = arm.
 */
export function spirals(options: SpiralsOptions = {}): TypedDataset<Float32Array, Int32Array> {
  const G = "spirals";
  const { n = 600, arms = 2, turns = 1, noise = 0.05, seed = 0 } = options;
  checkInt(G, "n", n, 1);
  checkInt(G, "arms", arms, 1, 64);
  checkNumber(G, "turns", turns, 0, 100);
  checkNumber(G, "noise", noise, 0);
  checkSeed(G, seed);

  const gen = new Generator(seed);
  const y = balancedLabels(gen, n, arms);
  const x = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const s = 1 - gen.uniform(); // (0, 1]
    const angle = 2 * Math.PI * (turns * s + y[i] / arms);
    x[2 * i] = s * Math.cos(angle) + (noise > 0 ? gen.normal(0, noise) : 0);
    x[2 * i + 1] = s * Math.sin(angle) + (noise > 0 ? gen.normal(0, noise) : 0);
  }
  return {
    name: "spirals",
    x,
    xShape: [n, 2],
    y,
    yShape: [n],
    numClasses: arms,
    meta: { generator: G, options: { n, arms, turns, noise, seed } },
  };
}
