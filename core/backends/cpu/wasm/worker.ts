/**
 * A matmul pool worker (see pool.ts): instantiates the kernel module on the shared memory,
 * then loops taking chunks of the jobs the calling thread posts, until its pool is replaced.
 */
import { parentPort } from "node:worker_threads";
import { GemmWorker, type KernelExports, scratchAddress } from "./gemm.ts";
import { controlOf, workerLoop } from "./pool.ts";

interface Init {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  index: number;
  gen: number;
}

parentPort!.once("message", ({ memory, module, index, gen }: Init) => {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const g = new GemmWorker(
    memory,
    instance.exports as unknown as KernelExports,
    scratchAddress(index),
  );
  workerLoop(controlOf(memory), g, index, gen);
});
