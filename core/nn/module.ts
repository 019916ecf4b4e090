/**
 * `Module`: the base of every layer, with PyTorch's registration, traversal, train/eval and
 * state-dict behaviour (torch.nn.Module).
 *
 * Registration is explicit, because TypeScript cannot intercept field assignment as Python's
 * `__setattr__` does, and because state-dict keys must be PyTorch's snake_case names while
 * fields are camelCase. Each register call stores the value under its PyTorch name and
 * returns it, so the field and the registry hold the same object:
 *
 * ```ts
 * class Affine extends Module {
 *   weight: Tensor;
 *   runningMean: Tensor;
 *   proj: Linear;
 *   constructor(n: number) {
 *     super();
 *     this.weight = this.registerParameter("weight", ones([n])); // a Parameter
 *     this.runningMean = this.registerBuffer("running_mean", zeros([n])); // state, no grad
 *     this.proj = this.registerModule("proj", new Linear(n, n)); // a child: "proj.weight"
 *   }
 *   forward(x: Tensor): Tensor {
 *     return this.proj.forward(x.mul(this.weight));
 *   }
 * }
 * ```
 *
 * Field initialisers work too when no constructor argument is needed:
 * `scale = this.registerParameter("scale", ones([4]));`. A field that is not registered is
 * invisible to parameters() and stateDict() even when it holds a module or a parameter
 * (PyTorch would register it on assignment); use ModuleList / ModuleDict for collections.
 *
 * Instances are not callable in TypeScript: call `m.forward(x)`. Parameters and buffers are
 * exempt from `scope()` clean-up (`keep`), are updated in place with `assign` (so the objects
 * never change), and are freed by `m.dispose()`. Registering a name again (or `setSubmodule`)
 * also points any field that held the old value at the new one.
 */
import { noGrad } from "../autograd.ts";
import { keep, scope } from "../memory.ts";
import { fmtShape } from "../shape.ts";
import type { Tensor } from "../tensor.ts";

/** Name -> tensor, with PyTorch's dotted snake_case keys ("layers.0.weight"). */
export type StateDict = Record<string, Tensor>;

/** What `loadStateDict` found (PyTorch's `_IncompatibleKeys`). */
export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/**
 * Marks a float32 tensor as a trainable leaf (torch.nn.Parameter): requiresGrad set, kept out
 * of every enclosing scope. A non-leaf input is detached first (sharing its values).
 */
export function Parameter(t: Tensor, requiresGrad = true): Tensor {
  if (t.dtype !== "float32") {
    throw new Error(`Parameter: parameters must be float32, got ${t.dtype}`);
  }
  const p = t.isLeaf ? t : t.detach();
  p.requiresGrad_(requiresGrad);
  return keep(p);
}

function checkName(kind: string, name: string): void {
  if (!name || name.includes(".")) {
    throw new Error(`${kind}: name must be non-empty and contain no ".", got "${name}"`);
  }
}

export abstract class Module {
  /** Training mode (dropout active, batch norm uses batch statistics). Set by train()/eval(). */
  training = true;
  readonly #parameters = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor | null>();
  readonly #nonPersistent = new Set<string>();
  readonly #modules = new Map<string, Module | null>();

  /** The computation. Call it directly: `m.forward(x)`. */
  abstract forward(...args: any[]): any;

  // ---------------------------------------------------------------------- registration
  #checkFree(kind: string, name: string, own: Map<string, unknown>): void {
    checkName(kind, name);
    for (const m of [this.#parameters, this.#buffers, this.#modules]) {
      if (m !== own && m.has(name)) {
        throw new Error(`${kind}: "${name}" is already registered as another kind of member`);
      }
    }
  }

  /** If a field of this module holds `old`, point it at `next` (keeps fields in sync). */
  #syncFields(old: unknown, next: unknown): void {
    if (old === next || old == null) return;
    const self = this as unknown as Record<string, unknown>;
    for (const k of Object.keys(self)) if (self[k] === old) self[k] = next;
  }

  /**
   * Registers a parameter under its PyTorch name and returns it (made a `Parameter`). `null`
   * registers an absent parameter (e.g. `bias: false`), left out of parameters and state dicts.
   */
  registerParameter<T extends Tensor | null>(name: string, t: T): T {
    this.#checkFree("registerParameter", name, this.#parameters);
    const p = (t === null ? null : Parameter(t)) as T;
    this.#syncFields(this.#parameters.get(name), p);
    this.#parameters.set(name, p);
    return p;
  }

  /**
   * Registers a buffer: state that is not trained (BatchNorm's running statistics). Persistent
   * buffers (the default) are part of the state dict.
   */
  registerBuffer<T extends Tensor | null>(
    name: string,
    t: T,
    o: { persistent?: boolean } = {},
  ): T {
    this.#checkFree("registerBuffer", name, this.#buffers);
    if (t) keep(t);
    this.#syncFields(this.#buffers.get(name), t);
    this.#buffers.set(name, t);
    if (o.persistent === false) this.#nonPersistent.add(name);
    else this.#nonPersistent.delete(name);
    return t;
  }

  /** Registers a child module ("name.weight" in the state dict) and returns it. */
  registerModule<M extends Module | null>(name: string, m: M): M {
    this.#checkFree("registerModule", name, this.#modules);
    this.#syncFields(this.#modules.get(name), m);
    this.#modules.set(name, m);
    return m;
  }

  // ------------------------------------------------------------------------- traversal
  /** Direct children with their names (each module once). */
  namedChildren(): [string, Module][] {
    const seen = new Set<Module>();
    const out: [string, Module][] = [];
    for (const [n, m] of this.#modules) {
      if (!m || seen.has(m)) continue;
      seen.add(m);
      out.push([n, m]);
    }
    return out;
  }
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module (named "") and all descendants, pre-order, each once. */
  namedModules(prefix = "", memo: Set<Module> = new Set()): [string, Module][] {
    if (memo.has(this)) return [];
    memo.add(this);
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.#modules) {
      if (m) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n, memo));
    }
    return out;
  }
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  #namedMembers(which: "p" | "b", recurse: boolean): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    const mods: [string, Module][] = recurse ? this.namedModules() : [["", this]];
    for (const [prefix, m] of mods) {
      for (const [n, t] of which === "p" ? m.#parameters : m.#buffers) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([prefix ? `${prefix}.${n}` : n, t]);
      }
    }
    return out;
  }
  /** Parameters with dotted names ("layers.0.weight"), each tensor once (tied weights). */
  namedParameters(o: { recurse?: boolean } = {}): [string, Tensor][] {
    return this.#namedMembers("p", o.recurse ?? true);
  }
  parameters(o: { recurse?: boolean } = {}): Tensor[] {
    return this.namedParameters(o).map(([, t]) => t);
  }
  namedBuffers(o: { recurse?: boolean } = {}): [string, Tensor][] {
    return this.#namedMembers("b", o.recurse ?? true);
  }
  buffers(o: { recurse?: boolean } = {}): Tensor[] {
    return this.namedBuffers(o).map(([, t]) => t);
  }

  /** The module at a dotted path ("encoder.layers.0"); "" is this module. */
  getSubmodule(target: string): Module {
    return (target ? target.split(".") : []).reduce((m: Module, part) => {
      const next = m.#modules.get(part);
      if (!next) throw new Error(`getSubmodule: ${m.constructor.name} has no child "${part}"`);
      return next;
    }, this);
  }
  /** Replaces the module at a dotted path (model surgery, e.g. wrapping a Linear). */
  setSubmodule(target: string, module: Module): void {
    const at = target.lastIndexOf(".");
    const parent = this.getSubmodule(at < 0 ? "" : target.slice(0, at));
    const name = target.slice(at + 1);
    if (!parent.#modules.has(name)) {
      throw new Error(`setSubmodule: ${parent.constructor.name} has no child "${name}"`);
    }
    parent.registerModule(name, module);
  }

  // ------------------------------------------------------------------------------ modes
  /** Sets training mode on this module and every descendant. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Calls fn on every descendant (children first) and then on this module. */
  apply(fn: (m: Module) => void): this {
    for (const m of this.children()) m.apply(fn);
    fn(this);
    return this;
  }
  /** Sets requiresGrad on every parameter (freezing with false). */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
  }
  /** Frees (setToNone, the default) or zeroes every parameter's gradient. */
  zeroGrad(o: { setToNone?: boolean } = {}): void {
    for (const p of this.parameters()) {
      if (!p.grad) continue;
      if (o.setToNone ?? true) {
        p.grad.dispose();
        p.grad = null;
      } else {
        const g = p.grad;
        scope(() => noGrad(() => g.assign(g.zerosLike())));
      }
    }
  }
  /** Total number of parameter elements (trainable only with `trainableOnly`). */
  numParameters(o: { trainableOnly?: boolean } = {}): number {
    return this.parameters()
      .filter((p) => !o.trainableOnly || p.requiresGrad)
      .reduce((n, p) => n + p.numel, 0);
  }

  // ------------------------------------------------------------------------ state dict
  /**
   * Parameters and persistent buffers under PyTorch's keys, in PyTorch's order (own parameters,
   * own buffers, then each child). The values are the module's live tensors: do not dispose
   * them; `t.detach()` is a zero-copy snapshot (updates replace storage, never mutate it).
   */
  stateDict(prefix = ""): StateDict {
    const out: StateDict = {};
    this.#collectState(prefix, out, new Set());
    return out;
  }
  #collectState(prefix: string, out: StateDict, memo: Set<Module>): void {
    if (memo.has(this)) return;
    memo.add(this);
    for (const [n, t] of this.#parameters) if (t) out[prefix + n] = t;
    for (const [n, t] of this.#buffers) if (t && !this.#nonPersistent.has(n)) out[prefix + n] = t;
    for (const [n, m] of this.#modules) if (m) m.#collectState(`${prefix}${n}.`, out, memo);
  }

  /** Keys a module accepts as missing (BatchNorm's num_batches_tracked, as PyTorch does). */
  protected optionalStateKeys(): string[] {
    return [];
  }

  /**
   * Copies values into the existing parameters and buffers (with `assign`, cast to their
   * dtype). Shape mismatches always throw; with `strict` (the default) missing and unexpected
   * keys throw too, listing all of them. Nothing is changed when it throws.
   */
  loadStateDict(
    sd: StateDict | Map<string, Tensor>,
    o: { strict?: boolean } = {},
  ): LoadResult {
    const strict = o.strict ?? true;
    const src = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const optional = new Set<string>();
    for (const [prefix, m] of this.namedModules()) {
      for (const k of m.optionalStateKeys()) optional.add(prefix ? `${prefix}.${k}` : k);
    }
    const missingKeys = Object.keys(own).filter((k) => !src.has(k) && !optional.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !(k in own));
    const errors: string[] = [];
    for (const [k, t] of Object.entries(own)) {
      const s = src.get(k);
      if (s && s.shape.join() !== t.shape.join()) {
        errors.push(
          `size mismatch for ${k}: copying a param with shape ${
            fmtShape(s.shape)
          } from checkpoint, the shape in current model is ${fmtShape(t.shape)}.`,
        );
      }
    }
    if (strict && unexpectedKeys.length) {
      errors.unshift(`Unexpected key(s) in state_dict: ${unexpectedKeys.join(", ")}.`);
    }
    if (strict && missingKeys.length) {
      errors.unshift(`Missing key(s) in state_dict: ${missingKeys.join(", ")}.`);
    }
    if (errors.length) {
      throw new Error(
        `loadStateDict: error(s) in loading state_dict for ${this.constructor.name}:\n\t${
          errors.join("\n\t")
        }`,
      );
    }
    scope(() =>
      noGrad(() => {
        for (const [k, t] of Object.entries(own)) {
          const s = src.get(k);
          if (s) t.assign(s);
        }
      })
    );
    return { missingKeys, unexpectedKeys };
  }

  // --------------------------------------------------------------------------- lifetime
  /** Frees every parameter (with its gradient) and buffer of this module and its children. */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) t.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ------------------------------------------------------------------------------ repr
  /** The constructor arguments shown by toString() (PyTorch's extra_repr). */
  extraRepr(): string {
    return "";
  }
  /** PyTorch-style tree: `Linear(in_features=4, out_features=2, bias=true)`. */
  toString(): string {
    const kids = this.namedChildren();
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (!kids.length) return `${head})`;
    const body = kids.map(([n, m]) => `  (${n}): ${String(m).replaceAll("\n", "\n  ")}`);
    return `${head}\n${body.join("\n")}\n)`;
  }
}
