"""``biolstm demo``: the main job on data bundled with the package (see demo_data/README.md).

Trains a conv + BiLSTM classifier on Oct4 vs MafK ChIP-seq peaks and LSTM forecasters of the
yearly sunspot numbers (1-step and 10-step horizons over the last 30 years), each into its
own run folder. It shows one progress bar per model, then one table of every model against
its baselines on the test split, and the commands that look inside the runs.
"""

from __future__ import annotations

import math
import shlex
import time
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

RUNS = (  # (run name, bundled config, overrides)
    ("oct4_mafk", "oct4_mafk.yaml", []),
    ("sunspots_h1", "sunspots.yaml", ["data.horizon=1"]),
    ("sunspots_h10", "sunspots.yaml", ["data.horizon=10"]),
)
LOWER_IS_BETTER = {"log_loss", "mase", "smape", "mae", "rmse"}  # losses and forecast errors; the rest are scores


def demo_config(name: str) -> Path:
    """Path of a bundled demo file (a config, or the data beside it)."""
    return Path(str(files("biolstm") / "demo_data" / name))


def run_demo(out: str | Path | None = None, quick: bool = False, verbose: int = 1) -> dict[str, Path]:
    """Run the three demo trainings; ``quick`` trains 2 epochs each (a smoke test). Returns
    {run name: run folder}. ``verbose=1`` shows a bar per model and the summary, 0 nothing."""
    from .pipeline import train
    from .pipeline.run import check_config
    from .train import TrainerConfig

    out = Path(out) if out is not None else Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    extra = ["train.epochs=2"] if quick else []
    plans = []
    for name, cfg, overrides in RUNS:  # every config checked before the first run starts
        train_raw = check_config(demo_config(cfg), overrides + extra, None, False)[3]
        plans.append((name, demo_config(cfg), overrides + extra, train_raw.get("epochs", TrainerConfig.epochs)))
    done = {}
    t0 = time.perf_counter()
    with _bars(verbose) as bars:
        tasks = {name: bars.add_task(name, total=epochs, start=False) if bars else None for name, _, _, epochs in plans}
        for name, cfg, overrides, _ in plans:
            bar = [_EpochBar(bars, tasks[name])] if bars is not None else None
            done[name] = train(cfg, overrides, out=out / name, verbose=0, callbacks=bar)
    if verbose:
        _summary(done, time.perf_counter() - t0, quick)
    return done


@contextmanager
def _bars(verbose: int):
    """A rich progress display with one bar per model (in epochs), or None when silent."""
    if not verbose:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TextColumn("epochs"),
        TimeElapsedColumn(),
    )  # fmt: skip
    with bars:
        yield bars


class _EpochBar:
    """A Trainer callback that moves one rich bar by an epoch at every epoch's end; an early
    stop ends the bar at the epochs trained."""

    def __init__(self, bars, task) -> None:
        self.bars, self.task = bars, task

    def on_train_begin(self, trainer) -> None:
        self.bars.start_task(self.task)  # its clock starts now, not when the bar was shown
        self.bars.update(self.task, completed=trainer.history.epochs)  # a resumed run's epochs

    def on_epoch_end(self, trainer, epoch: int, row: dict) -> None:
        self.bars.update(self.task, completed=epoch + 1)

    def on_train_end(self, trainer) -> None:
        n = trainer.history.epochs
        self.bars.update(self.task, total=n, completed=n)
        self.bars.stop_task(self.task)


def _summary(done: dict[str, Path], seconds: float, quick: bool) -> None:
    """One table of every model and baseline on its test split, then what to run next."""
    import json

    from rich.console import Console
    from rich.table import Table

    from .pipeline.evaluation import metric_keys

    results = {name: json.loads((run / "metrics.json").read_text())["metrics"] for name, run in done.items()}
    keys = list(dict.fromkeys(k for m in results.values() for k in metric_keys(m)))
    title = "Test split: each model against its baselines"
    if quick:
        title += " (--quick: 2 epochs, not the real numbers)"
    table = Table(show_edge=False)  # a run's name heads its section: the table fits 80 columns
    table.add_column("run", no_wrap=True)
    for k in keys:
        table.add_column(k, justify="right")
    for name, metrics in results.items():
        best = {k: _best(metrics, k) for k in keys}
        table.add_row(f"[bold]{name}[/bold]")
        for i, (who, m) in enumerate(metrics.items()):
            cells = [_cell(m.get(k), m.get(k) == best[k]) for k in keys]
            table.add_row(f"  {who}", *cells, end_section=i == len(metrics) - 1)
    console = Console(soft_wrap=True, highlight=False)  # commands and paths stay on one line
    console.print(f"\n{title}")
    console.print(table)
    console.print(_legend(keys))
    first = next(iter(done.values()))
    console.print(f"\nDemo finished in {seconds:.0f} s; run folders under {first.parent}. Next:")
    for line in _next_steps(done):
        console.print(line, markup=False)


def _legend(keys: list[str]) -> str:
    up = [k for k in keys if k not in LOWER_IS_BETTER]
    down = [k for k in keys if k in LOWER_IS_BETTER]
    parts = ([f"higher is better for {', '.join(up)}"] if up else []) + (
        [f"lower is better for {', '.join(down)}"] if down else []
    )
    return "; ".join(parts).capitalize() + " (best of each run in bold)."


def _best(metrics: dict, key: str) -> float | None:
    values = [m[key] for m in metrics.values() if isinstance(m.get(key), (int, float)) and not math.isnan(m[key])]
    if not values:
        return None
    return min(values) if key in LOWER_IS_BETTER else max(values)


def _cell(value, best: bool) -> str:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return ""
    text = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return f"[bold]{text}[/bold]" if best else text


def _next_steps(done: dict[str, Path]) -> list[str]:
    """The commands that look inside the runs, with their actual folders."""
    seq = shlex.quote(str(done["oct4_mafk"])) if "oct4_mafk" in done else None
    lines = []
    if seq:
        lines += [
            f"  biolstm explain {seq}   # gate statistics, attributions, motifs: figures in explain/",
            f"  biolstm report {seq}    # one offline HTML page: metrics, curves, gates, motifs",
        ]
    lines += [f"  biolstm report {shlex.quote(str(run))}" for name, run in done.items() if name != "oct4_mafk"]
    lines.append("  biolstm train CONFIG    # your own data: start from a config in examples/configs/")
    return lines
