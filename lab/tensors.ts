/** The bridge from the plain-array datasets of data/ to tensors. */
import type { Dataset } from "../data/dataset.ts";
import { tensor } from "../core/ops/creation.ts";
import type { Tensor } from "../core/tensor.ts";

export interface TensorBatch {
  x: Tensor;
  y: Tensor;
}

/**
 * Inputs and targets of a dataset (or a batch of one) as tensors: Float32Array data gives
 * float32, Int32Array gives int32 (class labels, token ids).
 */
export function toTensors(
  d: Pick<Dataset, "x" | "xShape" | "y" | "yShape">,
): TensorBatch {
  return {
    x: tensor(d.x, { shape: [...d.xShape] }),
    y: tensor(d.y, { shape: [...d.yShape] }),
  };
}
