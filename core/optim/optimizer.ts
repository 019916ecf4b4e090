/**
 * `Optimizer`: the base of every optimiser, with torch.optim's parameter groups, `zeroGrad`,
 * `step`, and state dicts in PyTorch's structure:
 *
 *   { state: { "0": { step: 3, exp_avg: Tensor, ... }, ... },
 *     param_groups: [{ lr: 0.001, weight_decay: 0, ..., params: [0, 1, ...] }, ...] }
 *
 * In memory, group options and state entries use camelCase (`weightDecay`, `expAvg`); state
 * dicts use PyTorch's snake_case keys. `step` counts are plain numbers (PyTorch keeps a
 * scalar tensor), so no update ever reads back from the device.
 *
 * Memory: `step()` runs in a scope under noGrad and writes every new value with `assign`, so
 * it leaves no tensor behind; state tensors are created once (kept out of scopes) and freed
 * by `dispose()` or when replaced by `loadStateDict`.
 */
import { enableGrad, noGrad } from "../autograd.ts";
import { keep, scope } from "../memory.ts";
import type { Tensor } from "../tensor.ts";

/** A group's options: `lr` plus each optimiser's hyper-parameters (and schedulers' keys). */
export type ParamGroup = { params: Tensor[]; lr: number; [key: string]: any };

/** What optimisers take: a list of tensors, or groups with per-group option overrides. */
export type Params =
  | Iterable<Tensor>
  | ({ params: Iterable<Tensor> } & Record<string, unknown>)[];

/** Per-parameter state: tensors (moments, buffers) and numbers (step). */
export type ParamState = Record<string, Tensor | number>;

export interface OptimizerStateDict {
  state: Record<string, Record<string, Tensor | number>>;
  param_groups: Record<string, unknown>[];
}

const toSnake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const toCamel = (k: string) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function isTensor(v: unknown): v is Tensor {
  return typeof v === "object" && v !== null && "shape" in v && "assign" in v;
}

export abstract class Optimizer {
  readonly paramGroups: ParamGroup[] = [];
  /** Per-parameter state, created on a parameter's first update. */
  readonly state: Map<Tensor, ParamState> = new Map();

  constructor(params: Params, readonly defaults: Record<string, any>) {
    const list = [...params] as unknown[];
    if (!list.length) throw new Error(`${this.constructor.name}: got an empty parameter list`);
    const groups = isTensor(list[0])
      ? [{ params: list as Tensor[] }]
      : (list as { params: Iterable<Tensor> }[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group; options it leaves out take the optimiser's defaults. */
  addParamGroup(group: { params: Iterable<Tensor> } & Record<string, unknown>): void {
    const params = isTensor(group.params) ? [group.params] : [...group.params];
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    for (const p of params) {
      if (seen.has(p)) {
        throw new Error(`${this.constructor.name}: some parameters appear in more than one group`);
      }
      if (!p.isLeaf) throw new Error(`${this.constructor.name}: can't optimize a non-leaf Tensor`);
    }
    const g = { ...this.defaults, ...group, params } as ParamGroup;
    this.validate(g);
    this.paramGroups.push(g);
  }

  /** Checks a group's options (throws PyTorch's "Invalid ..." errors). */
  protected validate(g: ParamGroup): void {
    if (!(g.lr >= 0)) throw new Error(`${this.constructor.name}: Invalid learning rate: ${g.lr}`);
  }

  /** Frees (setToNone, the default) or zeroes every parameter's gradient. */
  zeroGrad(o: { setToNone?: boolean } = {}): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        const grad = p.grad;
        if (!grad) continue;
        if (o.setToNone ?? true) {
          grad.dispose();
          p.grad = null;
        } else scope(() => noGrad(() => void grad.assign(grad.zerosLike())));
      }
    }
  }

  /**
   * One update of every parameter that has a gradient. `closure` (optional) re-evaluates the
   * model and returns the loss, which is returned.
   */
  step(closure?: () => Tensor): Tensor | undefined {
    const loss = closure ? enableGrad(closure) : undefined;
    scope(() =>
      noGrad(() => {
        for (const g of this.paramGroups) this.updateGroup(g);
      })
    );
    return loss;
  }

  /** The update of one group; runs inside step()'s scope, under noGrad. */
  protected abstract updateGroup(group: ParamGroup): void;

  /** The state of `p`, created empty on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) this.state.set(p, s = {});
    return s;
  }

  /** A state tensor that lives across steps (zeros like `p` unless `init` is given). */
  protected newState(p: Tensor, init?: Tensor): Tensor {
    return keep(init ? init.detach() : p.zerosLike());
  }

  /**
   * PyTorch's structure; tensors are the live state tensors (not copies), options are
   * snake_case, parameters are numbered across groups in order.
   */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const param_groups = this.paramGroups.map((g) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) if (k !== "params") out[toSnake(k)] = v;
      out.params = g.params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p)!;
      });
      return out;
    });
    const state: OptimizerStateDict["state"] = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i === undefined) continue;
      const e: Record<string, Tensor | number> = {};
      for (const [k, v] of Object.entries(s)) e[toSnake(k)] = v;
      state[i] = e;
    }
    return { state, param_groups };
  }

  /**
   * Restores group options and per-parameter state. Tensors are taken by zero-copy alias
   * (storage is never mutated in place), so the caller may dispose its copies afterwards.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const name = this.constructor.name;
    if (sd.param_groups.length !== this.paramGroups.length) {
      throw new Error(`${name}: loaded state dict has a different number of parameter groups`);
    }
    const byIndex: Tensor[] = [];
    sd.param_groups.forEach((sg, gi) => {
      const ids = sg.params as number[];
      if (ids.length !== this.paramGroups[gi].params.length) {
        throw new Error(
          `${name}: loaded state dict contains a parameter group that doesn't match the size ` +
            `of optimizer's group`,
        );
      }
      ids.forEach((id, j) => byIndex[id] = this.paramGroups[gi].params[j]);
    });
    for (const [i, entry] of Object.entries(sd.state)) {
      for (const [k, v] of Object.entries(entry)) {
        if (!isTensor(v) && typeof v !== "number") {
          throw new Error(`${name}: state "${k}" of parameter ${i} must be a tensor or a number`);
        }
      }
    }
    sd.param_groups.forEach((sg, gi) => {
      const g = this.paramGroups[gi];
      for (const [k, v] of Object.entries(sg)) if (k !== "params") g[toCamel(k)] = v;
    });
    this.disposeState();
    for (const [i, entry] of Object.entries(sd.state)) {
      const p = byIndex[Number(i)];
      if (!p) continue;
      const s: ParamState = {};
      for (const [k, v] of Object.entries(entry)) {
        s[toCamel(k)] = isTensor(v) ? keep(v.detach()) : v;
      }
      this.state.set(p, s);
    }
  }

  #disposeEntries(): void {
    for (const s of this.state.values()) {
      for (const v of Object.values(s)) if (isTensor(v)) v.dispose();
    }
  }
  /** Frees all state tensors and forgets the state. */
  protected disposeState(): void {
    this.#disposeEntries();
    this.state.clear();
  }
  /** Frees the optimiser's state tensors (not the parameters). */
  dispose(): void {
    this.disposeState();
  }
}

/** a + w (b - a), evaluated as ATen's lerp does (from the nearer end for w >= 0.5). */
export function lerp(a: Tensor, b: Tensor, w: number): Tensor {
  return w < 0.5 ? a.add(b.sub(a).mul(w)) : b.sub(b.sub(a).mul(1 - w));
}

/** The gradient as the update sees it: negated when maximizing, plus weight decay. */
export function effectiveGrad(p: Tensor, maximize: boolean, weightDecay: number): Tensor {
  let g = maximize ? p.grad!.neg() : p.grad!;
  if (weightDecay !== 0) g = g.add(p.mul(weightDecay));
  return g;
}
