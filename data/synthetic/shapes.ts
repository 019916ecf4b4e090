/**
 * Multi-label synthetic shape images: small RGB pictures of 1..k identical objects, labelled
 * for five tasks at once (shape, colour, size, position quadrant, count), with nuisance
 * options for domain shift (Gaussian noise, rotation, colour jitter, background clutter).
 *
 * Every task's labels are drawn exactly balanced (each class appears floor(n/K) or ceil(n/K)
 * times) and independently of the other tasks. The label/layout stream and each nuisance
 * stream come from separate forks of the seed, so changing only a nuisance option (say
 * `noiseStd`) keeps every label and object position: clean and shifted copies of the same
 * images for domain-shift experiments.
 */

import { Generator } from "../../core/random.ts";
import {
  checkChoice,
  checkInt,
  checkNumber,
  checkSeed,
  optionError,
  type TypedDataset,
} from "../dataset.ts";

/** The shapes that can be drawn. */
export const SHAPE_NAMES = ["circle", "square", "triangle", "cross"] as const;
/** A shape name. */
export type ShapeName = typeof SHAPE_NAMES[number];

/** The colour palette (RGB in [0, 1]). */
export const COLOURS = {
  red: [1, 0.1, 0.1],
  green: [0.1, 0.85, 0.1],
  blue: [0.15, 0.3, 1],
  yellow: [1, 0.9, 0.1],
  magenta: [0.95, 0.1, 0.95],
  cyan: [0.1, 0.9, 0.95],
} as const;
/** A palette colour name. */
export type ColourName = keyof typeof COLOURS;

/** The label tasks; `meta.labels` holds all of them. */
export const SHAPE_TASKS = ["shape", "colour", "size", "quadrant", "count"] as const;
/** A label task. */
export type ShapeTask = typeof SHAPE_TASKS[number];

/** Quadrant classes, by the centroid of the objects' centres (image rows grow downwards). */
export const QUADRANTS = ["top-left", "top-right", "bottom-left", "bottom-right"] as const;

/** Options of `shapes`. */
export interface ShapesOptions {
  /** Number of images. Default 1000. */
  n?: number;
  /** Seed. Default 0. */
  seed?: number;
  /** The task whose labels go in `y`. Default "shape". */
  task?: ShapeTask;
  /** Shapes to draw (label = index here). Default all of SHAPE_NAMES. */
  shapes?: ShapeName[];
  /** Colours (label = index here). Default all six palette colours. */
  colours?: ColourName[];
  /** Object radii in pixels (label = index here). Default [2, 3]. */
  sizes?: number[];
  /** Objects per image are 1..maxCount (count label c means c + 1 objects). Default 3. */
  maxCount?: number;
  /** Side of the square image in pixels. Default 16. */
  imageSize?: number;
  /** Std of additive Gaussian pixel noise (result clipped to [0, 1]). Default 0. */
  noiseStd?: number;
  /** Each object is rotated by an angle uniform in [lo, hi] degrees. Default [0, 0]. */
  rotation?: [number, number];
  /** Each image's object colour moves by uniform(-j, j) per channel, clipped. Default 0. */
  colourJitter?: number;
  /** Number of random-coloured 1-2 pixel specks drawn under the objects. Default 0. */
  clutter?: number;
  /** Background RGB in [0, 1]. Default [0, 0, 0]. */
  background?: [number, number, number];
}

/** Placement radius as a multiple of the drawing radius: covers every shape at any angle. */
const BOUND = 1.15;
/** Supersampling per axis for anti-aliased coverage. */
const SS = 3;

/** Is local point (u, v) inside shape `s` of radius r (v grows downwards)? */
function inside(s: ShapeName, u: number, v: number, r: number): boolean {
  switch (s) {
    case "circle":
      return u * u + v * v <= r * r;
    case "square":
      return Math.abs(u) <= 0.8 * r && Math.abs(v) <= 0.8 * r;
    case "triangle": // apex (0, -r), base corners (+-0.9r, 0.7r)
      return v >= -r && v <= 0.7 * r && Math.abs(u) <= (0.9 * (v + r)) / 1.7;
    case "cross":
      return (Math.abs(u) <= r / 3 && Math.abs(v) <= r) ||
        (Math.abs(v) <= r / 3 && Math.abs(u) <= r);
  }
}

/** Labels 0..k-1, each used floor(n/k) or ceil(n/k) times, in random order. */
function balancedLabels(gen: Generator, n: number, k: number): Int32Array {
  const perm = gen.permutation(n);
  for (let i = 0; i < n; i++) perm[i] %= k;
  return perm;
}

/**
 * Places `count` objects of placement radius R on an S x S canvas without overlap (1 px gap),
 * then reflects the layout so the centroid of the centres lies in quadrant q.
 */
function layout(gen: Generator, count: number, R: number, S: number, q: number): number[] {
  for (let attempt = 0; attempt < 10000; attempt++) {
    const c: number[] = [];
    for (let j = 0; j < count; j++) {
      let placed = false;
      for (let t = 0; t < 200 && !placed; t++) {
        const x = gen.uniform(R, S - R);
        const y = gen.uniform(R, S - R);
        placed = true;
        for (let m = 0; m < c.length; m += 2) {
          if (Math.hypot(x - c[m], y - c[m + 1]) < 2 * R + 1) placed = false;
        }
        if (placed) c.push(x, y);
      }
      if (!placed) break;
    }
    if (c.length < 2 * count) continue;
    let cx = 0, cy = 0;
    for (let m = 0; m < c.length; m += 2) (cx += c[m]), (cy += c[m + 1]);
    cx /= count, cy /= count;
    if (cx === S / 2 || cy === S / 2) continue; // on a boundary: no quadrant, draw again
    const flipX = (cx > S / 2) !== ((q & 1) === 1);
    const flipY = (cy > S / 2) !== ((q & 2) === 2);
    for (let m = 0; m < c.length; m += 2) {
      if (flipX) c[m] = S - c[m];
      if (flipY) c[m + 1] = S - c[m + 1];
    }
    return c;
  }
  throw optionError(
    "shapes",
    "maxCount",
    `is too large: cannot place ${count} objects of radius ${R / BOUND} on a ${S}x${S} image; ` +
      "lower maxCount or sizes, or raise imageSize",
  );
}

/**
 * Generates the shape images. Returns x: Float32Array [n, 3, S, S] (channels first, values
 * in [0, 1]), y: Int32Array [n] of the chosen task's labels, numClasses of that task, and in
 * `meta`: `labels` (every task's Int32Array labels), `classNames` (per task), `task`,
 * `options` (resolved), `perRow: ["labels"]`.
 */
export function shapes(options: ShapesOptions = {}): TypedDataset<Float32Array, Int32Array> {
  const G = "shapes";
  const {
    n = 1000,
    seed = 0,
    task = "shape",
    shapes: shapeList = [...SHAPE_NAMES],
    colours = Object.keys(COLOURS) as ColourName[],
    sizes = [2, 3],
    maxCount = 3,
    imageSize: S = 16,
    noiseStd = 0,
    rotation = [0, 0],
    colourJitter = 0,
    clutter = 0,
    background = [0, 0, 0],
  } = options;
  checkInt(G, "n", n, 1);
  checkSeed(G, seed);
  checkChoice(G, "task", task, SHAPE_TASKS);
  checkInt(G, "imageSize", S, 8, 128);
  if (shapeList.length === 0) throw optionError(G, "shapes", "must not be empty");
  shapeList.forEach((s) => checkChoice(G, "shapes", s, SHAPE_NAMES));
  if (colours.length === 0) throw optionError(G, "colours", "must not be empty");
  colours.forEach((c) => checkChoice(G, "colours", c, Object.keys(COLOURS) as ColourName[]));
  if (sizes.length === 0) throw optionError(G, "sizes", "must not be empty");
  sizes.forEach((r) => checkNumber(G, "sizes", r, 1, S / 4));
  checkInt(G, "maxCount", maxCount, 1, 9);
  checkNumber(G, "noiseStd", noiseStd, 0);
  if (!Array.isArray(rotation) || rotation.length !== 2 || !(rotation[0] <= rotation[1])) {
    throw optionError(G, "rotation", `must be [lo, hi] degrees with lo <= hi, got ${rotation}`);
  }
  rotation.forEach((a) => checkNumber(G, "rotation", a, -3600, 3600));
  checkNumber(G, "colourJitter", colourJitter, 0, 1);
  checkInt(G, "clutter", clutter, 0, S * S);
  if (!Array.isArray(background) || background.length !== 3) {
    throw optionError(G, "background", `must be an RGB triple, got ${background}`);
  }
  background.forEach((b) => checkNumber(G, "background", b, 0, 1));

  const classNames: Record<ShapeTask, string[]> = {
    shape: [...shapeList],
    colour: [...colours],
    size: sizes.map((r) => `r=${r}`),
    quadrant: [...QUADRANTS],
    count: Array.from({ length: maxCount }, (_, c) => String(c + 1)),
  };
  if (classNames[task].length < 2) {
    throw optionError(G, "task", `'${task}' has a single class with these options`);
  }

  // Independent streams: labels+layout, then one per nuisance.
  const master = new Generator(seed);
  const layoutGen = master.fork();
  const rotGen = master.fork();
  const jitterGen = master.fork();
  const clutterGen = master.fork();
  const noiseGen = master.fork();

  const labels: Record<ShapeTask, Int32Array> = {
    shape: balancedLabels(layoutGen, n, shapeList.length),
    colour: balancedLabels(layoutGen, n, colours.length),
    size: balancedLabels(layoutGen, n, sizes.length),
    quadrant: balancedLabels(layoutGen, n, 4),
    count: balancedLabels(layoutGen, n, maxCount),
  };

  const P = S * S;
  const x = new Float32Array(n * 3 * P);
  const cov = new Float32Array(P);
  for (let i = 0; i < n; i++) {
    const img = x.subarray(i * 3 * P, (i + 1) * 3 * P);
    for (let c = 0; c < 3; c++) img.fill(background[c], c * P, (c + 1) * P);

    // Clutter: specks of 1 or 2 pixels (horizontal or vertical) in random colours.
    for (let k = 0; k < clutter; k++) {
      const px = clutterGen.int(0, S), py = clutterGen.int(0, S);
      const len = clutterGen.int(1, 3), vertical = clutterGen.bernoulli(0.5);
      const rgb = [clutterGen.uniform(), clutterGen.uniform(), clutterGen.uniform()];
      for (let t = 0; t < len; t++) {
        const qx = vertical ? px : px + t, qy = vertical ? py + t : py;
        if (qx >= S || qy >= S) continue;
        for (let c = 0; c < 3; c++) img[c * P + qy * S + qx] = rgb[c];
      }
    }

    // Objects: same shape, colour and size; coverage by supersampling, then alpha-blend.
    const shape = shapeList[labels.shape[i]];
    const r = sizes[labels.size[i]];
    const count = labels.count[i] + 1;
    const rgb = COLOURS[colours[labels.colour[i]]].map((v) => {
      const j = colourJitter > 0 ? jitterGen.uniform(-colourJitter, colourJitter) : 0;
      return Math.min(1, Math.max(0, v + j));
    });
    const centres = layout(layoutGen, count, BOUND * r, S, labels.quadrant[i]);
    cov.fill(0);
    for (let m = 0; m < centres.length; m += 2) {
      const cx = centres[m], cy = centres[m + 1];
      const theta = (rotGen.uniform(rotation[0], rotation[1]) * Math.PI) / 180;
      const cos = Math.cos(theta), sin = Math.sin(theta);
      const R = BOUND * r;
      const x0 = Math.max(0, Math.floor(cx - R)), x1 = Math.min(S - 1, Math.ceil(cx + R));
      const y0 = Math.max(0, Math.floor(cy - R)), y1 = Math.min(S - 1, Math.ceil(cy + R));
      for (let py = y0; py <= y1; py++) {
        for (let px = x0; px <= x1; px++) {
          let hits = 0;
          for (let sy = 0; sy < SS; sy++) {
            for (let sx = 0; sx < SS; sx++) {
              const dx = px + (sx + 0.5) / SS - cx, dy = py + (sy + 0.5) / SS - cy;
              // Rotate the sample point by -theta into the shape's own frame.
              if (inside(shape, cos * dx + sin * dy, -sin * dx + cos * dy, r)) hits++;
            }
          }
          cov[py * S + px] += hits / (SS * SS); // objects never overlap
        }
      }
    }
    for (let p = 0; p < P; p++) {
      const a = Math.min(1, cov[p]);
      if (a > 0) {
        for (let c = 0; c < 3; c++) img[c * P + p] = img[c * P + p] * (1 - a) + rgb[c] * a;
      }
    }

    if (noiseStd > 0) {
      for (let p = 0; p < img.length; p++) {
        img[p] = Math.min(1, Math.max(0, img[p] + noiseGen.normal(0, noiseStd)));
      }
    }
  }

  return {
    name: "shapes",
    x,
    xShape: [n, 3, S, S],
    y: Int32Array.from(labels[task]),
    yShape: [n],
    numClasses: classNames[task].length,
    meta: {
      generator: "shapes",
      task,
      tasks: [...SHAPE_TASKS],
      labels,
      classNames,
      options: {
        n,
        seed,
        task,
        shapes: shapeList,
        colours,
        sizes,
        maxCount,
        imageSize: S,
        noiseStd,
        rotation,
        colourJitter,
        clutter,
        background,
      },
      perRow: ["labels"],
    },
  };
}
