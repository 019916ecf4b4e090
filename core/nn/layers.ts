/**
 * Basic layers: Linear, Bilinear, Embedding, Dropout, Identity, Flatten, Unflatten, with
 * PyTorch's parameter names, shapes and default initialisations (`resetParameters()`).
 */
import { noGrad } from "../autograd.ts";
import * as F from "../functional.ts";
import { scope } from "../memory.ts";
import { arange, zeros } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import * as init from "./init.ts";
import { Module } from "./module.ts";

/** U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for a bias, as PyTorch's layers initialise it. */
export function initBiasFromFanIn(bias: Tensor, weight: Tensor): void {
  const { fanIn } = init.calculateFanInAndFanOut(weight);
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  init.uniform(bias, -bound, bound);
}

/** y = x W^T + b, W of shape [out, in] (torch.nn.Linear). */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    o: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter("weight", zeros([outFeatures, inFeatures]));
    this.bias = this.registerParameter("bias", (o.bias ?? true) ? zeros([outFeatures]) : null);
    this.resetParameters();
  }

  /** W ~ kaiming_uniform(a = sqrt 5), i.e. U(-1/sqrt(in), 1/sqrt(in)); b ~ U(same bound). */
  resetParameters(): void {
    init.kaimingUniform(this.weight, { a: Math.sqrt(5) });
    if (this.bias) initBiasFromFanIn(this.bias, this.weight);
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${!!this
      .bias}`;
  }
}

/** y_o = x1^T A_o x2 + b_o with A of shape [out, in1, in2] (torch.nn.Bilinear). */
export class Bilinear extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(
    readonly in1Features: number,
    readonly in2Features: number,
    readonly outFeatures: number,
    o: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter(
      "weight",
      zeros([outFeatures, in1Features, in2Features]),
    );
    this.bias = this.registerParameter("bias", (o.bias ?? true) ? zeros([outFeatures]) : null);
    this.resetParameters();
  }

  /** A and b ~ U(-1/sqrt(in1), 1/sqrt(in1)). */
  resetParameters(): void {
    const bound = 1 / Math.sqrt(this.in1Features);
    init.uniform(this.weight, -bound, bound);
    if (this.bias) init.uniform(this.bias, -bound, bound);
  }

  forward(x1: Tensor, x2: Tensor): Tensor {
    const [I1, I2, O] = [this.in1Features, this.in2Features, this.outFeatures];
    const lead = x1.shape.slice(0, -1);
    const a = x1.reshape([-1, I1]); // (N, in1)
    const w = this.weight.permute([1, 0, 2]).reshape([I1, O * I2]); // (in1, out * in2)
    const t = a.matmul(w).reshape([-1, O, I2]); // (N, out, in2)
    let y = t.mul(x2.reshape([-1, 1, I2])).sum(-1); // (N, out)
    if (this.bias) y = y.add(this.bias);
    return y.reshape([...lead, O]);
  }

  override extraRepr(): string {
    return `in1_features=${this.in1Features}, in2_features=${this.in2Features}, ` +
      `out_features=${this.outFeatures}, bias=${!!this.bias}`;
  }
}

export interface EmbeddingOptions {
  /** This row is initialised to zeros and receives no gradient. */
  paddingIdx?: number;
}

/** A lookup table [num, dim] indexed by int32 tensors (torch.nn.Embedding). */
export class Embedding extends Module {
  weight: Tensor;
  readonly paddingIdx?: number;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    o: EmbeddingOptions = {},
  ) {
    super();
    if (o.paddingIdx !== undefined) {
      const p = o.paddingIdx;
      if (p >= numEmbeddings || p < -numEmbeddings) {
        throw new Error(`Embedding: paddingIdx ${p} must be within num_embeddings`);
      }
      this.paddingIdx = p < 0 ? p + numEmbeddings : p;
    }
    this.weight = this.registerParameter("weight", zeros([numEmbeddings, embeddingDim]));
    this.resetParameters();
  }

  /** weight ~ N(0, 1), the padding row zeroed. */
  resetParameters(): void {
    init.normal(this.weight);
    const pad = this.paddingIdx;
    if (pad === undefined) return;
    const w = this.weight;
    scope(() =>
      noGrad(() => {
        const isPad = arange(this.numEmbeddings).eq(pad).unsqueeze(1); // (num, 1)
        w.assign(w.maskedFill(isPad, 0));
      })
    );
  }

  /** An Embedding holding `embeddings` (frozen unless `freeze: false`). */
  static fromPretrained(
    embeddings: Tensor,
    o: EmbeddingOptions & { freeze?: boolean } = {},
  ): Embedding {
    const [n, d] = embeddings.shape;
    const e = new Embedding(n, d, o);
    e.loadStateDict({ weight: embeddings });
    e.weight.requiresGrad_(!(o.freeze ?? true));
    return e;
  }

  forward(index: Tensor): Tensor {
    return F.embedding(index, this.weight, { paddingIdx: this.paddingIdx });
  }

  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}` +
      (this.paddingIdx !== undefined ? `, padding_idx=${this.paddingIdx}` : "");
  }
}

/** Zeroes elements with probability p and scales by 1/(1-p), in training mode only. */
export class Dropout extends Module {
  constructor(readonly p: number = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout: p must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, { p: this.p, training: this.training });
  }
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/** Returns its input. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Flattens dims startDim..endDim (defaults 1..-1, keeping the batch dim). */
export class Flatten extends Module {
  constructor(readonly startDim: number = 1, readonly endDim: number = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}

/** Splits dim into `sizes`. */
export class Unflatten extends Module {
  constructor(readonly dim: number, readonly sizes: number[]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.unflatten(this.dim, this.sizes);
  }
}
