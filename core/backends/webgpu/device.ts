/**
 * The WebGPU device: set-up, the buffer pool, command batching, parameters and readback.
 *
 * Work is encoded into one open command encoder (dispatches share a compute pass until a copy
 * needs the encoder) and submitted when a readback needs it or when `MAX_PENDING` dispatches
 * are queued. Kernel parameters live in one uniform "arena" per batch: each dispatch gets a
 * 256-byte slot, and the arena is written with one `writeBuffer` just before the submit.
 *
 * Elementwise ops reach the device through fusion.ts, which queues one kernel per chain.
 *
 * Buffers come from a pool bucketed by size (powers of two and 1.5 times powers of two).
 * A buffer freed while the open encoder has work may still be read by that work: it is "dirty"
 * until the next submit. Kernel outputs may reuse dirty buffers (dispatches run in queue
 * order), but `writeBuffer` runs before the pending command buffer, so uploads only take clean
 * buffers, flushing first when the only fitting buffer is dirty.
 */
import type { DType } from "../../dtype.ts";

/** A GPU tensor buffer: `size` elements of `dtype` (bool as u32, int32 as i32, float32 as f32). */
export interface GpuBuf {
  readonly buffer: GPUBuffer;
  readonly size: number;
  readonly dtype: DType;
  /** A host copy of small uploaded int32 data, so index kernels can validate indices. */
  readonly host?: Int32Array;
}

/** Uploaded int32 buffers up to this many elements keep a host copy (see `GpuBuf.host`). */
const HOST_INDEX_COPY = 1 << 16;

/** Dispatches queued before an automatic submit. */
export const MAX_PENDING = 64;
/** Bytes of parameters per dispatch: 64 u32 words; words 62 and 63 always hold 0 and NaN. */
export const SLOT_BYTES = 256;
export const SLOT_WORDS = SLOT_BYTES / 4;
/** Pooled bytes kept for reuse before freed buffers are destroyed instead. */
const POOL_LIMIT = 1 << 30;

/** The pool bucket of a byte size: 64, then 2^k or 1.5 * 2^k. */
export function bucketBytes(bytes: number): number {
  if (bytes <= 64) return 64;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  return bytes <= p * 0.75 ? p * 0.75 : p;
}

/** Float32 bits of a number, for parameter words. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function fbits(v: number): number {
  f32[0] = v;
  return u32[0];
}

export interface PoolStats {
  /** GPUBuffers created since start-up. */
  created: number;
  /** Buffers and bytes waiting in the pool. */
  pooled: number;
  pooledBytes: number;
  /** Submits so far. */
  submits: number;
  /** Kernel dispatches so far. */
  dispatches: number;
}

export class Gpu {
  readonly limits: GPUSupportedLimits;
  readonly features: Set<string>;
  #pipelines = new Map<string, GPUComputePipeline>();
  #clean = new Map<number, GPUBuffer[]>();
  #dirty: GPUBuffer[] = [];
  #doomed: GPUBuffer[] = [];
  #staging = new Map<number, GPUBuffer[]>();
  #pooledBytes = 0;
  #created = 0;
  #submits = 0;
  #dispatches = 0;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #pending = 0;
  #arena: GPUBuffer;
  #arenaWords = new Uint32Array(MAX_PENDING * SLOT_WORDS);
  #soon: Promise<void> | null = null;

  constructor(readonly device: GPUDevice) {
    this.limits = device.limits;
    this.features = new Set(device.features);
    this.#arena = device.createBuffer({
      size: MAX_PENDING * SLOT_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.addEventListener("uncapturederror", (e) => {
      console.error(`webgpu backend: ${(e as GPUUncapturedErrorEvent).error.message}`);
    });
  }

  /** A compute pipeline, compiled once per key. */
  pipeline(key: string, source: () => string): GPUComputePipeline {
    let p = this.#pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ label: key, code: source() });
      p = this.device.createComputePipeline({
        label: key,
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
      this.#pipelines.set(key, p);
    }
    return p;
  }

  // ---------------------------------------------------------------------------- buffers

  #take(bytes: number, clean: boolean): GPUBuffer {
    const b = bucketBytes(bytes);
    const list = this.#clean.get(b);
    if (list?.length) {
      this.#pooledBytes -= b;
      return list.pop()!;
    }
    if (!clean) {
      const i = this.#dirty.findIndex((d) => d.size === b);
      if (i >= 0) {
        this.#pooledBytes -= b;
        return this.#dirty.splice(i, 1)[0];
      }
    } else if (this.#dirty.some((d) => d.size === b)) {
      this.flush(); // dirty buffers become clean once their readers are submitted
      return this.#take(bytes, true);
    }
    if (b > this.limits.maxBufferSize) {
      throw new Error(
        `webgpu backend: a buffer of ${bytes} bytes exceeds the device's maxBufferSize ` +
          `(${this.limits.maxBufferSize})`,
      );
    }
    this.#created++;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    return this.device.createBuffer({ size: b, usage });
  }

  /** A buffer for `size` elements, written by a kernel of the current batch. */
  alloc(size: number, dtype: DType): GpuBuf {
    return { buffer: this.#take(size * 4, false), size, dtype };
  }

  /** A buffer filled from the host (bools widened to u32). */
  upload(data: ArrayLike<number>, dtype: DType): GpuBuf {
    const n = data.length;
    const buffer = this.#take(n * 4, true);
    const host = dtype === "float32"
      ? Float32Array.from(data)
      : dtype === "int32"
      ? Int32Array.from(data)
      : Uint32Array.from(data);
    if (n) this.device.queue.writeBuffer(buffer, 0, host);
    if (dtype === "int32" && n <= HOST_INDEX_COPY) {
      return { buffer, size: n, dtype, host: host as Int32Array };
    }
    return { buffer, size: n, dtype };
  }

  /** Returns a buffer to the pool; it is dirty while unsubmitted work may still read it. */
  free(buf: GpuBuf): void {
    const b = buf.buffer;
    if (this.#pooledBytes + b.size > POOL_LIMIT) {
      if (this.#encoder) this.#doomed.push(b);
      else b.destroy();
      return;
    }
    this.#pooledBytes += b.size;
    if (this.#encoder) this.#dirty.push(b);
    else this.#toClean(b);
  }

  #toClean(b: GPUBuffer): void {
    let list = this.#clean.get(b.size);
    if (!list) this.#clean.set(b.size, list = []);
    list.push(b);
  }

  stats(): PoolStats {
    let pooled = this.#dirty.length;
    for (const l of this.#clean.values()) pooled += l.length;
    return {
      created: this.#created,
      pooled,
      pooledBytes: this.#pooledBytes,
      submits: this.#submits,
      dispatches: this.#dispatches,
    };
  }

  // --------------------------------------------------------------------------- encoding

  #enc(): GPUCommandEncoder {
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  /**
   * Queues one dispatch. `params` are u32 words (ints wrap, floats go through `fbits`);
   * `bufs` bind at 1.. in order, the parameters at 0. `groups` over 65,535 are split in 2-D:
   * kernels use `wid.y * nwg.x + wid.x` as their linear workgroup index.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    bufs: GPUBuffer[],
    params: ArrayLike<number>,
    groups: number | [number, number, number],
  ): void {
    let [x, y, z] = typeof groups === "number" ? [groups, 1, 1] : groups;
    if (x * y * z === 0) return;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (typeof groups === "number" && x > max) {
      y = Math.ceil(x / max);
      x = Math.ceil(x / y);
    }
    if (x > max || y > max || z > max) {
      throw new Error(`webgpu backend: dispatch [${x}, ${y}, ${z}] exceeds ${max} workgroups`);
    }
    this.#dispatches++;
    const slot = this.#pending++;
    const words = this.#arenaWords;
    words.fill(0, slot * SLOT_WORDS, (slot + 1) * SLOT_WORDS);
    for (let i = 0; i < params.length; i++) words[slot * SLOT_WORDS + i] = params[i];
    words[(slot + 1) * SLOT_WORDS - 2] = 0; // zero(): opaque to the shader compiler
    words[(slot + 1) * SLOT_WORDS - 1] = 0x7fc00000;
    const entries: GPUBindGroupEntry[] = [
      {
        binding: 0,
        resource: { buffer: this.#arena, offset: slot * SLOT_BYTES, size: SLOT_BYTES },
      },
    ];
    bufs.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    this.#pass ??= this.#enc().beginComputePass();
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, bindGroup);
    this.#pass.dispatchWorkgroups(x, y, z);
    if (this.#pending >= MAX_PENDING) this.flush();
  }

  /** Queues a buffer-to-buffer copy of `bytes` (a multiple of 4). */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    if (bytes === 0) return;
    this.#endPass();
    this.#enc().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }

  /** Submits everything queued; freed buffers then become clean. */
  flush(): void {
    if (!this.#encoder) return;
    this.#endPass();
    if (this.#pending) {
      const words = this.#arenaWords.subarray(0, this.#pending * SLOT_WORDS);
      this.device.queue.writeBuffer(this.#arena, 0, words);
    }
    this.device.queue.submit([this.#encoder.finish()]);
    this.#submits++;
    this.#encoder = null;
    this.#pending = 0;
    for (const b of this.#dirty) this.#toClean(b);
    this.#dirty = [];
    for (const b of this.#doomed) b.destroy();
    this.#doomed = [];
  }

  /** Flushes once at the end of the current task, so reads issued together share a submit. */
  #flushSoon(): Promise<void> {
    return this.#soon ??= Promise.resolve().then(() => {
      this.#soon = null;
      this.flush();
    });
  }

  /**
   * Copies `size` elements to a mappable staging buffer now (so later frees cannot race it),
   * then maps it after the shared submit. Bools come back as Uint8Array.
   */
  async read(
    buf: GpuBuf,
    dtype: DType,
    size: number,
  ): Promise<Float32Array | Int32Array | Uint8Array> {
    if (size === 0) {
      return dtype === "float32"
        ? new Float32Array(0)
        : dtype === "int32"
        ? new Int32Array(0)
        : new Uint8Array(0);
    }
    const bytes = size * 4;
    const b = bucketBytes(bytes);
    const staging = this.#staging.get(b)?.pop() ??
      this.device.createBuffer({
        size: b,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    this.copy(buf.buffer, staging, bytes);
    await this.#flushSoon();
    await staging.mapAsync(GPUMapMode.READ, 0, bytes);
    const raw = staging.getMappedRange(0, bytes);
    const out = dtype === "float32"
      ? new Float32Array(raw.slice(0))
      : dtype === "int32"
      ? new Int32Array(raw.slice(0))
      : Uint8Array.from(new Uint32Array(raw));
    staging.unmap();
    let list = this.#staging.get(b);
    if (!list) this.#staging.set(b, list = []);
    list.push(staging);
    return out;
  }
}

/** Requests an adapter and a device with the limits and features the kernels can use. */
export async function requestGpu(): Promise<{ gpu: Gpu; info: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const adapter = nav?.gpu
    ? await nav.gpu.requestAdapter({ powerPreference: "high-performance" })
    : null;
  if (!adapter) {
    throw new Error(
      `webgpu backend: no GPU adapter found (navigator.gpu ${
        nav?.gpu ? "returned no adapter" : "is missing"
      }); ` +
        `use setBackend("cpu") or PAPERLAB_BACKEND=cpu`,
    );
  }
  const want = [
    "maxStorageBufferBindingSize",
    "maxBufferSize",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupSizeX",
    "maxComputeWorkgroupsPerDimension",
    "maxStorageBuffersPerShaderStage",
  ] as const;
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k];
  const requiredFeatures = (["shader-f16", "subgroups"] as GPUFeatureName[])
    .filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.lost.then((l) => {
    if (l.reason !== "destroyed") console.error(`webgpu backend: device lost: ${l.message}`);
  });
  const ai = adapter.info;
  const name = ai.description || [ai.vendor, ai.architecture, ai.device].filter(Boolean).join(" ");
  const soft = ai.isFallbackAdapter ??
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const feats = requiredFeatures.length ? ` [${requiredFeatures.join(", ")}]` : "";
  return {
    gpu: new Gpu(device),
    info: `${name || "webgpu adapter"}${soft ? " (software)" : ""}${feats}`,
  };
}
