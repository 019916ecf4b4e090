import assert from "node:assert/strict";

/** The README's TypeScript blocks that are complete programs (no placeholders). */
function runnableBlocks(md: string): string[] {
  return [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
    .filter((code) => !code.includes("<slug>"));
}

Deno.test("README: every complete TypeScript example runs", async () => {
  const md = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const blocks = runnableBlocks(md);
  assert.ok(blocks.length >= 2, "expected the library example and the training loop");
  const mod = new URL("../mod.ts", import.meta.url).href;
  for (const code of blocks) {
    const file = await Deno.makeTempFile({ suffix: ".ts" });
    await Deno.writeTextFile(file, code.replaceAll("jsr:@paperlab/lab", mod));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `README example failed:\n${code}\n${text}`);
    if (code.includes("loss")) {
      const losses = [...text.matchAll(/loss ([\d.e-]+)/g)].map((m) => Number(m[1]));
      assert.equal(losses.length, 4, text);
      assert.ok(losses[3] < losses[0] / 2, `the README's loss did not fall: ${losses}`);
    }
  }
});
