/**
 * Model soups: averaging weights of multiple fine-tuned models improves accuracy without
 * increasing inference time.
 * Wortsman, Ilharco, Gadre, Roelofs, Gontijo-Lopes, Morcos, Namkoong, Farhadi, Carmon,
 * Kornblith, Schmidt. ICML 2022. arXiv:2203.05482. Catalog id P276.
 *
 * Models fine-tuned from one pretrained model with different hyperparameters ("ingredients")
 * are averaged in weight space. The uniform soup is f(x; (1/k) Σ_i θ_i) (Sec. 2, Eq. in
 * Table 2's "Uniform soup"); the greedy soup (Recipe 1) sorts the ingredients by held-out
 * accuracy, decreasing, starts from the best one and adds each next ingredient only if the
 * held-out accuracy of the averaged soup does not drop. Both cost one model at inference,
 * unlike the output ensemble they are compared with (Sec. 3.3; `ensembleLogits`). The learned
 * soup (mixing weights trained by gradient descent on held-out data, Sec. 3.2) is not
 * implemented: the paper reports it as a costlier, non-essential variant. Averaging comes
 * from algorithms/task-vectors.
 */
import { noGrad } from "../../core/autograd.ts";
import { scope } from "../../core/memory.ts";
import type { Tensor } from "../../core/tensor.ts";
import {
  averageStateDicts,
  checkCompatible,
  disposeStateDict,
  type StateDict,
} from "../task-vectors/mod.ts";

/** The uniform soup: the mean of the ingredients' weights. */
export function uniformSoup(ingredients: StateDict[]): StateDict {
  return averageStateDicts(ingredients);
}

/** What `greedySoup` returns. */
export interface GreedySoup {
  /** The soup's weights (owned by the caller). */
  soup: StateDict;
  /** Indices (into the ingredients) of the models in the soup, in the order added. */
  members: number[];
  /** The held-out accuracy of the soup. */
  heldOut: number;
}

/** Options of `greedySoup`. */
export interface GreedySoupOptions {
  /**
   * Add an ingredient only if it strictly improves the held-out accuracy (the released code)
   * instead of when it does not decrease it (Recipe 1 in the paper). Default false.
   */
  strict?: boolean;
}

/**
 * The greedy soup (Recipe 1): ingredients sorted by their held-out accuracy `heldOut[i]`
 * (decreasing); each is kept if `evaluate(average(soup ∪ {θ_i}))` ≥ the current soup's.
 * `evaluate` returns the held-out accuracy of a state dict.
 */
export async function greedySoup(
  ingredients: StateDict[],
  heldOut: number[],
  evaluate: (sd: StateDict) => Promise<number>,
  o: GreedySoupOptions = {},
): Promise<GreedySoup> {
  if (!ingredients.length) throw new Error("greedySoup: no ingredients");
  if (heldOut.length !== ingredients.length) {
    throw new Error(
      `greedySoup: ${heldOut.length} held-out accuracies for ${ingredients.length} ingredients`,
    );
  }
  checkCompatible("greedySoup", ingredients);
  const order = heldOut.map((_, i) => i).sort((a, b) => heldOut[b] - heldOut[a]);
  const members = [order[0]];
  let soup = averageStateDicts([ingredients[order[0]]]);
  let best = await evaluate(soup);
  for (const i of order.slice(1)) {
    const candidate = averageStateDicts([...members, i].map((j) => ingredients[j]));
    const acc = await evaluate(candidate);
    if (o.strict ? acc > best : acc >= best) {
      disposeStateDict(soup);
      [soup, best] = [candidate, acc];
      members.push(i);
    } else disposeStateDict(candidate);
  }
  return { soup, members, heldOut: best };
}

/** The output ensemble's logits: the mean of the models' logits (k forward passes). */
export function ensembleLogits(logits: Tensor[]): Tensor {
  if (!logits.length) throw new Error("ensembleLogits: no logits");
  return scope(() => noGrad(() => logits.reduce((a, b) => a.add(b)).div(logits.length)));
}
