"""Training throughput with 1 and N data-parallel processes (torch.distributed, gloo on CPU).

Each case trains the same model (one-hot DNA of 200 bp -> LSTM 128 -> logit, global batch 64,
Adam) with the biolstm Trainer for a fixed number of epochs over 2,048 random sequences and
reports sequences per second over the last epochs (the first is warm-up). The processes share
the machine's cores: with N processes each gets cores / N threads, so the comparison is
"one process using every core" against "N processes splitting them".

    python benchmarks/ddp_throughput.py [--nproc 1 2] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, os, sys, time, torch
import biolstm.nn as bnn
from biolstm.train import Trainer, TrainerConfig, seed_everything
from biolstm.train import distributed as dd
epochs, out = int(sys.argv[1]), sys.argv[2]
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
g = torch.Generator().manual_seed(0)
x = torch.nn.functional.one_hot(torch.randint(0, 4, (2048, 200), generator=g), 4).float()
y = (x[:, :, 1].sum(1) > 50).float()
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = bnn.LSTM(4, 128, batch_first=True), torch.nn.Linear(128, 1)
    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1]).squeeze(-1)
seed_everything(0)
times = []
class Clock:
    def on_epoch_end(self, trainer, epoch, logs):
        times.append(time.perf_counter())
t0 = time.perf_counter()
Trainer(Net(), TrainerConfig(epochs=epochs, batch_size=64, loss="bce_with_logits"), callbacks=[Clock()]).fit(x, y)
if dd.rank() == 0:
    steady = (len(times) - 1) * 2048 / (times[-1] - times[0])
    json.dump({"world": dd.world_size(), "seq_per_s": steady, "threads": torch.get_num_threads()}, open(out, "w"))
"""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(CHILD)
        for n in args.nproc:
            out = Path(tmp) / f"n{n}.json"
            cmd = [sys.executable, str(script), str(args.epochs), str(out)]
            if n > 1:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", *cmd[1:]]
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // n))}
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            rows.append(json.loads(out.read_text()))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n| processes | threads each | sequences / s | vs 1 process |  ({cores} cores)")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['world']} | {r['threads']} | {r['seq_per_s']:.0f} | {r['seq_per_s'] / rows[0]['seq_per_s']:.2f} |")


if __name__ == "__main__":
    main()
