/**
 * `deno task papers`: writes data/papers.json, the registry of all papers, from the shared
 * catalog (`../shared/papers/catalog.json` beside the repository, or
 * `$PAPERLAB_SHARED/papers/catalog.json` when that variable is set).
 *
 * Only the facts are kept: id, slug, title, theme and tier (no abstracts, claims or suggested
 * miniatures), sorted by id, one object per line so that diffs stay readable.
 */

import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { formatPapersJson, type PaperFacts, toPaperFacts } from "./index_lib.ts";

/** The shared folder: $PAPERLAB_SHARED, else ../shared relative to the repository root. */
export function sharedDir(root: string): string {
  return Deno.env.get("PAPERLAB_SHARED") ?? join(root, "..", "shared");
}

/** Reads the catalog and returns the facts of every paper, sorted by id. */
export async function readCatalogFacts(catalogPath: string): Promise<PaperFacts[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(catalogPath);
  } catch (err) {
    throw new Error(`cannot read the catalog at ${catalogPath}: ${(err as Error).message}`);
  }
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch (err) {
    throw new Error(`${catalogPath}: not valid JSON: ${(err as Error).message}`);
  }
  return toPaperFacts(entries, catalogPath);
}

/** Regenerates `<root>/data/papers.json`; returns the number of papers written. */
export async function syncPapers(root: string): Promise<{ count: number; catalog: string }> {
  const catalog = join(sharedDir(root), "papers", "catalog.json");
  const papers = await readCatalogFacts(catalog);
  await Deno.mkdir(join(root, "data"), { recursive: true });
  await Deno.writeTextFile(join(root, "data", "papers.json"), formatPapersJson(papers));
  return { count: papers.length, catalog };
}

if (import.meta.main) {
  if (Deno.args.length > 0) {
    console.error(`error: unexpected arguments: ${Deno.args.join(" ")}\nusage: deno task papers`);
    Deno.exit(2);
  }
  const root = fileURLToPath(new URL("..", import.meta.url));
  try {
    const { count, catalog } = await syncPapers(root);
    console.log(`wrote data/papers.json: ${count} papers from ${relative(root, catalog)}`);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
