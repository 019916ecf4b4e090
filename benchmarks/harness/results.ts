/**
 * Result files: data/results/<slug>.json (rows, reported, check, provenance) and .csv (the
 * rows), written atomically (a temporary file, then a rename) so an interrupted run leaves the
 * previous results intact. Only full-profile runs write data/results/<slug>.*; smoke and
 * quick runs write data/results/<profile>/<slug>.*, so they never replace committed results.
 */
// @deno-types="@types/papaparse"
import Papa from "papaparse";
import { join } from "node:path";
import type { CheckResult, Profile, Reported, Row } from "./define.ts";

export interface Provenance {
  commit: string;
  date: string;
  profile: Profile;
  backend: string;
  adapter: string;
  seeds: number[];
  wallTimeMs: number;
  /** Peak bytes held by live tensors (core memory()), sampled at progress reports. */
  peakMemoryBytes: number;
  /** Peak resident set size of the process, sampled likewise. */
  peakRssBytes: number;
  deno: string;
}

export interface ResultFile {
  slug: string;
  id: string;
  title: string;
  table: string;
  profile: Profile;
  rows: Row[];
  reported?: Reported;
  check: CheckResult;
  provenance: Provenance;
}

/** The JSON path for a slug and profile under a results directory. */
export function resultPath(dir: string, slug: string, profile: Profile): string {
  return profile === "full" ? join(dir, `${slug}.json`) : join(dir, profile, `${slug}.json`);
}

/** Writes `text` to `path` atomically: a sibling temporary file, then rename. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Writes <slug>.json and <slug>.csv; returns the JSON path. */
export async function writeResult(dir: string, r: ResultFile): Promise<string> {
  const path = resultPath(dir, r.slug, r.profile);
  await Deno.mkdir(join(path, ".."), { recursive: true });
  const columns = [...new Set(r.rows.flatMap((row) => Object.keys(row)))];
  const csv = Papa.unparse(r.rows, { columns, newline: "\n" }) + "\n";
  // CSV first: if the JSON write is interrupted the index still sees the previous result.
  await writeAtomic(path.replace(/\.json$/, ".csv"), csv);
  await writeAtomic(path, JSON.stringify(r, null, 1) + "\n");
  return path;
}

/** The current commit (with "-dirty" when the tree has changes), or "unknown". */
export async function gitCommit(): Promise<string> {
  try {
    const run = async (args: string[]) => {
      const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
    };
    const head = await run(["rev-parse", "--short=12", "HEAD"]);
    if (!head) return "unknown";
    const dirty = await run(["status", "--porcelain", "--untracked-files=no"]);
    return dirty ? `${head}-dirty` : head;
  } catch {
    return "unknown";
  }
}
