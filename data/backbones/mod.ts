/**
 * Pretrained backbones: `loadBackbone(name)` returns the model with its committed weights
 * (data/backbones/weights/<name>.safetensors) and its card (<name>.json: config, data, steps,
 * seed, metrics, wall time). `deno task pretrain [name...]` retrains them.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Module } from "../../core/nn/mod.ts";
import { loadSafetensors, saveSafetensors } from "../../core/io/safetensors.ts";
import { BACKBONE_NAMES, type BackboneName, RECIPES } from "./recipes.ts";

export { BACKBONE_NAMES, type BackboneName, RECIPES };
export * from "./models.ts";

/** Where the committed weights and cards live. */
export const WEIGHTS_DIR: string = fileURLToPath(new URL("./weights/", import.meta.url));

export interface BackboneCard {
  name: BackboneName;
  description: string;
  seed: number;
  steps: number;
  batchSize: number;
  lr: number;
  optimizer: string;
  data: Record<string, unknown>;
  metrics: Record<string, number>;
  parameters: number;
  wallTimeMs: number;
  date: string;
  deno: string;
}

function checkName(name: string): BackboneName {
  if (!(BACKBONE_NAMES as string[]).includes(name)) {
    throw new Error(
      `loadBackbone: unknown backbone "${name}"; available: ${BACKBONE_NAMES.join(", ")}`,
    );
  }
  return name as BackboneName;
}

/** The model with its pretrained weights, in eval mode, and its card. */
export async function loadBackbone<M extends Module = Module>(
  name: string,
  dir = WEIGHTS_DIR,
): Promise<{ model: M; card: BackboneCard }> {
  const n = checkName(name);
  const file = join(dir, `${n}.safetensors`);
  let weights;
  try {
    weights = await loadSafetensors(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || /No such file|not found/i.test(String(e))) {
      throw new Error(`loadBackbone: ${file} is missing; run \`deno task pretrain ${n}\``);
    }
    throw e;
  }
  const card = JSON.parse(await Deno.readTextFile(join(dir, `${n}.json`))) as BackboneCard;
  const model = RECIPES[n].build() as M;
  model.loadStateDict(weights);
  for (const t of Object.values(weights)) t.dispose();
  model.eval();
  return { model, card };
}

/** Trains a backbone and writes its weights and card; returns the card. */
export async function pretrain(
  name: string,
  o: { seed?: number; scale?: number; dir?: string; onProgress?: (f: number, m: string) => void } =
    {},
): Promise<BackboneCard> {
  const n = checkName(name);
  const seed = o.seed ?? 0, dir = o.dir ?? WEIGHTS_DIR;
  const t0 = performance.now();
  const r = await RECIPES[n].train(seed, o.scale ?? 1, o.onProgress);
  const card: BackboneCard = {
    name: n,
    description: RECIPES[n].description,
    seed,
    steps: r.steps,
    batchSize: r.batchSize,
    lr: r.lr,
    optimizer: "AdamW with cosine annealing",
    data: r.data,
    metrics: r.metrics,
    parameters: r.model.parameters().reduce((s, p) => s + p.numel, 0),
    wallTimeMs: Math.round(performance.now() - t0),
    date: new Date().toISOString(),
    deno: Deno.version.deno,
  };
  await Deno.mkdir(dir, { recursive: true });
  await saveSafetensors(join(dir, `${n}.safetensors`), r.model.stateDict(), { backbone: n });
  const tmp = join(dir, `${n}.json.tmp`);
  await Deno.writeTextFile(tmp, JSON.stringify(card, null, 2) + "\n");
  await Deno.rename(tmp, join(dir, `${n}.json`));
  r.model.dispose();
  return card;
}

if (import.meta.main) {
  const names = Deno.args.length ? Deno.args : BACKBONE_NAMES;
  for (const name of names) {
    let last = -1;
    const card = await pretrain(name, {
      onProgress: (f, m) => {
        const pct = Math.floor(f * 10);
        if (pct !== last) console.log(`${name}: ${pct * 10}% ${m}`);
        last = pct;
      },
    });
    console.log(
      `${name}: ${JSON.stringify(card.metrics)} in ${(card.wallTimeMs / 1000).toFixed(0)}s`,
    );
  }
}
