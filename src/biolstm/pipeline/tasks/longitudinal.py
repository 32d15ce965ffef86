"""The longitudinal task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...config import Config
from ...errors import InputError
from ...validation import check_choice
from .. import evaluation as ev
from .base import (
    SEED,
    TEST,
    VAL,
    ClassifierTask,
    Prepared,
    check_data_keys,
    check_train_classes,
    class_head,
    split_record,
)


# ---------------------------------------------------------------------------------- longitudinal
@dataclass
class LongitudinalData(Config):
    """data: section of a longitudinal outcome config (one row per visit in)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV/Parquet in long format
    id_col: str = "id"  # subject column
    time_col: str = "time"  # visit time column
    variables: list = field(default_factory=list)  # time-varying measurements (may be missing)
    static: list = field(default_factory=list)  # per-subject covariates joined before the head
    target: str = "status"  # per-subject outcome column
    positive: list = field(default_factory=lambda: [1])  # target values that count as the event
    inputs: str = "masked"  # masked (values + masks + time since observed + gaps) | mean_imputed
    layout: str = "long"  # long (one row per visit) | wide (one row per subject, columns time_1, var_1, ...)
    sep: str = "_"  # separator before the visit number in wide column names
    time_scale: float = 365.25  # time units per model unit (days -> years)
    test: float = 0.2
    val: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.file is None or not self.variables:
            raise InputError("data.file, data.variables: expected a table and at least one variable")
        check_data_keys(self, {
            "time_scale": (lambda v: v > 0, "a number > 0 (time units per model unit)"),
            "test": TEST, "val": VAL, "seed": SEED,
        })  # fmt: skip
        check_choice(self.inputs, ("masked", "mean_imputed"), "data.inputs")
        check_choice(self.layout, ("long", "wide"), "data.layout")


class LongitudinalTask(ClassifierTask):
    name = "longitudinal"
    data_class = LongitudinalData

    def _table(self, d, path, fill: list | None = None):
        """Per-subject sequences (values before a first observation filled with ``fill``) and the
        visit table in long form (for targets and training statistics)."""
        from ...data.longitudinal import read_longitudinal, wide_to_long
        from ...data.tables import read_table

        lon = read_longitudinal(
            path, d.id_col, d.time_col, list(d.variables), list(d.static),
            fill=dict(zip(d.variables, fill)) if fill is not None else None, layout=d.layout, sep=d.sep,
        )  # fmt: skip
        df = read_table(Path(path))
        if d.layout == "wide":
            df = wide_to_long(df, Path(path), d.id_col, [d.time_col, *d.variables], d.sep)
        return lon, df

    def _features(self, d, lon, state: dict) -> dict:
        V = len(d.variables)
        x = lon.x.copy()
        mean, std = np.array(state["mean"]), np.array(state["std"])
        vals, masks = x[..., :V], x[..., V : 2 * V]
        if d.inputs == "mean_imputed":  # observed values, training means elsewhere; no masks
            vals = np.where(masks > 0, vals, mean)
            feats = np.concatenate([(vals - mean) / std, x[..., 3 * V :] / d.time_scale], -1)
        else:
            feats = np.concatenate([(vals - mean) / std, masks, x[..., 2 * V :] / d.time_scale], -1)
        alive = np.arange(x.shape[1]) < lon.lengths[:, None]
        feats = np.where(alive[..., None], feats, 0.0).astype(np.float32)
        out = {"x": torch.from_numpy(feats), "lengths": torch.from_numpy(lon.lengths)}
        if d.static:
            s = (lon.static - np.array(state["static_mean"])) / np.array(state["static_std"])
            out["static"] = torch.from_numpy(s.astype(np.float32))
        return out

    def _targets(self, d, lon, df) -> np.ndarray:
        if d.target not in df.columns:
            raise InputError(f"{d.file}: expected a target column {d.target!r}, got {list(df.columns)}")
        first = df.groupby(d.id_col, sort=False)[d.target].first()
        return np.array([1 if first[i] in list(d.positive) else 0 for i in lon.ids], dtype=np.int64)

    def _check_classes(self, d, y: np.ndarray) -> None:
        """Both classes (event and no event) among the subjects, or an error naming the target."""
        counts = np.bincount(y, minlength=2)
        if counts.min() == 0:
            raise InputError(
                f"{d.file}: column {d.target!r}: with data.positive {list(d.positive)} every subject is in one "
                f"class ({int(counts[1])} with the event, {int(counts[0])} without); expected both classes "
                "(check data.positive against the column's values)"
            )

    def prepare(self, d, log) -> Prepared:
        log("reading visits")
        lon, df = self._table(d, d.file)
        y = self._targets(d, lon, df)
        self._check_classes(d, y)
        from ...data.splits import split_by_group

        s = split_by_group(lon.ids, test=d.test, val=d.val, seed=d.seed, labels=y)  # whole patients
        check_train_classes(y[s.train], ["no event", "event"], f"{d.file}: column {d.target!r}")
        train_ids = set(lon.ids[s.train].tolist())
        rows = df[df[d.id_col].isin(train_ids)]
        V = len(d.variables)
        mean = rows[list(d.variables)].mean().to_numpy(dtype=np.float64)
        if np.isnan(mean).any():
            v = d.variables[int(np.argmax(np.isnan(mean)))]
            raise InputError(
                f"{d.file}: column {v!r}: expected an observed value in the training split, got none in its "
                f"{len(s.train)} subjects (another data.seed, or leave it out of data.variables)"
            )
        std = rows[list(d.variables)].std().to_numpy(dtype=np.float64)
        st_mean = lon.static[s.train].mean(0) if d.static else np.zeros(0)
        st_std = lon.static[s.train].std(0) if d.static else np.zeros(0)
        state = {
            "classes": ["no event", "event"],
            "mean": mean.tolist(),
            "std": np.where(std > 0, std, 1.0).tolist(),
            "static_mean": st_mean.tolist(),
            "static_std": np.where(st_std > 0, st_std, 1.0).tolist(),
        }
        lon, _ = self._table(d, d.file, fill=list(mean))  # before a first observation: the training mean
        feats = self._features(d, lon, state)

        def part(idx):
            return {k: v[idx] for k, v in feats.items()}, torch.from_numpy(y[idx])

        # baseline: logistic regression on the last visit (mean-imputed) and the static covariates
        last = feats["x"][torch.arange(len(y)), feats["lengths"] - 1][:, :V].numpy()
        flat = np.concatenate([last, feats["static"].numpy()], 1) if d.static else last
        width = feats["x"].shape[-1]
        return Prepared(
            train=part(s.train),
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=lon.ids[s.test].tolist(),
            model_overrides={
                "input_channels": width,
                "static_size": len(d.static),
                "decay_variables": V if d.inputs == "masked" else 0,  # GRU-D decay of carried-forward values
                **class_head(2),
            },
            state=state,
            baselines={
                "majority": ev.majority_baseline(y[s.train], len(s.test), 2),
                "last_visit_logistic": ev.logistic_baseline(flat[s.train], y[s.train], flat[s.test], 2),
            },
            split=split_record("group", lon.ids, s, lon.ids),  # a group is one subject
        )

    def read_new(self, d, state: dict, path: str):
        lon, df = self._table(d, path, fill=state["mean"])
        y = torch.from_numpy(self._targets(d, lon, df)) if d.target in df.columns else None
        return self._features(d, lon, state), lon.ids.tolist(), y

