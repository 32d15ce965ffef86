"""``biolstm train CONFIG --cv K``: K-fold cross-validation, one ordinary run per fold.

Fold k is the run ``OUT/fold-k`` trained with ``data.folds: K`` and ``data.fold: k`` (see
:func:`biolstm.data.splits.split_folds`): stratified folds for class outcomes, whole groups
(patients, ids) or chromosomes per fold where the task splits that way. Each fold run is a
normal run folder (evaluate, predict, explain and --resume work on it). ``OUT/cv.json`` and
``OUT/cv.tsv`` hold every fold's metrics for the model and every baseline, and their mean and
standard deviation over the folds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .._io import atomic_write_text, read_json
from ..errors import InputError

CV_MARKER = ".biolstm-cv"  # written into OUT when --cv creates it


def cross_validate(
    config: str | Path | None,
    overrides: list[str] = (),
    out: str | Path | None = None,
    folds: int = 5,
    resume: bool = False,
    verbose: int = 1,
) -> dict:
    """Train one run per fold into ``out``/fold-k and summarise them; returns the summary (also
    written as ``out``/cv.json and cv.tsv). ``resume`` continues the folds that did not finish
    and keeps the finished ones."""
    import time

    from .run import train

    if not isinstance(folds, int) or folds < 2:
        raise InputError(f"--cv: expected at least 2 folds, got {folds}")
    if config is None and not resume:
        raise InputError("CONFIG: expected a YAML config file for --cv")
    if resume and out is None:
        raise InputError("--resume: expected the cross-validation folder to continue, as --out CV")
    keys = [o.split("=", 1)[0].strip().lstrip("-").replace("-", "_") for o in overrides]
    if any(k in ("data.folds", "data.fold") for k in keys):
        raise InputError("--cv: sets data.folds and data.fold itself; leave them out of the overrides")
    out = Path(out) if out is not None else Path("runs") / f"{Path(config).stem}-cv-{time.strftime('%Y%m%d-%H%M%S')}"
    if resume:
        if not (out / CV_MARKER).is_file():
            raise InputError(f"--resume: {out} is not a cross-validation folder written by biolstm train --cv")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out: {out} already holds files; choose another folder (or --resume a --cv run)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CV_MARKER, json.dumps({"folds": folds}))
    results = []
    for k in range(1, folds + 1):
        run = out / f"fold-{k}"
        if verbose:
            print(f"fold {k}/{folds}: {run}")
        if resume and (run / "metrics.json").is_file():
            pass  # finished before
        elif resume and run.is_dir():
            train(None, overrides, out=run, resume=True, verbose=verbose)
        else:
            train(config, [*overrides, f"data.folds={folds}", f"data.fold={k}"], out=run, verbose=verbose)
        results.append(read_json(run / "metrics.json", f"fold {k}'s metrics"))
    summary = summarize(results)
    atomic_write_text(out / "cv.json", json.dumps(summary, indent=2))
    atomic_write_text(out / "cv.tsv", cv_table(summary))
    if verbose:
        print(f"\n{summary['task']}: {folds}-fold cross-validation, mean ± sd over folds ({out}/cv.json)")
        print(format_summary(summary))
    return summary


def summarize(results: list[dict]) -> dict:
    """Per fold and name (model, baselines) the metrics; their mean and SD (ddof 1) over folds."""
    names = list(dict.fromkeys(n for r in results for n in r["metrics"]))
    per_fold = [{"fold": k + 1, "n_test": r.get("n_test"), "metrics": r["metrics"]} for k, r in enumerate(results)]
    mean, sd = {}, {}
    for n in names:
        keys = list(dict.fromkeys(m for r in results for m in r["metrics"].get(n, {}) if m != "n"))
        for m in keys:
            vals = np.array([r["metrics"].get(n, {}).get(m, math.nan) for r in results], dtype=float)
            ok = vals[np.isfinite(vals)]
            mean.setdefault(n, {})[m] = float(ok.mean()) if len(ok) else math.nan
            sd.setdefault(n, {})[m] = float(ok.std(ddof=1)) if len(ok) > 1 else math.nan
    return {"task": results[0]["task"], "folds": len(results), "mean": mean, "sd": sd, "per_fold": per_fold}


def _keys(summary: dict) -> tuple[str, ...]:
    from .evaluation import metric_keys

    return metric_keys(summary["mean"])


def format_summary(summary: dict) -> str:
    keys = _keys(summary)
    width = max(len(n) for n in summary["mean"]) + 2
    lines = [f"{'':<{width}}" + "".join(f"{k:>18}" for k in keys)]
    for n, m in summary["mean"].items():
        sd = summary["sd"][n]
        cells = [f"{m.get(k, math.nan):.4f} ± {sd.get(k, math.nan):.4f}" for k in keys]
        lines.append(f"{n:<{width}}" + "".join(f"{c:>18}" for c in cells))
    return "\n".join(lines)


def cv_table(summary: dict) -> str:
    """cv.tsv: one row per fold and name, then the mean and sd rows."""
    keys = _keys(summary)
    rows = ["\t".join(["fold", "name", *keys])]
    for f in summary["per_fold"]:
        for n, m in f["metrics"].items():
            rows.append("\t".join([str(f["fold"]), n, *(f"{m.get(k, math.nan):.6g}" for k in keys)]))
    for what in ("mean", "sd"):
        for n, m in summary[what].items():
            rows.append("\t".join([what, n, *(f"{m.get(k, math.nan):.6g}" for k in keys)]))
    return "\n".join(rows) + "\n"
