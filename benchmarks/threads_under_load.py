"""Training time on a shared machine: torch threads against a CPU-bound job beside the run.

Usage:
    python benchmarks/threads_under_load.py [--repeats 3] [--busy 2]

One case is one training epoch of biolstm's SequenceClassifier (conv + BiLSTM + attention, the
demo's architecture) on 1,024 random one-hot DNA sequences of 200 bp, batch 64, in a fresh
process with a given torch thread count. It runs on an idle machine, then with 1 to ``--busy``
processes spinning on the CPU beside it (``while True: pass``). Prints a Markdown table of
median seconds and each time as a multiple of the idle time with the same thread count.

The question it answers: how much a run slows down when other jobs share the cores, as it
ran before (torch's default threads, OpenMP's default waiting: `before`), as the `biolstm`
command now runs it (the CPUs the process may use, GOMP_SPINCOUNT=10000: `biolstm`), with
OMP_WAIT_POLICY=PASSIVE instead (threads sleep at once: `passive`), and with one thread per
process (``--threads 1``). By default an OpenMP thread spins 300,000 rounds at every barrier,
and when its partner is descheduled by the other job the whole step waits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, torch
from biolstm._cpu import use_threads
from biolstm.models import SequenceClassifier, SequenceClassifierConfig
from biolstm.train import Trainer, TrainerConfig
mode = sys.argv[1]
if mode == "biolstm":
    use_threads(None)
elif mode != "default":
    torch.set_num_threads(int(mode))
g = torch.Generator().manual_seed(0)
x = torch.nn.functional.one_hot(torch.randint(0, 4, (1024, 200), generator=g), 4).float()
y = torch.randint(0, 2, (1024,), generator=g).float()
model = SequenceClassifier(SequenceClassifierConfig(input_channels=4, conv_filters=32, hidden_size=32))
trainer = Trainer(model, TrainerConfig(epochs=1, batch_size=64, loss="bce_with_logits", device="cpu"))
t0 = time.perf_counter()
trainer.fit(x, y)
print(json.dumps({"seconds": time.perf_counter() - t0, "threads": torch.get_num_threads()}))
"""


def run(mode: str) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if mode == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif mode != "default":
        env["GOMP_SPINCOUNT"] = "10000"  # what the biolstm command sets (src/biolstm/cli.py)
    out = subprocess.run([sys.executable, "-c", CHILD, "biolstm" if mode == "passive" else mode],
                         capture_output=True, text=True, check=True, env=env)  # fmt: skip
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return res["seconds"], res["threads"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, default=2, help="the most CPU-bound processes beside the run")
    args = ap.parse_args()
    modes = {"default": "before: torch's default threads, default OpenMP spinning",
             "biolstm": "biolstm: the CPUs it may use, short spinning",
             "passive": "the CPUs it may use, OMP_WAIT_POLICY=PASSIVE",
             "1": "--threads 1, short spinning"}  # fmt: skip
    loads = list(range(args.busy + 1))  # 0 (idle), 1, ... busy processes beside
    times = {(m, b): [] for m in modes for b in loads}
    threads = {}
    for b in loads:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(b)]
        try:
            time.sleep(1.0 if b else 0.0)
            for _ in range(args.repeats):  # interleaved, so drift hits every mode alike
                for m in modes:
                    s, threads[m] = run(m)
                    times[m, b].append(s)
        finally:
            for p in spinners:
                p.kill()
    print(f"{os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} in this process's affinity; "
          f"median of {args.repeats} epochs (s), and the slowdown against idle")  # fmt: skip
    head = " | ".join(f"{b} busy beside" if b else "idle" for b in loads)
    print(f"| how it runs | torch threads | {head} |")
    print("|---|---:|" + "---:|" * len(loads))
    for m, words in modes.items():
        idle = statistics.median(times[m, 0])
        cells = [f"{idle:.2f}"] + [
            f"{statistics.median(times[m, b]):.2f} ({statistics.median(times[m, b]) / idle:.1f}x)" for b in loads[1:]
        ]
        print(f"| {words} | {threads[m]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
