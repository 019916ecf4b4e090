/**
 * Fused attention forward (flash-style; Dao et al., 2022, "FlashAttention", Alg. 1, in its
 * one-row-per-thread form): out = softmax(q k^T scale + mask) v over float32 q [batch, L, E],
 * k [batch, S, E], v [batch, S, Ev], without the [L, S] score matrix in memory. Each thread
 * owns one query row (its q and output accumulator in registers); a workgroup's threads share
 * tiles of BC keys and values staged in workgroup memory, and each row keeps a running max and
 * sum (the online softmax), rescaling its accumulator when the max grows. It also writes each
 * row's log-sum-exp, from which the backward pass (core/ops/fused.ts) recomputes the weights.
 *
 * Rows with no admissible key (all masked) give zeros and a log-sum-exp of -Infinity, as the
 * composed op does (PyTorch's safe softmax); a NaN score makes its row NaN.
 */
import type { AttentionDims } from "../../../backend.ts";
import { fbits, type Gpu, type GpuBuf } from "../device.ts";
import { PRELUDE } from "./wgsl.ts";

/** Largest head size (E and Ev) the kernel takes: q and the accumulator live in registers. */
const ATTENTION_MAX_HEAD = 128;

/** Query rows (threads) per workgroup and keys per shared tile for these sizes. */
function attentionTile(d: AttentionDims, storage: number): { br: number; bc: number } {
  const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
  const br = Math.min(64, Math.max(16, pow2(d.l)));
  // K and V tiles of vec4 rows; at most 16 KiB so several workgroups fit on a core.
  const rowBytes = 16 * (Math.ceil(d.e / 4) + Math.ceil(d.ev / 4));
  let bc = 64;
  while (bc > 4 && bc * rowBytes > Math.min(storage, 16384)) bc /= 2;
  return { br, bc: Math.min(bc, Math.max(4, pow2(d.s))) };
}

/** The kernel's WGSL for head sizes e, ev, tiles br x bc, a causal flag and a mask binding. */
function source(e: number, ev: number, br: number, bc: number, causal: boolean, mask: boolean) {
  const e4 = Math.ceil(e / 4), v4 = Math.ceil(ev / 4);
  // A vec4 of row `r` of X (n floats per row) at float `c`, zero past the row's end.
  const load = (X: string, n: number) =>
    n % 4 === 0
      ? `vec4<f32>(${[0, 1, 2, 3].map((i) => `${X}[r * ${n}u + c + ${i}u]`).join(", ")})`
      : `vec4<f32>(${
        [0, 1, 2, 3].map((i) =>
          `select(0.0, ${X}[min(r * ${n}u + c + ${i}u, r * ${n}u + ${n - 1}u)], c + ${i}u < ${n}u)`
        )
          .join(", ")
      })`;
  return PRELUDE + /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(3) var<storage, read> Q: array<f32>;
@group(0) @binding(4) var<storage, read> K: array<f32>;
@group(0) @binding(5) var<storage, read> V: array<f32>;
${mask ? "@group(0) @binding(6) var<storage, read> M: array<f32>;" : ""}
var<workgroup> Ks: array<vec4<f32>, ${bc * e4}>;
var<workgroup> Vs: array<vec4<f32>, ${bc * v4}>;

// Parameters: L, S, query blocks per batch, scale, mask batch stride.
@compute @workgroup_size(${br})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let L = pu(0u);
  let S = pu(1u);
  let nb = pu(2u);
  let scale = pf(3u);
  let b = g / nb;
  let l0 = (g % nb) * ${br}u;
  let l = l0 + lid;
  let lq = min(l, L - 1u);
  let ninf = -bitcast<f32>(0x7f800000u);

  var q: array<vec4<f32>, ${e4}>;
  for (var i = 0u; i < ${e4}u; i++) {
    let r = b * L + lq;
    let c = i * 4u;
    q[i] = ${load("Q", e)};
  }
  var acc: array<vec4<f32>, ${v4}>;
  var m = ninf;
  var sum = 0.0;
  var bad = false;
  // Key tiles past the workgroup's last row are fully masked under the causal mask.
  let send = ${causal ? `min(S, l0 + ${br}u)` : "S"};
  var sc: array<f32, ${bc}>;
  for (var s0 = zero(); s0 < send; s0 += ${bc}u) {
    for (var t = lid; t < ${bc * Math.max(e4, v4)}u; t += ${br}u) {
      let j = t / ${Math.max(e4, v4)}u;
      let i = t % ${Math.max(e4, v4)}u;
      let r = b * S + min(s0 + j, S - 1u);
      let c = i * 4u;
      let inside = s0 + j < S;
      if (i < ${e4}u) { Ks[j * ${e4}u + i] = select(vec4<f32>(0.0), ${load("K", e)}, inside); }
      if (i < ${v4}u) { Vs[j * ${v4}u + i] = select(vec4<f32>(0.0), ${load("V", ev)}, inside); }
    }
    workgroupBarrier();
    var tm = ninf;
    for (var j = 0u; j < ${bc}u; j++) {
      let s = s0 + j;
      var d = 0.0;
      for (var i = 0u; i < ${e4}u; i++) { d += dot(q[i], Ks[j * ${e4}u + i]); }
      var x = d * scale;
      ${mask ? "x += M[b * pu(4u) + lq * S + min(s, S - 1u)];" : ""}
      x = select(ninf, x, s < S${causal ? " && s <= l" : ""});
      bad = bad || is_nan(x);
      sc[j] = x;
      tm = max(tm, x);
    }
    let mn = max(m, tm);
    if (mn > ninf) {
      let corr = exp(m - mn);
      sum *= corr;
      for (var i = 0u; i < ${v4}u; i++) { acc[i] *= corr; }
      for (var j = 0u; j < ${bc}u; j++) {
        let p = exp(sc[j] - mn);
        sum += p;
        for (var i = 0u; i < ${v4}u; i++) { acc[i] += p * Vs[j * ${v4}u + i]; }
      }
      m = mn;
    }
    workgroupBarrier();
  }
  if (l >= L) { return; }
  let row = b * L + l;
  let inv = select(1.0 / sum, 0.0, sum == 0.0);
  for (var i = 0u; i < ${v4}u; i++) {
    for (var c = 0u; c < 4u; c++) {
      if (i * 4u + c < ${ev}u) {
        O[row * ${ev}u + i * 4u + c] = select(acc[i][c] * inv, nan(), bad);
      }
    }
  }
  LSE[row] = select(select(m + log(sum), ninf, sum == 0.0), nan(), bad);
}`;
}

/** out [batch, L, Ev] and lse [batch, L]; null for heads larger than ATTENTION_MAX_HEAD. */
export function attention(
  gpu: Gpu,
  q: GpuBuf,
  k: GpuBuf,
  v: GpuBuf,
  mask: GpuBuf | null,
  d: AttentionDims,
): { out: GpuBuf; lse: GpuBuf } | null {
  if (d.e > ATTENTION_MAX_HEAD || d.ev > ATTENTION_MAX_HEAD) return null;
  const { br, bc } = attentionTile(d, gpu.limits.maxComputeWorkgroupStorageSize);
  const out = gpu.alloc(d.batch * d.l * d.ev, "float32");
  const lse = gpu.alloc(d.batch * d.l, "float32");
  const p = gpu.pipeline(
    `attention:${d.e}:${d.ev}:${br}:${bc}:${d.causal}:${!!mask}`,
    () => source(d.e, d.ev, br, bc, d.causal, !!mask),
  );
  const nb = Math.ceil(d.l / br);
  const bufs = [out.buffer, lse.buffer, q.buffer, k.buffer, v.buffer];
  if (mask) bufs.push(mask.buffer);
  gpu.dispatch(
    p,
    bufs,
    [d.l, d.s, nb, fbits(d.scale), d.maskBatched ? d.l * d.s : 0],
    d.batch * nb,
  );
  return { out, lse };
}
