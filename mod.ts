/**
 * paperlab: ~300 ML papers in TypeScript on one tensor core with PyTorch semantics.
 *
 * ```ts
 * import { tensor } from "jsr:@paperlab/lab";
 * const x = tensor([[1, 2], [3, 4]], { requiresGrad: true });
 * x.matmul(x.T).relu().sum().backward();
 * console.log(await x.grad!.toArray());
 * ```
 *
 * @module
 */
export * from "./core/mod.ts";
