/** Activations as modules (torch.nn.ReLU, GELU, ...), each a thin wrapper over the op. */
import * as F from "../functional.ts";
import type { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}

/** Exact (erf) GELU, or the tanh approximation with `{ approximate: "tanh" }`. */
export class GELU extends Module {
  readonly approximate: "none" | "tanh";
  constructor(o: { approximate?: "none" | "tanh" } = {}) {
    super();
    this.approximate = o.approximate ?? "none";
  }
  forward(x: Tensor): Tensor {
    return x.gelu({ approximate: this.approximate });
  }
  override extraRepr(): string {
    return `approximate='${this.approximate}'`;
  }
}

export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return x.silu();
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return x.tanh();
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope: number = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.leakyRelu(this.negativeSlope);
  }
  override extraRepr(): string {
    return `negative_slope=${this.negativeSlope}`;
  }
}

export class ELU extends Module {
  constructor(readonly alpha: number = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.elu(this.alpha);
  }
  override extraRepr(): string {
    return `alpha=${this.alpha}`;
  }
}

/** log(1 + exp(beta x)) / beta, linear where beta x > threshold (defaults 1 and 20). */
export class Softplus extends Module {
  readonly beta: number;
  readonly threshold: number;
  constructor(o: { beta?: number; threshold?: number } = {}) {
    super();
    this.beta = o.beta ?? 1;
    this.threshold = o.threshold ?? 20;
  }
  forward(x: Tensor): Tensor {
    return x.softplus({ beta: this.beta, threshold: this.threshold });
  }
  override extraRepr(): string {
    return `beta=${this.beta}, threshold=${this.threshold}`;
  }
}

/**
 * softmax along `dim`. PyTorch's `dim=None` guesses a dim from the input's rank (deprecated
 * there); here `dim` is required.
 */
export class Softmax extends Module {
  constructor(readonly dim: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.softmax(x, this.dim);
  }
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

export class LogSoftmax extends Module {
  constructor(readonly dim: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.logSoftmax(x, this.dim);
  }
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}
