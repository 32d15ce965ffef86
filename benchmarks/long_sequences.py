"""Time and peak memory of one training step (forward + backward) against sequence length.

Each case runs in its own process so that its peak resident memory (VmHWM, reset just before
the step through /proc/self/clear_refs, minus the footprint then) is its own. Cases: biolstm LSTM with full storage
(transparent engine), with gradient checkpointing through time (segments of sqrt(T) steps),
truncated BPTT (chunks of 200 steps under ``carry_state``, one backward per chunk),
torch.nn.LSTM, and biolstm MinLSTM. B=8, D=H=128, float32, 2 threads.

``--loss all`` sums every step's output (sequence-to-sequence); ``--loss last`` reads the
final hidden state only (sequence classification), so no gradient of the whole output exists.

    python benchmarks/long_sequences.py [--lengths 1000 10000 100000] [--loss all|last]
        [--cases full checkpointed truncated torch minlstm] [--trim-every N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
import biolstm.nn as bnn
from biolstm.nn._heap import peak_resident_mib as hwm, reset_peak_resident
torch.set_num_threads(2)
case, T, loss, trim_every = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if trim_every >= 0:  # checkpointed segments: malloc_trim every trim_every-th call (0: never)
    import biolstm.nn.layers as layers
    assert hasattr(layers, "_TRIM_EVERY"), "biolstm.nn.layers._TRIM_EVERY is gone: update --trim-every"
    layers._TRIM_EVERY = trim_every or 1 << 62
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
def objective(out):
    if loss == "all":
        return out[0].sum()
    final = out[1] if case == "minlstm" else out[1][0]  # h_n
    return final[-1].sum()
reset_peak_resident()
base = hwm()
t = time.perf_counter()
if case == "truncated":
    with bnn.carry_state(m):
        chunks = x.split(200, dim=1)
        for k, chunk in enumerate(chunks):
            out = m(chunk)
            if loss == "all" or k == len(chunks) - 1:
                objective(out).backward()
            del out
else:
    objective(m(x)).backward()
dt = time.perf_counter() - t
print(json.dumps({"case": case, "T": T, "loss": loss, "seconds": dt, "peak_mb": hwm() - base}))
"""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--cases", nargs="+", default=["full", "checkpointed", "truncated", "torch", "minlstm"])
    ap.add_argument("--loss", choices=["all", "last"], default="all")
    ap.add_argument("--trim-every", type=int, default=-1, metavar="N",
                    help="checkpointed: return freed memory to the system (malloc_trim) every N-th segment "
                    "call, 0 never (default: the library's own setting, 16)")  # fmt: skip
    args = ap.parse_args(argv)
    rows = []
    for T in args.lengths:
        for case in args.cases:
            child = [sys.executable, "-c", CHILD, case, str(T), args.loss, str(args.trim_every)]
            res = subprocess.run(child, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{case} T={T}: failed ({res.stderr.strip().splitlines()[-1]})", file=sys.stderr)
                continue
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nloss on {'every output' if args.loss == 'all' else 'the last hidden state'}")
    print("\n| T | case | seconds | peak MiB above the process before the step | time / full | memory / full |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        full = next((f for f in rows if f["T"] == r["T"] and f["case"] == "full"), None)
        tr = f"{r['seconds'] / full['seconds']:.2f}" if full else "-"
        mr = f"{r['peak_mb'] / full['peak_mb']:.3f}" if full and full["peak_mb"] > 0 else "-"
        print(f"| {r['T']} | {r['case']} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {tr} | {mr} |")


if __name__ == "__main__":
    main()
