"""MinLSTM training speed against torch.nn.LSTM: one training step (forward + backward of the
summed output) at several lengths, best of ``--repeats``, all cases in one process and one run.

    python benchmarks/minlstm.py [--lengths 1024 4096] [--hidden 128] [--batch 8] [--inputs 64]
"""

from __future__ import annotations

import argparse
import time

import torch

import biolstm.nn as bnn


def step_time(model, x, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats + 1):  # the first call is warm-up
        model.zero_grad()
        t = time.perf_counter()
        model(x)[0].sum().backward()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 32])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--inputs", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("| B | D | H | T | torch.nn.LSTM s | MinLSTM (linear scan) s | MinLSTM (log scan) s | speed-up (linear) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for H in args.hidden:
        for T in args.lengths:
            x = torch.randn(args.batch, T, args.inputs)
            ref = step_time(torch.nn.LSTM(args.inputs, H, batch_first=True), x, args.repeats)
            lin = step_time(bnn.MinLSTM(args.inputs, H), x, args.repeats)
            log = step_time(bnn.MinLSTM(args.inputs, H, scan="log"), x, args.repeats)
            cells = [args.batch, args.inputs, H, T, f"{ref:.3f}", f"{lin:.3f}", f"{log:.3f}", f"{ref / lin:.2f}x"]
            print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
