/**
 * The matmul thread pool: workers that share one `WebAssembly.Memory({shared: true})` with
 * the calling thread and take chunks of a matmul from a control block at the start of it.
 *
 * Work split:
 * - batch >= threads: each chunk is a group of batch items, done start to end by one thread
 *   (its own packing, GemmWorker.run).
 * - otherwise: B is packed once, shared: the first chunks pack one K slice of one batch item
 *   each; the rest each compute a block of rows (or columns, when m is small) against the
 *   shared packed B (GemmWorker.runPacked). A thread reaching the compute chunks first waits
 *   until every packing chunk is done. Many small compute chunks are taken dynamically, so a
 *   thread that the OS deschedules does not hold the others up.
 *
 * Protocol (Int32 words in the control block, and one 64-bit TICKET):
 * - The caller writes the problem and chunk layout, opens TICKET as (job << 32) | 0, bumps
 *   JOB and wakes the workers with Atomics.notify.
 * - Everyone (the caller included) grabs chunk numbers by compare-and-swap on TICKET. The CAS
 *   only succeeds while TICKET still carries the job the grabber read the problem under, so
 *   a worker that wakes late can never compute with a newer job's parameters.
 * - Each finished chunk bumps DONE (and sets its flag in batch mode); the caller returns once
 *   all are done, waiting with Atomics.wait (Deno allows it on the main thread). So `matmul`
 *   stays synchronous, and if the workers are still starting up the caller does every chunk.
 * - GEN names the live pool: workers of a replaced or shut-down pool see it change and end.
 *
 * Map jobs (KIND = 1) use the same tickets and counters for elementwise kernels: one export
 * of the elementwise module (every thread has an instance) called over a rows x cols range,
 * each argument an affine function of (row, column): see MapJob.
 *
 * Workers are `node:worker_threads` workers because those can be unref'd: a web Worker keeps
 * Deno's process alive, an unref'd one does not (and `deno test` reports no leak for it).
 */
import { Worker } from "node:worker_threads";
import { CONTROL_BYTES, type GemmWorker, KC, MC, type Problem, PROBLEM_KEYS } from "./gemm.ts";
import { MR, NR } from "./kernel.ts";

const JOB = 0, GEN = 1, DONE = 2, NCHUNKS = 3, READY = 4, ACTIVE = 5, PACKED = 6;
const B_PER = 7, N_PACK = 8, ROW_PARTS = 9, COL_PARTS = 10, ROW_STEP = 11, COL_STEP = 12;
const COPIED = 13, TICKET_BYTE = 56, PROBLEM = 16, FLAGS = 64; // FLAGS[c]: chunk c is done
// Map jobs: their kind, function, argument count, which argument takes the column count, the
// range and its chunking; the arguments as float64 triples (value at row 0 and column 0, then
// per row and per column) from MAP_ARGS_BYTE, inside FLAGS (which only batch matmuls use).
const KIND = 40, MAP_FN = 41, MAP_NARGS = 42, MAP_COUNT = 43, MAP_ROWS = 44, MAP_COLS = 45;
const MAP_ROW_STEP = 46, MAP_COL_STEP = 47, MAP_COL_PARTS = 48, MAP_ARGS_BYTE = 1024;
/** The most arguments a map job's function may take. */
export const MAX_MAP_ARGS = 24;

/** The control block as words, and its 64-bit TICKET: (job << 32) | next chunk. */
export interface Control {
  ctl: Int32Array;
  ticket: BigInt64Array;
  args: Float64Array;
  /** This thread's instance of the map module's exports, in MapJob.fn order. */
  maps: MapFn[];
}

type MapFn = (...args: number[]) => void;

export function controlOf(memory: WebAssembly.Memory, maps: MapFn[] = []): Control {
  return {
    ctl: new Int32Array(memory.buffer, 0, CONTROL_BYTES / 4),
    ticket: new BigInt64Array(memory.buffer, TICKET_BYTE, 1),
    args: new Float64Array(memory.buffer, MAP_ARGS_BYTE, 3 * MAX_MAP_ARGS),
    maps,
  };
}

/** A module's exported functions in a fixed order (the same in every thread). */
export function mapFunctions(module: WebAssembly.Module, instance: WebAssembly.Instance) {
  const names = WebAssembly.Module.exports(module).filter((e) => e.kind === "function")
    .map((e) => e.name);
  const ex = instance.exports as Record<string, MapFn>;
  return { names, fns: names.map((n) => ex[n]) };
}

/**
 * A map job: maps[fn] called for each row r of [0, rows) and each chunk [c0, c1) of the
 * columns, argument a being args[a] + r rowStride[a] + c0 colStride[a], except argument
 * `count`, which is c1 - c0. Column chunks are multiples of `colAlign` (so vector kernels'
 * chunks do not share vectors).
 */
export interface MapJob {
  fn: number;
  args: number[];
  rowStride: number[];
  colStride: number[];
  count: number;
  rows: number;
  cols: number;
  colAlign: number;
}

/** Runs chunk c of the map job in the control block. */
function runMapChunk({ ctl, args, maps }: Control, c: number): void {
  const nargs = ctl[MAP_NARGS], count = ctl[MAP_COUNT], colParts = ctl[MAP_COL_PARTS];
  const rowStep = ctl[MAP_ROW_STEP], colStep = ctl[MAP_COL_STEP];
  const r0 = Math.floor(c / colParts) * rowStep, c0 = (c % colParts) * colStep;
  const r1 = Math.min(ctl[MAP_ROWS], r0 + rowStep), c1 = Math.min(ctl[MAP_COLS], c0 + colStep);
  const fn = maps[ctl[MAP_FN]], a = new Array<number>(nargs);
  for (let r = r0; r < r1; r++) {
    for (let i = 0; i < nargs; i++) a[i] = args[3 * i] + r * args[3 * i + 1] + c0 * args[3 * i + 2];
    a[count] = c1 - c0;
    fn(...a);
  }
}

const ticketOf = (job: number, next: number) => (BigInt(job) << 32n) | BigInt(next);
const MAX_CHUNKS = CONTROL_BYTES / 4 - FLAGS;

/** The caller's side of moving data: operands into the Wasm memory, results out of it. */
export interface Io {
  copyIn(b0: number, b1: number): void;
  copyOut(b0: number, b1: number): void;
}

/**
 * Chunks per thread: many small chunks, taken dynamically, keep a thread that the OS
 * deschedules (a busy machine) from holding up the others for long.
 */
const CHUNKS_PER_THREAD = 8;

/** How a job is cut into chunks (see the module comment). */
export interface Layout {
  bPer: number; // batch items per chunk (batch mode), else 0
  nPack: number; // packing chunks first (shared-B mode)
  rowParts: number;
  colParts: number;
  rowStep: number;
  colStep: number;
  chunks: number;
}

/** The chunking for `threads` participants. */
export function layoutFor(P: Problem, threads: number): Layout {
  if (P.batch >= threads) {
    const per = Math.max(1, Math.floor(P.batch / (CHUNKS_PER_THREAD * threads)));
    const bPer = Math.max(per, Math.ceil(P.batch / MAX_CHUNKS));
    const chunks = Math.ceil(P.batch / bPer);
    return { bPer, nPack: 0, rowParts: 1, colParts: 1, rowStep: 0, colStep: 0, chunks };
  }
  const nPack = P.batch * Math.ceil(P.k / KC);
  // Compute chunks in whole tiles, rows preferred (up to MC rows each).
  const want = Math.ceil((CHUNKS_PER_THREAD * threads) / P.batch);
  const mTiles = P.mPad / MR, nTiles = P.nPad / NR;
  let rowStep = P.mPad, colStep = P.nPad;
  if (mTiles >= 2 * threads) rowStep = Math.min(MC, Math.ceil(mTiles / want) * MR);
  else colStep = Math.ceil(nTiles / want) * NR;
  const rowParts = Math.ceil(P.m / rowStep), colParts = Math.ceil(P.n / colStep);
  const chunks = nPack + P.batch * rowParts * colParts;
  return { bPer: 0, nPack, rowParts, colParts, rowStep, colStep, chunks };
}

/** Runs chunk c of the job described in the control block. */
function runChunk(ctl: Int32Array, P: Problem, g: GemmWorker, c: number): void {
  const bPer = ctl[B_PER], nPack = ctl[N_PACK], slices = Math.ceil(P.k / KC);
  if (bPer > 0) {
    // The caller copies the operands in chunk by chunk: wait for this chunk's.
    for (let d = Atomics.load(ctl, COPIED); d <= c; d = Atomics.load(ctl, COPIED)) {
      Atomics.wait(ctl, COPIED, d, 1);
    }
    const b0 = c * bPer;
    g.run(P, b0, Math.min(P.batch, b0 + bPer), 0, P.m, 0, P.n);
  } else if (c < nPack) {
    g.packSlice(P, Math.floor(c / slices), c % slices);
    if (Atomics.add(ctl, PACKED, 1) + 1 === nPack) Atomics.notify(ctl, PACKED);
  } else {
    // Compute chunks wait for the shared packed B.
    for (let d = Atomics.load(ctl, PACKED); d < nPack; d = Atomics.load(ctl, PACKED)) {
      Atomics.wait(ctl, PACKED, d, 10);
    }
    const rowParts = ctl[ROW_PARTS], colParts = ctl[COL_PARTS], per = rowParts * colParts;
    const q = c - nPack, bt = Math.floor(q / per), r = q % per;
    const i0 = Math.floor(r / colParts) * ctl[ROW_STEP], j0 = (r % colParts) * ctl[COL_STEP];
    const i1 = Math.min(P.m, i0 + ctl[ROW_STEP]), j1 = Math.min(P.n, j0 + ctl[COL_STEP]);
    g.runPacked(P, bt, i0, i1, j0, j1);
  }
}

/**
 * Grabs and runs chunks of job `job` until none are left (thread `index` of pool `gen`);
 * `after` is called with each chunk this thread finished.
 */
export function work(
  control: Control,
  job: number,
  gen: number,
  g: GemmWorker | null,
  index: number,
  after?: (c: number) => void,
): void {
  // Read the job's parameters, then check the pool is still ours: a new pool changes GEN
  // before it posts a job, so a stale worker either stops here or fails the CAS below.
  const { ctl, ticket } = control;
  const P = {} as Problem;
  PROBLEM_KEYS.forEach((key, i) => P[key] = ctl[PROBLEM + i]);
  const chunks = ctl[NCHUNKS], map = ctl[KIND] === 1;
  if (Atomics.load(ctl, GEN) !== gen || index >= ctl[ACTIVE]) return;
  const tag = BigInt(job);
  for (;;) {
    const t = Atomics.load(ticket, 0), c = Number(t & 0xffffffffn);
    if (t >> 32n !== tag || c >= chunks) return;
    if (Atomics.compareExchange(ticket, 0, t, t + 1n) !== t) continue;
    const batchMode = ctl[B_PER] > 0; // read while the job is surely ours
    if (map) runMapChunk(control, c);
    else runChunk(ctl, P, g!, c);
    if (Atomics.add(ctl, DONE, 1) + 1 === chunks) Atomics.notify(ctl, DONE);
    // Flag the chunk last: once the caller has seen every flag, no worker touches this job's
    // counters any more (the caller may start the next job right away).
    if (batchMode) {
      Atomics.store(ctl, FLAGS + c, 1);
      Atomics.notify(ctl, FLAGS + c);
    }
    after?.(c);
  }
}

/** The worker side: wait for a new job, work on it, repeat; returns once the pool is gone. */
export function workerLoop(control: Control, g: GemmWorker, index: number, gen: number): void {
  const { ctl } = control;
  if (Atomics.load(ctl, GEN) !== gen) return;
  Atomics.add(ctl, READY, 1);
  let seen = Atomics.load(ctl, JOB);
  for (;;) {
    // Spin a little first: matmuls often come back to back (forward, then backward).
    for (let s = 0; s < 20000 && Atomics.load(ctl, JOB) === seen; s++);
    Atomics.wait(ctl, JOB, seen);
    seen = Atomics.load(ctl, JOB);
    if (Atomics.load(ctl, GEN) !== gen) return;
    work(control, seen, gen, g, index);
  }
}

/**
 * Waits until ctl[i] reaches `target`: spins briefly (a sleeping thread can take milliseconds
 * to be woken on a busy machine), then sleeps.
 */
function waitUntil(ctl: Int32Array, i: number, target: number): void {
  const t0 = performance.now();
  for (let d = Atomics.load(ctl, i); d < target; d = Atomics.load(ctl, i)) {
    if (performance.now() - t0 > 0.5) Atomics.wait(ctl, i, d, 5);
  }
}

/** The calling thread's side of the pool. */
export class Pool {
  private readonly workers: Worker[] = [];
  private readonly control: Control;
  private readonly gen: number;

  constructor(
    memory: WebAssembly.Memory,
    module: WebAssembly.Module,
    readonly size: number,
    mapModule: WebAssembly.Module | null = null,
  ) {
    this.control = controlOf(memory);
    const ctl = this.control.ctl;
    this.gen = Atomics.add(ctl, GEN, 1) + 1;
    Atomics.store(ctl, READY, 0);
    for (let i = 1; i < size; i++) {
      const w = new Worker(new URL("./worker.ts", import.meta.url));
      w.unref(); // never keep the process alive
      // A worker that fails to start (e.g. no read access to its module) takes no chunks:
      // the caller then does them all.
      w.on("error", () => {});
      w.postMessage({ memory, module, mapModule, index: i, gen: this.gen });
      this.workers.push(w);
    }
  }

  /**
   * Runs P in chunks on the pool, the caller taking part; returns when all chunks are done
   * and copied out. In batch mode the caller copies operands in chunk by chunk (workers start
   * on the first while it copies the rest) and copies each chunk's result out as soon as it
   * is done, so the copies overlap the workers' compute.
   */
  run(P: Problem, L: Layout, g: GemmWorker, active: number, io: Io): void {
    const { ctl } = this.control, batchMode = L.bPer > 0;
    const range = (c: number): [number, number] => [
      c * L.bPer,
      Math.min(P.batch, (c + 1) * L.bPer),
    ];
    if (!batchMode) io.copyIn(0, P.batch);
    const job = this.#post(0, L.chunks, active, () => {
      PROBLEM_KEYS.forEach((key, i) => ctl[PROBLEM + i] = P[key]);
      ctl[B_PER] = L.bPer;
      ctl[N_PACK] = L.nPack;
      ctl[ROW_PARTS] = L.rowParts;
      ctl[COL_PARTS] = L.colParts;
      ctl[ROW_STEP] = L.rowStep;
      ctl[COL_STEP] = L.colStep;
      if (batchMode) ctl.fill(0, FLAGS, FLAGS + L.chunks);
      Atomics.store(ctl, COPIED, 0);
      Atomics.store(ctl, PACKED, 0);
    });
    const out = new Uint8Array(L.chunks); // chunks copied out
    if (batchMode) {
      for (let c = 0; c < L.chunks; c++) {
        io.copyIn(...range(c));
        Atomics.store(ctl, COPIED, c + 1);
        Atomics.notify(ctl, COPIED);
      }
    }
    work(this.control, job, this.gen, g, 0, (c) => {
      if (!batchMode) return;
      io.copyOut(...range(c)); // while it is still in cache
      out[c] = 1;
    });
    const waitFor = (i: number, target: number) => waitUntil(ctl, i, target);
    if (!batchMode) {
      waitFor(DONE, L.chunks);
      io.copyOut(0, P.batch);
    } else {
      for (let c = 0; c < L.chunks; c++) {
        if (out[c]) continue;
        waitFor(FLAGS + c, 1);
        io.copyOut(...range(c));
      }
    }
  }

  /**
   * Runs a map job on the pool (`active` threads, the caller included, whose instance of the
   * map module is `maps`); returns when every chunk is done.
   */
  map(job: MapJob, maps: MapFn[], active: number): void {
    const { ctl, args } = this.control;
    const nargs = job.args.length;
    if (nargs > MAX_MAP_ARGS) {
      throw new Error(`pool map: ${nargs} arguments, at most ${MAX_MAP_ARGS}`);
    }
    const want = CHUNKS_PER_THREAD * active;
    let rowStep = job.rows, colStep = job.cols;
    if (job.rows >= 2 * active) rowStep = Math.ceil(job.rows / want);
    else colStep = Math.max(1, Math.ceil(job.cols / want / job.colAlign)) * job.colAlign;
    const colParts = Math.ceil(job.cols / colStep);
    const chunks = Math.ceil(job.rows / rowStep) * colParts;
    const id = this.#post(1, chunks, active, () => {
      for (let i = 0; i < nargs; i++) {
        args[3 * i] = job.args[i];
        args[3 * i + 1] = job.rowStride[i];
        args[3 * i + 2] = job.colStride[i];
      }
      ctl[MAP_FN] = job.fn;
      ctl[MAP_NARGS] = nargs;
      ctl[MAP_COUNT] = job.count;
      ctl[MAP_ROWS] = job.rows;
      ctl[MAP_COLS] = job.cols;
      ctl[MAP_ROW_STEP] = rowStep;
      ctl[MAP_COL_STEP] = colStep;
      ctl[MAP_COL_PARTS] = colParts;
      ctl[B_PER] = 0;
    });
    this.control.maps = maps;
    work(this.control, id, this.gen, null, 0);
    waitUntil(ctl, DONE, chunks);
  }

  /**
   * Posts a job of `kind` (0 matmul, 1 map) in `chunks`: closes the ticket, lets `write` set
   * the job's parameters, resets DONE, opens the ticket under the new job number and wakes
   * the workers. Returns the job number.
   */
  #post(kind: number, chunks: number, active: number, write: () => void): number {
    const { ctl, ticket } = this.control;
    const job = (Atomics.load(ctl, JOB) + 1) & 0x7fffffff;
    Atomics.store(ticket, 0, ticketOf(job, 0xffffffff)); // closed while writing
    write();
    ctl[KIND] = kind;
    ctl[NCHUNKS] = chunks;
    ctl[ACTIVE] = active;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ticket, 0, ticketOf(job, 0));
    Atomics.store(ctl, JOB, job);
    Atomics.notify(ctl, JOB);
    return job;
  }

  /** Workers that have started (for tests and diagnostics). */
  ready(): number {
    return Atomics.load(this.control.ctl, READY);
  }

  /** Ends the workers: they see GEN change and return (and are terminated anyway). */
  terminate(): void {
    const ctl = this.control.ctl;
    Atomics.add(ctl, GEN, 1);
    Atomics.store(ctl, READY, 0);
    Atomics.notify(ctl, JOB);
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
