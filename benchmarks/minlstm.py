"""MinLSTM training speed against torch.nn.LSTM: one training step (forward + backward of the
summed output) at several lengths, best of ``--repeats``, all cases in one process and one run.
MinLSTM runs with each of its scans: the native kernel, the PyTorch chunked linear scan, the
log-space scan.

    python benchmarks/minlstm.py [--lengths 1024 4096] [--hidden 128 32] [--batch 8] [--inputs 64 4 dna]

An input is a width (Gaussian values) or ``dna``: one-hot DNA, D=4 with one 1 per step, whose
zeros the native kernel skips.

glibc returns freed buffers above 32 MiB to the system, so every step faults its big tensors
in again; the table header says whether MALLOC_MMAP_MAX_=0 (keep them) was set for the run.
"""

from __future__ import annotations

import argparse
import os
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
    ap.add_argument("--inputs", nargs="+", default=["64", "4", "dna"], help="widths, or dna (one-hot, D=4)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if bnn.native.kernel() is None:
        raise SystemExit(f"the native kernel is not available: {bnn.native.unavailable_reason()}")
    print(f"threads {args.threads}; MALLOC_MMAP_MAX_={os.environ.get('MALLOC_MMAP_MAX_', '(unset)')}\n")
    print("| B | D | H | T | torch.nn.LSTM s | MinLSTM native s | linear scan s | log scan s | speed-up native "
          "| speed-up linear |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in args.inputs:
        D = 4 if spec == "dna" else int(spec)
        for H in args.hidden:
            for T in args.lengths:
                if spec == "dna":
                    x = torch.nn.functional.one_hot(torch.randint(0, 4, (args.batch, T)), 4).float()
                else:
                    x = torch.randn(args.batch, T, D)
                ref = step_time(torch.nn.LSTM(D, H, batch_first=True), x, args.repeats)
                scans = ("native", "linear", "log")
                nat, lin, log = (step_time(bnn.MinLSTM(D, H, scan=s), x, args.repeats) for s in scans)
                name = "4 one-hot" if spec == "dna" else D
                cells = [args.batch, name, H, T, *(f"{v:.3f}" for v in (ref, nat, lin, log)), f"{ref / nat:.2f}x",
                         f"{ref / lin:.2f}x"]  # fmt: skip
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
