import assert from "node:assert/strict";
import { join } from "node:path";
import { defineBenchmark, type Row } from "../../benchmarks/harness/define.ts";
import type { ProgressSink } from "../../benchmarks/harness/progress.ts";
import { resultPath } from "../../benchmarks/harness/results.ts";
import { runOne, shard, summaryTable } from "../../benchmarks/harness/runner.ts";
import { parseResult } from "../../tools/index_lib.ts";
import { manualSeed, randn } from "../../mod.ts";

const papers = [{ id: "P999", slug: "toy-paper", title: "A toy paper", theme: "t", tier: "A" }];
const quiet: ProgressSink = { start() {}, update() {}, log() {}, end() {} };
const profiles = { smoke: { seeds: [0] }, quick: { seeds: [0, 1] }, full: { seeds: [0, 1, 2] } };

function toy(opts: { fail?: boolean; pass?: boolean } = {}) {
  return defineBenchmark({
    slug: "toy-paper",
    table: "Table 1: a toy",
    profiles,
    async run(ctx) {
      const rows: Row[] = [];
      for (const [i, s] of ctx.seeds.entries()) {
        manualSeed(s);
        const v = (await randn([4]).abs().sum().item()) as number;
        ctx.progress((i + 1) / ctx.seeds.length, `seed ${s}`);
        if (opts.fail) throw new Error("interrupted on purpose");
        rows.push({ method: "toy", seed: s, value: v });
      }
      return rows;
    },
    check: (rows) => ({ pass: opts.pass ?? true, summary: `${rows.length} rows` }),
  });
}

Deno.test("runner: a full run writes json and csv with rows, check and provenance", async () => {
  const dir = await Deno.makeTempDir();
  const r = await runOne(toy(), { profile: "full", outDir: dir, papers, progress: quiet });
  assert.equal(r.status, "pass");
  const res = parseResult(await Deno.readTextFile(join(dir, "toy-paper.json")), "toy-paper.json");
  assert.equal(res.rows.length, 3);
  assert.deepEqual(res.provenance.seeds, [0, 1, 2]);
  assert.equal(res.id, "P999");
  assert.equal(res.provenance.backend, "cpu");
  const csv = await Deno.readTextFile(join(dir, "toy-paper.csv"));
  assert.equal(csv.split("\n")[0], "method,seed,value");
  assert.equal(csv.trim().split("\n").length, 4);
});

Deno.test("runner: an interrupted run keeps the previous results intact", async () => {
  const dir = await Deno.makeTempDir();
  await runOne(toy(), { profile: "full", outDir: dir, papers, progress: quiet });
  const before = await Deno.readTextFile(join(dir, "toy-paper.json"));
  const r = await runOne(toy({ fail: true }), {
    profile: "full",
    outDir: dir,
    papers,
    progress: quiet,
  });
  assert.equal(r.status, "error");
  assert.match(r.summary, /interrupted on purpose/);
  assert.equal(await Deno.readTextFile(join(dir, "toy-paper.json")), before);
  const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.includes(".tmp-"));
  assert.deepEqual(leftovers, []);
});

Deno.test("runner: a failed check is reported as diverges, not as an error", async () => {
  const dir = await Deno.makeTempDir();
  const r = await runOne(toy({ pass: false }), {
    profile: "full",
    outDir: dir,
    papers,
    progress: quiet,
  });
  assert.equal(r.status, "diverges");
  const res = parseResult(await Deno.readTextFile(r.path!), "x");
  assert.equal(res.check.pass, false);
});

Deno.test("runner: smoke and quick runs never replace full results", async () => {
  const dir = await Deno.makeTempDir();
  await runOne(toy(), { profile: "full", outDir: dir, papers, progress: quiet });
  const r = await runOne(toy(), { profile: "smoke", outDir: dir, papers, progress: quiet });
  assert.equal(r.path, resultPath(dir, "toy-paper", "smoke"));
  assert.equal(r.path, join(dir, "smoke", "toy-paper.json"));
  const full = parseResult(await Deno.readTextFile(join(dir, "toy-paper.json")), "x");
  assert.equal(full.profile, "full");
});

Deno.test("runner: same seeds give the same rows", async () => {
  const dir = await Deno.makeTempDir();
  const a = await runOne(toy(), { profile: "quick", outDir: dir, papers, progress: quiet });
  const rowsA = parseResult(await Deno.readTextFile(a.path!), "x").rows;
  const b = await runOne(toy(), { profile: "quick", outDir: dir, papers, progress: quiet });
  assert.deepEqual(parseResult(await Deno.readTextFile(b.path!), "x").rows, rowsA);
});

Deno.test("runner: a slug missing from papers.json is an error naming it", async () => {
  const dir = await Deno.makeTempDir();
  const r = await runOne(toy(), { profile: "smoke", outDir: dir, papers: [], progress: quiet });
  assert.equal(r.status, "error");
  assert.match(r.summary, /toy-paper/);
});

Deno.test("runner: shards partition the benchmarks", () => {
  const defs = ["a", "b", "c", "d", "e"].map((slug) => ({ slug }));
  const parts = [1, 2, 3].map((i) => shard(defs, i, 3).map((d) => d.slug));
  assert.deepEqual(parts.flat().sort(), ["a", "b", "c", "d", "e"]);
  assert.deepEqual(parts[0], ["a", "d"]);
  assert.throws(() => shard(defs, 4, 3), /--shard/);
});

Deno.test("defineBenchmark: a missing profile is a clear error", () => {
  assert.throws(
    () =>
      defineBenchmark({
        slug: "x",
        table: "t",
        profiles: { smoke: { seeds: [0] }, quick: { seeds: [0] } } as never,
        run: () => Promise.resolve([]),
        check: () => ({ pass: true, summary: "" }),
      }),
    /missing profile "full"/,
  );
});

Deno.test("runner: the summary table escapes pipes", () => {
  const t = summaryTable([{ slug: "a", status: "pass", summary: "x | y", wallTimeMs: 1200 }]);
  assert.match(t, /x \\\| y/);
  assert.match(t, /1\.2s/);
});

Deno.test("bench CLI: unknown options and profiles exit 2 with a message", async () => {
  for (const args of [["--profile", "nope"], ["--bogus"], ["no-such-bench"]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "benchmarks/harness/cli.ts", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(out.stderr), /bench:/);
  }
});
