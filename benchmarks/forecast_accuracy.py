"""Forecast accuracy of the ``panel`` task against naive, seasonal-naive, AutoARIMA and AutoETS
forecasts on the same test targets: the table of docs/benchmarks.md ("Panel forecasting").

Five data sets, each run through ``biolstm.pipeline.train`` (what ``biolstm train`` runs) with
the panel task's default settings: only the description of each data set differs (its file and
columns, its season where one is known from how it was sampled, its test block), never a
setting of the model or of training, and every data set gets the same ``train`` section below.

    python benchmarks/forecast_accuracy.py                  # every data set, seeds 0 1 2
    python benchmarks/forecast_accuracy.py --datasets lh --seeds 0
    python benchmarks/forecast_accuracy.py --dev            # choose settings without the test blocks

``--dev`` scores on the block before each test block instead (every series cut by its test
block first), so that settings can be compared without looking at the test blocks; the
defaults of the panel task were chosen that way. ``--set data.KEY=VALUE`` (repeatable) changes a
setting for every data set. Prints a Markdown table: the median over seeds of the model's MASE
(each seed's in brackets) beside the baselines' (the same for every seed) and the wall seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"

# What describes each data set: file, columns, the season where the sampling makes it known, and
# the test block. Nothing here sets the model or training.
DATASETS = {
    # yearly sunspot numbers 1700-1988: the ~11-year cycle is learned from the data, not known
    # a priori, so season 1 (naive scaling); test block: the last 30 years (10%)
    "sunspots": {"file": str(ROOT / "src" / "biolstm" / "demo_data" / "sunspot_year.csv"), "time_col": "time",
                 "target": "value", "season": 1, "test": 30},
    # luteinizing hormone every 10 minutes, 48 values: no known period; test block: the last 10 (21%)
    "lh": {"file": str(DATA / "lh.csv"), "time_col": "time", "target": "value", "season": 1, "test": 10},
    # yearly measles deaths in London 1629-1939 (62 missing years): test block: the last 10 years
    "measles": {"file": str(DATA / "measles.csv"), "time_col": "time", "target": "value", "season": 1, "test": 10},
    # 50 chicks, weight every 2 days (and day 21); test block: each chick's last 3 weighings
    "chickweight": {"file": str(DATA / "chickweight.csv"), "id_col": "Chick", "time_col": "Time",
                    "target": "weight", "static": ["Diet"], "categorical": ["Diet"], "season": 1, "test": 3},
    # 72 pigs, weekly weight with cumulative feed (72 missing) and static doses, litter, start
    # weight; test block: each pig's last 3 weeks
    "dietox": {"file": str(DATA / "dietox.csv"), "id_col": "Pig", "time_col": "Time", "target": "Weight",
               "covariates": ["Feed"], "static": ["Evit", "Cu", "Litter", "Start"], "categorical": ["Evit", "Cu"],
               "season": 1, "test": 3},
}  # fmt: skip
# One training section for every data set (no validation block by default: a fixed number of epochs).
TRAIN = {"epochs": 100, "batch_size": 32, "lr": 0.003, "weight_decay": 0.0001}


def cut_test_blocks(spec: dict, out: Path) -> dict:
    """--dev: the data set without its test block (each series' last ``test`` rows dropped), so
    the block before it is scored instead."""
    from biolstm.data.tables import read_table

    df = read_table(spec["file"])
    key, t = spec.get("id_col"), spec["time_col"]
    df = df.sort_values([key, t] if key else [t], kind="stable")
    if key:
        rank = df.groupby(key, sort=False).cumcount(ascending=False)  # 0 for each series' last row
        df = df[rank >= spec["test"]]
    else:
        df = df.iloc[: -spec["test"]]
    path = out / f"dev-{Path(spec['file']).name}"
    df.reset_index(drop=True).to_csv(path, index=False)
    return {**spec, "file": str(path)}


def run_one(name: str, spec: dict, seed: int, out: Path, args) -> dict:
    from biolstm.pipeline import train

    cfg = {"task": "panel", "data": dict(spec), "train": {**TRAIN, "seed": seed, "threads": args.threads}}
    if args.epochs:
        cfg["train"]["epochs"] = args.epochs
    path = out / f"{name}-{seed}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    folder = train(path, list(args.set), out=out / f"{name}-{seed}", verbose=0)
    seconds = time.perf_counter() - t0
    m = json.loads((folder / "metrics.json").read_text())
    with (folder / "test_predictions.tsv").open(newline="") as f:
        targets = sum(1 for r in csv.DictReader(f, delimiter="\t") if r["truth"] != "")  # scored (series, origin, step)
    print(f"  {name} seed {seed}: {seconds:.0f} s, model MASE {m['metrics']['model']['mase']:.3f}", file=sys.stderr,
          flush=True)  # fmt: skip
    return {"metrics": m["metrics"], "seconds": seconds, "series": m["series_scored"], "targets": targets}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--dev", action="store_true", help="score the block before each test block")
    ap.add_argument("--set", action="append", default=[], help="override for every run, e.g. data.ensemble=1")
    ap.add_argument("--epochs", type=int, default=None, help="fewer epochs for a quick look (not for the docs)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="forecast-accuracy-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"| data set | series | test targets | model MASE, median (seeds {' / '.join(map(str, args.seeds))}) "
          "| naive | seasonal naive | AutoARIMA | AutoETS | below all | seconds per run |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---:|---|---:|")
    for name in args.datasets:
        spec = cut_test_blocks(DATASETS[name], out) if args.dev else DATASETS[name]
        runs = [run_one(name, spec, s, out, args) for s in args.seeds]
        model = [r["metrics"]["model"]["mase"] for r in runs]
        med = statistics.median(model)
        m0 = runs[0]["metrics"]
        seasonal = next((v["mase"] for k, v in m0.items() if k.startswith("seasonal_naive")), None)
        base = [m0[k]["mase"] for k in ("naive", "auto_arima", "auto_ets") if k in m0]
        best = min(base + ([seasonal] if seasonal is not None else []))
        cells = [f"{m0[k]['mase']:.3f}" if k in m0 else "-" for k in ("naive",)]
        cells += [f"{seasonal:.3f}" if seasonal is not None else "- (season 1)"]
        cells += [f"{m0[k]['mase']:.3f}" if k in m0 else "-" for k in ("auto_arima", "auto_ets")]
        seeds = " / ".join(f"{v:.3f}" for v in model)
        print(f"| {name} | {runs[0]['series']} | {runs[0]['targets']} | **{med:.3f}** ({seeds}) | "
              f"{' | '.join(cells)} | {'yes' if med < best else 'no'} | "
              f"{statistics.median(r['seconds'] for r in runs):.0f} |", flush=True)  # fmt: skip
    import torch

    print(f"\n{machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{args.threads} torch thread(s); run folders: {out}")  # fmt: skip


def machine() -> str:
    """The CPU's model name (as lscpu gives it) and the number of CPUs."""
    import os

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
