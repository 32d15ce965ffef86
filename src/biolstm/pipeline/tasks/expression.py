"""The expression task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...config import Config
from ...errors import InputError
from ...validation import check_choice
from .base import (
    AT_LEAST_1,
    SEED,
    TEST,
    VAL,
    FoldKeys,
    OutcomeTask,
    Prepared,
    check_data_keys,
    make_split,
    outcome_baselines,
    split_outcome,
    split_record,
)
from .outcome import KINDS, Outcome


# ---------------------------------------------------------------------------------- expression
@dataclass
class ExpressionData(Config, FoldKeys):
    """data: section of an expression-profile config (one profile per sample to an outcome)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV/Parquet (one row per sample) or .h5ad
    label: str = "y"  # label column (obs column for h5ad)
    outcome: str = "auto"  # auto (2 classes: binary, more: multiclass) | binary | multiclass | multilabel | regression
    positive: str | int | list | None = None  # the positive class, or a list of classes counted as positive (binary)
    multilabel_sep: str = ";"  # separates the labels of one sample (outcome: multilabel)
    group: str | None = None  # donor/patient column for split='group'
    sample: str | None = None  # sample-name column (tables)
    layer: str | None = None  # h5ad layer instead of X
    projection: str = "pca"  # pca (fitted on the training split) | linear (learned) | none
    components: int = 32  # projection width
    split: str = "random"  # random (stratified for classes) | group
    test: float = 0.2  # test fraction
    val: float = 0.1  # validation fraction
    seed: int = 0  # seeds the split and the PCA

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected an expression matrix, got none")
        check_data_keys(self, {"components": AT_LEAST_1, "test": TEST, "val": VAL, "seed": SEED})
        check_choice(self.projection, ("pca", "linear", "none"), "data.projection")
        check_choice(self.split, ("random", "group"), "data.split")
        check_choice(self.outcome, KINDS, "data.outcome")


class ExpressionTask(OutcomeTask):
    """Each profile is one step of a sequence (a series of profiles for time courses) read by the
    recurrent layer after the projection; genes are standardised with training statistics."""

    name = "expression"
    data_class = ExpressionData
    model_from_data = ("input_channels", "projection", "projection_size", "task", "num_outputs")  # set from the data

    def _x(self, state, x: np.ndarray) -> torch.Tensor:
        z = (x - np.array(state["mean"], dtype=np.float32)) / np.array(state["std"], dtype=np.float32)
        return torch.from_numpy(z.astype(np.float32)).unsqueeze(1)  # (N, 1 step, G)

    def prepare(self, d, log) -> Prepared:
        from ...data import read_expression

        log("reading the expression matrix")
        e = read_expression(d.file, label=d.label, group=d.group, sample=d.sample, layer=d.layer)
        o = Outcome(d.outcome, d.positive, d.multilabel_sep, f"{d.file}: column {d.label!r}",
                    lambda k: f"{d.file}: sample {e.samples[k]!r}, column {d.label!r}")  # fmt: skip
        labels = list(e.labels)

        def split(strata):
            return make_split(d, len(labels), strata, groups=e.groups, class_names=getattr(o, "classes_", None))

        s, y, truth = split_outcome(o, labels, split, f"data.split ({d.split})")
        mean, std = e.x[s.train].mean(0), e.x[s.train].std(0)
        state = {"outcome": o.to_json(), "classes": getattr(o, "classes_", None), "genes": e.genes,
                 "mean": mean.tolist(), "std": np.where(std > 0, std, 1).tolist()}  # fmt: skip
        x = self._x(state, e.x)
        k = min(d.components, len(s.train) - 1, x.shape[-1])
        pca = None
        if d.projection == "pca":
            from sklearn.decomposition import PCA

            p = PCA(n_components=k, random_state=d.seed).fit(x[s.train, 0].numpy())
            pca = (torch.from_numpy(p.components_.astype(np.float32)), torch.from_numpy(p.mean_.astype(np.float32)))
        over = {
            "input_channels": x.shape[-1],
            "projection_size": 0 if d.projection == "none" else k,
            **o.head(),
        }
        if d.projection != "none":
            over["projection"] = d.projection
        def projected(raw: torch.Tensor) -> np.ndarray:  # standardised profiles (N, 1, G), projected as the model does
            return raw[:, 0].numpy() if pca is None else (raw[:, 0] - pca[1]).numpy() @ pca[0].numpy().T

        name = o.linear_kind() + ("_pca" if pca is not None else "")
        fits = outcome_baselines(o, truth[s.train], x[s.train], {name: projected})
        return Prepared(
            train=(x[s.train], y[s.train]),
            val=(x[s.val], y[s.val]) if len(s.val) else None,
            test=(x[s.test], y[s.test]),
            test_ids=[e.samples[i] for i in s.test],
            model_overrides=over,
            state=state,
            baselines={k: fit(x[s.test]) for k, fit in fits.items()},
            baseline_fits=fits,
            pca=pca,
            split=split_record(d.split, e.samples, s, e.groups if d.split == "group" else None),
        )

    def read_new(self, d, state: dict, path: str | None = None, labeled: bool = False):
        """(inputs, sample names, targets or None, the standardised profiles) of a new matrix."""
        from ...data import read_expression

        path = path or d.file
        e = read_expression(
            path, label=d.label if d.label else None, sample=d.sample, genes=state["genes"], layer=d.layer
        )
        y = None
        if e.labels is not None:
            o = self.outcome(state)
            o.where, o.at = f"{path}: column {d.label!r}", lambda k: f"{path}: sample {e.samples[k]!r}"
            y = o.transform(list(e.labels))
        x = self._x(state, e.x)
        return x, e.samples, y, x

