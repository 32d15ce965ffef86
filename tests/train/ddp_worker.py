"""Data-parallel training run for the distributed tests:
python ddp_worker.py RUN_DIR EPOCHS [--resume], alone or under torchrun.

A 1-layer LSTM classifier on fixed data (99 sequences, batch 16: the last global batch has 3
rows, so the shards of 2 processes differ in size), Adam, accuracy and AUC logged. On
finishing, rank 0 writes final.safetensors and history.json into RUN_DIR; at exit, after
biolstm's own exit handler, each rank writes exit-RANK.json saying whether its process group
is still alive.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

import torch
from safetensors.torch import save_file

import biolstm.nn as bnn
from biolstm.train import Trainer, TrainerConfig, seed_everything
from biolstm.train import distributed as dd


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = bnn.LSTM(3, 8, batch_first=True)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(self.lstm(x)[0][:, -1])).squeeze(-1)


def _report_group(run_dir: str, rank: str) -> None:
    with open(f"{run_dir}/exit-{rank}.json", "w") as fh:
        json.dump({"group_alive": torch.distributed.is_initialized()}, fh)


def main(argv):
    run_dir, epochs, resume = argv[0], int(argv[1]), "--resume" in argv
    # registered before the Trainer creates the group, so it runs after biolstm's teardown
    atexit.register(_report_group, run_dir, os.environ.get("RANK", "0"))
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(99, 12, 3, generator=g)
    y = (x[:, :4].sum((1, 2)) > 0).float()
    seed_everything(11)
    net = Net()
    cfg = TrainerConfig(
        epochs=epochs, batch_size=16, loss="binary_crossentropy", lr=0.02, seed=3, metrics=("accuracy", "auc")
    )
    trainer = Trainer(net, cfg, run_dir)
    hist = trainer.fit(x, y, resume=resume)
    if dd.rank() == 0:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, f"{run_dir}/final.safetensors")
        with open(f"{run_dir}/history.json", "w") as fh:
            json.dump({"history": hist.history, "world": dd.world_size(), "steps": trainer.global_step}, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
