/**
 * `deno task index [--check]`: regenerates paper-index.md from data/papers.json, the modules
 * present in algorithms/ and the results in data/results/.
 *
 * With `--check` nothing is written: the index is rebuilt in memory and the command fails
 * (exit 1) when paper-index.md is missing or differs. The logic lives in ./index_lib.ts; this
 * file only reads the tree. `runIndex(root, args)` takes the repository root so that tests
 * can point it at a temporary tree.
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  collectWarnings,
  type IndexInput,
  parsePapers,
  parseResult,
  renderIndex,
  renderResultsBlock,
  replaceResultsBlock,
  type ResultFile,
} from "./index_lib.ts";

const USAGE = "usage: deno task index [--check]";

/** The outcome of one run: the exit code and the lines to print. */
export interface IndexOutcome {
  code: number;
  /** Printed to stdout. */
  messages: string[];
  /** Printed to stderr. */
  warnings: string[];
}

/** Parses the command line; unknown options and positional arguments throw a clear error. */
export function parseFlags(args: string[]): { check: boolean } {
  try {
    const { values } = parseArgs({
      args,
      options: { check: { type: "boolean", default: false } },
      strict: true,
      allowPositionals: false,
    });
    return { check: values.check ?? false };
  } catch (err) {
    throw new Error(`index: ${(err as Error).message}\n${USAGE}`);
  }
}

/** Whether a path exists and is a file. */
async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Reads a text file, or returns undefined when it does not exist. */
async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Gathers papers, modules and results from the tree at `root`. */
export async function loadIndexInput(root: string): Promise<IndexInput> {
  const papersFile = "data/papers.json";
  const papersText = await readIfExists(join(root, papersFile));
  if (papersText === undefined) {
    throw new Error(`${papersFile} is missing; run \`deno task papers\` first`);
  }
  const papers = parsePapers(papersText, papersFile);

  const modules = new Set<string>();
  for (const p of papers) {
    if (await isFile(join(root, "algorithms", p.slug, "mod.ts"))) modules.add(p.slug);
  }

  // Every data/results/*.json is parsed, so a malformed file fails loudly even when it
  // belongs to no known paper. Names are sorted so errors and warnings are deterministic.
  const results = new Map<string, ResultFile>();
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(root, "data", "results"))) {
      if (entry.isFile && entry.name.endsWith(".json")) names.push(entry.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  for (const name of names.sort()) {
    const file = `data/results/${name}`;
    const text = await Deno.readTextFile(join(root, file));
    results.set(name.slice(0, -".json".length), parseResult(text, file));
  }
  return { papers, modules, results };
}

/**
 * Runs the index command against the tree at `root`. Errors in the input (a malformed results
 * file, a missing papers.json) are thrown; a stale index under `--check` is exit code 1.
 */
export async function runIndex(root: string, args: string[]): Promise<IndexOutcome> {
  const { check } = parseFlags(args);
  const input = await loadIndexInput(root);
  const text = renderIndex(input);
  const warnings = collectWarnings(input);
  const target = join(root, "paper-index.md");

  // Each module README's generated results block (between the results markers).
  const readmes: [string, string][] = [];
  for (const slug of [...input.modules].sort()) {
    const file = join(root, "algorithms", slug, "README.md");
    const current = await readIfExists(file);
    const next = current &&
      replaceResultsBlock(current, renderResultsBlock(input.results.get(slug)));
    if (next !== undefined && next !== current) readmes.push([file, next]);
  }

  if (check) {
    const current = await readIfExists(target);
    if (current !== text) {
      const why = current === undefined ? "is missing" : "is stale";
      return { code: 1, messages: [`paper-index.md ${why}; run \`deno task index\``], warnings };
    }
    if (readmes.length) {
      const names = readmes.map(([f]) => f.slice(root.length).replace(/^\//, "")).join(", ");
      return {
        code: 1,
        messages: [`results blocks are stale in ${names}; run \`deno task index\``],
        warnings,
      };
    }
    return { code: 0, messages: ["paper-index.md is up to date"], warnings };
  }

  for (const [file, next] of readmes) await Deno.writeTextFile(file, next);
  await Deno.writeTextFile(target, text);
  return {
    code: 0,
    messages: [`wrote paper-index.md (${input.papers.length} papers)`],
    warnings,
  };
}

if (import.meta.main) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  try {
    const outcome = await runIndex(root, Deno.args);
    for (const w of outcome.warnings) console.error(`warning: ${w}`);
    for (const m of outcome.messages) (outcome.code === 0 ? console.log : console.error)(m);
    Deno.exit(outcome.code);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    Deno.exit(2);
  }
}
