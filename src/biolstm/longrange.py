"""Long-range dependency benchmarks: the adding problem, the copy task, and two DNA motifs far
apart, for RNN, GRU, LSTM (forget bias 1 or chrono init) and MinLSTM.

Every run has a fixed seed and a budget (optimiser steps and wall time); the table reports
the test metric, the step at which the task counted as solved (or that it was not), and the
time used, whatever happened.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

CELLS = ("rnn", "gru", "lstm", "lstm_chrono", "minlstm")
LABELS = {"rnn": "RNN (tanh)", "gru": "GRU", "lstm": "LSTM (forget bias 1)", "lstm_chrono": "LSTM (chrono init)",
          "minlstm": "MinLSTM"}  # fmt: skip


# ------------------------------------------------------------------------------------ tasks
def adding_problem(n: int, T: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (value ~ U[0, 1], marker); two markers, one in each half; target the sum of the
    two marked values. Predicting the mean (1.0) scores MSE 1/6 = 0.167 (memoryless baseline)."""
    values = torch.rand(n, T, generator=generator)
    marks = torch.zeros(n, T)
    first = torch.randint(0, max(1, T // 2), (n,), generator=generator)
    second = torch.randint(T // 2, T, (n,), generator=generator)
    marks[torch.arange(n), first] = 1.0
    marks[torch.arange(n), second] = 1.0
    return torch.stack([values, marks], -1), (values * marks).sum(1)


def copy_task(n: int, T: int, generator: torch.Generator, symbols: int = 8, length: int = 10):
    """Ten symbols (of 8), T blanks, a delimiter, then ten blanks during which the ten symbols
    must be output. Input one-hot over symbols + blank + delimiter; targets (n, 10) symbol ids."""
    total = length + T + 1 + length
    seq = torch.randint(0, symbols, (n, length), generator=generator)
    x = torch.zeros(n, total, symbols + 2)
    x[:, :length] = nn.functional.one_hot(seq, symbols + 2).float()
    x[:, length : length + T, symbols] = 1.0  # blanks
    x[:, length + T, symbols + 1] = 1.0  # delimiter
    x[:, length + T + 1 :, symbols] = 1.0
    return x, seq


def two_motifs(n: int, T: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random DNA of T bp (one-hot); label 1 when both TGACTCA (first half) and CACGTG (second
    half) are present, 0 when one of them or neither is (each case equally often), so the
    label needs both sites, up to T bp apart."""
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    seqs = rng.integers(0, 4, (n, T))
    labels = np.zeros(n, dtype=np.float32)
    a, b = np.array([3, 2, 0, 1, 3, 1, 0]), np.array([1, 0, 1, 2, 3, 2])  # TGACTCA, CACGTG in ACGT ids
    for i in range(n):
        kind = i % 4  # 0: both, 1: only A, 2: only B, 3: neither
        if kind in (0, 1):
            p = rng.integers(0, T // 2 - len(a))
            seqs[i, p : p + len(a)] = a
        if kind in (0, 2):
            p = rng.integers(T // 2, T - len(b))
            seqs[i, p : p + len(b)] = b
        labels[i] = kind == 0
    x = nn.functional.one_hot(torch.from_numpy(seqs), 4).float()
    return x, torch.from_numpy(labels)


TASKS = {"adding": adding_problem, "copy": copy_task, "motifs": two_motifs}


# ------------------------------------------------------------------------------------ models
class Reader(nn.Module):
    """One recurrent layer and a linear head on its last state (adding, motifs) or on the last
    ``outputs`` steps (copy)."""

    def __init__(self, cell: str, inputs: int, hidden: int, outputs: int, last_steps: int = 1, T: int = 100):
        super().__init__()
        from .nn import GRU, LSTM, RNN, MinLSTM

        self.cell, self.last_steps = cell, last_steps
        if cell == "rnn":
            self.rnn = RNN(inputs, hidden, batch_first=True)
        elif cell == "gru":
            self.rnn = GRU(inputs, hidden, batch_first=True)
        elif cell == "lstm":
            self.rnn = LSTM(inputs, hidden, batch_first=True, forget_bias=1.0)
        elif cell == "lstm_chrono":
            self.rnn = LSTM(inputs, hidden, batch_first=True, chrono_init=T)
        elif cell == "minlstm":
            self.rnn = MinLSTM(inputs, hidden)
        else:
            raise ValueError(f"cell: expected one of {CELLS}, got {cell!r}")
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x):
        out = self.rnn(x)[0]
        return self.head(out[:, -self.last_steps :]) if self.last_steps > 1 else self.head(out[:, -1])


class Result(NamedTuple):
    task: str
    T: int
    cell: str
    metric: str
    value: float  # test MSE (adding) or accuracy (copy, motifs)
    solved_at: int | None  # optimiser step at which the test criterion was first met
    steps: int
    seconds: float
    paper_share: float | None = None  # adding: share with |error| < 0.04 on 0.5 + (X1 + X2) / 4
    history: tuple[tuple[int, float, float], ...] = ()  # (step, seconds, test metric) at each check


def run_one(
    task: str,
    T: int,
    cell: str,
    steps: int = 2000,
    seconds: float = 300.0,
    hidden: int = 64,
    batch: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    check_every: int = 100,
    n_test: int = 1000,
) -> Result:
    """Train one cell on one task under the budget; evaluate on ``n_test`` fresh test sequences."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    make = TASKS[task]
    x_test, y_test = make(n_test, T, g)
    if task == "adding":
        model, loss_fn, metric = Reader(cell, 2, hidden, 1, T=T), nn.MSELoss(), "test MSE"
    elif task == "copy":
        model, loss_fn, metric = Reader(cell, 10, hidden, 8, last_steps=10, T=T), nn.CrossEntropyLoss(), "accuracy"
    else:
        model, loss_fn, metric = Reader(cell, 4, hidden, 1, T=T), nn.BCEWithLogitsLoss(), "accuracy"
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(x_test[i : i + 250]) for i in range(0, n_test, 250)])
        model.train()
        if task == "adding":
            return float(((out.squeeze(-1) - y_test) ** 2).mean())
        if task == "copy":
            return float((out.argmax(-1) == y_test).float().mean())
        return float(((out.squeeze(-1) > 0).float() == y_test).float().mean())

    def solved(v: float) -> bool:
        return v < 0.01 if task == "adding" else v > 0.99 if task == "copy" else v > 0.95

    t0, solved_at, step = time.perf_counter(), None, 0
    value = evaluate()
    history = [(0, 0.0, value)]
    while step < steps and time.perf_counter() - t0 < seconds:
        xb, yb = make(batch, T, g)
        opt.zero_grad()
        out = model(xb)
        if task == "adding":
            loss = loss_fn(out.squeeze(-1), yb)
        elif task == "copy":
            loss = loss_fn(out.reshape(-1, 8), yb.reshape(-1))
        else:
            loss = loss_fn(out.squeeze(-1), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % check_every == 0 or step == steps:
            value = evaluate()
            history.append((step, time.perf_counter() - t0, value))
            if solved_at is None and solved(value):
                solved_at = step
                break
    share = None
    if task == "adding":
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(x_test[i : i + 250]) for i in range(0, n_test, 250)]).squeeze(-1)
        share = float(((0.5 + out / 4) - (0.5 + y_test / 4)).abs().lt(0.04).float().mean())
    return Result(task, T, cell, metric, value, solved_at, step, time.perf_counter() - t0, share, tuple(history))


def format_table(results: list[Result]) -> str:
    lines = ["| task | T | cell | metric | value | solved at step | steps run | seconds | 1997 criterion |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        share = "-" if r.paper_share is None else f"{100 * r.paper_share:.1f}%"
        solved = "not solved" if r.solved_at is None else str(r.solved_at)
        cells = [r.task, r.T, r.cell, r.metric, f"{r.value:.4f}", solved, r.steps, f"{r.seconds:.0f}", share]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def save_results(results: list[Result], out: Path) -> list[Result]:
    """Merge ``results`` into ``out/longrange.json`` (a later run of the same task, T and cell
    replaces the earlier one) and rewrite ``longrange.md`` and the learning-curve plot
    ``longrange.png``/``.svg`` from everything stored there. Returns the merged list."""
    out.mkdir(parents=True, exist_ok=True)
    store = out / "longrange.json"
    merged: dict[tuple, Result] = {}
    if store.exists():
        try:
            rows = json.loads(store.read_text())
            old = [Result(**{**r, "history": tuple(tuple(h) for h in r["history"])}) for r in rows]
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"{store}: expected the JSON list this command writes ({err})") from err
        merged = {(r.task, r.T, r.cell): r for r in old}
    merged.update({(r.task, r.T, r.cell): r for r in results})
    order = {t: k for k, t in enumerate(TASKS)}
    allr = sorted(merged.values(), key=lambda r: (order.get(r.task, 99), r.T, CELLS.index(r.cell)))
    tmp = store.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([r._asdict() for r in allr], indent=1))
    tmp.replace(store)
    (out / "longrange.md").write_text(format_table(allr) + "\n")
    plot_results(allr, out / "longrange")
    return allr


def plot_results(results: list[Result], stem: Path) -> None:
    """One panel per (task, T): the test metric against optimiser steps for every cell; the
    adding problem's memoryless baseline (1/6) and every task's "solved" line dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r.task == t for r in results)]
    if not tasks:
        return
    cols = max(len({r.T for r in results if r.task == t}) for t in tasks)
    fig, axes = plt.subplots(len(tasks), cols, figsize=(3.2 * cols, 2.7 * len(tasks)), squeeze=False)
    colours = dict(zip(CELLS, ("#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e")))
    for row, task in enumerate(tasks):
        lengths = sorted({r.T for r in results if r.task == task})
        for col in range(cols):
            ax = axes[row][col]
            if col >= len(lengths):
                ax.axis("off")
                continue
            T = lengths[col]
            for r in (r for r in results if r.task == task and r.T == T):
                steps, _, values = zip(*r.history) if r.history else ((r.steps,), (0,), (r.value,))
                ax.plot(steps, values, color=colours[r.cell], label=LABELS[r.cell], lw=1.4)
            if task == "adding":
                ax.axhline(1 / 6, color="grey", lw=0.8, ls=":")
                ax.axhline(0.01, color="black", lw=0.8, ls="--")
                ax.set_yscale("log")
            else:
                ax.axhline(0.99 if task == "copy" else 0.95, color="black", lw=0.8, ls="--")
            ax.set_title(f"{task}, T = {T}", fontsize=9)
            ax.set_xlabel("optimiser step", fontsize=8)
            ax.set_ylabel(results[0].metric if task == "adding" else "test accuracy", fontsize=8)
            ax.tick_params(labelsize=7)
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_lines() if not h.get_label().startswith("_")}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    for ext in ("png", "svg"):
        fig.savefig(f"{stem}.{ext}", dpi=120)
    plt.close(fig)


def run_longrange(tasks=("adding",), lengths=(100,), cells=CELLS, steps: int = 2000, seconds: float = 300.0,
                  print_fn=print, out: Path | None = None) -> list[Result]:  # fmt: skip
    results = []
    for task in tasks:
        for T in lengths:
            for cell in cells:
                r = run_one(task, T, cell, steps=steps, seconds=seconds)
                results.append(r)
                print_fn(f"{task} T={T} {cell}: {r.metric} {r.value:.4f}, solved at {r.solved_at}, {r.seconds:.0f} s")
                if out is not None:  # after every run, so a long sweep cut short keeps what it did
                    save_results([r], out)
    print_fn(format_table(results))
    return results
