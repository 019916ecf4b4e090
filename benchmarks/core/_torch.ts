/** Runs a PyTorch peer script of this folder on one case, for the peer tables. */

/** The median and the best of a peer's samples (GFLOP/s or milliseconds, as the script says). */
export type MedianBest = { median: number; best: number };

/**
 * `python3 <script> --only <name> --plain`, which prints the median and the best; undefined
 * where python3 or torch is missing or the script fails.
 */
export function torchPeer(script: string, name: string): MedianBest | undefined {
  const path = new URL(`./${script}`, import.meta.url).pathname;
  try {
    const r = new Deno.Command("python3", { args: [path, "--only", name, "--plain"] })
      .outputSync();
    if (!r.success) return undefined;
    const [median, best] = new TextDecoder().decode(r.stdout).trim().split(" ").map(Number);
    return { median, best };
  } catch {
    return undefined;
  }
}
