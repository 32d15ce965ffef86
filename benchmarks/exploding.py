"""Gradient clipping on an exploding recurrent network, with the per-layer gradient-norm log.

A ReLU RNN whose recurrent matrix is 1.1 x the identity multiplies its signal by 1.1 per step
forward and backward, so over 40 steps its gradients reach 1e4 while the task (the sum of 40
uniform numbers; predicting the mean scores MSE 40/12 = 3.33) is easy. Plain SGD on it
overflows at once; the same run with ``clipnorm`` or ``clipvalue`` (Trainer) trains. An LSTM
without clipping is shown beside it. ``log_grad_norms=True`` writes grad_norms.csv (per epoch
and layer, mean and max gradient norm before clipping) into each run folder.

    python benchmarks/exploding.py [--out runs/exploding] [--epochs 20] [--lr 0.001] [--scale 1.1]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

import biolstm.nn as bnn
from biolstm.train import NonFiniteError, Trainer, TrainerConfig


class Exploding(torch.nn.Module):
    def __init__(self, cell: str, scale: float):
        super().__init__()
        if cell == "rnn":
            self.rnn = bnn.RNN(1, 16, nonlinearity="relu", batch_first=True)
            with torch.no_grad():
                self.rnn.weight_hh_l0.copy_(torch.eye(16) * scale)
        else:
            self.rnn = bnn.LSTM(1, 16, batch_first=True)
        self.head = torch.nn.Linear(16, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1]).squeeze(-1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/exploding"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--scale", type=float, default=1.1, help="the RNN's recurrent matrix: scale x identity")
    args = ap.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(512, 40, 1, generator=g)
    y = x.sum((1, 2))
    xv = torch.rand(256, 40, 1, generator=g)
    yv = xv.sum((1, 2))
    print("| model | clipping | outcome | validation MSE | max gradient norm before clipping (rnn, head) |")
    print("|---|---|---|---:|---|")
    for cell, clip in [("rnn", {}), ("rnn", {"clipnorm": 1.0}), ("rnn", {"clipvalue": 0.01}), ("lstm", {})]:
        torch.manual_seed(0)
        model = Exploding(cell, args.scale)
        name = "-".join([cell, *(f"{k}{v}" for k, v in clip.items())]) or cell
        run = args.out / name
        config = TrainerConfig(epochs=args.epochs, batch_size=32, lr=args.lr, loss="mse", optimizer="sgd",
                               log_grad_norms=True, **clip)  # fmt: skip
        trainer = Trainer(model, config, run)
        try:
            history = trainer.fit(x, y, validation_data=(xv, yv))
            outcome, val = f"trained {args.epochs} epochs", f"{history.history['val_loss'][-1]:.4f}"
        except NonFiniteError as err:
            outcome, val = f"stopped: {str(err).split(';')[0]}", "-"
        norms = {}
        path = run / "grad_norms.csv"
        if path.exists():
            for r in csv.DictReader(path.open()):
                norms[r["layer"]] = max(norms.get(r["layer"], 0.0), float(r["max_norm"]))
        shown = ", ".join(f"{norms[k]:.3g}" for k in ("rnn", "head") if k in norms) or "-"
        clipping = ", ".join(f"{k}={v}" for k, v in clip.items()) or "none"
        print(f"| {cell.upper()} | {clipping} | {outcome} | {val} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
