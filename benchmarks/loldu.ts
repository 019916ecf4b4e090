/**
 * LoLDU (P111) in miniature: accuracy, trainable parameters and steps to 95% of the final
 * validation accuracy when the pretrained mlp-digits backbone is adapted to shifted digits
 * (rotated, mirrored, translated) with full fine-tuning, LoRA rank 1, 4 and 8, and LoLDU at
 * rank 16 (the largest power of two within 1/100 of LoRA r=8's parameters) and at full rank;
 * every method with a new trainable head and its learning rate picked from the same grid by
 * validation accuracy. The check is the catalog's: LoLDU with <= 1/100 of LoRA's trainable
 * parameters ends within 2 points of LoRA (rank 8) on every task.
 */
import { defineBenchmark, type Row } from "./harness/define.ts";
import { applyLoRA } from "../algorithms/lora/mod.ts";
import { applyLoLDU } from "../algorithms/loldu/mod.ts";
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

/** An adapter method searched over PEFT_LRS, starting from lr 1e-1. */
const peft = (name: string, apply: Method["apply"]): Method => peftMethod(name, apply, 1e-1);

const lora = (r: number) =>
  peft(`LoRA r=${r}`, (m, t) => {
    applyLoRA(m, t, { r, alpha: r });
  });

export const METHODS: Method[] = [
  HEAD_ONLY,
  FULL_FT,
  lora(1),
  lora(4),
  lora(8),
  peft("LoLDU r=16", (m, t) => {
    applyLoLDU(m, t, { r: 16 });
  }),
  peft("LoLDU full rank", (m, t) => {
    applyLoLDU(m, t, { r: (o, i) => Math.min(o, i) });
  }),
];

export default defineBenchmark({
  slug: "loldu",
  table: "Accuracy, trainable parameters and steps to 95% of final accuracy: full FT, LoRA " +
    "r=1/4/8, LoLDU r=16 and full rank, mlp-digits on shifted digits",
  profiles: PROFILES,
  reported: {
    source: "Abstract (arXiv:2410.13618v1)",
    rows: [
      {
        setting: "LLaMA2, RoBERTa, ViT, Stable Diffusion; 4 instruction, 6 NLU, 8 image " +
          "classification and image generation datasets",
        claim: "2600 times fewer trainable parameters than regular PEFT methods with " +
          "comparable performance; faster convergence than LoRA",
      },
    ],
    note: "Only the abstract is in the offline sources; per-table values are not quoted.",
  },
  run: (ctx, config) => compareMethods(ctx, METHODS, config),
  check(rows: Row[]) {
    const tasks = [...new Set(rows.map((r) => String(r.task)))];
    const parts: string[] = [];
    let pass = true;
    for (const t of tasks) {
      const ref = rowOf(rows, t, "LoRA r=8"), l = rowOf(rows, t, "LoLDU r=16");
      const ratio = Number(ref.backboneParams) / Number(l.backboneParams);
      const ok = ratio >= 100 && Number(l.accMean) >= Number(ref.accMean) - 2;
      pass &&= ok;
      const full = rowOf(rows, t, "LoLDU full rank");
      parts.push(
        `${t}: LoLDU r=16 ${l.accMean}% (${l.backboneParams} params, 1/${
          Math.round(ratio)
        } of LoRA) vs LoRA r=8 ${ref.accMean}%${ok ? "" : " (fails)"}; steps to 95% ` +
          `${l.stepsTo95} vs ${ref.stepsTo95}; LoLDU full rank ${full.accMean}% ` +
          `(${full.backboneParams} params)`,
      );
    }
    return {
      pass,
      summary: `LoLDU with <= 1/100 of LoRA r=8's parameters ${
        pass ? "is" : "is not"
      } within 2 points of it on every task (mean of seeds). ${parts.join("; ")}.`,
    };
  },
});

export function figures(r: ResultFile): Figure[] {
  return transferFigures(r, "LoLDU");
}
