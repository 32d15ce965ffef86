"""Multi-class outcomes from multivariate visit sequences: the "PBC, 3-class outcome" table of
docs/benchmarks.md, from ``biolstm train examples/configs/pbc_status.yaml --cv 5``.

5-fold cross-validation with whole patients per fold (stratified by outcome) on the PBC visits
(examples/data/pbcseq.csv.gz): censored / transplant / dead at the end of follow-up from the
visit history (7 lab values with missing values, 3 static covariates). Each fold is a normal
run; the table is the mean ± SD over folds of the masked sequence model and of every baseline
fitted on the same training folds (last-visit and summarised-visit logistic regression,
gradient-boosted trees on the summaries), and the wall time of the whole cross-validation.

    python benchmarks/multivariate_cv.py                    # the example config as it is
    python benchmarks/multivariate_cv.py --set data.summaries=false --folds 5

Options: --out DIR (default runs/multivariate-cv-<time>), --folds K (5), --threads N (torch
threads, default 2), --set KEY=VALUE (a config override, repeatable).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "configs" / "pbc_status.yaml"
KEYS = ("auroc", "auprc", "accuracy", "log_loss")


def machine() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    args = p.parse_args()
    from biolstm.pipeline.cv import cross_validate

    out = args.out or Path("runs") / f"multivariate-cv-{time.strftime('%Y%m%d-%H%M%S')}"
    t0 = time.perf_counter()
    s = cross_validate(CONFIG, [f"train.threads={args.threads}", *args.set], out=out, folds=args.folds, verbose=0)
    seconds = time.perf_counter() - t0
    print(f"PBC 3-class (censored / transplant / dead), {args.folds}-fold patient CV, mean ± SD over folds"
          f"{' (' + ', '.join(args.set) + ')' if args.set else ''}")  # fmt: skip
    print()
    print("| | " + " | ".join(KEYS) + " |")
    print("|---|" + "---:|" * len(KEYS))
    for name, m in s["mean"].items():
        cells = [f"{m[k]:.3f} ± {s['sd'][name][k]:.3f}" for k in KEYS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    n = [f["n_test"] for f in s["per_fold"]]
    print()
    print(f"{sum(n)} patients, test folds of {min(n)}-{max(n)}; {seconds:.0f} s for all {args.folds} folds "
          f"(data, baselines and training) with {args.threads} threads on {machine()}")  # fmt: skip


if __name__ == "__main__":
    main()
