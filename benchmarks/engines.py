"""Speed of biolstm's engines as ratios to torch.nn.LSTM (oneDNN), measured in one process.

Usage: python benchmarks/engines.py [--quick] [--repeats N] [--threads N] [--device cuda]
Prints Markdown tables; docs/benchmarks.md records them with the machine they ran on.
"""

from __future__ import annotations

import argparse

from biolstm.bench import run_engine_benchmark

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="first shape only, 5 runs")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda: against cuDNN on the GPU")
    args = parser.parse_args()
    run_engine_benchmark(quick=args.quick, repeats=args.repeats, threads=args.threads, device=args.device)
