/**
 * Tests for the paper index (tools/index_lib.ts, tools/index.ts) and the papers registry
 * (tools/sync_papers.ts). The CLI tests build small trees in temporary directories.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  deriveStatus,
  escapeCell,
  formatPapersJson,
  type IndexInput,
  PAPER_KEYS,
  type PaperFacts,
  parsePapers,
  parseResult,
  renderIndex,
  type ResultFile,
  truncate,
} from "../../tools/index_lib.ts";
import { runIndex } from "../../tools/index.ts";
import { readCatalogFacts, sharedDir } from "../../tools/sync_papers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

const PAPERS: PaperFacts[] = [
  { id: "P002", slug: "beta", title: "Beta | with a pipe", theme: "merging", tier: "A" },
  { id: "P001", slug: "alpha", title: "Alpha", theme: "architectures", tier: "B" },
  { id: "P003", slug: "gamma", title: "Gamma", theme: "architectures", tier: "C" },
];

/** A valid results file; `over` replaces top-level fields. */
function result(slug: string, over: Partial<ResultFile> = {}): ResultFile {
  return {
    slug,
    id: "P000",
    profile: "full",
    rows: [{ method: "m", metric: 1 }],
    check: { pass: true, summary: "the claim holds" },
    provenance: {
      commit: "abc",
      date: "2026-01-01",
      profile: over.profile ?? "full",
      backend: "cpu",
      seeds: [0, 1, 2],
      wallTimeMs: 10,
    },
    ...over,
  };
}

function input(modules: string[], results: ResultFile[] = []): IndexInput {
  return {
    papers: PAPERS,
    modules: new Set(modules),
    results: new Map(results.map((r) => [r.slug, r])),
  };
}

/** The table row of a paper in the rendered index. */
function rowOf(text: string, id: string): string {
  const row = text.split("\n").find((l) => l.startsWith(`| ${id} |`));
  assert.ok(row, `no row for ${id}`);
  return row;
}

/** Writes a small repository tree under a fresh temp dir and returns its path. */
async function makeTree(files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "paperlab-index-" });
  for (const [path, text] of Object.entries(files)) {
    const full = join(root, path);
    await Deno.mkdir(join(full, ".."), { recursive: true });
    await Deno.writeTextFile(full, text);
  }
  return root;
}

Deno.test("index: a paper without a module is planned, even with a result", () => {
  assert.equal(deriveStatus(false), "planned");
  assert.equal(deriveStatus(false, result("alpha")), "planned");
  assert.match(rowOf(renderIndex(input([])), "P001"), /\| planned \| — \| — \|$/);
});

Deno.test("index: a paper with a module and no full result is implemented", () => {
  assert.equal(deriveStatus(true), "implemented");
  const row = rowOf(renderIndex(input(["alpha"])), "P001");
  assert.match(row, /\| implemented \| \[algorithms\/alpha\]\(algorithms\/alpha\/\) \| — \|$/);
});

Deno.test("index: a passing full-profile check is reproduced and links the result", () => {
  const text = renderIndex(input(["alpha"], [result("alpha")]));
  assert.match(
    rowOf(text, "P001"),
    /\| reproduced \| .* \| \[the claim holds\]\(data\/results\/alpha\.json\) \|$/,
  );
});

Deno.test("index: a failing full-profile check is diverges", () => {
  const failing = result("alpha", { check: { pass: false, summary: "gap of 3 dB, not 1" } });
  assert.equal(deriveStatus(true, failing), "diverges");
  const row = rowOf(renderIndex(input(["alpha"], [failing])), "P001");
  assert.match(
    row,
    /\| diverges \| .* \| \[gap of 3 dB, not 1\]\(data\/results\/alpha\.json\) \|$/,
  );
});

Deno.test("index: a quick-profile result does not change status", () => {
  for (const profile of ["quick", "smoke"] as const) {
    const r = result("alpha", { profile, check: { pass: false, summary: "x" } });
    assert.equal(deriveStatus(true, r), "implemented");
    assert.match(
      rowOf(renderIndex(input(["alpha"], [r])), "P001"),
      /\| implemented \| .* \| — \|$/,
    );
  }
});

Deno.test("index: counts, theme sections and row order are deterministic", () => {
  const text = renderIndex(input(["alpha", "beta"], [result("beta")]));
  assert.equal(text, renderIndex(input(["alpha", "beta"], [result("beta")])));
  assert.ok(text.startsWith("# Paper index\n"));
  assert.match(text, /deno task index/);
  for (const line of ["| planned | 1 |", "| implemented | 1 |", "| reproduced | 1 |"]) {
    assert.ok(text.includes(line), line);
  }
  assert.ok(text.includes("| diverges | 0 |") && text.includes("| total | 3 |"));
  // Themes sorted by name, each with its count; rows sorted by id inside a theme.
  const arch = text.indexOf("## architectures (2)");
  const merging = text.indexOf("## merging (1)");
  assert.ok(arch >= 0 && merging > arch);
  assert.ok(text.indexOf("| P001 |") < text.indexOf("| P003 |"));
  assert.ok(text.includes("| id | title | theme | tier | status | module | result |"));
  assert.ok(!/\d{4}-\d{2}-\d{2}/.test(text), "no dates in the index");
});

Deno.test("index: pipes in titles are escaped and long summaries truncated", () => {
  assert.equal(escapeCell("a | b"), "a \\| b");
  assert.ok(rowOf(renderIndex(input([])), "P002").includes("Beta \\| with a pipe"));
  const long = "x".repeat(200);
  assert.equal(Array.from(truncate(long)).length, 80);
  assert.ok(truncate(long).endsWith("…"));
  assert.equal(truncate("short"), "short");
});

Deno.test("index: malformed results file names the file", () => {
  assert.throws(
    () => parseResult("{ not json", "data/results/alpha.json"),
    /data\/results\/alpha\.json/,
  );
  const noCheck = JSON.stringify({ ...result("alpha"), check: undefined });
  assert.throws(() => parseResult(noCheck, "data/results/alpha.json"), /alpha\.json.*check/);
  const badProfile = JSON.stringify(result("alpha", { profile: "huge" as "full" }));
  assert.throws(() => parseResult(badProfile, "data/results/alpha.json"), /alpha\.json.*profile/);
});

Deno.test("index: the CLI names a malformed results file in its error", async () => {
  const root = await makeTree({
    "data/papers.json": formatPapersJson(PAPERS),
    "data/results/gamma.json": '{"slug": "gamma", "profile": "full"',
  });
  try {
    await assert.rejects(runIndex(root, []), /data\/results\/gamma\.json/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("index: --check reports a stale file", async () => {
  const root = await makeTree({
    "data/papers.json": formatPapersJson(PAPERS),
    "algorithms/alpha/mod.ts": "export {};\n",
  });
  try {
    // Missing index: --check fails and says how to fix it.
    let out = await runIndex(root, ["--check"]);
    assert.equal(out.code, 1);
    assert.match(out.messages.join("\n"), /paper-index\.md is missing; run `deno task index`/);

    // Generated: --check passes, and the module made alpha implemented.
    assert.equal((await runIndex(root, [])).code, 0);
    assert.match(await Deno.readTextFile(join(root, "paper-index.md")), /\| P001 \|.*implemented/);
    assert.equal((await runIndex(root, ["--check"])).code, 0);

    // A full result appears: the committed index is now stale.
    await Deno.mkdir(join(root, "data/results"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "data/results/alpha.json"),
      JSON.stringify(result("alpha")),
    );
    out = await runIndex(root, ["--check"]);
    assert.equal(out.code, 1);
    assert.match(out.messages.join("\n"), /paper-index\.md is stale; run `deno task index`/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("index: unknown flags give a clear error", async () => {
  await assert.rejects(
    runIndex(ROOT, ["--frobnicate"]),
    /Unknown option '--frobnicate'.*\n.*usage/,
  );
});

Deno.test("papers.json has all 301 catalog papers with id slug title theme tier", async () => {
  const text = await Deno.readTextFile(join(ROOT, "data/papers.json"));
  const papers = parsePapers(text, "data/papers.json");
  assert.equal(papers.length, 301);
  for (const p of papers) assert.deepEqual(Object.keys(p), [...PAPER_KEYS]);
  // Written sorted by id, in the canonical one-object-per-line form.
  assert.equal(text, formatPapersJson(papers));

  const catalog = join(sharedDir(ROOT), "papers", "catalog.json");
  let hasCatalog = true;
  try {
    await Deno.stat(catalog);
  } catch {
    hasCatalog = false; // No ../shared beside the clone: the count above is the check.
  }
  if (hasCatalog) assert.deepEqual(papers, await readCatalogFacts(catalog));
});

Deno.test("index: a module README's results block is generated from its full result", async () => {
  const { renderResultsBlock, replaceResultsBlock } = await import("../../tools/index_lib.ts");
  const readme = "# X\n\n<!-- results:start -->\nold\n<!-- results:end -->\n\nmore\n";
  const r = {
    slug: "x",
    id: "P001",
    table: "Table 1",
    profile: "full" as const,
    rows: [{ method: "a|b", acc: 0.91234, n: 3 }],
    check: { pass: false, summary: "saw 0.91" },
    provenance: {
      commit: "abc",
      date: "d",
      profile: "full",
      backend: "cpu",
      seeds: [0, 1, 2],
      wallTimeMs: 61000,
    },
  };
  const out = replaceResultsBlock(readme, renderResultsBlock(r))!;
  if (!out.includes("| method | acc | n |") || !out.includes("| a\\|b | 0.9123 | 3 |")) {
    throw new Error(out);
  }
  if (!out.includes("fails (diverges)") || !out.endsWith("<!-- results:end -->\n\nmore\n")) {
    throw new Error(out);
  }
  if (out.includes("old")) throw new Error("the old block was kept");
  if (replaceResultsBlock("# no markers", "x") !== undefined) throw new Error("no markers");
});
