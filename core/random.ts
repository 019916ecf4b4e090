/**
 * Counter-based random numbers: the same seed gives the same numbers on every backend.
 *
 * Element `i` of a draw is a pure function of `(key, counter + i)`, so a GPU kernel can compute
 * any element independently and agree bit for bit with the CPU. `manualSeed(seed)` sets the
 * key and resets the global counter; each draw advances the counter by the number of 32-bit
 * words it used.
 *
 * The mixer is a two-round integer hash (the "lowbias32" finaliser of C. Wellons, constants
 * 0x7feb352d and 0x846ca68b) keyed by the seed. It is not cryptographic; it passes the
 * moment checks in tests/core/random_test.ts and is what every backend implements.
 */

/** One 32-bit avalanche round (lowbias32). */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The two key words derived from a seed. */
export function seedKey(seed: number): [number, number] {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return [mix32(lo ^ 0x9e3779b9), mix32(hi ^ mix32(lo + 0x6a09e667))];
}

/** The random 32-bit word at a 53-bit counter position for key `(k0, k1)`. */
export function bitsAt(k0: number, k1: number, counter: number): number {
  const lo = counter >>> 0;
  const hi = Math.floor(counter / 4294967296) >>> 0;
  return mix32(mix32(lo ^ k0) ^ ((hi + k1) >>> 0));
}

/** Uniform in [0, 1) from one word: 24 bits of mantissa, exactly representable in float32. */
export function wordToUniform(w: number): number {
  return (w >>> 8) * 5.9604644775390625e-8;
}

/** Standard normal from two words (Box-Muller, cosine branch). */
export function wordsToNormal(w0: number, w1: number): number {
  const u1 = ((w0 >>> 8) + 1) * 5.9604644775390625e-8; // (0, 1]
  const u2 = (w1 >>> 8) * 5.9604644775390625e-8;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** The global generator state used by tensor creation (`rand`, `randn`, `dropout`...). */
const state = { seed: 0, key: seedKey(0), counter: 0 };

/** Seeds the global generator; every later draw is then reproducible on every backend. */
export function manualSeed(seed: number): void {
  if (!Number.isFinite(seed) || seed < 0 || !Number.isInteger(seed)) {
    throw new Error(`manualSeed: expected a non-negative integer seed, got ${seed}`);
  }
  state.seed = seed;
  state.key = seedKey(seed);
  state.counter = 0;
}

/** The seed last given to `manualSeed` (0 at start-up). */
export function initialSeed(): number {
  return state.seed;
}

/** Reserves `words` counter positions of the global stream and returns the key and start. */
export function takeCounter(words: number): { key: [number, number]; start: number } {
  const start = state.counter;
  state.counter += words;
  return { key: state.key, start };
}

/**
 * A small sequential generator for host-side code (data generators, shuffles, sampling),
 * independent of the global tensor stream. Same seed, same sequence.
 */
export class Generator {
  #key: [number, number];
  #counter = 0;

  constructor(readonly seed: number) {
    if (!Number.isFinite(seed) || !Number.isInteger(seed) || seed < 0) {
      throw new Error(`Generator: expected a non-negative integer seed, got ${seed}`);
    }
    this.#key = seedKey(seed);
  }

  /** A fresh 32-bit word. */
  nextU32(): number {
    return bitsAt(this.#key[0], this.#key[1], this.#counter++);
  }

  /** Uniform in [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * wordToUniform(this.nextU32());
  }

  /** Normal with the given mean and standard deviation. */
  normal(mean = 0, std = 1): number {
    const w0 = this.nextU32();
    const w1 = this.nextU32();
    return mean + std * wordsToNormal(w0, w1);
  }

  /** Integer in [low, high) (high exclusive), unbiased by rejection. */
  int(low: number, high: number): number {
    const n = high - low;
    if (!(n >= 1) || !Number.isInteger(n)) {
      throw new Error(`Generator.int: expected integers low < high, got [${low}, ${high})`);
    }
    if (n > 4294967296) throw new Error(`Generator.int: range ${n} exceeds 2^32`);
    const limit = 4294967296 - (4294967296 % n);
    let w = this.nextU32();
    while (w >= limit) w = this.nextU32();
    return low + (w % n);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    this.shuffle(out);
    return out;
  }

  /** Shuffles an array in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: any }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A child generator with an independent stream (for splitting work deterministically). */
  fork(): Generator {
    return new Generator(this.nextU32() * 2097152 + (this.nextU32() >>> 11));
  }
}
