/** Repeating an experiment over seeds and summarising it as mean ± std. */

export interface MeanStd {
  mean: number;
  /** Sample standard deviation (n - 1); 0 for a single value. */
  std: number;
  n: number;
  values: number[];
}

/** Mean and sample standard deviation of a list of numbers. */
export function meanStd(values: number[]): MeanStd {
  const n = values.length;
  if (!n) throw new Error("meanStd: expected at least one value");
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const v = n > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(v), n, values: [...values] };
}

/** "93.1 ± 0.4" with a fixed number of decimals. */
export function fmtMeanStd(m: MeanStd, digits = 2): string {
  return `${m.mean.toFixed(digits)} ± ${m.std.toFixed(digits)}`;
}

/**
 * Runs `fn` once per seed (sequentially, so the global RNG stream is not shared) and returns
 * mean ± std for every numeric metric it reports.
 */
export async function overSeeds<K extends string>(
  seeds: number[],
  fn: (seed: number) => Promise<Record<K, number>> | Record<K, number>,
): Promise<Record<K, MeanStd>> {
  if (!seeds.length) throw new Error("overSeeds: expected at least one seed");
  const runs: Record<K, number>[] = [];
  for (const s of seeds) runs.push(await fn(s));
  const out = {} as Record<K, MeanStd>;
  for (const k of Object.keys(runs[0]) as K[]) {
    const vals = runs.map((r, i) => {
      const v = r[k];
      if (typeof v !== "number") {
        throw new Error(`overSeeds: metric "${k}" of seed ${seeds[i]} is not a number`);
      }
      return v;
    });
    out[k] = meanStd(vals);
  }
  return out;
}
