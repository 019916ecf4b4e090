/**
 * Multi-head attention (Vaswani et al., 2017, Sec. 3.2.2), with torch.nn.MultiheadAttention's
 * parameters ("in_proj_weight" [3E, E], "in_proj_bias", "out_proj.weight/bias", or
 * "q_proj_weight"/"k_proj_weight"/"v_proj_weight" when kdim/vdim differ from E), masks and
 * initialisation:
 *
 *   MultiHead(Q, K, V) = Concat(head_1..head_h) W^O,  head_i = softmax(Q W_i^Q (K W_i^K)^T
 *   / sqrt(d_k) + mask) V W_i^V.
 */
import * as F from "../functional.ts";
import { full, zeros } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import * as init from "./init.ts";
import { Linear } from "./layers.ts";
import { Module } from "./module.ts";

export interface MultiheadAttentionOptions {
  /** Dropout on the attention weights in training (default 0). */
  dropout?: number;
  /** Biases on the input and output projections (default true). */
  bias?: boolean;
  /** Feature size of the keys (default embedDim). */
  kdim?: number;
  /** Feature size of the values (default embedDim). */
  vdim?: number;
  /** Inputs and output are [N, L, E] instead of [L, N, E] (default false). */
  batchFirst?: boolean;
}

export interface AttentionCallOptions {
  /** [N, S] (or [S] unbatched): true (or -inf when float) marks keys to ignore (padding). */
  keyPaddingMask?: Tensor | null;
  /** Return the attention weights (default true). */
  needWeights?: boolean;
  /**
   * [L, S] or [N * numHeads, L, S]: bool true = NOT allowed to attend (PyTorch's MHA
   * convention, the opposite of scaledDotProductAttention's), or float added to the scores.
   */
  attnMask?: Tensor | null;
  /** Average the returned weights over heads (default true): [N, L, S], else [N, H, L, S]. */
  averageAttnWeights?: boolean;
  /** Causal mask; PyTorch requires attnMask with it as a hint, here it builds one if absent. */
  isCausal?: boolean;
}

/** A bool "masked out" tensor to an additive float mask (-inf where true); floats pass. */
function additiveMask(m: Tensor): Tensor {
  return m.dtype === "bool" ? F.where(m, -Infinity, 0) : m.float();
}

export class MultiheadAttention extends Module {
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;
  readonly kdim: number;
  readonly vdim: number;
  inProjWeight: Tensor | null;
  qProjWeight: Tensor | null;
  kProjWeight: Tensor | null;
  vProjWeight: Tensor | null;
  inProjBias: Tensor | null;
  outProj: Linear;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    o: MultiheadAttentionOptions = {},
  ) {
    super();
    const E = embedDim;
    this.headDim = Math.floor(E / numHeads);
    if (this.headDim * numHeads !== E) {
      throw new Error(`MultiheadAttention: embed_dim ${E} must be divisible by num_heads`);
    }
    this.dropout = o.dropout ?? 0;
    this.batchFirst = o.batchFirst ?? false;
    this.kdim = o.kdim ?? E;
    this.vdim = o.vdim ?? E;
    const packed = this.kdim === E && this.vdim === E;
    this.inProjWeight = this.registerParameter("in_proj_weight", packed ? zeros([3 * E, E]) : null);
    this.qProjWeight = this.registerParameter("q_proj_weight", packed ? null : zeros([E, E]));
    this.kProjWeight = this.registerParameter(
      "k_proj_weight",
      packed ? null : zeros([E, this.kdim]),
    );
    this.vProjWeight = this.registerParameter(
      "v_proj_weight",
      packed ? null : zeros([E, this.vdim]),
    );
    const bias = o.bias ?? true;
    this.inProjBias = this.registerParameter("in_proj_bias", bias ? zeros([3 * E]) : null);
    this.outProj = this.registerModule("out_proj", new Linear(E, E, { bias }));
    this.resetParameters();
  }

  /** Input projections ~ xavier_uniform, biases 0; out_proj.weight keeps Linear's init. */
  resetParameters(): void {
    if (this.inProjWeight) init.xavierUniform(this.inProjWeight);
    else {for (const w of [this.qProjWeight, this.kProjWeight, this.vProjWeight]) {
        init.xavierUniform(w!);
      }}
    if (this.inProjBias) init.zeros(this.inProjBias);
    if (this.outProj.bias) init.zeros(this.outProj.bias);
  }

  /**
   * Attends from `query` to `key`/`value`: [L, N, E], [S, N, kdim], [S, N, vdim] ([N, ...] with
   * batchFirst, or unbatched [L, E]). Returns [output, weights]; weights is null unless
   * `needWeights` (the default), and are taken after dropout, as PyTorch returns them.
   */
  forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    o: AttentionCallOptions = {},
  ): [Tensor, Tensor | null] {
    const batched = query.ndim === 3;
    let [q, k, v] = [query, key, value];
    let kpm = o.keyPaddingMask ?? null;
    if (!batched) {
      [q, k, v] = [q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)]; // (L, 1, E)
      if (kpm) kpm = kpm.unsqueeze(0);
    } else if (this.batchFirst) {
      [q, k, v] = [q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)]; // (L, N, E)
    }
    const [L, N, E] = q.shape;
    const S = k.shape[0];
    const H = this.numHeads, hd = this.headDim;

    // Input projections.
    const b = this.inProjBias ? this.inProjBias.chunk(3) : [null, null, null];
    const [wq, wk, wv] = this.inProjWeight
      ? this.inProjWeight.chunk(3)
      : [this.qProjWeight!, this.kProjWeight!, this.vProjWeight!];
    const heads = (t: Tensor, len: number) => t.reshape([len, N * H, hd]).transpose(0, 1);
    const qh = heads(F.linear(q, wq, b[0]), L); // (N*H, L, hd)
    const kh = heads(F.linear(k, wk, b[1]), S); // (N*H, S, hd)
    const vh = heads(F.linear(v, wv, b[2]), S); // (N*H, S, hd)

    // Masks, merged into one additive float mask broadcastable to (N*H, L, S).
    let mask: Tensor | null = o.attnMask ? additiveMask(o.attnMask) : null;
    if (mask && mask.ndim === 2) mask = mask.unsqueeze(0); // (1, L, S)
    const needWeights = o.needWeights ?? true;
    // Without weights to return, a causal mask alone goes to SDPA as isCausal, which its
    // fused kernel applies without reading a mask.
    const causalOnly = !mask && !!o.isCausal && !kpm && !needWeights;
    if (!mask && o.isCausal && !causalOnly) {
      mask = F.where(full([L, S], true).triu(1), -Infinity, 0).unsqueeze(0); // (1, L, S)
    }
    if (kpm) {
      const pad = additiveMask(kpm).reshape([N, 1, 1, S]).expand([N, H, 1, S])
        .reshape([N * H, 1, S]);
      mask = mask ? mask.add(pad) : pad;
    }

    const dropoutP = this.training ? this.dropout : 0;
    let ctxHeads: Tensor, attn: Tensor | null = null; // (N*H, L, hd)
    if (needWeights) {
      let scores = qh.mul(1 / Math.sqrt(hd)).matmul(kh.transpose(1, 2)); // (N*H, L, S)
      if (mask) scores = scores.add(mask);
      attn = F.softmax(scores, -1);
      if (dropoutP > 0) attn = F.dropout(attn, { p: dropoutP });
      ctxHeads = attn.matmul(vh);
    } else {
      // No weights to return: one fused kernel where the backend has it, as PyTorch's SDPA.
      const how = causalOnly ? { isCausal: true, dropoutP } : { attnMask: mask, dropoutP };
      ctxHeads = F.scaledDotProductAttention(qh, kh, vh, how);
    }
    const ctx = ctxHeads.transpose(0, 1).reshape([L * N, E]); // (L*N, E)
    let out = this.outProj.forward(ctx).reshape([L, N, E]);

    let weights: Tensor | null = null;
    if (attn) {
      weights = attn.reshape([N, H, L, S]);
      if (o.averageAttnWeights ?? true) weights = weights.mean(1); // (N, L, S)
      if (!batched) weights = weights.squeeze(0);
    }
    if (!batched) out = out.squeeze(1); // (L, E)
    else if (this.batchFirst) out = out.transpose(0, 1); // (N, L, E)
    return [out, weights];
  }

  override extraRepr(): string {
    return `embed_dim=${this.embedDim}, num_heads=${this.numHeads}`;
  }
}
