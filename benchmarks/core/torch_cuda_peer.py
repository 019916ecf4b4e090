"""PyTorch on a CUDA GPU: the peer of webgpu_matmul_peak.ts and webgpu_bench.ts on the same machine.

    python3 benchmarks/core/torch_cuda_peer.py [--sizes 256,512,1024,2048,4096] [--peak 67]

Float32 square matmul in GFLOP/s, with TF32 off (true float32, the comparison for paperlab's
kernels) and on (the matrix units, for reference), timed with CUDA events over back-to-back
products, median of 7 samples of >= ~50 ms. Then the workloads of torch_ops_peer.py (the
ones webgpu_bench.ts runs) on the GPU, in ms, median / best; each sample ends with a device
synchronize.
"""

import argparse
import statistics
import time

import torch

from torch_ops_peer import WORKLOADS, time_ms


def matmul_gflops(n, tf32):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda") / n**0.5
    c = torch.empty(n, n, device="cuda")
    for _ in range(3):
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
    reps = max(1, min(2000, round(0.05 / max(time.perf_counter() - t0, 1e-6))))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(7):
        start.record()
        for _ in range(reps):
            torch.matmul(a, b, out=c)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / reps)
    return 2 * n**3 / statistics.median(times) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="256,512,1024,2048,4096")
    parser.add_argument("--peak", type=float, help="FP32 peak in TFLOP/s, for a % column")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print("| n | torch fp32 GFLOP/s | torch tf32 GFLOP/s |")
    print("|---|---:|---:|")
    for n in map(int, args.sizes.split(",")):
        g = matmul_gflops(n, False)
        pct = f" ({100 * g / (args.peak * 1e3):.0f}%)" if args.peak else ""
        print(f"| {n} | {g:.0f}{pct} | {matmul_gflops(n, True):.0f} |", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_default_device("cuda")
    print("| workload | torch cuda ms (median / best) |")
    print("|---|---:|")
    for name, build in WORKLOADS.items():
        med, best = time_ms(build, torch.cuda.synchronize)
        print(f"| {name} | {med:.3f} / {best:.3f} |", flush=True)


if __name__ == "__main__":
    main()
