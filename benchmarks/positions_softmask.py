"""Per-base labels on real data: the soft-masked (repeat) bases of the Oct4 and MafK peaks, the
table of docs/benchmarks.md ("Per-position labels: soft-masked repeats").

Trains examples/configs/oct4_softmask.yaml (both bundled files, 7,797 peaks of 200 bp; the
chromosome hold-out of the config: test chr8 + chr9, validation chr10) through
``biolstm.pipeline.train`` (what ``biolstm train`` calls) and prints, from the run's
metrics.json, the per-base auROC and auPRC of the model and of its baselines fitted on the
training chromosomes only: the majority label and logistic regression on the 3-mer counts of a
15-base window centred on each base (fitted on a sample of 50,000 training bases). The input
is the upper-cased sequence: the model never sees the mask it predicts.

    python benchmarks/positions_softmask.py [--out DIR] [--threads 2] [--epochs N]

--epochs trains fewer epochs than the config, for a quick look; the table in the docs uses the
config's own. Prints a Markdown table, the wall seconds and the machine's processor.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "configs" / "oct4_softmask.yaml"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs") / f"positions-softmask-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (train.threads)")
    ap.add_argument("--epochs", type=int, default=None, help="fewer epochs than the config, for a quick look")
    args = ap.parse_args(argv)

    import torch

    from biolstm.bench import cpu_name
    from biolstm.pipeline import train

    overrides = [f"train.threads={args.threads}", *([f"train.epochs={args.epochs}"] if args.epochs else [])]
    t0 = time.perf_counter()
    run = train(CONFIG, overrides, out=args.out, verbose=0)
    seconds = time.perf_counter() - t0
    result = json.loads((run / "metrics.json").read_text())
    with (run / "history.csv").open(newline="") as f:
        epochs = len(list(csv.DictReader(f)))
    m = result["metrics"]
    with (run / "test_predictions.tsv").open(newline="") as f:
        true = [row["true"] for row in csv.DictReader(f, delimiter="\t")]
    masked = sum(t == "1" for t in true) / len(true)
    print(f"{CONFIG.name}: {result['n_test']} test peaks (chr8, chr9), {m['model']['n']:,} test bases, "
          f"{100 * masked:.1f}% of them soft-masked; {epochs} epochs\n")
    print("| per-base prediction | auROC | auPRC | accuracy | log loss | mean auROC per peak |")
    print("|---|---:|---:|---:|---:|---:|")
    names = {"model": "SequenceTagger (conv + BiLSTM)", "majority": "majority label (training bases)"}
    for name, row in m.items():  # the window baseline is named like 3-mer_window15_logistic
        k, w = name.split("-mer_window")[0], name.split("_window")[-1].split("_")[0]
        label = names.get(name, f"{k}-mer counts in a {w}-base window + logistic regression")
        print(f"| {label} | {row['auroc']:.4f} | {row['auprc']:.4f} | {row['accuracy']:.4f} | {row['log_loss']:.4f} "
              f"| {row['record_auroc']:.4f} |")
    print(f"\nWall seconds (reading, baselines, training, evaluation): {seconds:.0f}; torch {torch.__version__}, "
          f"{args.threads} threads; processor: {cpu_name()}; run folder {run}")


if __name__ == "__main__":
    main()
