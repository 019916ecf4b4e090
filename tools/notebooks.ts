/**
 * `deno task notebooks`: executes every notebooks/*.ipynb headless on the Deno kernel
 * (nbconvert's ExecutePreprocessor) and fails on any cell error. Each executed copy goes to a
 * temporary folder (the committed notebooks keep no outputs); a notebook that displays no
 * plotly figure is reported, since every theme notebook plots at least its status chart.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

async function main(): Promise<number> {
  const dir = join(ROOT, "notebooks");
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".ipynb"))
    .sort();
  if (!names.length) {
    console.error("notebooks: no notebooks/*.ipynb found");
    return 1;
  }
  const out = await Deno.makeTempDir({ prefix: "paperlab-notebooks-" });
  let failed = 0;
  for (const name of names) {
    const t0 = performance.now();
    const res = await new Deno.Command("python3", {
      args: [
        "-m",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.kernel_name=deno",
        "--ExecutePreprocessor.timeout=600",
        "--output-dir",
        out,
        join(dir, name),
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output().catch((e) => {
      throw new Error(`notebooks: cannot run python3 -m nbconvert (${e.message}); install Jupyter`);
    });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (!res.success) {
      failed++;
      console.error(
        `FAIL ${name} (${secs}s)\n${new TextDecoder().decode(res.stderr).slice(-3000)}`,
      );
      continue;
    }
    const nb = JSON.parse(await Deno.readTextFile(join(out, name)));
    const plots = nb.cells.flatMap((c: { outputs?: { data?: Record<string, unknown> }[] }) =>
      c.outputs ?? []
    )
      .filter((o: { data?: Record<string, unknown> }) => o.data?.["application/vnd.plotly.v1+json"])
      .length;
    if (!plots) {
      failed++;
      console.error(`FAIL ${name}: executed but displayed no plotly figure`);
      continue;
    }
    console.log(`ok   ${name} (${secs}s, ${plots} figure${plots > 1 ? "s" : ""})`);
  }
  console.log(`${names.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
