"""Time and peak memory of one training step (forward + backward) against sequence length.

Each case runs in its own process so that its peak resident memory (ru_maxrss, minus the
process's footprint before the step) is its own. Cases: biolstm LSTM with full storage
(transparent engine), with gradient checkpointing through time (segments of sqrt(T) steps),
torch.nn.LSTM, and biolstm MinLSTM. B=8, D=H=128, float32, 2 threads.

    python benchmarks/long_sequences.py [--lengths 1000 10000 100000] [--cases full checkpointed torch minlstm]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
import biolstm.nn as bnn
torch.set_num_threads(2)
case, T = sys.argv[1], int(sys.argv[2])
B, D, H = 8, 128, 128
torch.manual_seed(0)
if case == "torch":
    m = torch.nn.LSTM(D, H, batch_first=True)
elif case == "minlstm":
    m = bnn.MinLSTM(D, H)
else:
    m = bnn.LSTM(D, H, batch_first=True, engine="transparent", checkpoint=(case == "checkpointed"))
x = torch.randn(B, T, D)
warm = torch.randn(B, 16, D)
m(warm)[0].sum().backward()  # first-call costs outside the measurement
m.zero_grad()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
m(x)[0].sum().backward()
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"case": case, "T": T, "seconds": dt, "peak_mb": (peak - base) / 1024}))
"""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--cases", nargs="+", default=["full", "checkpointed", "torch", "minlstm"])
    args = ap.parse_args(argv)
    rows = []
    for T in args.lengths:
        for case in args.cases:
            res = subprocess.run([sys.executable, "-c", CHILD, case, str(T)], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{case} T={T}: failed ({res.stderr.strip().splitlines()[-1]})", file=sys.stderr)
                continue
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| T | case | seconds | peak MiB above the process before the step | time / full | memory / full |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        full = next((f for f in rows if f["T"] == r["T"] and f["case"] == "full"), None)
        tr = f"{r['seconds'] / full['seconds']:.2f}" if full else "-"
        mr = f"{r['peak_mb'] / full['peak_mb']:.3f}" if full and full["peak_mb"] > 0 else "-"
        print(f"| {r['T']} | {r['case']} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {tr} | {mr} |")


if __name__ == "__main__":
    main()
