"""PyTorch's float32 matmul on the CPU with 2 threads, on the shapes of matmul_peers_bench.ts.

    python3 benchmarks/core/torch_peer.py [--threads N] [--only SHAPE] [--plain]

Prints a markdown table of GFLOP/s, "median / best" of repeated runs, to set beside
`deno run -A benchmarks/core/matmul_peers_bench.ts --table`, whose `--torch` flag runs this
script shape by shape (`--only NAME --plain`, printing the two bare numbers) between its
peers.
"""

import argparse
import statistics
import time

import torch

# name, batch, m, n, k, transA, transB (as SHAPES in matmul_peers_bench.ts)
SHAPES = [
    ("256", 1, 256, 256, 256, False, False),
    ("512", 1, 512, 512, 512, False, False),
    ("1024", 1, 1024, 1024, 1024, False, False),
    ("[64,64,64]@[64,64,64]", 64, 64, 64, 64, False, False),
    ("[16,128,32]@[16,32,128]", 16, 128, 128, 32, False, False),
    ("512 Aᵀ@B", 1, 512, 512, 512, True, False),
    ("512 A@Bᵀ", 1, 512, 512, 512, False, True),
    ("1024 Aᵀ@B", 1, 1024, 1024, 1024, True, False),
    ("1024 A@Bᵀ", 1, 1024, 1024, 1024, False, True),
]


def gflops(batch, m, n, k, trans_a, trans_b):
    torch.manual_seed(0)
    # Transposed operands are stored transposed and passed as views, as a backward pass does.
    a = torch.randn(batch, k, m).transpose(1, 2) if trans_a else torch.randn(batch, m, k)
    b = torch.randn(batch, n, k).transpose(1, 2) if trans_b else torch.randn(batch, k, n)
    flops = 2 * batch * m * n * k
    reps = max(1, round(2e8 / flops))  # >= ~200 MFLOP a sample, as matmul_peers_bench.ts
    for _ in range(3):
        torch.matmul(a, b)
    times = []
    for _ in range(15 if flops < 1e9 else 7):
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        times.append((time.perf_counter() - t0) / reps)
    return flops / statistics.median(times) / 1e9, flops / min(times) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="one shape, by its name in SHAPES")
    parser.add_argument("--plain", action="store_true", help="print only the GFLOP/s")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only:
        shape = next(s for s in SHAPES if s[0] == args.only)
        med, best = gflops(*shape[1:])
        print(f"{med:.2f} {best:.2f}" if args.plain else f"{args.only}: {med:.1f} / {best:.1f}")
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"| shape | torch ({args.threads} threads) |")
    print("|---|---:|")
    for name, *shape in SHAPES:
        med, best = gflops(*shape)
        print(f"| {name} | {med:.1f} / {best:.1f} |")


if __name__ == "__main__":
    main()
