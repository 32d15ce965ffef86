"""Accuracy on the example data sets: the tables of docs/benchmarks.md ("Accuracy on the example
data sets"), each from ``biolstm train`` runs of the configs in examples/configs/.

Every run goes through ``biolstm.pipeline.train`` (what ``biolstm train`` calls) into its own
run folder under --out; the tables are read back from each folder's metrics.json (test split,
the model and the baselines fitted on the same training split) and history.csv.

    python benchmarks/accuracy.py oct4                       # random and chromosome hold-out
    python benchmarks/accuracy.py sunspots --seeds 0 1 2     # 1- and 10-step MASE per seed
    python benchmarks/accuracy.py pbc --seeds 0 1 2 3 4      # masked vs mean-imputed, per split
    python benchmarks/accuracy.py tissue
    python benchmarks/accuracy.py text
    python benchmarks/accuracy.py all                        # every table above, in that order

Common options: --out DIR (default runs/accuracy-<time>; each run folder is DIR/<table>/<run>),
--threads N (torch threads, default 2: train.threads), --epochs N (fewer epochs than the
config, for a quick look; the tables in the docs use the configs' own), --set KEY=VALUE (a
config override for every run, e.g. --set data.lookback=33; repeatable). Prints Markdown tables
and, under each, the wall seconds of every run (data preparation, baselines and training).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent / "examples" / "configs"


def run(config: str, overrides: list[str], out: Path, args) -> dict:
    """Train ``config`` with ``overrides`` into ``out``; metrics, wall seconds, epochs, size."""
    from safetensors import safe_open

    from biolstm.pipeline import train

    extra = [f"train.threads={args.threads}", *([f"train.epochs={args.epochs}"] if args.epochs else []), *args.set]
    t0 = time.perf_counter()
    folder = train(CONFIGS / config, overrides + extra, out=out, verbose=0)
    seconds = time.perf_counter() - t0
    metrics = json.loads((folder / "metrics.json").read_text())
    with (folder / "history.csv").open(newline="") as f:
        epochs = list(csv.DictReader(f))  # one row per epoch trained, counted from 0
    best = None  # the epoch with the lowest validation loss: the one restore_best keeps
    if epochs and "val_loss" in epochs[0]:
        best = min(range(len(epochs)), key=lambda i: float(epochs[i]["val_loss"]))
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        params = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    print(f"  {out.name}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return {"m": metrics["metrics"], "n_test": metrics["n_test"], "seconds": seconds, "epochs": len(epochs),
            "best": best, "params": params, "name": out.name}  # fmt: skip


def header(*cells: str, left: int = 1) -> None:
    """A Markdown table's header: the first ``left`` columns left-aligned, the others right."""
    print("| " + " | ".join(cells) + " |")
    print("|" + "---|" * left + "---:|" * (len(cells) - left))


def times(runs: list[dict]) -> None:
    shown = ", ".join(f"{r['name']} {r['seconds']:.0f}" for r in runs)
    print(f"\nWall seconds per run: {shown}; total {sum(r['seconds'] for r in runs):.0f}.\n")


def oct4(args) -> None:
    splits = [
        ("random, stratified 10% (val 10%)", "random", []),
        ("chromosome hold-out: test chr8 + chr9, val chr10", "chromosome",
         ["data.split=chromosome", "data.test_chromosomes=[chr8, chr9]", "data.val_chromosomes=[chr10]"]),
    ]  # fmt: skip
    runs = [run("oct4_mafk.yaml", o, args.out / "oct4" / name, args) for _, name, o in splits]
    header("split", "test sequences", "model auROC", "model auPRC", "GC content + LR auROC",
           "5-mer counts + LR auROC", "majority")  # fmt: skip
    for (label, _, _), r in zip(splits, runs):
        m = r["m"]
        print(f"| {label} | {r['n_test']} | **{m['model']['auroc']:.4f}** | {m['model']['auprc']:.4f} | "
              f"{m['gc_content']['auroc']:.4f} | {m['5-mer_logistic']['auroc']:.4f} | "
              f"{m['majority']['auroc']:.1f} |")  # fmt: skip
    print(f"\n{runs[0]['params']:,} parameters; {runs[0]['epochs']} epochs.")
    times(runs)


def sunspots(args) -> None:
    rows = []
    for h, label in ((1, "1 step"), (10, "10 steps (all 10 steps scored)")):
        rows.append((label, [run("sunspots.yaml", [f"data.horizon={h}", f"train.seed={s}"],
                                 args.out / "sunspots" / f"h{h}-seed{s}", args) for s in args.seeds]))  # fmt: skip
    seeds = " / ".join(str(s) for s in args.seeds)
    print(f"| horizon | test windows | model MASE (seeds {seeds}) | naive MASE | seasonal naive (11 y) MASE |")
    print("|---|---:|---|---:|---:|")  # the MASE column holds text (one value per seed): left-aligned
    for label, runs in rows:
        mase = " / ".join(f"{r['m']['model']['mase']:.3f}" for r in runs)
        m = runs[0]["m"]
        print(f"| {label} | {runs[0]['n_test']} | **{mase}** | {m['naive']['mase']:.3f} | "
              f"{m['seasonal_naive_11']['mase']:.3f} |")  # fmt: skip
    print("\nBest validation epoch kept (0-based): "
          + "; ".join(f"{r['name']} {r['best']}" for _, runs in rows for r in runs) + ".")  # fmt: skip
    times([r for _, runs in rows for r in runs])


def pbc(args) -> None:
    inputs = [
        ("masked", "masked (values + masks + time since observed, GRU-D decay)"),
        ("mean_imputed", "mean-imputed"),
    ]
    runs = {
        kind: [run("pbc.yaml", [f"data.inputs={kind}", f"data.seed={s}", f"train.seed={s}"],
                   args.out / "pbc" / f"{kind}-seed{s}", args) for s in args.seeds]
        for kind, _ in inputs
    }  # fmt: skip
    head = " | ".join(f"seed {s}" if i == 0 else str(s) for i, s in enumerate(args.seeds))
    print(f"| inputs | {head} | mean |")
    print("|---|" + "---:|" * (len(args.seeds) + 1))  # the seeds' header is one string, not one cell each

    def row(label: str, values: list[float], bold: bool) -> None:
        mean = f"{sum(values) / len(values):.3f}"
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {'**' + mean + '**' if bold else mean} |")

    for kind, label in inputs:
        row(label, [r["m"]["model"]["auroc"] for r in runs[kind]], kind == "masked")
    # the baseline reads each run's last visit: values carried forward (masked inputs) or the
    # training mean where the last visit did not measure a value (mean-imputed inputs)
    base = {kind: [r["m"]["last_visit_logistic"]["auroc"] for r in runs[kind]] for kind, _ in inputs}
    if base["masked"] == base["mean_imputed"]:
        row("baseline: last visit + static, logistic regression", base["masked"], False)
    else:
        row("baseline: last visit (values carried forward) + static, logistic regression", base["masked"], False)
        row("baseline: last visit (training mean where unmeasured) + static, logistic regression",
            base["mean_imputed"], False)  # fmt: skip
    print(f"\n{runs['masked'][0]['n_test']} test patients per split.")
    times(runs["masked"] + runs["mean_imputed"])


def tissue(args) -> None:
    r = run("tissue.yaml", [], args.out / "tissue" / "seed0", args)
    m = r["m"]
    header("test samples", "model accuracy", "model macro auROC", "logistic regression on the components, accuracy",
           "majority accuracy", left=0)  # fmt: skip
    print(f"| {r['n_test']} | **{m['model']['accuracy']:.3f}** | {m['model']['auroc']:.3f} | "
          f"{m['logistic_pca']['accuracy']:.3f} | {m['majority']['accuracy']:.3f} |")  # fmt: skip
    times([r])


def text(args) -> None:
    r = run("text.yaml", [], args.out / "text" / "seed0", args)
    m = r["m"]
    header("test texts", "model auROC", "model auPRC", "model accuracy", "bag-of-words (5-mer counts) + LR auROC",
           "majority", left=0)  # fmt: skip
    model, bow = m["model"], m["bag_of_words_logistic"]
    print(f"| {r['n_test']} | **{model['auroc']:.4f}** | {model['auprc']:.4f} | {model['accuracy']:.3f} | "
          f"{bow['auroc']:.4f} | {m['majority']['auroc']:.1f} |")  # fmt: skip
    print(f"\n{r['epochs']} epochs trained, the best (epoch {r['best'] + 1}, counted from 1) kept.")
    times([r])


TABLES = {"oct4": oct4, "sunspots": sunspots, "pbc": pbc, "tissue": tissue, "text": text}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", choices=[*TABLES, "all"])
    seeds = "sunspots: training seeds (default 0 1 2); pbc: data and training seeds (default 0-4)"
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help=seeds)
    ap.add_argument("--out", type=Path, default=Path("runs") / f"accuracy-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (train.threads)")
    ap.add_argument("--epochs", type=int, default=None, help="train.epochs (a quick look, not the docs' numbers)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for every run, as biolstm train's --KEY VALUE (repeatable)")  # fmt: skip
    args = ap.parse_args(argv)
    given = args.seeds
    for name in TABLES if args.table == "all" else [args.table]:
        args.seeds = given or {"pbc": [0, 1, 2, 3, 4]}.get(name, [0, 1, 2])
        print(f"## {name}\n")
        TABLES[name](args)


if __name__ == "__main__":
    main()
