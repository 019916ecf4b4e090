/**
 * Containers: Sequential, ModuleList, ModuleDict, and MLP (torchvision.ops.MLP), whose children
 * are named like PyTorch's ("0", "1", ... or the given keys), so state dicts match.
 */
import { ReLU } from "./activations.ts";
import { Dropout, Linear } from "./layers.ts";
import { Module } from "./module.ts";

/** Children indexed "0", "1", ...: the common core of Sequential and ModuleList. */
abstract class IndexedModules extends Module {
  #length = 0;

  protected setItems(mods: Module[]): void {
    for (const m of mods) this.append(m);
  }

  get length(): number {
    return this.#length;
  }
  /**
   * The i-th module (negative i counts from the end). Read from the registered children, so a
   * child replaced with `setSubmodule` (e.g. a Linear wrapped by an adapter) is the one used.
   */
  at(i: number): Module {
    const k = i < 0 ? i + this.#length : i;
    if (!(k >= 0 && k < this.#length)) {
      throw new Error(`${this.constructor.name}: index ${i} is out of range`);
    }
    return this.getSubmodule(String(k));
  }
  append(m: Module): this {
    this.registerModule(String(this.#length++), m);
    return this;
  }
  extend(mods: Iterable<Module>): this {
    for (const m of mods) this.append(m);
    return this;
  }
  *[Symbol.iterator](): Iterator<Module> {
    for (let i = 0; i < this.#length; i++) yield this.getSubmodule(String(i));
  }
}

/** Chains modules: forward(x) = m_k(...m_1(x)). Children named "0", "1", ... */
export class Sequential extends IndexedModules {
  constructor(...modules: Module[]) {
    super();
    this.setItems(modules);
  }
  forward(x: any): any {
    for (const m of this) x = m.forward(x);
    return x;
  }
}

/** A list of modules whose parameters are registered ("0.weight", ...); no forward. */
export class ModuleList extends IndexedModules {
  constructor(modules: Iterable<Module> = []) {
    super();
    this.setItems([...modules]);
  }
  forward(): never {
    throw new Error("ModuleList: has no forward; iterate over its modules instead");
  }
}

/** Modules by name ("encoder.weight", ...); no forward. */
export class ModuleDict extends Module {
  #items = new Map<string, Module>();
  constructor(modules: Record<string, Module> = {}) {
    super();
    for (const [k, m] of Object.entries(modules)) this.set(k, m);
  }
  get(key: string): Module {
    const m = this.#items.get(key);
    if (!m) throw new Error(`ModuleDict: no module "${key}"`);
    return m;
  }
  set(key: string, m: Module): this {
    this.registerModule(key, m);
    this.#items.set(key, m);
    return this;
  }
  has(key: string): boolean {
    return this.#items.has(key);
  }
  keys(): string[] {
    return [...this.#items.keys()];
  }
  entries(): [string, Module][] {
    return [...this.#items.entries()];
  }
  forward(): never {
    throw new Error("ModuleDict: has no forward; get its modules by name instead");
  }
}

export interface MLPOptions {
  /** A normalisation layer after each hidden Linear, e.g. `(n) => new LayerNorm(n)`. */
  normLayer?: (channels: number) => Module;
  /** The activation after each hidden layer (default `() => new ReLU()`). */
  activationLayer?: () => Module;
  /** Biases in the Linear layers (default true). */
  bias?: boolean;
  /** Dropout after every layer, the last included, as torchvision does (default 0). */
  dropout?: number;
}

/**
 * torchvision.ops.MLP: for each hidden size but the last, Linear -> [norm] -> activation ->
 * Dropout; then Linear -> Dropout. `hiddenChannels` lists every layer's output size, the last
 * being the output. Children are numbered in that order ("0.weight", "3.weight", ...).
 */
export class MLP extends Sequential {
  constructor(inChannels: number, hiddenChannels: number[], o: MLPOptions = {}) {
    super();
    if (!hiddenChannels.length) throw new Error("MLP: hiddenChannels must not be empty");
    const act = o.activationLayer ?? (() => new ReLU());
    const bias = o.bias ?? true, p = o.dropout ?? 0;
    let inDim = inChannels;
    for (const h of hiddenChannels.slice(0, -1)) {
      this.append(new Linear(inDim, h, { bias }));
      if (o.normLayer) this.append(o.normLayer(h));
      this.append(act()).append(new Dropout(p));
      inDim = h;
    }
    this.append(new Linear(inDim, hiddenChannels[hiddenChannels.length - 1], { bias }));
    this.append(new Dropout(p));
  }
}
