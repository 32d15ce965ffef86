"""What every task shares: the Task protocol, the prepared data, config checks and label helpers."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol

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
    if limits.get("test") is TEST and limits.get("val") is VAL and cfg.test + cfg.val >= 1:
        raise ValueError(f"data.test, data.val: expected fractions summing below 1, got {cfg.test} + {cfg.val}")


def absolute_path(base: Path, p) -> str | None:
    if p is None:
        return None
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q).resolve())


def make_split(cfg, labels: np.ndarray, groups=None, chroms=None, class_names: list | None = None, stratify=True):
    from ...data.splits import check_stratified_sizes, split_by_group, split_chromosomes, split_random

    if cfg.split == "random" and not stratify:
        return split_random(labels, test=cfg.test, val=cfg.val, seed=cfg.seed, stratify=False)
    if cfg.split == "random":
        counts = np.bincount(labels)
        if counts.min() < 3:
            k = int(np.argmin(counts))
            name = class_names[k] if class_names else k
            raise InputError(
                f"data.split: class {name!r} has {counts[k]} example{'' if counts[k] == 1 else 's'}; a stratified "
                "train/val/test split needs at least 3 per class"
            )
        check_stratified_sizes(labels, cfg.test, cfg.val, "data.test, data.val")
        return split_random(labels, test=cfg.test, val=cfg.val, seed=cfg.seed, stratify=True)
    if cfg.split == "group":
        if groups is None:
            raise InputError("data.split: 'group' needs data.group (a column naming the patient/donor)")
        return split_by_group(groups, test=cfg.test, val=cfg.val, seed=cfg.seed, labels=labels if stratify else None)
    if chroms is None:
        raise InputError("data.split: 'chromosome' needs chr:start-end headers or data.bed")
    keys = ("data.test_chromosomes", "data.val_chromosomes")
    return split_chromosomes(chroms, cfg.test_chromosomes, cfg.val_chromosomes, keys)


def encode_classes(labels: list, positive: Any | None, what: str) -> tuple[list[str], np.ndarray]:
    """Sorted class names (the positive class last for two classes) and class ids."""
    names = sorted({str(v) for v in labels})
    stray = [n for n in names if n != n.strip()]
    if stray:
        raise InputError(
            f"{what}: label {stray[0]!r} has leading or trailing spaces; expected none ({stray[0]!r} and "
            f"{stray[0].strip()!r} would be two classes); remove them"
        )
    if len(names) < 2:
        raise InputError(f"{what}: expected at least two classes, got {names}")
    if positive is not None:
        if str(positive) not in names:
            raise InputError(f"data.positive: expected one of {names}, got {positive!r}")
        if len(names) == 2:
            names = [n for n in names if n != str(positive)] + [str(positive)]
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index[str(v)] for v in labels], dtype=np.int64)


def class_ids(labels, classes: list[str], where: str) -> torch.Tensor:
    """Class ids of new labels under a trained run's classes; unknown classes are an error."""
    unknown = sorted({str(v) for v in labels} - set(classes))
    if unknown:
        raise InputError(f"{where}: expected classes {classes}, got {unknown}")
    return torch.tensor([classes.index(str(v)) for v in labels])


def class_head(n_classes: int) -> dict:
    if n_classes == 2:
        return {"task": "binary", "num_outputs": 1}
    return {"task": "multiclass", "num_outputs": n_classes}


def probabilities(out: torch.Tensor, n_classes: int) -> np.ndarray:
    out = out.float()
    return (torch.sigmoid(out) if n_classes == 2 else torch.softmax(out, -1)).numpy()


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


class FileTask:
    """A task whose data is one file (``data.file``), relative to the config file's folder."""

    def model_config_class(self) -> type:
        from ...models import SequenceClassifierConfig

        return SequenceClassifierConfig

    def paths(self, d, base: Path):
        return d.merged(file=absolute_path(base, d.file))


class ClassifierTask(FileTask):
    """Shared by the classification tasks: loss, metrics with baselines, curves, predictions."""


    def loss(self, state: dict) -> str:
        return "bce_with_logits" if len(state["classes"]) == 2 else "cross_entropy"

    def build_model(self, model_cfg):
        from ...models import SequenceClassifier

        return SequenceClassifier(model_cfg)

    def report(self, prep: Prepared, out: torch.Tensor) -> tuple[dict, dict]:
        """(metrics {model/baseline: {...}}, curves for the plots)."""
        n = len(prep.state["classes"])
        y = prep.test[1].numpy()
        prob = probabilities(out, n)
        metrics = {"model": ev.classification_metrics(y, prob)}
        curves = {"model": (y, prob)}
        for name, p in prep.baselines.items():
            metrics[name] = ev.classification_metrics(y, p)
            curves[name] = (y, p)
        return metrics, curves

    def prediction_rows(self, state: dict, ids: list, out: torch.Tensor) -> tuple[list[str], list[list]]:
        classes = state["classes"]
        prob = probabilities(out, len(classes))
        if prob.ndim == 1:
            prob = np.stack([1 - prob, prob], 1)
        header = ["id", "predicted", *[f"p_{c}" for c in classes]]
        rows = [[i, classes[int(np.argmax(p))], *(f"{v:.6g}" for v in p)] for i, p in zip(ids, prob)]
        return header, rows



def numeric_labels(labels: list, where) -> np.ndarray:
    """Numeric labels of a regression task; the first non-number is an error naming it."""
    out = np.empty(len(labels), dtype=np.float32)
    for k, v in enumerate(labels):
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise InputError(f"{where(k)}: expected a number for data.target='value', got {v!r}") from None
    if not np.isfinite(out).all():
        k = int(np.argmax(~np.isfinite(out)))
        raise InputError(f"{where(k)}: expected a finite number, got {labels[k]!r}")
    return out


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

