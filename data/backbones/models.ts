/**
 * The lab's small "pretrained" backbones: the architectures, kept small enough to train in
 * minutes on two CPU cores. Each exposes `features(x)` (the representation adapters and
 * probes work on) and `forward(x)` (features through the pretraining head).
 *
 * - MLPDigits: 64 -> 128 -> 128 -> 10 on the 8x8 digits.
 * - CNNDigits: two 3x3 convolutions (16, 32 channels), a 2x2 max pool, 64 hidden, 10 classes.
 * - TinyViT: 4x4 patches of 16x16 RGB shapes, a class token, pre-norm encoder layers, one
 *   linear head per shapes task (shape, colour, size, quadrant, count).
 * - SeqTransformer: token and position embeddings, pre-norm encoder layers, a token head that
 *   predicts target token j at position j (bidirectional attention).
 */
import type { Tensor } from "../../core/tensor.ts";
import { cat } from "../../core/ops/shape.ts";
import {
  Conv2d,
  Embedding,
  Flatten,
  LayerNorm,
  Linear,
  MaxPool2d,
  MLP,
  Module,
  ModuleList,
  ReLU,
  Sequential,
  TransformerEncoderLayer,
} from "../../core/nn/mod.ts";
import { init } from "../../core/nn/mod.ts";
import { zeros } from "../../core/ops/creation.ts";

export class MLPDigits extends Module {
  body: MLP;
  head: Linear;
  constructor(readonly hidden: number = 128) {
    super();
    this.body = this.registerModule("body", new MLP(64, [hidden, hidden]));
    this.head = this.registerModule("head", new Linear(hidden, 10));
  }
  /** x [N, 64] -> [N, hidden] (after the last hidden layer's activation). */
  features(x: Tensor): Tensor {
    return this.body.forward(x).relu();
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(this.features(x));
  }
}

export class CNNDigits extends Module {
  body: Sequential;
  head: Linear;
  constructor() {
    super();
    this.body = this.registerModule(
      "body",
      new Sequential(
        new Conv2d(1, 16, 3, { padding: 1 }),
        new ReLU(),
        new Conv2d(16, 32, 3, { padding: 1 }),
        new ReLU(),
        new MaxPool2d(2),
        new Flatten(),
        new Linear(32 * 4 * 4, 64),
        new ReLU(),
      ),
    );
    this.head = this.registerModule("head", new Linear(64, 10));
  }
  /** x [N, 64] or [N, 1, 8, 8] -> [N, 64]. */
  features(x: Tensor): Tensor {
    return this.body.forward(x.reshape([-1, 1, 8, 8]));
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(this.features(x));
  }
}

export interface EncoderConfig {
  dim: number;
  depth: number;
  heads: number;
  mlp: number;
}

function encoderLayers(m: Module, c: EncoderConfig): ModuleList {
  const layers = Array.from({ length: c.depth }, () =>
    new TransformerEncoderLayer(c.dim, c.heads, {
      dimFeedforward: c.mlp,
      dropout: 0,
      activation: "gelu",
      batchFirst: true,
      normFirst: true,
    }));
  return m.registerModule("layers", new ModuleList(layers));
}

/** Number of classes of each shapes task, in head order. */
export const SHAPES_HEADS: Record<string, number> = {
  shape: 4,
  colour: 6,
  size: 2,
  quadrant: 4,
  count: 3,
};

export class TinyViT extends Module {
  patch = 4;
  patchEmbed: Linear;
  clsToken: Tensor;
  pos: Tensor;
  layers: ModuleList;
  norm: LayerNorm;
  heads: ModuleList;
  constructor(readonly config: EncoderConfig = { dim: 64, depth: 2, heads: 4, mlp: 128 }) {
    super();
    const d = config.dim;
    this.patchEmbed = this.registerModule("patch_embed", new Linear(3 * this.patch ** 2, d));
    this.clsToken = this.registerParameter(
      "cls_token",
      init.truncNormal(zeros([1, 1, d]), 0, 0.02),
    );
    this.pos = this.registerParameter("pos_embed", init.truncNormal(zeros([1, 17, d]), 0, 0.02));
    this.layers = encoderLayers(this, config);
    this.norm = this.registerModule("norm", new LayerNorm(d));
    this.heads = this.registerModule(
      "heads",
      new ModuleList(Object.values(SHAPES_HEADS).map((c) => new Linear(d, c))),
    );
  }
  /** x [N, 3, 16, 16] -> the class token's features [N, dim]. */
  features(x: Tensor): Tensor {
    const n = x.shape[0], p = this.patch;
    const patches = x.reshape([n, 3, 4, p, 4, p]) // (N, C, gh, p, gw, p)
      .permute([0, 2, 4, 1, 3, 5]) // (N, gh, gw, C, p, p)
      .reshape([n, 16, 3 * p * p]);
    let h = cat(
      [this.clsToken.expand([n, 1, this.config.dim]), this.patchEmbed.forward(patches)],
      1,
    )
      .add(this.pos); // (N, 17, d)
    for (const layer of this.layers) h = (layer as TransformerEncoderLayer).forward(h);
    return this.norm.forward(h).select(1, 0);
  }
  /** Logits of every task head, in SHAPES_HEADS order. */
  forwardAll(x: Tensor): Tensor[] {
    const f = this.features(x);
    return [...this.heads].map((h) => (h as Linear).forward(f));
  }
  /** Logits of the shape head. */
  forward(x: Tensor): Tensor {
    return (this.heads.at(0) as Linear).forward(this.features(x));
  }
}

export class SeqTransformer extends Module {
  tokens: Embedding;
  pos: Tensor;
  layers: ModuleList;
  norm: LayerNorm;
  head: Linear;
  constructor(
    readonly vocab: number,
    readonly maxLen: number,
    readonly config: EncoderConfig = { dim: 128, depth: 4, heads: 4, mlp: 256 },
  ) {
    super();
    this.tokens = this.registerModule("tokens", new Embedding(vocab, config.dim));
    this.pos = this.registerParameter(
      "pos_embed",
      init.truncNormal(zeros([1, maxLen, config.dim]), 0, 0.02),
    );
    this.layers = encoderLayers(this, config);
    this.norm = this.registerModule("norm", new LayerNorm(config.dim));
    this.head = this.registerModule("head", new Linear(config.dim, vocab));
  }
  /** tokens [N, T] (int32) -> hidden states [N, T, dim]. */
  features(x: Tensor): Tensor {
    const t = x.shape[1];
    if (t > this.maxLen) {
      throw new Error(`SeqTransformer: sequence length ${t} > maxLen ${this.maxLen}`);
    }
    let h = this.tokens.forward(x).add(this.pos.narrow(1, 0, t));
    for (const layer of this.layers) h = (layer as TransformerEncoderLayer).forward(h);
    return this.norm.forward(h);
  }
  /** Token logits [N, T, vocab]. */
  forward(x: Tensor): Tensor {
    return this.head.forward(this.features(x));
  }
}
