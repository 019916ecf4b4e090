/**
 * `defineBenchmark`: how a paper's miniature table is declared. A benchmark has one config per
 * profile (smoke: seconds, for CI; quick: about a minute; full: the committed result), a `run`
 * that returns the table's rows, and a `check` that states the paper's claim as a falsifiable
 * condition on those rows. A failed check is a result ("diverges"), never an error.
 */

export type Profile = "smoke" | "quick" | "full";
export const PROFILES: readonly Profile[] = ["smoke", "quick", "full"];

/** One row of a result table: method, params, metric ± spread, time, memory... */
export type Row = Record<string, string | number | boolean | null>;

export interface CheckResult {
  pass: boolean;
  /** One or two sentences: what was compared and what was seen (with the numbers). */
  summary: string;
}

export interface BenchContext {
  profile: Profile;
  /** The seeds to repeat over (the profile's `seeds`, or the CLI's override). */
  seeds: number[];
  /** The backend the run uses ("cpu" or "webgpu"). */
  backend: string;
  /** Reports progress: a fraction in [0, 1] and a short message. */
  progress(fraction: number, message?: string): void;
  /** A line of log output (shown under the progress display). */
  log(message: string): void;
}

/** The paper's own numbers that the miniature is compared with, labelled as the paper's. */
export interface Reported {
  /** Where in the paper: "Table 2", "Figure 3"... */
  source: string;
  rows: Row[];
  note?: string;
}

export interface BenchmarkDef<C extends { seeds: number[] } = { seeds: number[] }> {
  /** The paper's slug in data/papers.json (also the module folder and results file name). */
  slug: string;
  /** What the table reproduces, e.g. "Table 1: accuracy vs trainable parameters". */
  table: string;
  /** Config per profile; each has at least the seeds to run. */
  profiles: Record<Profile, C>;
  reported?: Reported;
  run(ctx: BenchContext, config: C): Promise<Row[]>;
  check(rows: Row[]): CheckResult;
}

/** Validates and returns a benchmark definition (the default export of benchmarks/<slug>.ts). */
export function defineBenchmark<C extends { seeds: number[] }>(
  def: BenchmarkDef<C>,
): BenchmarkDef<C> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(def.slug ?? "")) {
    throw new Error(
      `defineBenchmark: slug must be lowercase words joined by "-", got "${def.slug}"`,
    );
  }
  for (const p of PROFILES) {
    const c = def.profiles?.[p];
    if (!c) throw new Error(`defineBenchmark(${def.slug}): missing profile "${p}"`);
    if (!Array.isArray(c.seeds) || !c.seeds.length) {
      throw new Error(`defineBenchmark(${def.slug}): profile "${p}" needs a non-empty seeds list`);
    }
  }
  if (typeof def.run !== "function" || typeof def.check !== "function") {
    throw new Error(`defineBenchmark(${def.slug}): run and check must be functions`);
  }
  return def;
}
