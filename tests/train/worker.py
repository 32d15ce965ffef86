"""A small training run for the kill/resume tests:
python worker.py RUN_DIR [--resume] [--slow S] [--slow-save S] [--die-in-save N] [--val].

Trains a 2-layer LSTM classifier (with dropout, so the RNG state matters) for 3 epochs and
checkpoints after every step. ``--slow`` sleeps in every forward, ``--slow-save`` after every
file a checkpoint writes (so that a kill lands inside a batch or inside a checkpoint write);
``--die-in-save N`` SIGKILLs the process itself in the middle of its N-th checkpoint write;
``--val`` adds a validation split and keeps the best epoch's checkpoint (restore_best) beside
the newest one only. On finishing it writes final.safetensors into RUN_DIR.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import torch
from safetensors.torch import save_file

import biolstm.nn as bnn
from biolstm.train import Trainer, TrainerConfig, seed_everything


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = bnn.LSTM(2, 8, num_layers=2, dropout=0.3, batch_first=True, engine="transparent")
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(self.lstm(x)[0][:, -1])).squeeze(-1)


class Slow(torch.nn.Module):  # stretches each step so a kill lands mid-run
    def __init__(self, net, seconds):
        super().__init__()
        self.net, self.seconds = net, seconds

    def forward(self, x):
        if self.seconds:
            time.sleep(self.seconds)
        return self.net(x)


def main(argv):
    run_dir = argv[0]
    resume = "--resume" in argv
    slow = float(argv[argv.index("--slow") + 1]) if "--slow" in argv else 0.0
    if "--slow-save" in argv or "--die-in-save" in argv:
        from biolstm.train import checkpoint

        pause = float(argv[argv.index("--slow-save") + 1]) if "--slow-save" in argv else 0.0
        die = int(argv[argv.index("--die-in-save") + 1]) if "--die-in-save" in argv else -1
        write, calls = checkpoint.save_tensors, []

        def slow_write(path, tensors):
            write(path, tensors)
            calls.append(path)
            if len(calls) == 2 * die - 1:  # the first of the N-th checkpoint's two tensor files
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(pause)

        checkpoint.save_tensors = slow_write
    seed_everything(7)
    x = torch.randn(96, 6, 2)
    y = (x.sum((1, 2)) > 0).float()
    net = Net()
    model = Slow(net, slow)  # the same module tree (and checkpoint keys) with or without the delay
    val = "--val" in argv
    cfg = TrainerConfig(epochs=3, batch_size=16, loss="binary_crossentropy", lr=0.01, seed=3, checkpoint_every=1,
                        restore_best=val, keep_checkpoints=1 if val else 2)  # fmt: skip
    xv = torch.randn(32, 6, 2)
    yv = (xv.sum((1, 2)) > 0).float()
    Trainer(model, cfg, run_dir).fit(x, y, validation_data=(xv, yv) if val else None, resume=resume)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, f"{run_dir}/final.safetensors")


if __name__ == "__main__":
    main(sys.argv[1:])
