/**
 * Progress display: a live, redrawn line on a terminal; plain lines otherwise (CI logs),
 * printed at most every 10% or 15 s per benchmark.
 */

export interface ProgressSink {
  start(label: string): void;
  update(fraction: number, message?: string): void;
  log(message: string): void;
  end(status: string): void;
}

const enc = new TextEncoder();

export function createProgress(live = Deno.stdout.isTerminal()): ProgressSink {
  let label = "", t0 = 0, lastFrac = -1, lastTime = 0, lastLine = "";
  const write = (s: string) => Deno.stdout.writeSync(enc.encode(s));
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
  const bar = (f: number) => {
    const n = Math.round(f * 20);
    return `${"█".repeat(n)}${"░".repeat(20 - n)}`;
  };
  return {
    start(l) {
      label = l;
      t0 = lastTime = performance.now();
      lastFrac = -1;
      if (!live) console.log(`${label}: started`);
    },
    update(fraction, message = "") {
      const f = Math.min(Math.max(fraction, 0), 1);
      if (live) {
        lastLine = `\r\x1b[2K${label} ${bar(f)} ${
          (f * 100).toFixed(0).padStart(3)
        }% ${elapsed()} ${message}`;
        write(lastLine.slice(0, 160));
        return;
      }
      const now = performance.now();
      if (f - lastFrac >= 0.1 || now - lastTime > 15000) {
        console.log(`${label}: ${(f * 100).toFixed(0)}% ${elapsed()} ${message}`.trimEnd());
        lastFrac = f;
        lastTime = now;
      }
    },
    log(message) {
      if (live) write(`\r\x1b[2K${message}\n${lastLine.slice(0, 160)}`);
      else console.log(`${label}: ${message}`);
    },
    end(status) {
      if (live) write(`\r\x1b[2K`);
      console.log(`${label}: ${status} (${elapsed()})`);
    },
  };
}
