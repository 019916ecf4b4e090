/** Runs benchmark definitions and records their results (the logic behind `deno task bench`). */
import { getBackend, setBackend } from "../../core/backend.ts";
import { memory } from "../../core/memory.ts";
import type { PaperFacts } from "../../tools/index_lib.ts";
import type { BenchContext, BenchmarkDef, Profile, Row } from "./define.ts";
import type { ProgressSink } from "./progress.ts";
import { gitCommit, writeResult } from "./results.ts";

export interface RunOptions {
  profile: Profile;
  /** "cpu", "webgpu" or "auto"; default: the current backend. */
  backend?: string;
  /** Overrides every benchmark's seeds. */
  seeds?: number[];
  /** Results directory (data/results). */
  outDir: string;
  papers: PaperFacts[];
  progress: ProgressSink;
}

export interface RunSummary {
  slug: string;
  status: "pass" | "diverges" | "error";
  summary: string;
  wallTimeMs: number;
  /** The result file written (absent after an error: previous results are untouched). */
  path?: string;
}

/** Runs one benchmark; errors are caught and reported, never half-written. */
export async function runOne(
  def: BenchmarkDef,
  o: RunOptions,
  label = def.slug,
): Promise<RunSummary> {
  const t0 = performance.now();
  const paper = o.papers.find((p) => p.slug === def.slug);
  o.progress.start(label);
  let peakBytes = memory().bytes, peakRss = Deno.memoryUsage().rss;
  const sample = () => {
    peakBytes = Math.max(peakBytes, memory().bytes);
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  };
  try {
    if (!paper) throw new Error(`no paper with slug "${def.slug}" in data/papers.json`);
    if (o.backend) await setBackend(o.backend);
    const config = { ...def.profiles[o.profile] };
    if (o.seeds) config.seeds = o.seeds;
    const ctx: BenchContext = {
      profile: o.profile,
      seeds: config.seeds,
      backend: getBackend().name,
      progress: (f, m) => {
        sample();
        o.progress.update(f, m);
      },
      log: (m) => o.progress.log(m),
    };
    const rows: Row[] = await def.run(ctx, config);
    sample();
    if (!Array.isArray(rows) || !rows.length) throw new Error("run() returned no rows");
    const check = def.check(rows);
    if (typeof check?.pass !== "boolean" || typeof check.summary !== "string") {
      throw new Error("check() must return { pass: boolean, summary: string }");
    }
    const wallTimeMs = Math.round(performance.now() - t0);
    const path = await writeResult(o.outDir, {
      slug: def.slug,
      id: paper.id,
      title: paper.title,
      table: def.table,
      profile: o.profile,
      rows,
      reported: def.reported,
      check,
      provenance: {
        commit: await gitCommit(),
        date: new Date().toISOString(),
        profile: o.profile,
        backend: getBackend().name,
        adapter: getBackend().deviceInfo,
        seeds: config.seeds,
        wallTimeMs,
        peakMemoryBytes: peakBytes,
        peakRssBytes: peakRss,
        deno: Deno.version.deno,
      },
    });
    const status = check.pass ? "pass" : "diverges";
    o.progress.end(`${status}: ${check.summary}`);
    return { slug: def.slug, status, summary: check.summary, wallTimeMs, path };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    o.progress.end(`error: ${msg}`);
    if (e instanceof Error && e.stack) console.error(e.stack);
    return { slug: def.slug, status: "error", summary: msg, wallTimeMs: performance.now() - t0 };
  }
}

/** Keeps the i-th of n shards (1-based i) of a sorted list of slugs. */
export function shard<T extends { slug: string }>(defs: T[], i: number, n: number): T[] {
  if (!(Number.isInteger(n) && n >= 1 && Number.isInteger(i) && i >= 1 && i <= n)) {
    throw new Error(`bench: --shard must be i/n with 1 <= i <= n, got ${i}/${n}`);
  }
  return [...defs].sort((a, b) => a.slug.localeCompare(b.slug)).filter((_, k) => k % n === i - 1);
}

/** A plain-text summary table of a run. */
export function summaryTable(results: RunSummary[]): string {
  const lines = ["| benchmark | status | time | summary |", "| --- | --- | ---: | --- |"];
  for (const r of results) {
    const s = r.summary.replace(/\|/g, "\\|").replace(/\s+/g, " ");
    lines.push(`| ${r.slug} | ${r.status} | ${(r.wallTimeMs / 1000).toFixed(1)}s | ${s} |`);
  }
  return lines.join("\n");
}
