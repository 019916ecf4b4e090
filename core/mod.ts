/**
 * The paperlab tensor core: tensors with PyTorch semantics and camelCase names, reverse-mode
 * autodiff, and pluggable backends. See the design contract in CORE.md.
 *
 * @module
 */
import { envBackend, setBackend } from "./backend.ts";

// CORE.md's default: $PAPERLAB_BACKEND, else "auto" (WebGPU on a hardware adapter, else CPU).
await setBackend(envBackend());

export { Tensor } from "./tensor.ts";
export type { DType, TypedArray } from "./dtype.ts";
export { envBackend, getBackend, listBackends, registerBackend, setBackend } from "./backend.ts";
export type { Backend } from "./backend.ts";
export { enableGrad, grad, isGradEnabled, noGrad, valueAndGrad } from "./autograd.ts";
export type { BackwardOptions, GradOptions } from "./autograd.ts";
export { keep, memory, scope, tidy } from "./memory.ts";
export type { MemoryInfo } from "./memory.ts";
export { Generator, initialSeed, manualSeed } from "./random.ts";
export {
  arange,
  bernoulli,
  eye,
  full,
  fullLike,
  linspace,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  randperm,
  tensor,
  zeros,
  zerosLike,
} from "./ops/creation.ts";
export type { CreateOptions, NestedData, TensorOptions } from "./ops/creation.ts";
export { clamp, where } from "./ops/elementwise.ts";
export type { TensorLike } from "./ops/elementwise.ts";
export { cat, chunk, split, stack } from "./ops/shape.ts";
export { maskedSelect, nonzero, oneHot } from "./ops/indexing.ts";
export { bmm, dot, einsum, matmul, mm, outer } from "./ops/matmul.ts";
export * as F from "./functional.ts";
export * as nn from "./nn/mod.ts";
export * as optim from "./optim/mod.ts";
export * as linalg from "./linalg/mod.ts";
export * as fft from "./fft/mod.ts";
export {
  loadSafetensors,
  loadSafetensorsBytes,
  safetensorsBytes,
  saveSafetensors,
} from "./io/safetensors.ts";
export type { NamedTensors } from "./io/safetensors.ts";
