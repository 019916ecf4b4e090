"""PyTorch (CPU, 2 threads) on the workloads of ops_peers.ts, for its `--torch` column.

    python3 benchmarks/core/torch_ops_peer.py [--threads N] [--only NAME] [--plain]

Each workload is built exactly as in ops_peers.ts (shapes, layers, optimiser, dropout off);
the time is the median and the best of repeated runs in milliseconds. `--plain` prints only
the two numbers (ops_peers.ts runs this script once per workload, between its own peers).
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def elementwise():
    x = torch.randn(1024, 1024)
    return lambda: F.gelu(x * 2 + 1) * x


def softmax():
    x = torch.randn(256, 1024)
    return lambda: torch.softmax(x, -1)


def layer_norm():
    x, w, b = torch.randn(2048, 256), torch.randn(256), torch.randn(256)
    return lambda: F.layer_norm(x, [256], w, b)


def conv2d():
    x, w, b = torch.randn(32, 16, 32, 32), torch.randn(32, 16, 3, 3) * 0.1, torch.randn(32)
    return lambda: F.conv2d(x, w, b, padding=1)


def conv2d_backward():
    x = torch.randn(32, 16, 32, 32, requires_grad=True)
    w = (torch.randn(32, 16, 3, 3) * 0.1).requires_grad_()

    def run():
        y = F.conv2d(x, w, padding=1)
        y.square().mean().backward()
        x.grad = None
        w.grad = None

    return run


def mlp_step():
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(128, 64), torch.randint(0, 10, (128,))

    def run():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return run


def transformer_step():
    layers = [
        torch.nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0, batch_first=True)
        for _ in range(2)
    ]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(16, 64, 128), torch.randn(16, 64, 128)

    def run():
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return run


WORKLOADS = {
    "elementwise gelu(2x+1)*x [1024,1024]": elementwise,
    "softmax [256,1024]": softmax,
    "layerNorm [2048,256]": layer_norm,
    "conv2d [32,16,32,32] 3x3→32": conv2d,
    "conv2d fwd+bwd [32,16,32,32] 3x3→32": conv2d_backward,
    "MLP step 64-256-256-10 b128 AdamW": mlp_step,
    "transformer step 2x(d128 h4 ff512) [16,64] AdamW": transformer_step,
}


def time_ms(build, sync=lambda: None):
    """Median and best ms of a run; `sync` waits for queued device work (torch_cuda_peer.py)."""
    torch.manual_seed(0)
    run = build()
    for _ in range(3):
        run()
    sync()
    t0 = time.perf_counter()
    run()
    sync()
    once = time.perf_counter() - t0
    reps = max(1, round(0.02 / max(once, 1e-6)))  # >= ~20 ms a sample
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        for _ in range(reps):
            run()
        sync()
        times.append((time.perf_counter() - t0) / reps * 1e3)
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="one workload, by its name")
    parser.add_argument("--plain", action="store_true", help="print only the two numbers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only:
        med, best = time_ms(WORKLOADS[args.only])
        print(f"{med:.4f} {best:.4f}" if args.plain else f"{args.only}: {med:.3f} / {best:.3f}")
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, build in WORKLOADS.items():
        med, best = time_ms(build)
        print(f"| {name} | {med:.3f} / {best:.3f} |")


if __name__ == "__main__":
    main()
