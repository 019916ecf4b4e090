/**
 * Reverse-mode autodiff. Each differentiable primitive records a node with its inputs and a
 * backward rule written in tensor ops, so the backward pass is itself differentiable:
 * `backward({ createGraph: true })` records it, which gives double backward and
 * Hessian-vector products.
 */
import type { Tensor } from "./tensor.ts";
import { keep } from "./memory.ts";

/** A recorded op: its inputs and the rule mapping the output's gradient to theirs. */
export interface Node {
  readonly name: string;
  readonly inputs: Tensor[];
  /** Gradients for each input (null where none flows); null once the graph is freed. */
  backward: ((g: Tensor) => (Tensor | null)[]) | null;
}

let gradEnabled = true;

/** Whether ops currently record the graph. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

function withGradMode<T>(mode: boolean, name: string, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = mode;
  try {
    const r = fn();
    if (r instanceof Promise) {
      throw new Error(`${name}: fn returned a Promise; pass a synchronous function`);
    }
    return r;
  } finally {
    gradEnabled = prev;
  }
}

/** Runs `fn` without recording gradients (like `torch.no_grad()`). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, "noGrad", fn);
}

/** Runs `fn` with gradient recording on, even inside `noGrad`. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, "enableGrad", fn);
}

/** Attaches a node to `out` when grad mode is on and some input requires grad. */
export function record(
  out: Tensor,
  name: string,
  inputs: Tensor[],
  backward: (g: Tensor) => (Tensor | null)[],
): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out._node = { name, inputs, backward };
    out.requiresGrad = true;
  }
  return out;
}

/** Tensors reachable from `root` through recorded nodes, inputs before outputs. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const i of t._node?.inputs ?? []) {
      if (i.requiresGrad && !seen.has(i)) stack.push([i, false]);
    }
  }
  return order;
}

export interface BackwardOptions {
  /** Record the backward pass so gradients can be differentiated again. */
  createGraph?: boolean;
  /** Keep the graph for another backward pass (defaults to createGraph). */
  retainGraph?: boolean;
  /** Compute gradients for these tensors only and return them instead of accumulating. */
  inputs?: Tensor[];
}

/**
 * Backpropagates from `root`. Leaves that require grad accumulate into `.grad` (kept out of
 * scopes), unless `inputs` is given: then their gradients are returned and nothing accumulates.
 */
export function runBackward(
  root: Tensor,
  grad: Tensor | undefined,
  opts: BackwardOptions = {},
): (Tensor | null)[] {
  const { createGraph = false, retainGraph = createGraph, inputs } = opts;
  if (!root.requiresGrad) {
    throw new Error("backward: the tensor does not require grad and has no grad_fn");
  }
  if (!grad) {
    if (root.numel !== 1) {
      throw new Error(
        `backward: grad can be implicitly created only for scalar outputs (shape [${root.shape}])`,
      );
    }
    grad = root.onesLike();
  } else if (grad.shape.join() !== root.shape.join()) {
    throw new Error(`backward: grad shape [${grad.shape}] does not match output [${root.shape}]`);
  }
  const wanted = inputs ? new Set(inputs) : undefined;
  const found = new Map<Tensor, Tensor>();
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>([[root, grad]]);
  withGradMode(createGraph, "backward", () => {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (!g) continue;
      const node = t._node;
      if (wanted?.has(t)) found.set(t, g);
      if (!node) {
        if (!wanted) accumulate(t, g);
        continue;
      }
      if (t._retainsGrad && !wanted) accumulate(t, g);
      if (!node.backward) {
        throw new Error(
          `backward: the graph through ${node.name} was already freed; ` +
            "pass retainGraph: true to backward twice",
        );
      }
      const gs = node.backward(g);
      node.inputs.forEach((inp, k) => {
        const gi = gs[k];
        if (!gi || !inp.requiresGrad) return;
        const prev = grads.get(inp);
        grads.set(inp, prev ? prev.add(gi) : gi);
      });
      if (!retainGraph) node.backward = null;
    }
  });
  return inputs ? inputs.map((t) => found.get(t) ?? null) : [];
}

function accumulate(leaf: Tensor, g: Tensor): void {
  // With createGraph the gradient keeps its graph; otherwise hand over a fresh alias.
  const next = leaf.grad ? leaf.grad.add(g) : gradEnabled && g.requiresGrad ? g : g._alias();
  if (leaf.grad) leaf.grad.dispose();
  leaf.grad = keep(next);
}

type Tree = Tensor | Tree[] | { [k: string]: Tree };

function leaves(tree: Tree, out: Tensor[] = []): Tensor[] {
  if (Array.isArray(tree)) tree.forEach((t) => leaves(t, out));
  else if (isTensor(tree)) out.push(tree);
  else for (const v of Object.values(tree)) leaves(v, out);
  return out;
}

function rebuild<T extends Tree>(tree: T, vals: Tensor[], pos = { i: 0 }): T {
  if (Array.isArray(tree)) return tree.map((t) => rebuild(t, vals, pos)) as T;
  if (isTensor(tree)) return vals[pos.i++] as T;
  const o: Record<string, Tree> = {};
  for (const [k, v] of Object.entries(tree)) o[k] = rebuild(v, vals, pos);
  return o as T;
}

function isTensor(v: unknown): v is Tensor {
  return typeof v === "object" && v !== null && "_node" in v && "shape" in v;
}

export interface GradOptions {
  /** Record the gradient computation itself (for higher derivatives). */
  createGraph?: boolean;
}

/**
 * `valueAndGrad(fn)(params)` returns fn's scalar value and the gradients of it with respect
 * to every tensor in `params` (a tensor, array or object tree), with the same structure.
 * Parameters are differentiated whether or not they require grad; nothing accumulates.
 */
export function valueAndGrad<T extends Tree>(
  fn: (params: T) => Tensor,
  opts: GradOptions = {},
): (params: T) => { value: Tensor; grads: T } {
  return (params: T) => {
    const flat = leaves(params);
    const tracked = flat.map((p) => (p.requiresGrad ? p : p.detach().requiresGrad_()));
    const value = enableGrad(() => fn(rebuild(params, tracked)));
    if (value.numel !== 1) {
      throw new Error(`valueAndGrad: fn must return a scalar, got shape [${value.shape}]`);
    }
    let gs: (Tensor | null)[] = tracked.map(() => null);
    if (value.requiresGrad) {
      gs = runBackward(value, undefined, { createGraph: opts.createGraph, inputs: tracked });
    }
    const filled = gs.map((g, i) => g ?? flat[i].zerosLike().float());
    return { value: opts.createGraph ? value : value.detach(), grads: rebuild(params, filled) };
  };
}

/** `grad(fn)(params)`: the gradient tree of fn's scalar value (see `valueAndGrad`). */
export function grad<T extends Tree>(
  fn: (params: T) => Tensor,
  opts: GradOptions = {},
): (params: T) => T {
  const vg = valueAndGrad(fn, opts);
  return (params: T) => vg(params).grads;
}
