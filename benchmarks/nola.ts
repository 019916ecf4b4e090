/**
 * NOLA (P067) in miniature: accuracy vs trainable parameters when the pretrained mlp-digits
 * backbone is adapted to shifted digits (rotated, mirrored, translated) with full fine-tuning,
 * LoRA rank 1 and 4, and NOLA at 1/2 and 1/10 of rank-1 LoRA's parameters (per layer:
 * k = l = floor((m + n) / 4) and floor((m + n) / 20) against LoRA's m + n), every method
 * with a new trainable head, its learning rate picked from the same grid by validation
 * accuracy. The check is the paper's headline: NOLA at half of rank-1 LoRA's parameters
 * loses no accuracy (within 1 point) on every task.
 */
import { defineBenchmark, type Row } from "./harness/define.ts";
import { applyLoRA } from "../algorithms/lora/mod.ts";
import { applyNOLA } from "../algorithms/nola/mod.ts";
import {
  compareMethods,
  FULL_FT,
  HEAD_ONLY,
  type Method,
  peftMethod,
  PROFILES,
  rowOf,
  transferFigures,
} from "./_peft_transfer.ts";
import type { ResultFile } from "../tools/index_lib.ts";
import type { Figure } from "../lab/plot.ts";

/** An adapter method searched over PEFT_LRS, starting from lr 1e-2. */
const peft = (name: string, apply: Method["apply"]): Method => peftMethod(name, apply, 1e-2);

/** NOLA at a fraction of rank-1 LoRA's m + n per layer, split evenly between k and l. */
const nola = (name: string, div: number) =>
  peft(name, (m, t) => {
    applyNOLA(m, t, { r: 8, alpha: 8, k: (o, i) => Math.floor((o + i) / div) });
  });

export const METHODS: Method[] = [
  HEAD_ONLY,
  FULL_FT,
  peft("LoRA r=1", (m, t) => {
    applyLoRA(m, t, { r: 1, alpha: 1 });
  }),
  peft("LoRA r=4", (m, t) => {
    applyLoRA(m, t, { r: 4, alpha: 4 });
  }),
  nola("NOLA 1/2 of LoRA r=1", 4),
  nola("NOLA 1/10 of LoRA r=1", 20),
];

export default defineBenchmark({
  slug: "nola",
  table: "Accuracy vs trainable parameters: full FT, LoRA r=1/4, " +
    "NOLA at 1/2 and 1/10 of rank-1 LoRA's parameters, mlp-digits on shifted digits",
  profiles: PROFILES,
  reported: {
    source: "Abstract (ICLR 2024 version) and the official repository's README",
    rows: [
      {
        setting: "LLaMA-2 70B, instruction tuning (Alpaca)",
        claim: "NOLA almost 20x more compact than rank-1 LoRA without accuracy degradation",
        nolaTrainableParams: "0.6M",
      },
      {
        setting: "GPT-2 / ViT adaptation",
        claim: "NOLA performs as well as LoRA with far fewer parameters than rank-1 LoRA",
        nolaTrainableParams: "",
      },
    ],
    note: "Only the abstract is in the offline sources; the per-table BLEU/accuracy values " +
      "are not reproduced here to avoid quoting numbers that could not be checked.",
  },
  run: (ctx, config) => compareMethods(ctx, METHODS, config),
  check(rows: Row[]) {
    const tasks = [...new Set(rows.map((r) => String(r.task)))];
    const parts: string[] = [];
    let pass = true;
    for (const t of tasks) {
      const lora = rowOf(rows, t, "LoRA r=1");
      const half = rowOf(rows, t, "NOLA 1/2 of LoRA r=1");
      const tenth = rowOf(rows, t, "NOLA 1/10 of LoRA r=1");
      const ok = Number(half.backboneParams) <= Number(lora.backboneParams) / 2 &&
        Number(half.accMean) >= Number(lora.accMean) - 1;
      pass &&= ok;
      parts.push(
        `${t}: NOLA-1/2 ${half.accMean}% (${half.backboneParams} params) vs LoRA r=1 ` +
          `${lora.accMean}% (${lora.backboneParams})${ok ? "" : " (fails)"}, NOLA-1/10 ` +
          `${tenth.accMean}% (${tenth.backboneParams})`,
      );
    }
    return {
      pass,
      summary: `NOLA with <= 1/2 of rank-1 LoRA's parameters ${
        pass ? "is" : "is not"
      } within 1 point of it on every task (mean of seeds). ${parts.join("; ")}.`,
    };
  },
});

export function figures(r: ResultFile): Figure[] {
  return transferFigures(r, "NOLA");
}
