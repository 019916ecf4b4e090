/**
 * Transformer encoder and decoder layers (Vaswani et al., 2017), with torch.nn's submodule names
 * (self_attn, multihead_attn, linear1, linear2, norm1..3, dropout, dropout1..3), defaults
 * (dim_feedforward 2048, dropout 0.1, ReLU, eps 1e-5) and both orders:
 *
 *   post-norm (default):   x = norm1(x + SA(x));         x = norm2(x + FF(x))
 *   pre-norm (normFirst):  x = x + SA(norm1(x));         x = x + FF(norm2(x))
 */
import type { Tensor } from "../tensor.ts";
import { MultiheadAttention } from "./attention.ts";
import { Dropout, Linear } from "./layers.ts";
import { Module } from "./module.ts";
import { LayerNorm } from "./norm.ts";

export interface TransformerLayerOptions {
  /** Hidden size of the feed-forward block (default 2048). */
  dimFeedforward?: number;
  /** Dropout after attention, inside and after the feed-forward block (default 0.1). */
  dropout?: number;
  /** Feed-forward activation: "relu" (default), "gelu" or a function. */
  activation?: "relu" | "gelu" | ((x: Tensor) => Tensor);
  /** LayerNorm eps (default 1e-5). */
  layerNormEps?: number;
  /** Inputs are [N, L, E] instead of [L, N, E] (default false). */
  batchFirst?: boolean;
  /** Pre-norm: LayerNorm before each sub-block instead of after the residual (default false). */
  normFirst?: boolean;
  /** Biases in the linear layers and layer norms (default true). */
  bias?: boolean;
}

function activationOf(a: TransformerLayerOptions["activation"]): (x: Tensor) => Tensor {
  if (a === undefined || a === "relu") return (x) => x.relu();
  if (a === "gelu") return (x) => x.gelu();
  if (typeof a === "function") return a;
  throw new Error(`Transformer layer: activation should be relu/gelu, not ${a}`);
}

/** The feed-forward block's modules, registered in PyTorch's order on `m`. */
function feedForward(m: Module, d: number, o: TransformerLayerOptions) {
  const bias = o.bias ?? true;
  return {
    linear1: m.registerModule("linear1", new Linear(d, o.dimFeedforward ?? 2048, { bias })),
    dropout: m.registerModule("dropout", new Dropout(o.dropout ?? 0.1)),
    linear2: m.registerModule("linear2", new Linear(o.dimFeedforward ?? 2048, d, { bias })),
  };
}

export interface EncoderCallOptions {
  /** Attention mask [L, L] or [N*H, L, L] (see MultiheadAttention). */
  srcMask?: Tensor | null;
  /** [N, L]: true marks padding. */
  srcKeyPaddingMask?: Tensor | null;
  /** Apply a causal mask (built when srcMask is absent). */
  isCausal?: boolean;
}

/** Self-attention and a feed-forward block, each with a residual connection and LayerNorm. */
export class TransformerEncoderLayer extends Module {
  selfAttn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  readonly normFirst: boolean;
  readonly activation: (x: Tensor) => Tensor;

  constructor(readonly dModel: number, readonly nhead: number, o: TransformerLayerOptions = {}) {
    super();
    const p = o.dropout ?? 0.1, bias = o.bias ?? true, eps = o.layerNormEps ?? 1e-5;
    this.selfAttn = this.registerModule(
      "self_attn",
      new MultiheadAttention(dModel, nhead, { dropout: p, bias, batchFirst: o.batchFirst }),
    );
    const ffn = feedForward(this, dModel, o);
    [this.linear1, this.dropout, this.linear2] = [ffn.linear1, ffn.dropout, ffn.linear2];
    this.normFirst = o.normFirst ?? false;
    this.norm1 = this.registerModule("norm1", new LayerNorm(dModel, { eps, bias }));
    this.norm2 = this.registerModule("norm2", new LayerNorm(dModel, { eps, bias }));
    this.dropout1 = this.registerModule("dropout1", new Dropout(p));
    this.dropout2 = this.registerModule("dropout2", new Dropout(p));
    this.activation = activationOf(o.activation);
  }

  forward(src: Tensor, o: EncoderCallOptions = {}): Tensor {
    const sa = (x: Tensor) =>
      this.dropout1.forward(
        this.selfAttn.forward(x, x, x, {
          attnMask: o.srcMask,
          keyPaddingMask: o.srcKeyPaddingMask,
          isCausal: o.isCausal,
          needWeights: false,
        })[0],
      );
    const ff = (x: Tensor) =>
      this.dropout2.forward(
        this.linear2.forward(this.dropout.forward(this.activation(this.linear1.forward(x)))),
      );
    let x = src;
    if (this.normFirst) {
      x = x.add(sa(this.norm1.forward(x)));
      x = x.add(ff(this.norm2.forward(x)));
    } else {
      x = this.norm1.forward(x.add(sa(x)));
      x = this.norm2.forward(x.add(ff(x)));
    }
    return x;
  }
}

export interface DecoderCallOptions {
  /** Self-attention mask [T, T] (see MultiheadAttention). */
  tgtMask?: Tensor | null;
  /** Cross-attention mask [T, S]. */
  memoryMask?: Tensor | null;
  /** [N, T]: true marks target padding. */
  tgtKeyPaddingMask?: Tensor | null;
  /** [N, S]: true marks memory padding. */
  memoryKeyPaddingMask?: Tensor | null;
  tgtIsCausal?: boolean;
  memoryIsCausal?: boolean;
}

/** Self-attention, cross-attention over `memory`, and a feed-forward block. */
export class TransformerDecoderLayer extends Module {
  selfAttn: MultiheadAttention;
  multiheadAttn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  norm3: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  dropout3: Dropout;
  readonly normFirst: boolean;
  readonly activation: (x: Tensor) => Tensor;

  constructor(readonly dModel: number, readonly nhead: number, o: TransformerLayerOptions = {}) {
    super();
    const p = o.dropout ?? 0.1, bias = o.bias ?? true, eps = o.layerNormEps ?? 1e-5;
    const mha = () =>
      new MultiheadAttention(dModel, nhead, { dropout: p, bias, batchFirst: o.batchFirst });
    this.selfAttn = this.registerModule("self_attn", mha());
    this.multiheadAttn = this.registerModule("multihead_attn", mha());
    const ffn = feedForward(this, dModel, o);
    [this.linear1, this.dropout, this.linear2] = [ffn.linear1, ffn.dropout, ffn.linear2];
    this.normFirst = o.normFirst ?? false;
    this.norm1 = this.registerModule("norm1", new LayerNorm(dModel, { eps, bias }));
    this.norm2 = this.registerModule("norm2", new LayerNorm(dModel, { eps, bias }));
    this.norm3 = this.registerModule("norm3", new LayerNorm(dModel, { eps, bias }));
    this.dropout1 = this.registerModule("dropout1", new Dropout(p));
    this.dropout2 = this.registerModule("dropout2", new Dropout(p));
    this.dropout3 = this.registerModule("dropout3", new Dropout(p));
    this.activation = activationOf(o.activation);
  }

  forward(tgt: Tensor, memory: Tensor, o: DecoderCallOptions = {}): Tensor {
    const sa = (x: Tensor) =>
      this.dropout1.forward(
        this.selfAttn.forward(x, x, x, {
          attnMask: o.tgtMask,
          keyPaddingMask: o.tgtKeyPaddingMask,
          isCausal: o.tgtIsCausal,
          needWeights: false,
        })[0],
      );
    const mha = (x: Tensor) =>
      this.dropout2.forward(
        this.multiheadAttn.forward(x, memory, memory, {
          attnMask: o.memoryMask,
          keyPaddingMask: o.memoryKeyPaddingMask,
          isCausal: o.memoryIsCausal,
          needWeights: false,
        })[0],
      );
    const ff = (x: Tensor) =>
      this.dropout3.forward(
        this.linear2.forward(this.dropout.forward(this.activation(this.linear1.forward(x)))),
      );
    let x = tgt;
    if (this.normFirst) {
      x = x.add(sa(this.norm1.forward(x)));
      x = x.add(mha(this.norm2.forward(x)));
      x = x.add(ff(this.norm3.forward(x)));
    } else {
      x = this.norm1.forward(x.add(sa(x)));
      x = this.norm2.forward(x.add(mha(x)));
      x = this.norm3.forward(x.add(ff(x)));
    }
    return x;
  }
}
