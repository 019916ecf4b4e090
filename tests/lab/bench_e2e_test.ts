import assert from "node:assert/strict";
import nola from "../../benchmarks/nola.ts";
import { runOne } from "../../benchmarks/harness/runner.ts";
import type { ProgressSink } from "../../benchmarks/harness/progress.ts";
import { parsePapers, parseResult } from "../../tools/index_lib.ts";

Deno.test("lab end to end: a paper benchmark loads a backbone, trains on lab data and writes its result", async () => {
  const papers = parsePapers(
    await Deno.readTextFile(new URL("../../data/papers.json", import.meta.url)),
    "data/papers.json",
  );
  const dir = await Deno.makeTempDir();
  let updates = 0;
  const progress: ProgressSink = { start() {}, update: () => void updates++, log() {}, end() {} };
  const r = await runOne(nola, { profile: "smoke", outDir: dir, papers, progress });
  assert.notEqual(r.status, "error", r.summary);
  const res = parseResult(await Deno.readTextFile(r.path!), r.path!);
  assert.equal(res.id, "P067");
  assert.equal(res.profile, "smoke");
  assert.ok(res.rows.length > 0);
  assert.ok(updates > 0, "the benchmark reported no progress");
});
