/**
 * A pool worker (see pool.ts): instantiates the matmul kernel module and the map (elementwise)
 * module on the shared memory, then loops taking chunks of the jobs the calling thread posts, until its pool is replaced.
 */
import { parentPort } from "node:worker_threads";
import { GemmWorker, type KernelExports, scratchAddress } from "./gemm.ts";
import { sgemmItems } from "../blas.ts";
import { controlOf, mapFunctions, workerLoop } from "./pool.ts";

interface Init {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  mapModule: WebAssembly.Module | null;
  index: number;
  gen: number;
}

parentPort!.once("message", ({ memory, module, mapModule, index, gen }: Init) => {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const g = new GemmWorker(
    memory,
    instance.exports as unknown as KernelExports,
    scratchAddress(index),
  );
  // The map module's exports, then the host functions, in elementwise.ts's order.
  const maps = mapModule
    ? [
      ...mapFunctions(mapModule, new WebAssembly.Instance(mapModule, { env: { memory } })).fns,
      sgemmItems(memory),
    ]
    : [];
  workerLoop(controlOf(memory, maps), g, index, gen);
});
