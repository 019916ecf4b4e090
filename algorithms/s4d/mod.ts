/**
 * On the Parameterization and Initialization of Diagonal State Space Models (S4D).
 * Gu, Gupta, Goel, Ré. NeurIPS 2022. arXiv:2206.11893. Catalog id P032.
 *
 * The S4D layer: per channel h, a diagonal SSM x' = A x + B u, y = C x + D u with N/2 complex
 * modes (the other N/2 are their conjugates, hence the 2 Re below), discretised with step Δ by
 * zero-order hold (ZOH: Ā = exp(ΔA), B̄ = (exp(ΔA) - 1)/A B) or bilinearly (Ā = (1 + ΔA/2) /
 * (1 - ΔA/2), B̄ = Δ B / (1 - ΔA/2)). Its convolution kernel is a Vandermonde product,
 * K_l = 2 Re Σ_n C_n B̄_n Ā_n^l (the paper's "2 lines of code"), applied by FFT convolution or,
 * for short sequences, by a direct (Toeplitz) convolution. Complex numbers are pairs of real
 * tensors. The initialisations of A: S4D-LegS (the diagonal of HiPPO-LegS's normal part, see
 * hippo.ts), S4D-Inv (A_n = -1/2 + i N/π (N/(2n+1) - 1)), S4D-Lin (A_n = -1/2 + iπn), S4D-Real
 * (A_n = -(n+1)) and a random diagonal init (A_n = -1/2 + i exp(z), z ~ N(0, 1), the official
 * code's "rand"); Δ is log-uniform in [dtMin, dtMax], C ~ CN(0, 1), B = 1 (B̃ = V^*B/2 for LegS).
 * Parameter names follow the official S4D (log_dt, log_A_real, A_imag, C, D).
 */
import { Dropout, Linear, Module } from "../../core/nn/mod.ts";
import { cat } from "../../core/ops/shape.ts";
import { arange, ones, rand, randn, tensor, zeros } from "../../core/ops/creation.ts";
import * as fft from "../../core/fft/mod.ts";
import type { Tensor } from "../../core/tensor.ts";
import { diagonalLegS } from "./hippo.ts";

export * from "./hippo.ts";

/** The initialisations of A that the paper defines and ablates. */
export const S4D_INITS = ["legs", "inv", "lin", "real", "rand"] as const;
export type S4DInit = typeof S4D_INITS[number];
export type Discretization = "zoh" | "bilinear";

/** A complex tensor as a pair of real tensors (re, im) of the same shape. */
export type Complex = [Tensor, Tensor];

export function cmul([ar, ai]: Complex, [br, bi]: Complex): Complex {
  return [ar.mul(br).sub(ai.mul(bi)), ar.mul(bi).add(ai.mul(br))];
}

export function cdiv([ar, ai]: Complex, [br, bi]: Complex): Complex {
  const d = br.square().add(bi.square());
  return [ar.mul(br).add(ai.mul(bi)).div(d), ai.mul(br).sub(ar.mul(bi)).div(d)];
}

/**
 * z^l for l = 0..L-1 along a new last dim, by doubling ([1, z] -> [1, z, z^2, z^3] -> ...):
 * log2(L) complex products, no complex logarithm needed (the bilinear Ā is not an exp).
 */
export function powers(z: Complex, L: number): Complex {
  let [pr, pi] = [ones([...z[0].shape, 1]), zeros([...z[0].shape, 1])]; // z^0, (..., 1)
  let w: Complex = [z[0].unsqueeze(-1), z[1].unsqueeze(-1)]; // z^len, (..., 1)
  for (let len = 1; len < L; len *= 2) {
    const [qr, qi] = cmul([pr, pi], w);
    [pr, pi] = [cat([pr, qr], -1), cat([pi, qi], -1)];
    if (2 * len < L) w = cmul(w, w);
  }
  return [pr.narrow(-1, 0, L), pi.narrow(-1, 0, L)]; // (..., L)
}

/** Host values of A's init for H channels and N/2 modes: A_re < 0, A_im, and B (complex). */
export function initA(
  init: S4DInit,
  N: number,
  H: number,
): { Are: Tensor; Aim: Tensor; Bre: Tensor; Bim: Tensor } {
  if (!S4D_INITS.includes(init)) {
    throw new Error(`S4D: unknown init "${init}"; expected one of ${S4D_INITS.join(", ")}`);
  }
  const M = N / 2;
  const re = new Float32Array(M), im = new Float32Array(M);
  const bRe = new Float32Array(M).fill(1), bIm = new Float32Array(M);
  const legs = init === "legs" ? diagonalLegS(N) : undefined;
  for (let n = 0; n < M; n++) {
    re[n] = init === "real" ? -(n + 1) : -0.5;
    if (init === "lin") im[n] = Math.PI * n; // S4D-Lin
    if (init === "inv") im[n] = (N / Math.PI) * (N / (2 * n + 1) - 1); // S4D-Inv
    if (legs) [im[n], bRe[n], bIm[n]] = [legs.Aim[n], legs.Bre[n], legs.Bim[n]];
  }
  const rep = (a: Float32Array) => tensor(a, { shape: [1, M] }).expand([H, M]).contiguous();
  const Aim = init === "rand" ? randn([H, M]).exp() : rep(im); // (H, N/2)
  return { Are: rep(re), Aim, Bre: rep(bRe), Bim: rep(bIm) };
}

export interface S4DKernelOptions {
  /** State size N (N/2 complex modes, the paper's convention). Default 64. */
  N?: number;
  /** Initialisation of A. Default "lin" (the official minimal S4D). */
  init?: S4DInit;
  /** Δ is log-uniform in [dtMin, dtMax]. Defaults 0.001 and 0.1. */
  dtMin?: number;
  dtMax?: number;
  /** Discretisation. Default "zoh". */
  disc?: Discretization;
}

/**
 * Generates the S4D kernel K (H, L) from the SSM parameters of H independent channels.
 * Parameters: log_dt (H), log_A_real (H, N/2) with A_re = -exp(log_A_real), A_imag (H, N/2),
 * C (H, N/2, 2); buffer B (H, N/2, 2).
 */
export class S4DKernel extends Module {
  readonly H: number;
  readonly N: number;
  readonly init: S4DInit;
  readonly disc: Discretization;
  logDt: Tensor;
  logAReal: Tensor;
  AImag: Tensor;
  C: Tensor;
  B: Tensor;

  constructor(H: number, o: S4DKernelOptions = {}) {
    super();
    const N = o.N ?? 64, dtMin = o.dtMin ?? 0.001, dtMax = o.dtMax ?? 0.1;
    if (!(Number.isInteger(H) && H >= 1)) throw new Error(`S4D: H must be >= 1, got ${H}`);
    if (!(Number.isInteger(N) && N >= 2 && N % 2 === 0)) {
      throw new Error(`S4D: N must be an even integer >= 2 (N/2 complex modes), got ${N}`);
    }
    if (!(dtMin > 0 && dtMax >= dtMin)) {
      throw new Error(`S4D: need 0 < dtMin <= dtMax, got dtMin ${dtMin}, dtMax ${dtMax}`);
    }
    const disc = o.disc ?? "zoh";
    if (disc !== "zoh" && disc !== "bilinear") {
      throw new Error(`S4D: disc must be "zoh" or "bilinear", got "${disc}"`);
    }
    [this.H, this.N, this.init, this.disc] = [H, N, o.init ?? "lin", disc];
    const { Are, Aim, Bre, Bim } = initA(this.init, N, H);
    const [lo, hi] = [Math.log(dtMin), Math.log(dtMax)];
    this.logDt = this.registerParameter("log_dt", rand([H]).mul(hi - lo).add(lo));
    this.logAReal = this.registerParameter("log_A_real", Are.neg().log());
    this.AImag = this.registerParameter("A_imag", Aim);
    // C ~ CN(0, 1): real and imaginary parts N(0, 1/2), stored as (H, N/2, 2) like view_as_real.
    this.C = this.registerParameter("C", randn([H, N / 2, 2]).mul(Math.SQRT1_2));
    this.B = this.registerBuffer("B", cat([Bre.unsqueeze(-1), Bim.unsqueeze(-1)], -1));
  }

  /** Δ, A, B and C as (re, im) pairs: A, B, C (H, N/2), Δ (H, 1). */
  ssm(): { dt: Tensor; A: Complex; B: Complex; C: Complex } {
    return {
      dt: this.logDt.exp().unsqueeze(-1), // (H, 1)
      A: [this.logAReal.exp().neg(), this.AImag],
      B: [this.B.select(-1, 0), this.B.select(-1, 1)],
      C: [this.C.select(-1, 0), this.C.select(-1, 1)],
    };
  }

  /** The parameters of A and Δ, which the paper trains with a smaller lr and no weight decay. */
  ssmParameters(): Tensor[] {
    return [this.logDt, this.logAReal, this.AImag];
  }

  /** K (H, L): K_l = 2 Re Σ_n C_n B̄_n Ā_n^l (the Vandermonde product: the paper's 2-line kernel). */
  forward(L: number): Tensor {
    if (!(Number.isInteger(L) && L >= 1)) throw new Error(`S4D: L must be >= 1, got ${L}`);
    const { dt, A, B, C } = this.ssm();
    const dtA: Complex = [A[0].mul(dt), A[1].mul(dt)]; // ΔA (H, N/2)
    let CBbar: Complex, V: Complex; // C B̄ (H, N/2); Ā^l (H, N/2, L)
    if (this.disc === "zoh") {
      const e = dtA[0].exp();
      const expm1: Complex = [e.mul(dtA[1].cos()).sub(1), e.mul(dtA[1].sin())]; // exp(ΔA) - 1
      CBbar = cmul(C, cmul(cdiv(expm1, A), B)); // B̄ = (exp(ΔA) - 1) / A · B
      const l = arange(L).reshape([1, 1, L]);
      const mag = dtA[0].unsqueeze(-1).mul(l).exp(), ph = dtA[1].unsqueeze(-1).mul(l);
      V = [mag.mul(ph.cos()), mag.mul(ph.sin())]; // exp(ΔA l)
    } else {
      const den: Complex = [dtA[0].mul(-0.5).add(1), dtA[1].mul(-0.5)]; // 1 - ΔA/2
      const Abar = cdiv([dtA[0].mul(0.5).add(1), dtA[1].mul(0.5)], den);
      CBbar = cmul(C, cmul(cdiv([dt.expand([...dtA[0].shape]), zeros([...dtA[0].shape])], den), B));
      V = powers(Abar, L);
    }
    const k = CBbar[0].unsqueeze(1).matmul(V[0]).sub(CBbar[1].unsqueeze(1).matmul(V[1])); // (H, 1, L)
    return k.squeeze(1).mul(2); // (H, L)
  }
}

export type ConvMode = "fft" | "direct";

/**
 * Causal convolution y_l = Σ_{j <= l} K_j u_{l-j} of u (..., H, L) with K (H, L) per channel
 * (u (..., 1, L) is shared by all H kernels).
 * "fft": zero-pad to 2L, multiply the spectra, crop (cpu backend: core fft runs on the host);
 * "direct": a Toeplitz matmul, O(H L^2) but no FFT (better for short L).
 */
export function causalConv(u: Tensor, K: Tensor, mode: ConvMode = "fft"): Tensor {
  const L = u.shape[u.ndim - 1], H = u.shape[u.ndim - 2];
  if (K.ndim !== 2 || (K.shape[0] !== H && H !== 1) || K.shape[1] !== L) {
    throw new Error(
      `causalConv: expected K of shape [${H}, ${L}] for u [${u.shape}], got [${K.shape}]`,
    );
  }
  if (mode === "fft") {
    const Uf = fft.rfft(u, { n: 2 * L }), Kf = fft.rfft(K, { n: 2 * L }); // (..., H, L + 1, 2)
    return fft.irfft(fft.mul(Uf, Kf), { n: 2 * L }).narrow(-1, 0, L); // (..., H, L)
  }
  if (mode !== "direct") {
    throw new Error(`causalConv: mode must be "fft" or "direct", got "${mode}"`);
  }
  const idx = new Int32Array(L * L); // T[l, j] = Kpad[l - j + L - 1]
  for (let l = 0; l < L; l++) for (let j = 0; j < L; j++) idx[l * L + j] = l - j + L - 1;
  const Kpad = cat([zeros([K.shape[0], L - 1]), K], -1); // (H, 2L - 1), zeros stand for K at lags < 0
  const T = Kpad.indexSelect(1, tensor(idx)).reshape([K.shape[0], L, L]); // (H, L, L)
  return T.matmul(u.unsqueeze(-1)).squeeze(-1); // (..., H, L, 1) -> (..., H, L)
}

/**
 * The last output of the causal convolution, y_{L-1} = Σ_j K_j u_{L-1-j}: u (..., H, L) ->
 * (..., H). An input with one channel (..., 1, L) is shared by all H kernels (one matmul).
 */
export function causalConvLast(u: Tensor, K: Tensor): Tensor {
  const Kr = K.flip(-1); // (H, L), Kr[h, l] = K[h, L-1-l]
  if (u.shape[u.ndim - 2] === 1 && K.shape[0] > 1) return u.squeeze(-2).matmul(Kr.T); // (..., H)
  return u.mul(Kr).sum(-1);
}

export interface S4DOptions extends S4DKernelOptions {
  /** Dropout after the activation. Default 0. */
  dropout?: number;
  /** Convolution: "fft" (default) or "direct". */
  mode?: ConvMode;
}

/**
 * The S4D layer of the official code: y = K * u + D u per channel, GELU, dropout, then a
 * position-wise Linear(H, 2H) and GLU to mix channels. Input (B, L, H), or (B, L, 1) fed to
 * all H channels; output (B, L, H).
 */
export class S4D extends Module {
  kernel: S4DKernel;
  D: Tensor;
  outputLinear: Linear;
  dropout: Dropout;
  readonly mode: ConvMode;

  constructor(H: number, o: S4DOptions = {}) {
    super();
    this.kernel = this.registerModule("kernel", new S4DKernel(H, o));
    this.D = this.registerParameter("D", randn([H]));
    this.outputLinear = this.registerModule("output_linear", new Linear(H, 2 * H));
    this.dropout = this.registerModule("dropout", new Dropout(o.dropout ?? 0));
    this.mode = o.mode ?? "fft";
  }

  #mix(y: Tensor): Tensor {
    const z = this.outputLinear.forward(this.dropout.forward(y.gelu())); // (..., 2H)
    const [a, b] = z.chunk(2, -1);
    return a.mul(b.sigmoid()); // GLU
  }

  forward(u: Tensor): Tensor {
    const ut = u.transpose(-1, -2); // (B, H, L)
    const y = causalConv(ut, this.kernel.forward(ut.shape[ut.ndim - 1]), this.mode);
    return this.#mix(y.add(ut.mul(this.D.unsqueeze(-1))).transpose(-1, -2)); // (B, L, H)
  }

  /** The output at the last position only, (B, L, H) -> (B, H), in O(B H L): forward(u)[:, -1]. */
  forwardLast(u: Tensor): Tensor {
    const ut = u.transpose(-1, -2), L = ut.shape[ut.ndim - 1]; // (B, H, L)
    const y = causalConvLast(ut, this.kernel.forward(L)); // (B, H)
    return this.#mix(y.add(ut.select(-1, L - 1).mul(this.D)));
  }
}
