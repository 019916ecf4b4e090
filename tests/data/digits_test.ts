import assert from "node:assert/strict";
import { DIGITS_URL, loadDigits, parseDigits } from "../../data/digits.ts";
import { counts } from "./_helpers.ts";

// Computed once with scikit-learn 1.9.1:
//   np.bincount(sklearn.datasets.load_digits().target) -> per digit 0..9
const SKLEARN_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180];
// load_digits().data[0].astype(int), the first image (a zero), and sum of all pixels.
// deno-fmt-ignore
const SKLEARN_FIRST = [
   0,  0,  5, 13,  9,  1,  0,  0,
   0,  0, 13, 15, 10, 15,  5,  0,
   0,  3, 15,  2,  0, 11,  8,  0,
   0,  4, 12,  0,  0,  8,  8,  0,
   0,  5,  8,  0,  0,  9,  8,  0,
   0,  4, 11,  0,  1, 12,  7,  0,
   0,  2, 14,  5, 10, 12,  0,  0,
   0,  0,  6, 13, 10,  0,  0,  0,
];
const SKLEARN_PIXEL_SUM = 561718;

Deno.test("digits: 1797 rows of 64 pixels scaled to [0, 1], 10 classes", () => {
  const ds = loadDigits();
  assert.deepEqual(ds.xShape, [1797, 64]);
  assert.deepEqual(ds.yShape, [1797]);
  assert.equal(ds.numClasses, 10);
  assert.ok(ds.x instanceof Float32Array && ds.y instanceof Int32Array);
  let max = 0;
  for (const v of ds.x) {
    assert.ok(v >= 0 && v <= 1);
    max = Math.max(max, v);
  }
  assert.equal(max, 1);
});

Deno.test("digits: label counts equal scikit-learn's", () => {
  assert.deepEqual(counts(loadDigits().y, 10), SKLEARN_COUNTS);
});

Deno.test("digits: normalize false gives scikit-learn's raw pixels 0..16", () => {
  const raw = loadDigits({ normalize: false });
  assert.deepEqual(Array.from(raw.x.subarray(0, 64)), SKLEARN_FIRST);
  let sum = 0;
  for (const v of raw.x) sum += v;
  assert.equal(sum, SKLEARN_PIXEL_SUM);
  const norm = loadDigits();
  for (let i = 0; i < 64; i++) assert.equal(norm.x[i], SKLEARN_FIRST[i] / 16);
});

/** Runs `code` with `deno eval` in `cwd`; returns stdout and stderr. */
async function evalIn(cwd: string, code: string): Promise<{ stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("digits: loads from another working directory", async () => {
  const tmp = Deno.makeTempDirSync();
  try {
    const url = new URL("../../data/digits.ts", import.meta.url).href;
    const code = `import { loadDigits } from "${url}"; console.log(loadDigits().xShape.join("x"));`;
    const { stdout, stderr } = await evalIn(tmp, code);
    assert.equal(stderr, "");
    assert.equal(stdout.trim(), "1797x64");
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
});

Deno.test("digits: a missing file gives an Error naming it", async () => {
  // A copy of the loader in a folder without digits/digits.bin next to it.
  const tmp = Deno.makeTempDirSync();
  try {
    Deno.copyFileSync(new URL("../../data/digits.ts", import.meta.url), `${tmp}/digits.ts`);
    const code = `import { loadDigits } from "file://${tmp}/digits.ts";
      try { loadDigits(); } catch (e) { console.log(e.message); }`;
    const { stdout } = await evalIn(tmp, code);
    assert.match(stdout, /^loadDigits: cannot read .*\/digits\/digits\.bin/);
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
});

Deno.test("digits: a truncated or foreign file gives an Error naming the file", () => {
  const good = Deno.readFileSync(DIGITS_URL);
  assert.throws(
    () => parseDigits(good.subarray(0, 100), {}, "/some/digits.bin"),
    /\/some\/digits\.bin/,
  );
  const foreign = new Uint8Array(good);
  foreign[0] = 0x58;
  assert.throws(() => parseDigits(foreign, {}, "/x/digits.bin"), /\/x\/digits\.bin.*magic/);
});
