/**
 * `deno task bench [slug...] [--profile smoke|quick|full] [--theme T] [--shard i/n]
 * [--backend cpu|webgpu|auto] [--seeds 0,1,2] [--list]`
 *
 * Runs every benchmark in benchmarks/<slug>.ts (or the ones named), shows progress, writes
 * results (see results.ts) and prints a summary table. Exits non-zero only when a benchmark
 * fails with an error; a claim that diverges is a result, not a failure.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import "../../core/mod.ts";
import { parsePapers } from "../../tools/index_lib.ts";
import { type BenchmarkDef, type Profile, PROFILES } from "./define.ts";
import { createProgress } from "./progress.ts";
import { runOne, shard, summaryTable } from "./runner.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const USAGE =
  "usage: deno task bench [slug...] [--profile smoke|quick|full] [--theme T] [--shard i/n] " +
  "[--backend cpu|webgpu|auto] [--seeds 0,1,2] [--list]";

/** Every benchmarks/<slug>.ts default export, sorted by slug. */
export async function discover(dir = join(ROOT, "benchmarks")): Promise<BenchmarkDef[]> {
  const defs: BenchmarkDef[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".ts") || e.name.startsWith("_")) continue;
    const mod = await import(pathToFileURL(join(dir, e.name)).href);
    const def = mod.default as BenchmarkDef | undefined;
    if (!def?.slug) throw new Error(`bench: ${e.name} has no default export from defineBenchmark`);
    if (`${def.slug}.ts` !== e.name) {
      throw new Error(
        `bench: ${e.name} defines slug "${def.slug}"; the file must be named after it`,
      );
    }
    defs.push(def);
  }
  return defs.sort((a, b) => a.slug.localeCompare(b.slug));
}

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        profile: { type: "string", default: "quick" },
        theme: { type: "string" },
        shard: { type: "string" },
        backend: { type: "string" },
        seeds: { type: "string" },
        list: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const profile = v.profile as Profile;
  if (!PROFILES.includes(profile)) {
    console.error(`bench: unknown profile "${v.profile}"; expected smoke, quick or full`);
    return 2;
  }
  const papers = parsePapers(
    await Deno.readTextFile(join(ROOT, "data/papers.json")),
    "data/papers.json",
  );
  let defs = await discover();
  const unknown = positionals.filter((s) => !defs.some((d) => d.slug === s));
  if (unknown.length) {
    console.error(
      `bench: no benchmark named ${unknown.join(", ")}; have: ${
        defs.map((d) => d.slug).join(", ") || "none"
      }`,
    );
    return 2;
  }
  if (positionals.length) defs = defs.filter((d) => positionals.includes(d.slug));
  if (v.theme) {
    const themes = new Set(papers.map((p) => p.theme));
    if (!themes.has(v.theme)) {
      console.error(`bench: unknown theme "${v.theme}"; themes: ${[...themes].sort().join(", ")}`);
      return 2;
    }
    defs = defs.filter((d) => papers.find((p) => p.slug === d.slug)?.theme === v.theme);
  }
  if (v.shard) {
    const m = /^(\d+)\/(\d+)$/.exec(v.shard);
    if (!m) {
      console.error(`bench: --shard must look like 2/4, got "${v.shard}"`);
      return 2;
    }
    defs = shard(defs, Number(m[1]), Number(m[2]));
  }
  let seeds: number[] | undefined;
  if (v.seeds) {
    seeds = v.seeds.split(",").map(Number);
    if (seeds.some((s) => !Number.isInteger(s) || s < 0)) {
      console.error(
        `bench: --seeds must be comma-separated non-negative integers, got "${v.seeds}"`,
      );
      return 2;
    }
  }
  if (v.list) {
    for (const d of defs) console.log(`${d.slug}\t${d.table}`);
    return 0;
  }
  if (!defs.length) {
    console.log("bench: no benchmarks selected");
    return 0;
  }
  const progress = createProgress();
  const results = [];
  for (const [i, d] of defs.entries()) {
    results.push(
      await runOne(d, {
        profile,
        backend: v.backend,
        seeds,
        outDir: join(ROOT, "data/results"),
        papers,
        progress,
      }, `[${i + 1}/${defs.length}] ${d.slug}`),
    );
  }
  console.log(`\n${summaryTable(results)}`);
  const errors = results.filter((r) => r.status === "error").length;
  const diverged = results.filter((r) => r.status === "diverges").length;
  console.log(
    `\n${
      results.length - errors - diverged
    } passed, ${diverged} diverged, ${errors} errors (profile ${profile})`,
  );
  return errors ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
