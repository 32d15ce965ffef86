"""Multivariate sequences from a long table: one row per (id, time) with any number of feature
columns, an outcome per id, variable lengths, irregular times and missing values.

Recordings, sensors and patient visits alike: each id becomes one sequence whose steps carry
the values (carried forward from the last observation), a mask per variable (1 = observed),
the time since each variable was last observed and the gap since the previous row (GRU-D's
inputs), with static columns joined before the head. Values are standardised with training
statistics (:class:`~biolstm.pipeline.preprocess.Standardizer`, fitted on the training ids'
rows only). ``longitudinal`` is this task under its older name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...config import Config
from ...errors import InputError
from ...validation import check_choice
from ..preprocess import Standardizer
from .base import (
    SEED,
    TEST,
    VAL,
    FoldKeys,
    OutcomeTask,
    Prepared,
    check_data_keys,
    outcome_baselines,
    split_outcome,
    split_record,
)
from .outcome import KINDS, Outcome


@dataclass
class MultivariateData(Config, FoldKeys):
    """data: section of a multivariate-sequence config (a long table: one row per id and time)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV/Parquet, one row per (id, time); or wide (see layout)
    id_col: str = "id"  # the sequence (subject, recording, sensor) column
    time_col: str = "time"  # the time column (any unit; irregular steps allowed)
    variables: list | None = None  # time-varying feature columns (may be missing); None: every other numeric column
    static: list = field(default_factory=list)  # per-id covariates joined before the head (text columns as codes)
    target: str | None = None  # the outcome column (one value per id)
    outcome: str = "auto"  # auto (2 classes: binary, more: multiclass) | binary | multiclass | multilabel | regression
    positive: str | int | list | None = None  # the positive class, or a list of classes counted as positive (binary)
    multilabel_sep: str = ";"  # separates the labels of one id (outcome: multilabel)
    group: str | None = None  # column of the unit split whole (e.g. the patient of several recordings; None: the id)
    inputs: str = "masked"  # masked (values + masks + time since observed + gaps) | mean_imputed
    summaries: bool = False  # also give the head each variable's last, mean, min, max, slope and share observed
    layout: str = "long"  # long (one row per time) | wide (one row per id, columns time_1, var_1, ...)
    sep: str = "_"  # separator before the step number in wide column names
    time_scale: float = 1.0  # time units per model unit (e.g. 365.25: days -> years)
    test: float = 0.2  # test fraction (of ids or groups)
    val: float = 0.1  # validation fraction
    seed: int = 0  # seeds the split

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected a table with one row per id and time, got none")
        if self.target is None:
            raise InputError("data.target: expected the outcome column (one value per id), got none")
        if self.variables is not None and (not self.variables or not all(isinstance(v, str) for v in self.variables)):
            raise InputError(f"data.variables: expected a list of column names or null, got {self.variables!r:.60}")
        check_data_keys(self, {
            "time_scale": (lambda v: v > 0, "a number > 0 (time units per model unit)"),
            "test": TEST, "val": VAL, "seed": SEED,
        })  # fmt: skip
        check_choice(self.inputs, ("masked", "mean_imputed"), "data.inputs")
        check_choice(self.layout, ("long", "wide"), "data.layout")
        check_choice(self.outcome, KINDS, "data.outcome")
        if self.summaries and self.inputs != "masked":
            raise InputError("data.summaries: needs data.inputs 'masked' (the summaries read the masks)")


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def summary_features(x: np.ndarray, lengths: np.ndarray, V: int) -> np.ndarray:
    """Per id and variable: the last, mean, min and max of the observed (standardised) values,
    the slope over time of the observed values, the share observed, and the number of rows and
    the time span: (N, 6V + 2). Unobserved throughout: zeros (the training mean)."""
    N = len(x)
    out = np.zeros((N, 6 * V + 2))
    for n in range(N):
        steps = x[n, : lengths[n]]
        vals, seen = steps[:, :V], steps[:, V : 2 * V] > 0
        t = np.cumsum(steps[:, -1])  # time since the first row (the gap channel summed)
        for v in range(V):
            o = seen[:, v]
            if not o.any():
                continue
            ov, ot = vals[o, v], t[o]
            slope = np.polyfit(ot, ov, 1)[0] if len(ov) > 1 and np.ptp(ot) > 0 else 0.0
            out[n, 6 * v : 6 * v + 6] = [ov[-1], ov.mean(), ov.min(), ov.max(), slope, o.mean()]
        out[n, -2:] = [lengths[n], t[-1]]
    return out


class MultivariateTask(OutcomeTask):
    name = "multivariate"
    data_class = MultivariateData
    model_from_data = ("input_channels", "static_size", "decay_variables", "task", "num_outputs")  # set from the data

    def _variables(self, d, df) -> list[str]:
        """data.variables, or every numeric column that is not the id, time, target, group or static."""
        import pandas as pd

        if d.variables is not None:
            return list(d.variables)
        skip = {d.id_col, d.time_col, d.target, d.group, *d.static}
        found = [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
        if not found:
            raise InputError(f"{d.file}: expected numeric feature columns besides {sorted(map(str, skip - {None}))}, "
                             "found none; name them in data.variables")  # fmt: skip
        return found

    def _table(self, d, path, fill: list | None = None, variables: list | None = None):
        """(per-id sequences with values before a first observation filled with ``fill``, the
        table in long form, the variables)."""
        from ...data.longitudinal import read_longitudinal, wide_to_long
        from ...data.tables import read_table

        df = read_table(Path(path))
        if variables is None:
            if d.layout == "wide" and d.variables is None:
                raise InputError("data.variables: expected the variables' names for layout 'wide', got none")
            variables = self._variables(d, df)
        if d.layout == "wide":
            df = wide_to_long(df, Path(path), d.id_col, [d.time_col, *variables], d.sep)
        lon = read_longitudinal(
            path, d.id_col, d.time_col, variables, list(d.static),
            fill=dict(zip(variables, fill)) if fill is not None else None, layout=d.layout, sep=d.sep,
        )  # fmt: skip
        return lon, df, variables

    def _per_id(self, d, lon, df, path, column: str) -> list:
        """One value of ``column`` per id (in the order of ``lon.ids``); ids whose rows disagree are an error."""
        if column not in df.columns:
            key = "target" if column == d.target else "group"
            raise InputError(f"{path}: expected a column {column!r} (data.{key}), got {list(df.columns)}")
        by = df.dropna(subset=[column]).groupby(d.id_col, sort=False)[column]
        n = by.nunique()
        if (n > 1).any():
            i = n.index[int(np.argmax(n.to_numpy() > 1))]
            vals = sorted(map(str, by.unique()[i]))[:4]
            raise InputError(f"{path}: column {column!r}: expected one value per {d.id_col}, got {vals} for "
                             f"{d.id_col} {_plain(i)!r}")  # fmt: skip
        first = by.first()
        missing = [i for i in lon.ids if i not in first.index]
        if missing:
            raise InputError(f"{path}: column {column!r}: expected a value for {d.id_col} {_plain(missing[0])!r}, "
                             "got none")  # fmt: skip
        return [first[i] for i in lon.ids]

    def _features(self, d, lon, state: dict) -> dict:
        V = len(state["variables"])
        x = lon.x.copy()
        scaler = Standardizer.from_json(state["scaler"])
        vals, masks = x[..., :V], x[..., V : 2 * V]
        if d.inputs == "mean_imputed":  # observed values, training means elsewhere; no masks
            vals = np.where(masks > 0, vals, scaler.mean_)
            feats = np.concatenate([scaler.transform(vals), x[..., 3 * V :] / d.time_scale], -1)
        else:
            feats = np.concatenate([scaler.transform(vals), masks, x[..., 2 * V :] / d.time_scale], -1)
        alive = np.arange(x.shape[1]) < lon.lengths[:, None]
        feats = np.where(alive[..., None], feats, 0.0).astype(np.float32)
        out = {"x": torch.from_numpy(feats), "lengths": torch.from_numpy(lon.lengths)}
        static = [Standardizer.from_json(state["static_scaler"]).transform(lon.static)] if d.static else []
        if d.summaries and "summary_scaler" in state:  # after the static covariates (the baselines read those)
            summ = summary_features(feats, lon.lengths, V)
            static.append(Standardizer.from_json(state["summary_scaler"]).transform(summ))
        if static:
            out["static"] = torch.from_numpy(np.concatenate(static, 1).astype(np.float32))
        return out

    def _outcome(self, d, state: dict | None, path: str, lon) -> Outcome:
        if state is None:
            return Outcome(d.outcome, d.positive, d.multilabel_sep, f"{path}: column {d.target!r}",
                           lambda k: f"{path}: {d.id_col} {_plain(lon.ids[k])!r}, column {d.target!r}")  # fmt: skip
        o = self.outcome(state)
        o.where, o.at = f"{path}: column {d.target!r}", lambda k: f"{path}: {d.id_col} {_plain(lon.ids[k])!r}"
        return o

    def baseline_features(self, d, feats: dict, V: int) -> dict:
        """Tabular features of each id for the baselines: the last row (mean-imputed) and a
        summary of every variable, each with the static covariates."""
        x, n = feats["x"].numpy(), feats["lengths"].numpy()
        last = x[np.arange(len(n)), n - 1][:, :V]
        summ = summary_features(x, n, V) if d.inputs == "masked" else last
        st = feats["static"].numpy()[:, : len(d.static)] if "static" in feats else np.zeros((len(n), 0))
        return {"last_visit": np.concatenate([last, st], 1), "summary": np.concatenate([summ, st], 1)}

    def prepare(self, d, log) -> Prepared:
        log("reading the table")
        lon, df, variables = self._table(d, d.file)
        labels = self._per_id(d, lon, df, d.file, d.target)
        groups = np.array(self._per_id(d, lon, df, d.file, d.group)) if d.group else lon.ids
        o = self._outcome(d, None, d.file, lon)

        def split(strata):  # whole ids (or groups): no subject is in two parts
            from ...data.splits import split_by_group, split_folds

            if d.folds:
                return split_folds(len(groups), d.folds, d.fold, val=d.val, seed=d.seed, strata=strata, groups=groups)
            return split_by_group(groups, test=d.test, val=d.val, seed=d.seed, labels=strata)

        s, y, truth = split_outcome(o, labels, split, f"{d.file}: column {d.target!r}")
        train_ids = set(lon.ids[s.train].tolist())
        rows = df[df[d.id_col].isin(train_ids)]
        unseen = [v for v in variables if rows[v].isna().all()]
        if unseen:
            raise InputError(
                f"{d.file}: column {unseen[0]!r}: expected an observed value in the training split, got none in its "
                f"{len(s.train)} ids (another data.seed, or leave it out of data.variables)"
            )
        scaler = Standardizer().fit(rows[variables].to_numpy(dtype=np.float64))  # the training rows only
        static = Standardizer().fit(lon.static[s.train]) if d.static else None
        state = {
            "outcome": o.to_json(),
            "classes": getattr(o, "classes_", None),
            "variables": variables,
            "scaler": scaler.to_json(),
            **({"static_scaler": static.to_json()} if static is not None else {}),
        }
        lon, _, _ = self._table(d, d.file, fill=list(scaler.mean_), variables=variables)  # before a first value
        feats = self._features(d, lon, state)
        if d.summaries:  # the summaries' scaler, fitted on the training ids
            summ = summary_features(feats["x"].numpy(), lon.lengths, len(variables))
            state["summary_scaler"] = Standardizer().fit(summ[s.train]).to_json()
            feats = self._features(d, lon, state)

        def part(idx):
            return {k: v[idx] for k, v in feats.items()}, y[idx]

        log("fitting baselines (training split only)")
        V = len(variables)

        def featurizer(name):
            return lambda raw: self.baseline_features(d, raw, V)[name]

        fits = outcome_baselines(o, truth[s.train], part(s.train)[0],
                                 {f"{k}_{o.linear_kind()}": featurizer(k) for k in ("last_visit", "summary")},
                                 count=lambda raw: len(raw["lengths"]))  # fmt: skip
        if o.kind_ in ("binary", "multiclass", "regression"):
            summary = featurizer("summary")
            trees = fit_boosted(o, summary(part(s.train)[0]), truth[s.train], d.seed)
            fits["summary_boosted_trees"] = lambda raw: trees(summary(raw))
        return Prepared(
            train=part(s.train),
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=lon.ids[s.test].tolist(),
            model_overrides={
                "input_channels": feats["x"].shape[-1],
                "static_size": feats["static"].shape[1] if "static" in feats else 0,
                "decay_variables": V if d.inputs == "masked" else 0,  # GRU-D decay of carried-forward values
                **o.head(),
            },
            state=state,
            baselines={k: fit(part(s.test)[0]) for k, fit in fits.items()},
            baseline_fits=fits,
            split=split_record("group", lon.ids, s, groups),  # a group is one id unless data.group names one
        )

    def read_new(self, d, state: dict, path: str | None = None, labeled: bool = False):
        """(inputs, ids, targets or None, the inputs again for the baselines) of a new table."""
        path = path or d.file
        if "scaler" not in state:  # a run from before the fitted scaler was saved
            state = {**state, "variables": list(d.variables),
                     "scaler": {"mean_": state["mean"], "scale_": state["std"]},
                     "static_scaler": {"mean_": state["static_mean"], "scale_": state["static_std"]}}  # fmt: skip
        lon, df, _ = self._table(d, path, fill=state["scaler"]["mean_"], variables=state["variables"])
        y = None
        if d.target in df.columns:
            labels = self._per_id(d, lon, df, path, d.target)
            if "outcome" not in state:  # a run from before outcomes: the event is a value in data.positive
                pos = [str(p) for p in (d.positive if isinstance(d.positive, list) else [d.positive])]
                labels = ["event" if str(v) in pos else "no event" for v in labels]
            y = self._outcome(d, state, path, lon).transform(labels)
        feats = self._features(d, lon, state)
        return feats, lon.ids.tolist(), y, feats


def fit_boosted(o: Outcome, f_train, truth_train, seed: int):
    """Gradient-boosted trees (scikit-learn's HistGradientBoosting, default settings) fitted on
    the training split: predict(f) gives class probabilities or values in the outcome's metric form."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if o.kind_ == "regression":
        return HistGradientBoostingRegressor(random_state=seed).fit(f_train, truth_train).predict
    clf = HistGradientBoostingClassifier(random_state=seed).fit(f_train, truth_train.astype(int))

    def predict(f):
        p = np.zeros((len(f), len(o.classes_)))
        p[:, clf.classes_] = clf.predict_proba(f)
        return p[:, 1] if o.kind_ == "binary" else p

    return predict


@dataclass
class LongitudinalData(MultivariateData):
    """data: section of a longitudinal outcome config (one row per visit in): the multivariate
    task under its older name, with visit times in days read in years."""

    target: str | None = "status"  # the outcome column (one value per id)
    time_scale: float = 365.25  # time units per model unit (days -> years)


class LongitudinalTask(MultivariateTask):
    name = "longitudinal"
    data_class = LongitudinalData
