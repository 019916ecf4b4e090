/**
 * Creates notebooks/<theme>.ipynb for every theme in data/papers.json that has none yet
 * (existing notebooks are kept unless --force; papers plot through their benchmark's
 * `figures(result)` export, so notebooks rarely need editing).
 * `deno run -A tools/make_notebooks.ts`
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parsePapers } from "./index_lib.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

const md = (text: string) => ({ cell_type: "markdown", metadata: {}, source: text });
const code = (text: string) => ({
  cell_type: "code",
  execution_count: null,
  metadata: {},
  outputs: [],
  source: text,
});

/** The notebook skeleton of a theme: status overview, then one plot per result. */
export function themeNotebook(theme: string): Record<string, unknown> {
  return {
    cells: [
      md(
        `# ${theme}\n\nResults of the papers in the theme \`${theme}\`, read from \`data/results/\` ` +
          "(full-profile runs of `deno task bench`). Run with the Deno kernel.",
      ),
      code(
        `import { resultFigures, showPlot, statusFigure, themeResults } from "../lab/plot.ts";

const { papers, results, missing } = await themeResults(${JSON.stringify(theme)});
console.log(\`\${results.length} of \${papers.length} papers have full results.\`);
console.log(\`No results yet: \${missing.map((p) => \`\${p.id} \${p.slug}\`).join(", ") || "none"}\`);
await showPlot(await statusFigure(${JSON.stringify(theme)}));`,
      ),
      code(`// Each result's figures: its benchmark's \`figures(result)\` export, or a bar chart.
for (const r of results) {
  console.log(\`\${r.id} \${r.slug}: \${r.check.pass ? "reproduced" : "diverges"}: \${r.check.summary}\`);
  for (const fig of await resultFigures(r)) await showPlot(fig);
}`),
    ],
    metadata: {
      kernelspec: { display_name: "Deno", language: "typescript", name: "deno" },
      language_info: { name: "typescript", file_extension: ".ts" },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
}

if (import.meta.main) {
  const papers = parsePapers(
    await Deno.readTextFile(join(ROOT, "data/papers.json")),
    "data/papers.json",
  );
  await Deno.mkdir(join(ROOT, "notebooks"), { recursive: true });
  for (const theme of [...new Set(papers.map((p) => p.theme))].sort()) {
    const path = join(ROOT, "notebooks", `${theme}.ipynb`);
    if (!Deno.args.includes("--force")) {
      try {
        await Deno.stat(path);
        continue;
      } catch { /* missing: create it */ }
    }
    await Deno.writeTextFile(path, JSON.stringify(themeNotebook(theme), null, 1) + "\n");
    console.log(`created ${path}`);
  }
}
