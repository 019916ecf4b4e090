import assert from "node:assert/strict";
import { applyLoRA, LoRALinear } from "../../algorithms/lora/mod.ts";
import { nn, randn } from "../../mod.ts";
import { peftContract, tinyModel } from "./_peft_contract.ts";

// r (in + out) per layer: 4 * (8 + 16) + 4 * (16 + 4)
peftContract({
  name: "LoRA",
  apply: (m) => applyLoRA(m, ["0", "2"], { r: 4, alpha: 8 }),
  expectedTrainable: 4 * (8 + 16) + 4 * (16 + 4),
  zeroDeltaAtInit: true,
});

Deno.test("LoRA: ΔW = (alpha / r) B A, and rsLoRA scales by alpha / sqrt(r)", async () => {
  const base = new nn.Linear(6, 5);
  const l = new LoRALinear(base, { r: 4, alpha: 8 });
  assert.equal(l.scaling, 2);
  l.loraB.assign(randn([5, 4]));
  const want = await l.loraB.matmul(l.loraA).mul(2).data();
  const got = await l.deltaWeight().data();
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5));
  assert.equal(new LoRALinear(new nn.Linear(6, 5), { r: 4, alpha: 8, useRsLora: true }).scaling, 4);
});

Deno.test("LoRA: a target pattern that matches no Linear is an error listing the layers", () => {
  const m = tinyModel();
  assert.throws(() => applyLoRA(m, ["q_proj"]), /no Linear matches q_proj; Linear layers: 0, 2/);
});

Deno.test("LoRA: a RegExp selects layers by their namedModules names", () => {
  const m = tinyModel();
  assert.deepEqual(applyLoRA(m, /^2$/, { r: 2 }), ["2"]);
  assert.ok(m.getSubmodule("2") instanceof LoRALinear);
  assert.ok(m.getSubmodule("0") instanceof nn.Linear);
});

Deno.test("LoRA: rank must be a positive integer", () => {
  assert.throws(
    () => new LoRALinear(new nn.Linear(2, 2), { r: 0 }),
    /r must be a positive integer/,
  );
});
