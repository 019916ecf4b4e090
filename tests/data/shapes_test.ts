import assert from "node:assert/strict";
import { type ColourName, COLOURS, SHAPE_TASKS, shapes } from "../../data/synthetic/shapes.ts";
import { assertBalanced, assertThrowsMatch, sameBytes } from "./_helpers.ts";

const S = 16, P = S * S;
const clean = shapes({ n: 400, seed: 3 });
const labels = clean.meta!.labels as Record<string, Int32Array>;
const names = clean.meta!.classNames as Record<string, string[]>;

/** Largest channel of pixel p of image i. */
function ink(x: Float32Array, i: number, p: number): number {
  return Math.max(x[i * 3 * P + p], x[i * 3 * P + P + p], x[i * 3 * P + 2 * P + p]);
}

/** 4-connected components of pixels with ink >= 0.3. */
function components(x: Float32Array, i: number): number {
  const seen = new Uint8Array(P);
  let count = 0;
  for (let p = 0; p < P; p++) {
    if (seen[p] || ink(x, i, p) < 0.3) continue;
    count++;
    const stack = [p];
    seen[p] = 1;
    while (stack.length) {
      const q = stack.pop()!, qx = q % S, qy = (q - qx) / S;
      for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
        const nx = qx + dx, ny = qy + dy, r = ny * S + nx;
        if (nx < 0 || ny < 0 || nx >= S || ny >= S || seen[r] || ink(x, i, r) < 0.3) continue;
        seen[r] = 1;
        stack.push(r);
      }
    }
  }
  return count;
}

Deno.test("shapes: same seed gives identical bytes, another seed different images", () => {
  const a = shapes({ n: 50, seed: 7, rotation: [-20, 20], noiseStd: 0.1, clutter: 2 });
  const b = shapes({ n: 50, seed: 7, rotation: [-20, 20], noiseStd: 0.1, clutter: 2 });
  const c = shapes({ n: 50, seed: 8, rotation: [-20, 20], noiseStd: 0.1, clutter: 2 });
  assert.ok(sameBytes(a.x, b.x) && sameBytes(a.y, b.y));
  assert.ok(!sameBytes(a.x, c.x));
});

Deno.test("shapes: channels-first [n, 3, 16, 16] float32 in [0, 1], y is the chosen task", () => {
  assert.deepEqual(clean.xShape, [400, 3, 16, 16]);
  assert.ok(clean.x instanceof Float32Array && clean.x.every((v) => v >= 0 && v <= 1));
  assert.deepEqual(Array.from(clean.y), Array.from(labels.shape));
  assert.equal(clean.numClasses, 4);
  const byCount = shapes({ n: 400, seed: 3, task: "count" });
  assert.deepEqual(Array.from(byCount.y), Array.from(labels.count));
  assert.equal(byCount.numClasses, 3);
});

Deno.test("shapes: every task's labels are exactly balanced", () => {
  for (const t of SHAPE_TASKS) assertBalanced(labels[t], names[t].length, t);
});

Deno.test("shapes: the number of separate blobs equals the count label + 1", () => {
  for (let i = 0; i < 400; i++) {
    assert.equal(components(clean.x, i), labels.count[i] + 1, `image ${i}`);
  }
});

Deno.test("shapes: every drawn pixel is a shade of the colour label's palette colour", () => {
  for (let i = 0; i < 400; i++) {
    const rgb = COLOURS[names.colour[labels.colour[i]] as ColourName];
    let drawn = 0;
    for (let p = 0; p < P; p++) {
      const a = clean.x[i * 3 * P + p] / rgb[0]; // coverage alpha (red is > 0 in every colour)
      if (a === 0) continue;
      drawn++;
      for (let c = 1; c < 3; c++) {
        assert.ok(Math.abs(clean.x[i * 3 * P + c * P + p] - a * rgb[c]) < 1e-5);
      }
    }
    assert.ok(drawn > 0);
  }
});

Deno.test("shapes: ink centroid lies in the quadrant label; large objects have more ink", () => {
  const inkBySize = [0, 0];
  for (let i = 0; i < 400; i++) {
    let m = 0, mx = 0, my = 0;
    for (let p = 0; p < P; p++) {
      const v = ink(clean.x, i, p);
      (m += v), (mx += v * ((p % S) + 0.5)), (my += v * (Math.floor(p / S) + 0.5));
    }
    if (labels.count[i] === 0) inkBySize[labels.size[i]] += m;
    (mx /= m), (my /= m);
    if (Math.abs(mx - 8) < 1 || Math.abs(my - 8) < 1) continue; // too near a boundary to tell
    const q = (my > 8 ? 2 : 0) + (mx > 8 ? 1 : 0);
    assert.equal(q, labels.quadrant[i], `image ${i}`);
  }
  assert.ok(inkBySize[1] > 1.5 * inkBySize[0]);
});

Deno.test("shapes: nuisance options (noise, rotation, jitter, clutter) keep every label", () => {
  const shifted = shapes({
    n: 400,
    seed: 3,
    noiseStd: 0.2,
    rotation: [-45, 45],
    colourJitter: 0.3,
    clutter: 4,
    background: [0.2, 0.2, 0.2],
  });
  const l2 = shifted.meta!.labels as Record<string, Int32Array>;
  for (const t of SHAPE_TASKS) assert.deepEqual(Array.from(l2[t]), Array.from(labels[t]), t);
  assert.ok(!sameBytes(shifted.x, clean.x));
  assert.ok(shifted.x.every((v) => v >= 0 && v <= 1));
});

Deno.test("shapes: rotating circles changes no pixel by more than one subsample", () => {
  const a = shapes({ n: 100, seed: 1, shapes: ["circle"], task: "colour" });
  const b = shapes({ n: 100, seed: 1, shapes: ["circle"], task: "colour", rotation: [0, 360] });
  let max = 0;
  for (let i = 0; i < a.x.length; i++) max = Math.max(max, Math.abs(a.x[i] - b.x[i]));
  assert.ok(max <= 1 / 9 + 1e-6, `max diff ${max}`);
});

Deno.test("shapes: bad options throw Errors naming the generator and option", () => {
  assertThrowsMatch(() => shapes({ noiseStd: -1 }), /^shapes: option noiseStd/);
  assertThrowsMatch(() => shapes({ task: "count", maxCount: 1 }), /^shapes: option task/);
  assertThrowsMatch(() => shapes({ rotation: [10, 0] }), /^shapes: option rotation/);
  assertThrowsMatch(() => shapes({ colours: ["mauve" as ColourName] }), /^shapes: option colours/);
  assertThrowsMatch(() => shapes({ sizes: [4], maxCount: 9 }), /^shapes: option maxCount/);
});
