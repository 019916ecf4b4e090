/**
 * Plotting results in notebooks (Deno's Jupyter kernel) with plotly: a figure is displayed as
 * an `application/vnd.plotly.v1+json` bundle, with a `text/html` fallback that draws it with
 * plotly.js from its CDN, so exported HTML shows the figure too. Also the result-file readers
 * the theme notebooks use.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  deriveStatus,
  type PaperFacts,
  parsePapers,
  parseResult,
  type ResultFile,
} from "../tools/index_lib.ts";

export interface Figure {
  data: Record<string, unknown>[];
  layout?: Record<string, unknown>;
}

const ROOT: string = fileURLToPath(new URL("../", import.meta.url));
const PLOTLY_CDN = "https://cdn.plot.ly/plotly-2.35.2.min.js";

/** The MIME bundle for a figure (what `display` sends to the notebook). */
export function plotlyBundle(fig: Figure): Record<string, unknown> {
  const id = `plot-${crypto.randomUUID().slice(0, 8)}`;
  const json = JSON.stringify({ data: fig.data, layout: fig.layout ?? {} }).replace(
    /</g,
    "\\u003c",
  );
  const html = `<div id="${id}"></div><script src="${PLOTLY_CDN}"></script>` +
    `<script>(function(){var f=${json};Plotly.newPlot("${id}",f.data,f.layout);})();</script>`;
  return {
    "application/vnd.plotly.v1+json": { data: fig.data, layout: fig.layout ?? {} },
    "text/html": html,
  };
}

/** Displays a figure in the Deno Jupyter kernel; outside Jupyter, returns the bundle. */
export async function showPlot(fig: Figure): Promise<Record<string, unknown>> {
  const bundle = plotlyBundle(fig);
  const jup = (Deno as unknown as { jupyter?: { display(b: unknown, o?: unknown): Promise<void> } })
    .jupyter;
  if (jup) {
    await jup.display(bundle, { raw: true });
    // Give the kernel a moment to flush the display message: when a figure is a cell's last
    // output, the cell can otherwise finish before it is sent (seen once in 15 headless runs).
    await new Promise((r) => setTimeout(r, 25));
  }
  return bundle;
}

/** The papers of a theme and the full-profile results present for them. */
export async function themeResults(
  theme: string,
  root = ROOT,
): Promise<{ papers: PaperFacts[]; results: ResultFile[]; missing: PaperFacts[] }> {
  const all = parsePapers(
    await Deno.readTextFile(join(root, "data/papers.json")),
    "data/papers.json",
  );
  const papers = all.filter((p) => p.theme === theme);
  if (!papers.length) throw new Error(`themeResults: no papers with theme "${theme}"`);
  const results: ResultFile[] = [], missing: PaperFacts[] = [];
  for (const p of papers) {
    const file = join(root, "data/results", `${p.slug}.json`);
    let text: string | undefined;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (text === undefined) missing.push(p);
    else results.push(parseResult(text, file));
  }
  return { papers, results, missing };
}

/** Columns of a result table to plot: x, y, error bars and the column that splits traces. */
export interface Columns {
  x: string;
  y: string;
  err?: string;
  group?: string;
}

/**
 * One trace per value of the `group` column (all rows as one trace without one), in order of
 * first appearance: bars, or lines with markers; error bars from `err` when given.
 */
export function groupTraces(
  rows: ResultFile["rows"],
  o: Columns & { lines?: boolean },
): Record<string, unknown>[] {
  const groups = o.group ? [...new Set(rows.map((row) => String(row[o.group!])))] : [""];
  return groups.map((g) => {
    const rs = o.group ? rows.filter((row) => String(row[o.group!]) === g) : rows;
    return {
      type: o.lines ? "scatter" : "bar",
      ...(o.lines ? { mode: "lines+markers" } : {}),
      name: g || o.y,
      x: rs.map((row) => row[o.x]),
      y: rs.map((row) => row[o.y]),
      ...(o.err ? { error_y: { type: "data", array: rs.map((row) => row[o.err!]) } } : {}),
    };
  });
}

/**
 * A grouped bar chart of one numeric column of a result table by `x` column (e.g. method),
 * with error bars from `err` when given.
 */
export function barFigure(r: ResultFile, o: Columns & { title?: string }): Figure {
  return {
    data: groupTraces(r.rows, o),
    layout: {
      title: { text: o.title ?? `${r.id} ${r.slug}: ${r.table}` },
      barmode: "group",
      yaxis: { title: { text: o.y } },
    },
  };
}

/** The first column of a result's rows holding numbers other than a seed, if any. */
export function firstMetric(r: ResultFile): string | undefined {
  const cols = Object.keys(r.rows[0] ?? {});
  return cols.find((c) => c !== "seed" && r.rows.every((row) => typeof row[c] === "number"));
}

/** A bar chart of how many of a theme's papers are planned, implemented, reproduced, diverging. */
export async function statusFigure(theme: string, root = ROOT): Promise<Figure> {
  const { papers, results } = await themeResults(theme, root);
  const counts = { planned: 0, implemented: 0, reproduced: 0, diverges: 0 };
  for (const p of papers) {
    const r = results.find((x) => x.slug === p.slug && x.profile === "full");
    let hasModule = false;
    try {
      hasModule = (await Deno.stat(join(root, "algorithms", p.slug, "mod.ts"))).isFile;
    } catch { /* no module */ }
    counts[deriveStatus(hasModule, r)]++;
  }
  return {
    data: [{ type: "bar", x: Object.keys(counts), y: Object.values(counts) }],
    layout: { title: { text: `${theme}: ${papers.length} papers by status` } },
  };
}

/**
 * The figures of one result: the ones its benchmark exports as `figures(result)` (curves,
 * scatter plots: whatever the paper shows), else a bar chart of the table's first metric.
 */
export async function resultFigures(r: ResultFile, root = ROOT): Promise<Figure[]> {
  const file = join(root, "benchmarks", `${r.slug}.ts`);
  let mod: { figures?: (r: ResultFile) => Figure[] } = {};
  try {
    await Deno.stat(file);
    mod = await import(new URL(`file://${file}`).href);
  } catch { /* no benchmark module: use the generic chart */ }
  if (typeof mod.figures === "function") return mod.figures(r);
  const y = firstMetric(r);
  return y ? [barFigure(r, { x: Object.keys(r.rows[0])[0], y })] : [];
}
