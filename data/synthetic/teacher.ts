/**
 * Teacher-student data: a random MLP teacher labels Gaussian inputs x ~ N(0, I).
 *
 * The teacher has layers inputDim -> widths[0] -> ... -> outputDim with weights
 * W ~ N(0, gain^2 / fan_in) (gain sqrt(2) for relu, 1 otherwise) and biases N(0, biasStd^2),
 * and the activation after every layer but the last; by default the last bias is set so each
 * output has mean ~0 over the input distribution (`center`), which keeps the argmax classes
 * roughly balanced. Regression targets are the teacher's
 * outputs plus N(0, noiseStd^2); classification labels are the argmax of its outputs
 * (outputDim = numClasses), or a sample from softmax(outputs / temperature) when
 * temperature > 0.
 *
 * The teacher is drawn from `teacherSeed` (default: `seed`) and the inputs and noise from
 * `seed`, so the same teacherSeed with another seed gives fresh samples of the same teacher.
 * `meta.teacher` holds its parameters; `teacherForward` evaluates it on new inputs.
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

/** Hidden activations. */
export const ACTIVATIONS = ["relu", "tanh", "linear"] as const;
/** A hidden activation. */
export type Activation = typeof ACTIVATIONS[number];

/** The teacher's parameters: layer l maps sizes[l] -> sizes[l+1]; weight is [out, in]. */
export interface TeacherParams {
  /** Layer sizes, input first. */
  sizes: number[];
  /** Activation after every layer but the last. */
  activation: Activation;
  /** Weight of layer l, [sizes[l+1], sizes[l]] row-major. */
  weights: Float32Array[];
  /** Bias of layer l, [sizes[l+1]]. */
  biases: Float32Array[];
}

/** Options of `teacher`. */
export interface TeacherOptions {
  /** "regression" (y: Float32Array [n, outputDim]) or "classification" (y: Int32Array [n]). */
  task?: "regression" | "classification";
  /** Number of rows. Default 1000. */
  n?: number;
  /** Input dimension. Default 16. */
  inputDim?: number;
  /** Hidden widths. Default [32]. Empty for a linear teacher. */
  widths?: number[];
  /** Output dimension for regression. Default 1. */
  outputDim?: number;
  /** Number of classes for classification. Default 4. */
  numClasses?: number;
  /** Hidden activation. Default "relu". */
  activation?: Activation;
  /** Std of the biases. Default 0. */
  biasStd?: number;
  /** Centre the teacher's outputs (see randomTeacher). Default true. */
  center?: boolean;
  /** Std of the regression target noise. Default 0. */
  noiseStd?: number;
  /** Classification: 0 takes the argmax, > 0 samples softmax(logits / T). Default 0. */
  temperature?: number;
  /** Seed of the inputs and noise. Default 0. */
  seed?: number;
  /** Seed of the teacher's parameters. Default `seed`. */
  teacherSeed?: number;
}

/** Options of `randomTeacher`. */
export interface RandomTeacherOptions {
  /** Layer sizes, input first: [inputDim, ...widths, outputDim]. */
  sizes: number[];
  /** Hidden activation. Default "relu". */
  activation?: Activation;
  /** Std of the biases. Default 0. */
  biasStd?: number;
  /** Shift the last bias so each output has mean ~0 over N(0, I) inputs. Default true. */
  center?: boolean;
  /** Seed. Default 0. */
  seed?: number;
}

/** Inputs used to estimate the output means when centring. */
const CENTER_SAMPLES = 4096;

/**
 * Draws a teacher's parameters. With `center`, the last layer's bias is shifted by minus the
 * mean output over CENTER_SAMPLES inputs drawn from the same stream: without it a relu
 * teacher's argmax is dominated by one or two classes.
 */
export function randomTeacher(options: RandomTeacherOptions): TeacherParams {
  const { sizes, activation = "relu", biasStd = 0, center = true, seed = 0 } = options;
  const gen = new Generator(seed);
  const gain = activation === "relu" ? Math.SQRT2 : 1;
  const weights: Float32Array[] = [], biases: Float32Array[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const [fanIn, fanOut] = [sizes[l], sizes[l + 1]];
    const w = new Float32Array(fanOut * fanIn);
    for (let i = 0; i < w.length; i++) w[i] = gen.normal(0, gain / Math.sqrt(fanIn));
    const b = new Float32Array(fanOut);
    if (biasStd > 0) { for (let i = 0; i < fanOut; i++) b[i] = gen.normal(0, biasStd); }
    weights.push(w), biases.push(b);
  }
  const params: TeacherParams = { sizes: [...sizes], activation, weights, biases };
  if (center) {
    const ref = new Float32Array(CENTER_SAMPLES * sizes[0]);
    for (let i = 0; i < ref.length; i++) ref[i] = gen.normal();
    const f = teacherForward(params, ref, CENTER_SAMPLES);
    const out = sizes[sizes.length - 1], last = biases[biases.length - 1];
    for (let o = 0; o < out; o++) {
      let mean = 0;
      for (let r = 0; r < CENTER_SAMPLES; r++) mean += f[r * out + o];
      last[o] -= mean / CENTER_SAMPLES;
    }
  }
  return params;
}

/** Evaluates the teacher on x [n, sizes[0]] (row-major); returns outputs [n, last size]. */
export function teacherForward(t: TeacherParams, x: Float32Array, n: number): Float32Array {
  if (x.length !== n * t.sizes[0]) {
    throw new Error(`teacherForward: expected x of ${n} x ${t.sizes[0]}, got ${x.length} values`);
  }
  let h: Float32Array = x;
  for (let l = 0; l < t.weights.length; l++) {
    const [fanIn, fanOut] = [t.sizes[l], t.sizes[l + 1]];
    const out = new Float32Array(n * fanOut);
    const last = l === t.weights.length - 1;
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < fanOut; o++) {
        let s = t.biases[l][o];
        for (let i = 0; i < fanIn; i++) s += t.weights[l][o * fanIn + i] * h[r * fanIn + i];
        if (!last) {
          s = t.activation === "relu" ? Math.max(0, s) : t.activation === "tanh" ? Math.tanh(s) : s;
        }
        out[r * fanOut + o] = s;
      }
    }
    h = out;
  }
  return h;
}

/** Generates teacher-labelled data (see the module comment). */
export function teacher(
  options: TeacherOptions = {},
): TypedDataset<Float32Array, Float32Array | Int32Array> {
  const G = "teacher";
  const {
    task = "regression",
    n = 1000,
    inputDim = 16,
    widths = [32],
    outputDim = 1,
    numClasses = 4,
    activation = "relu",
    biasStd = 0,
    center = true,
    noiseStd = 0,
    temperature = 0,
    seed = 0,
  } = options;
  const teacherSeed = options.teacherSeed ?? seed;
  checkChoice(G, "task", task, ["regression", "classification"] as const);
  checkInt(G, "n", n, 1);
  checkInt(G, "inputDim", inputDim, 1);
  if (!Array.isArray(widths)) throw optionError(G, "widths", "must be an array of integers");
  widths.forEach((w) => checkInt(G, "widths", w, 1));
  checkInt(G, "outputDim", outputDim, 1);
  checkInt(G, "numClasses", numClasses, 2);
  checkChoice(G, "activation", activation, ACTIVATIONS);
  checkNumber(G, "biasStd", biasStd, 0);
  checkNumber(G, "noiseStd", noiseStd, 0);
  checkNumber(G, "temperature", temperature, 0);
  checkSeed(G, seed);
  checkSeed(G, teacherSeed, "teacherSeed");
  if (task === "classification" && noiseStd > 0) {
    throw optionError(G, "noiseStd", "applies to regression; use temperature for classification");
  }

  const out = task === "classification" ? numClasses : outputDim;
  const sizes = [inputDim, ...widths, out];
  const params = randomTeacher({ sizes, activation, biasStd, center, seed: teacherSeed });
  const gen = new Generator(seed);
  const noiseGen = gen.fork();
  const x = new Float32Array(n * inputDim);
  for (let i = 0; i < x.length; i++) x[i] = gen.normal();
  const f = teacherForward(params, x, n);

  let y: Float32Array | Int32Array;
  if (task === "regression") {
    y = Float32Array.from(f, (v) => (noiseStd > 0 ? v + noiseGen.normal(0, noiseStd) : v));
  } else {
    y = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      const logits = f.subarray(r * out, (r + 1) * out);
      let best = 0;
      for (let c = 1; c < out; c++) if (logits[c] > logits[best]) best = c;
      if (temperature > 0) {
        const m = logits[best];
        const p = Array.from(logits, (v) => Math.exp((v - m) / temperature));
        let u = noiseGen.uniform(0, p.reduce((s, v) => s + v, 0));
        best = 0;
        while (best < out - 1 && u >= p[best]) u -= p[best++];
      }
      y[r] = best;
    }
  }

  return {
    name: `teacher-${task}`,
    x,
    xShape: [n, inputDim],
    y,
    yShape: task === "regression" ? [n, outputDim] : [n],
    ...(task === "classification" ? { numClasses } : {}),
    meta: {
      generator: "teacher",
      teacher: params,
      outputs: f, // the teacher's noiseless outputs (logits for classification)
      options: {
        task,
        n,
        inputDim,
        widths,
        outputDim: out,
        numClasses,
        activation,
        biasStd,
        center,
        noiseStd,
        temperature,
        seed,
        teacherSeed,
      },
      perRow: ["outputs"],
    },
  };
}
