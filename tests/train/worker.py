"""A small training run for the kill/resume tests: python worker.py RUN_DIR [--resume] [--slow S].

Trains a 2-layer LSTM classifier (with dropout, so the RNG state matters) for 3 epochs and
checkpoints after every step. On finishing it writes final.safetensors into RUN_DIR.
"""

from __future__ import annotations

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
    seed_everything(7)
    x = torch.randn(96, 6, 2)
    y = (x.sum((1, 2)) > 0).float()
    net = Net()
    model = Slow(net, slow)  # the same module tree (and checkpoint keys) with or without the delay
    cfg = TrainerConfig(epochs=3, batch_size=16, loss="binary_crossentropy", lr=0.01, seed=3, checkpoint_every=1)
    Trainer(model, cfg, run_dir).fit(x, y, resume=resume)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, f"{run_dir}/final.safetensors")


if __name__ == "__main__":
    main(sys.argv[1:])
