/**
 * Normalisation layers: LayerNorm, RMSNorm, BatchNorm1d, BatchNorm2d, GroupNorm, with
 * PyTorch's parameter and buffer names ("weight", "bias", "running_mean", "running_var",
 * "num_batches_tracked") and initialisations (weight 1, bias 0, running var 1).
 */
import { noGrad } from "../autograd.ts";
import * as F from "../functional.ts";
import { full, ones, zeros } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import * as init from "./init.ts";
import { Module } from "./module.ts";

const shapeOf = (s: number | number[]): number[] => (typeof s === "number" ? [s] : [...s]);

export interface LayerNormOptions {
  /** Default 1e-5. */
  eps?: number;
  /** Learn a per-element weight (and bias); default true. */
  elementwiseAffine?: boolean;
  /** Learn the bias when affine; default true. */
  bias?: boolean;
}

/** Normalises over the trailing `normalizedShape` dims (Ba et al., 2016). */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  weight: Tensor | null;
  bias: Tensor | null;

  constructor(normalizedShape: number | number[], o: LayerNormOptions = {}) {
    super();
    this.normalizedShape = shapeOf(normalizedShape);
    this.eps = o.eps ?? 1e-5;
    const affine = o.elementwiseAffine ?? true;
    this.weight = this.registerParameter("weight", affine ? ones(this.normalizedShape) : null);
    this.bias = this.registerParameter(
      "bias",
      affine && (o.bias ?? true) ? zeros(this.normalizedShape) : null,
    );
  }

  resetParameters(): void {
    if (this.weight) init.ones(this.weight);
    if (this.bias) init.zeros(this.bias);
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, {
      weight: this.weight,
      bias: this.bias,
      eps: this.eps,
    });
  }

  override extraRepr(): string {
    return `(${this.normalizedShape},), eps=${this.eps}, elementwise_affine=${!!this.weight}`;
  }
}

/** x / sqrt(mean(x^2) + eps) * weight (Zhang & Sennrich, 2019); eps defaults to float32 eps. */
export class RMSNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps?: number;
  weight: Tensor | null;

  constructor(
    normalizedShape: number | number[],
    o: { eps?: number; elementwiseAffine?: boolean } = {},
  ) {
    super();
    this.normalizedShape = shapeOf(normalizedShape);
    this.eps = o.eps;
    this.weight = this.registerParameter(
      "weight",
      (o.elementwiseAffine ?? true) ? ones(this.normalizedShape) : null,
    );
  }

  resetParameters(): void {
    if (this.weight) init.ones(this.weight);
  }

  forward(x: Tensor): Tensor {
    return F.rmsNorm(x, this.normalizedShape, { weight: this.weight, eps: this.eps });
  }
}

export interface BatchNormOptions {
  /** Default 1e-5. */
  eps?: number;
  /** Running-average factor, default 0.1; null for a cumulative (equal-weight) average. */
  momentum?: number | null;
  /** Learn weight and bias; default true. */
  affine?: boolean;
  /** Keep running statistics for eval mode; default true. */
  trackRunningStats?: boolean;
}

/**
 * Batch normalisation (Ioffe & Szegedy, 2015) over dim 1. Training normalises with the batch's
 * biased statistics and updates the running ones (unbiased variance); eval uses the running
 * statistics when they are tracked.
 */
abstract class BatchNormBase extends Module {
  readonly eps: number;
  readonly momentum: number | null;
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  numBatchesTracked: Tensor | null;

  constructor(readonly numFeatures: number, o: BatchNormOptions = {}) {
    super();
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    const affine = o.affine ?? true, track = o.trackRunningStats ?? true;
    this.weight = this.registerParameter("weight", affine ? ones([numFeatures]) : null);
    this.bias = this.registerParameter("bias", affine ? zeros([numFeatures]) : null);
    this.runningMean = this.registerBuffer("running_mean", track ? zeros([numFeatures]) : null);
    this.runningVar = this.registerBuffer("running_var", track ? ones([numFeatures]) : null);
    this.numBatchesTracked = this.registerBuffer(
      "num_batches_tracked",
      track ? full([], 0, { dtype: "int32" }) : null,
    );
  }

  /** Checks the input's rank (each subclass's expectation). */
  protected abstract checkInput(x: Tensor): void;

  protected override optionalStateKeys(): string[] {
    return ["num_batches_tracked"]; // absent from checkpoints older than PyTorch 0.4.1
  }

  /** Running statistics back to mean 0, variance 1, no batches. */
  resetRunningStats(): void {
    if (this.runningMean) init.zeros(this.runningMean);
    if (this.runningVar) init.ones(this.runningVar);
    if (this.numBatchesTracked) init.zeros(this.numBatchesTracked);
  }

  resetParameters(): void {
    this.resetRunningStats();
    if (this.weight) init.ones(this.weight);
    if (this.bias) init.zeros(this.bias);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    const { runningMean: rm, runningVar: rv, numBatchesTracked: nbt } = this;
    const tracking = this.training && rm !== null && rv !== null;
    if (tracking && nbt) noGrad(() => nbt.assign(nbt.add(1)));
    const affine = { weight: this.weight, bias: this.bias, eps: this.eps };
    if (tracking && this.momentum === null) {
      // Cumulative average: factor 1 / num_batches_tracked, kept on the device.
      const y = F.batchNorm(x, null, null, { ...affine, training: true });
      noGrad(() => {
        const dims = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
        const f = nbt!.float().reciprocal();
        const mu = x.mean(dims);
        const v = x.var(dims, { correction: 1 }); // unbiased, as PyTorch's running_var
        rm.assign(rm.add(mu.sub(rm).mul(f)));
        rv.assign(rv.add(v.sub(rv).mul(f)));
      });
      return y;
    }
    return F.batchNorm(x, rm, rv, {
      ...affine,
      training: this.training || rm === null || rv === null,
      momentum: this.momentum ?? 0,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${!!this
      .weight}, track_running_stats=${!!this.runningMean}`;
  }
}

/** BatchNorm over [N, C] or [N, C, L]. */
export class BatchNorm1d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 2 && x.ndim !== 3) {
      throw new Error(`BatchNorm1d: expected 2D or 3D input (got ${x.ndim}D input)`);
    }
  }
}

/** BatchNorm over [N, C, H, W]. */
export class BatchNorm2d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 4) throw new Error(`BatchNorm2d: expected 4D input (got ${x.ndim}D input)`);
  }
}

/** Normalises groups of channels per sample (Wu & He, 2018). */
export class GroupNorm extends Module {
  readonly eps: number;
  weight: Tensor | null;
  bias: Tensor | null;

  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    o: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    if (numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm: num_channels ${numChannels} must be divisible by num_groups`);
    }
    this.eps = o.eps ?? 1e-5;
    const affine = o.affine ?? true;
    this.weight = this.registerParameter("weight", affine ? ones([numChannels]) : null);
    this.bias = this.registerParameter("bias", affine ? zeros([numChannels]) : null);
  }

  resetParameters(): void {
    if (this.weight) init.ones(this.weight);
    if (this.bias) init.zeros(this.bias);
  }

  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.numGroups, { weight: this.weight, bias: this.bias, eps: this.eps });
  }

  override extraRepr(): string {
    return `${this.numGroups}, ${this.numChannels}, eps=${this.eps}, affine=${!!this.weight}`;
  }
}
