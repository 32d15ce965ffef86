"""What every task shares: the Task protocol, the prepared data, config checks and label helpers."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import torch

from ...errors import InputError
from .. import evaluation as ev


@dataclass
class Prepared:
    """A task's data after splitting and preprocessing."""

    train: tuple  # (inputs, y)
    val: tuple | None
    test: tuple
    test_ids: list
    model_overrides: dict  # architecture facts the data decides (channels, classes, ...)
    state: dict  # JSON preprocessing state for evaluate/predict
    baselines: dict = field(default_factory=dict)  # name -> test outputs (probabilities / forecasts)
    pca: tuple | None = None  # (components, mean) for a model with projection='pca'
    split: dict | None = None  # what went where: written to the run folder as split.json
    baseline_fits: dict = field(default_factory=dict)  # name -> predict(raw inputs): the baselines for new data


def split_record(by: str, ids, s, units=None) -> dict:
    """The run's split as JSON: ``by`` (random, chromosome, group), and per part the record ids
    and, for chromosome and group splits, the chromosomes or groups it holds."""
    def plain(v):
        return v.item() if hasattr(v, "item") else v

    rec: dict = {"by": by}
    for part in ("train", "val", "test"):
        idx = getattr(s, part)
        rec[part] = {"ids": [plain(ids[i]) for i in idx]}
        if units is not None:
            rec[part][by + "s"] = sorted({str(units[i]) for i in idx})
    return rec


@dataclass
class FoldKeys:
    """The keys ``biolstm train --cv K`` sets in a data section (one run per fold)."""

    folds: int = 0  # K of a K-fold cross-validation (0: one train/val/test split); set by --cv
    fold: int = 0  # which fold is the test part (1..folds); set by --cv


def check_fold_keys(cfg) -> None:
    if cfg.folds == 0 and cfg.fold == 0:
        return
    if not (cfg.folds >= 2 and 1 <= cfg.fold <= cfg.folds):
        raise ValueError(f"data.folds, data.fold: expected folds >= 2 and 1 <= fold <= folds, got {cfg.folds}, "
                         f"{cfg.fold}")  # fmt: skip


SEED_MAX = 2**32 - 1  # numpy's (and scikit-learn's random_state) seed range is [0, 2**32 - 1]
KMER_MAX = 8  # the k-mer baseline holds N x 4^k floats: k = 8 is 65,536 columns per sequence
_TYPES = {  # annotation -> (check, words)
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an int"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "dict": (lambda v: isinstance(v, dict), "a mapping"),
}
# the numeric keys every data section shares: (test, value) -> (allowed?, what is expected)
SEED = (lambda v: 0 <= v <= SEED_MAX, f"an int from 0 to {SEED_MAX:,} (numpy's seed range)")
TEST = (lambda v: 0 < v < 1, "a fraction in (0, 1)")
VAL = (lambda v: 0 <= v < 1, "a fraction in [0, 1)")
AT_LEAST_1 = (lambda v: v >= 1, "an int >= 1")


def check_data_keys(cfg, limits: dict) -> None:
    """Check a data section: each key's type from its annotation (ints are not bools, numbers
    are finite) and each numeric key of ``limits`` ({key: (allowed, words)}); errors name
    ``data.<key>``. Fractions ``test`` and ``val`` must also sum below 1 where both are listed."""
    for f in fields(cfg):
        value, name = getattr(cfg, f.name), f"data.{f.name}"
        kinds = [k.strip() for k in str(f.type).split("|")]
        if value is None and "None" in kinds:
            continue
        known = [k for k in kinds if k in _TYPES]
        if known and not any(_TYPES[k][0](value) for k in known):
            words = " or ".join([_TYPES[k][1] for k in known] + (["null"] if "None" in kinds else []))
            raise TypeError(f"{name}: expected {words}, got {value!r:.60} ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite number, got {value}")
        if f.name in limits and not limits[f.name][0](value):
            raise ValueError(f"{name}: expected {limits[f.name][1]}, got {value!r}")
    if hasattr(cfg, "folds"):
        check_fold_keys(cfg)
    if limits.get("test") is TEST and limits.get("val") is VAL and cfg.test + cfg.val >= 1:
        raise ValueError(f"data.test, data.val: expected fractions summing below 1, got {cfg.test} + {cfg.val}")


def absolute_path(base: Path, p) -> str | None:
    if p is None:
        return None
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q).resolve())


def make_split(cfg, n: int, strata=None, groups=None, chroms=None, class_names: list | None = None):
    """The train/val/test split a data section asks for (``cfg.split``: random, group or
    chromosome), from :mod:`biolstm.data.splits`; ``strata`` (class ids) stratify random and
    group splits, None for outcomes without classes."""
    from ...data.splits import check_stratified_sizes, split_by_group, split_chromosomes, split_folds, split_random

    if cfg.folds:  # one fold of --cv K: whole groups (chromosomes, patients) per fold where the split names them
        units = {"group": groups, "chromosome": chroms}.get(cfg.split)
        if cfg.split in ("group", "chromosome") and units is None:
            raise InputError(f"data.split: {cfg.split!r} folds need " + ("data.group" if cfg.split == "group"
                             else "chr:start-end headers or data.bed"))  # fmt: skip
        return split_folds(n, cfg.folds, cfg.fold, val=cfg.val, seed=cfg.seed, strata=strata, groups=units)
    if cfg.split == "random" and strata is None:
        return split_random(np.zeros(n), test=cfg.test, val=cfg.val, seed=cfg.seed, stratify=False)
    if cfg.split == "random":
        counts = np.bincount(strata)
        if counts.min() < 3:
            k = int(np.argmin(counts))
            name = class_names[k] if class_names else k
            raise InputError(
                f"data.split: class {name!r} has {counts[k]} example{'' if counts[k] == 1 else 's'}; a stratified "
                "train/val/test split needs at least 3 per class"
            )
        check_stratified_sizes(strata, cfg.test, cfg.val, "data.test, data.val")
        return split_random(strata, test=cfg.test, val=cfg.val, seed=cfg.seed, stratify=True)
    if cfg.split == "group":
        if groups is None:
            raise InputError("data.split: 'group' needs data.group (a column naming the patient/donor)")
        return split_by_group(groups, test=cfg.test, val=cfg.val, seed=cfg.seed, labels=strata)
    if chroms is None:
        raise InputError("data.split: 'chromosome' needs chr:start-end headers or data.bed")
    keys = ("data.test_chromosomes", "data.val_chromosomes")
    return split_chromosomes(chroms, cfg.test_chromosomes, cfg.val_chromosomes, keys)


class Task(Protocol):
    """What the runner (``pipeline/run.py``) asks of every task; one module per task implements it.

    ``prepare`` reads and checks the data, splits it with :mod:`biolstm.data.splits`, fits every
    preprocessing step on the training part only and returns a :class:`Prepared`; ``state``
    (JSON) is what ``evaluate`` and ``predict`` need to apply the same steps to new data."""

    name: ClassVar[str]  # the config's ``task:`` value
    data_class: ClassVar[type]  # the ``data:`` section (a Config dataclass)

    def model_config_class(self) -> type: ...  # the ``model:`` section's dataclass
    def paths(self, d, base: Path): ...  # the data section with paths made absolute
    def prepare(self, d, log) -> Prepared: ...
    def loss(self, state: dict) -> str: ...
    def build_model(self, model_cfg): ...
    # the test part's metrics {model/baseline: {...}}; then the same with plots and test_predictions.tsv
    def test_metrics(self, prep: Prepared, out: torch.Tensor, model=None) -> dict: ...
    def finish(self, prep: Prepared, out: torch.Tensor, model, run_dir: Path, history: dict) -> tuple[dict, dict]: ...
    def evaluate_new(self, d, state: dict, path: str, model, predict, **labels) -> dict: ...
    def predict_new(self, d, state: dict, path: str, model, predict) -> tuple[list, list]: ...


class FileTask:
    """A task whose data is one file (``data.file``), relative to the config file's folder."""

    def model_config_class(self) -> type:
        from ...models import SequenceClassifierConfig

        return SequenceClassifierConfig

    def paths(self, d, base: Path):
        return d.merged(file=absolute_path(base, d.file))


class OutcomeTask(FileTask):
    """A task that predicts an outcome per example (:class:`~.outcome.Outcome`: binary,
    multi-class, multi-label or regression): loss, model head, metrics with baselines beside
    them, plots and prediction rows, all from the outcome fitted on the training split."""

    def outcome(self, state: dict):
        from .outcome import Outcome

        return Outcome.from_state(state)

    def loss(self, state: dict, model_cfg=None) -> str:
        if getattr(model_cfg, "members", 1) > 1:  # an ensemble: the mean of its members' losses
            return "model"
        return self.outcome(state).loss()

    def build_model(self, model_cfg):
        from ...models import SequenceClassifier, SequenceRegressor
        from ...models.classifier import ClassifierEnsemble

        if model_cfg.members > 1:
            return ClassifierEnsemble(model_cfg)
        return SequenceRegressor(model_cfg) if model_cfg.task == "regression" else SequenceClassifier(model_cfg)

    def test_metrics(self, prep: Prepared, out: torch.Tensor, model=None) -> dict:
        """{model/baseline: metrics} on the test part (baselines: predictions in metric form)."""
        o = self.outcome(prep.state)
        truth = o.target_truth(prep.test[1])
        metrics = {"model": o.metrics(truth, o.inverse_transform(out))}
        metrics.update({name: o.metrics(truth, p) for name, p in prep.baselines.items()})
        return metrics

    def finish(self, prep: Prepared, out: torch.Tensor, model, run_dir: Path, history: dict) -> tuple[dict, dict]:
        """Metrics, plots and test_predictions.tsv of a trained run: (metrics, extra results)."""

        o = self.outcome(prep.state)
        truth, pred = o.target_truth(prep.test[1]), o.inverse_transform(out)
        metrics = self.test_metrics(prep, out, model)
        extra = {}
        table = o.class_table(truth, pred)
        if table is not None:
            extra["classes"] = table
        regression = o.kind_ == "regression"
        curves = None if regression else {"model": (truth, pred), **{k: (truth, p) for k, p in prep.baselines.items()}}
        plots = ev.save_plots(run_dir, history or {}, curves=curves, scatter=(truth, pred) if regression else None,
                              confusion=table if o.kind_ == "multiclass" else None)  # fmt: skip
        header, rows = o.rows(prep.test_ids, pred)
        write_tsv(run_dir / "test_predictions.tsv", [*header, "true"],
                  [[*r, t] for r, t in zip(rows, o.label_strings(truth))])  # fmt: skip
        extra["files"] = [*plots, "test_predictions.tsv"]
        return metrics, extra

    def prediction_rows(self, state: dict, ids: list, out: torch.Tensor) -> tuple[list[str], list[list]]:
        o = self.outcome(state)
        return o.rows(ids, o.inverse_transform(out))

    def evaluate_new(self, d, state: dict, path: str | None, model, predict, baselines=None, **labels) -> dict:
        """{model/baseline: metrics} on new labelled data: ``path`` (with ``labels``, the label
        options of read_new), or, with ``path`` None, the data section ``d`` read as training
        reads it; ``baselines`` ({name: predict(raw)}, fitted on the run's training part)."""
        x, _, y, raw = self.read_new(d, state, path, labeled=True, **{k: v for k, v in labels.items() if v is not None})
        if y is None:
            where = path or "data"
            raise InputError(f"{where}: expected labels to evaluate against (a label column, --labels or --label)")
        o = self.outcome(state)
        truth = o.target_truth(y)
        metrics = {"model": o.metrics(truth, o.inverse_transform(predict(x)))}
        metrics.update({name: o.metrics(truth, fit(raw)) for name, fit in (baselines or {}).items()})
        return metrics

    def predict_new(self, d, state: dict, path: str, model, predict) -> tuple[list, list]:
        x, ids, _, _ = self.read_new(d, state, path)
        return self.prediction_rows(state, ids, predict(x))


def split_outcome(outcome, labels: list, split, where: str):
    """Fit ``outcome`` and split: (split, targets for the loss, labels in metric form).

    The class set comes from every label (stratified splits need it, and every class must then
    have a training example); the statistics of a regression outcome (mean, SD) are fitted on
    the training part only. ``split(strata)`` returns the split (strata: class ids or None)."""
    outcome.fit(labels)
    classes = outcome.kind_ in ("binary", "multiclass")
    strata = outcome.truth(labels) if classes else None
    s = split(strata)
    if classes:
        check_train_classes(strata[s.train], outcome.classes_, where)
    if outcome.kind_ == "regression":
        outcome.fit([labels[i] for i in s.train])
    return s, outcome.transform(labels), outcome.truth(labels)


def outcome_baselines(o, truth_train: np.ndarray, raw_train, featurizers: dict, count=len) -> dict:
    """Baselines fitted on the training part, as {name: predict(raw inputs)}: the constant one
    (class frequencies, label rates or the mean) and a linear model (logistic or ridge) per
    featurizer ({name: raw inputs -> features}); ``count(raw)`` is the number of examples."""
    fits = {o.constant_name(): lambda raw: o.constant_baseline(truth_train, count(raw))}
    for name, featurize in featurizers.items():
        model = o.fit_linear(featurize(raw_train), truth_train)
        fits[name] = lambda raw, m=model, f=featurize: m(f(raw))
    return fits


def write_tsv(path: Path, header: list[str], rows: list[list]) -> None:
    from ..._io import atomic_write_text

    text = "\t".join(header) + "\n" + "".join("\t".join(str(v) for v in r) + "\n" for r in rows)
    atomic_write_text(path, text)


def too_big(need: int) -> str | None:
    """None if ``need`` bytes fit in half of this machine's memory, else how much it has ('64 GiB')."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform: nothing to compare with
        return None
    return f"{total / 2**30:.0f} GiB" if need > total / 2 else None


def check_train_classes(y_train: np.ndarray, classes: list, where: str) -> None:
    """InputError naming ``where`` unless every class has a training example (a classifier, and
    its baselines, cannot learn a class it never sees)."""
    counts = np.bincount(y_train, minlength=len(classes))
    if (counts == 0).any():
        k = int(np.argmin(counts))
        shown = ", ".join(f"{c!r}: {int(m)}" for c, m in zip(classes, counts))
        raise InputError(
            f"{where}: the training split has no example of class {classes[k]!r} (training class counts {shown}); "
            "expected every class in training"
        )

