/**
 * `deno task test:webgpu`: runs the backend-sensitive tests (tests/core, nn layers) again with
 * PAPERLAB_BACKEND=webgpu when this machine has a WebGPU adapter (a software one such as
 * llvmpipe counts: it checks every kernel's correctness), and says so and exits 0 when it has
 * none. `deno task test` runs it after the CPU pass.
 */
const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
if (!adapter) {
  console.log("test:webgpu: no WebGPU adapter on this machine; the webgpu pass is skipped");
  Deno.exit(0);
}
const info = (adapter as { info?: { description?: string } }).info;
console.log(
  `test:webgpu: running tests/core and the nn layer tests on ${info?.description ?? "webgpu"}`,
);
const res = await new Deno.Command(Deno.execPath(), {
  // The op, layer and backend tests; the training tests stay on the CPU pass (on a software
  // adapter a training run takes minutes and checks nothing the layer tests do not).
  args: [
    "test",
    "-A",
    // One test module at a time: with --parallel, several WebGPU devices (one per module's
    // worker) were seen to corrupt the heap at process exit on llvmpipe (glibc abort after all
    // tests had passed, in 1 of 3 runs).
    "tests/core/",
    "tests/nn/layers_test.ts",
    "tests/nn/module_test.ts",
    ...Deno.args,
  ],
  env: { PAPERLAB_BACKEND: "webgpu" },
  stdout: "inherit",
  stderr: "inherit",
}).output();
Deno.exit(res.code);
