/**
 * Convolution and pooling modules over core/conv.ts: Conv1d, Conv2d, ConvTranspose2d,
 * MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, with torch.nn's weight layouts ([out, in/groups,
 * ...k] for convolutions, [in, out/groups, kh, kw] for the transposed one) and default
 * initialisation (kaiming_uniform(a = sqrt 5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
 */
import * as C from "../conv.ts";
import { zeros } from "../ops/creation.ts";
import type { PadMode } from "../ops/shape.ts";
import type { Tensor } from "../tensor.ts";
import * as init from "./init.ts";
import { initBiasFromFanIn } from "./layers.ts";
import { Module } from "./module.ts";

type Pair = number | number[];
const tuple = (v: Pair, n: number): number[] =>
  typeof v === "number" ? Array(n).fill(v) : v.length === 1 ? Array(n).fill(v[0]) : [...v];

export interface ConvOptions {
  stride?: Pair;
  /** Zeros (or paddingMode values) on both sides, or "valid" / "same" (stride 1). */
  padding?: Pair | "same" | "valid";
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  /** How padding is filled: "zeros" (default), "reflect", "replicate" or "circular". */
  paddingMode?: "zeros" | "reflect" | "replicate" | "circular";
}

/** The shared parts of Conv1d and Conv2d (PyTorch's _ConvNd). */
abstract class ConvNd extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly kernelSize: number[];
  readonly stride: number[];
  readonly padding: number[] | "same" | "valid";
  readonly dilation: number[];
  readonly groups: number;
  readonly paddingMode: NonNullable<ConvOptions["paddingMode"]>;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    o: ConvOptions,
    n: 1 | 2,
  ) {
    super();
    const name = this.constructor.name;
    this.groups = o.groups ?? 1;
    if (inChannels % this.groups || outChannels % this.groups) {
      throw new Error(`${name}: in_channels and out_channels must be divisible by groups`);
    }
    this.kernelSize = tuple(kernelSize, n);
    this.stride = tuple(o.stride ?? 1, n);
    this.dilation = tuple(o.dilation ?? 1, n);
    const p = o.padding ?? 0;
    this.padding = typeof p === "string" ? p : tuple(p, n);
    if (p === "same" && this.stride.some((s) => s !== 1)) {
      throw new Error(`${name}: padding='same' is not supported for strided convolutions`);
    }
    this.paddingMode = o.paddingMode ?? "zeros";
    const shape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    this.weight = this.registerParameter("weight", zeros(shape));
    this.bias = this.registerParameter("bias", (o.bias ?? true) ? zeros([outChannels]) : null);
    this.resetParameters();
  }

  /** weight ~ kaiming_uniform(a = sqrt 5); bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
  resetParameters(): void {
    init.kaimingUniform(this.weight, { a: Math.sqrt(5) });
    if (this.bias) initBiasFromFanIn(this.bias, this.weight);
  }

  /**
   * For a non-zeros paddingMode: pads x explicitly (PyTorch's reversed padding repeated twice)
   * and returns the padding left for the convolution (0).
   */
  protected prepare(x: Tensor): [Tensor, Pair | "same" | "valid"] {
    if (this.paddingMode === "zeros" || this.padding === "valid") return [x, this.padding];
    const pads: number[] = [];
    for (let i = this.kernelSize.length - 1; i >= 0; i--) {
      if (this.padding === "same") {
        const total = this.dilation[i] * (this.kernelSize[i] - 1), left = total >> 1;
        pads.push(left, total - left);
      } else pads.push(this.padding[i], this.padding[i]);
    }
    const mode: PadMode = this.paddingMode;
    return [x.pad(pads, { mode }), 0];
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize}), ` +
      `stride=(${this.stride})` + (this.groups !== 1 ? `, groups=${this.groups}` : "") +
      (this.bias ? "" : ", bias=False");
  }
}

/** 1-D convolution over [N, C, L] (or unbatched [C, L]). */
export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, o: ConvOptions = {}) {
    super(inChannels, outChannels, kernelSize, o, 1);
  }
  forward(x: Tensor): Tensor {
    const [xp, padding] = this.prepare(x);
    return C.conv1d(xp, this.weight, this.bias, {
      stride: this.stride,
      padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}

/** 2-D convolution over [N, C, H, W] (or unbatched [C, H, W]). */
export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, o: ConvOptions = {}) {
    super(inChannels, outChannels, kernelSize, o, 2);
  }
  forward(x: Tensor): Tensor {
    const [xp, padding] = this.prepare(x);
    return C.conv2d(xp, this.weight, this.bias, {
      stride: this.stride,
      padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}

export interface ConvTransposeOptions {
  stride?: Pair;
  /** Removed from both sides of the full output. */
  padding?: Pair;
  /** Extra rows/columns at the bottom/right of the output. */
  outputPadding?: Pair;
  groups?: number;
  bias?: boolean;
  dilation?: Pair;
}

/** Transposed 2-D convolution; weight [in, out/groups, kh, kw]. */
export class ConvTranspose2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly kernelSize: number[];
  readonly stride: number[];
  readonly padding: number[];
  readonly outputPadding: number[];
  readonly dilation: number[];
  readonly groups: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    o: ConvTransposeOptions = {},
  ) {
    super();
    this.groups = o.groups ?? 1;
    if (inChannels % this.groups || outChannels % this.groups) {
      throw new Error(`ConvTranspose2d: in_channels and out_channels must be divisible by groups`);
    }
    this.kernelSize = tuple(kernelSize, 2);
    this.stride = tuple(o.stride ?? 1, 2);
    this.padding = tuple(o.padding ?? 0, 2);
    this.outputPadding = tuple(o.outputPadding ?? 0, 2);
    this.dilation = tuple(o.dilation ?? 1, 2);
    const shape = [inChannels, outChannels / this.groups, ...this.kernelSize];
    this.weight = this.registerParameter("weight", zeros(shape));
    this.bias = this.registerParameter("bias", (o.bias ?? true) ? zeros([outChannels]) : null);
    this.resetParameters();
  }

  /** As Conv2d; fan_in is computed from this layout, i.e. (out / groups) kh kw, as PyTorch. */
  resetParameters(): void {
    init.kaimingUniform(this.weight, { a: Math.sqrt(5) });
    if (this.bias) initBiasFromFanIn(this.bias, this.weight);
  }

  /** `outputSize` ([H, W], optional) picks the outputPadding that gives that size. */
  forward(x: Tensor, outputSize?: number[]): Tensor {
    let outputPadding = this.outputPadding;
    if (outputSize) {
      const hw = x.shape.slice(-2), want = outputSize.slice(-2);
      outputPadding = [0, 1].map((i) => {
        const min = (hw[i] - 1) * this.stride[i] - 2 * this.padding[i] +
          this.dilation[i] * (this.kernelSize[i] - 1) + 1;
        const extra = want[i] - min;
        if (extra < 0 || extra >= Math.max(this.stride[i], this.dilation[i])) {
          throw new Error(`ConvTranspose2d: requested output size ${want} is not reachable`);
        }
        return extra;
      });
    }
    return C.convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      outputPadding,
      groups: this.groups,
      dilation: this.dilation,
    });
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize}), ` +
      `stride=(${this.stride})`;
  }
}

/** 2-D max pooling; stride defaults to the kernel size. */
export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: C.MaxPoolOptions = {}) {
    super();
  }
  forward(x: Tensor): Tensor {
    return C.maxPool2d(x, this.kernelSize, this.options);
  }
  override extraRepr(): string {
    return `kernel_size=${this.kernelSize}`;
  }
}

/** 2-D average pooling; stride defaults to the kernel size, padding counted by default. */
export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: C.AvgPoolOptions = {}) {
    super();
  }
  forward(x: Tensor): Tensor {
    return C.avgPool2d(x, this.kernelSize, this.options);
  }
  override extraRepr(): string {
    return `kernel_size=${this.kernelSize}`;
  }
}

/** Average pooling to a fixed output size (null keeps that dim). */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: number | (number | null)[]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return C.adaptiveAvgPool2d(x, this.outputSize);
  }
  override extraRepr(): string {
    return `output_size=${this.outputSize}`;
  }
}
