/**
 * `nn`: modules with PyTorch's behaviour and parameter names (torch.nn), and `nn.init`.
 * Build a model by subclassing `Module` and registering parameters, buffers and children
 * (see module.ts); run it with `m.forward(x)`.
 *
 * @module
 */
export { type LoadResult, Module, Parameter, type StateDict } from "./module.ts";
export * as init from "./init.ts";
export {
  Bilinear,
  Dropout,
  Embedding,
  type EmbeddingOptions,
  Flatten,
  Identity,
  Linear,
  Unflatten,
} from "./layers.ts";
export {
  ELU,
  GELU,
  LeakyReLU,
  LogSoftmax,
  ReLU,
  Sigmoid,
  SiLU,
  Softmax,
  Softplus,
  Tanh,
} from "./activations.ts";
export {
  BatchNorm1d,
  BatchNorm2d,
  type BatchNormOptions,
  GroupNorm,
  LayerNorm,
  type LayerNormOptions,
  RMSNorm,
} from "./norm.ts";
export {
  type AttentionCallOptions,
  MultiheadAttention,
  type MultiheadAttentionOptions,
} from "./attention.ts";
export {
  type DecoderCallOptions,
  type EncoderCallOptions,
  TransformerDecoderLayer,
  TransformerEncoderLayer,
  type TransformerLayerOptions,
} from "./transformer.ts";
export { MLP, type MLPOptions, ModuleDict, ModuleList, Sequential } from "./container.ts";
export {
  AdaptiveAvgPool2d,
  AvgPool2d,
  Conv1d,
  Conv2d,
  type ConvOptions,
  ConvTranspose2d,
  type ConvTransposeOptions,
  MaxPool2d,
} from "./conv.ts";
