"""Fitted preprocessing steps with scikit-learn's conventions, saved as JSON (never pickled).

``fit`` on the training part only returns self; learned attributes end in ``_``; ``transform``
and ``inverse_transform`` apply them to any part or to new data; ``to_json``/``from_json``
carry them in a run's state.json so ``evaluate`` and ``predict`` apply exactly the same steps.
The outcome's encoding is :class:`biolstm.pipeline.tasks.outcome.Outcome`. For series (the
``panel`` task): :class:`TargetTransform` (log, log1p, Box-Cox), :class:`SeriesScaler` (per-series
or global standardisation of a long table's rows) and :class:`StaticEncoder` (per-series
covariates, text as one-hot categories).
"""

from __future__ import annotations

import warnings

import numpy as np


class Standardizer:
    """``(x - mean_) / scale_`` per feature (the last axis); missing values (NaN) are left out of
    the statistics, and a constant or unobserved feature gets scale 1."""

    def fit(self, x: np.ndarray) -> Standardizer:
        x = np.asarray(x, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x.reshape(-1, x.shape[-1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: mean 0, scale 1 below
            mean, sd = np.nanmean(x, 0), np.nanstd(x, 0)
        self.mean_ = np.nan_to_num(mean)
        self.scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_).astype(np.float32)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.scale_ + self.mean_

    def to_json(self) -> dict:
        return {"mean_": self.mean_.tolist(), "scale_": self.scale_.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> Standardizer:
        s = cls()
        s.mean_, s.scale_ = np.asarray(d["mean_"], dtype=np.float64), np.asarray(d["scale_"], dtype=np.float64)
        return s


TRANSFORMS = ("none", "log", "log1p", "boxcox")


class TargetTransform:
    """A variance-stabilising transform of a target: ``none``, ``log`` (values > 0), ``log1p``
    (values > -1) or ``boxcox`` (values > 0; ``lambda_`` fitted by maximum likelihood on the
    training values, :func:`scipy.stats.boxcox_normmax`). Missing values (NaN) stay missing.

    ``inverse_transform`` maps any real number back into the target's range (the Box-Cox
    inverse clips its argument at the boundary of the transform's image), so a model's output
    never becomes NaN when it is taken back to the target's units."""

    def __init__(self, kind: str = "none") -> None:
        if kind not in TRANSFORMS:
            raise ValueError(f"transform: expected one of {', '.join(map(repr, TRANSFORMS))}, got {kind!r}")
        self.kind = kind

    def _check(self, y: np.ndarray, what: str) -> None:
        low = {"log": 0.0, "boxcox": 0.0, "log1p": -1.0}.get(self.kind)
        seen = y[np.isfinite(y)]
        if low is not None and seen.size and seen.min() <= low:
            raise ValueError(f"transform {self.kind!r}: expected {what} > {low:g}, got {seen.min():g}")

    def fit(self, y: np.ndarray) -> TargetTransform:
        y = np.asarray(y, dtype=np.float64).ravel()
        self._check(y, "training values")
        self.lambda_ = None
        if self.kind == "boxcox":
            from scipy.stats import boxcox_normmax

            seen = y[np.isfinite(y)]
            if seen.size < 2 or np.ptp(seen) == 0:
                raise ValueError(f"transform 'boxcox': expected at least two distinct training values, got {seen.size}")
            self.lambda_ = float(boxcox_normmax(seen, method="mle"))
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        self._check(y, "values")
        if self.kind == "log":
            return np.log(y)
        if self.kind == "log1p":
            return np.log1p(y)
        if self.kind == "boxcox":
            from scipy.special import boxcox

            return boxcox(y, self.lambda_)
        return y.copy()

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "log":
            return np.exp(np.minimum(z, 700.0))
        if self.kind == "log1p":
            return np.expm1(np.minimum(z, 700.0))
        if self.kind == "boxcox":
            from scipy.special import inv_boxcox

            lam = self.lambda_
            if lam > 0:  # the image of (0, inf) is (-1/lam, inf)
                z = np.maximum(z, -1.0 / lam + 1e-12)
            elif lam < 0:  # the image is (-inf, -1/lam)
                z = np.minimum(z, -1.0 / lam - 1e-12)
            return inv_boxcox(z, lam)
        return z.copy()

    def to_json(self) -> dict:
        return {"kind": self.kind, "lambda_": self.lambda_}

    @classmethod
    def from_json(cls, d: dict) -> TargetTransform:
        t = cls(d["kind"])
        t.lambda_ = d.get("lambda_")
        return t


SCALES = ("per_series", "global", "none")


class SeriesScaler:
    """Standardisation of a long table's values: ``per_series`` (each series by the mean and
    standard deviation of its own training values), ``global`` (one mean and SD over all the
    training values) or ``none``. ``fit``, ``transform`` and ``inverse_transform`` take the
    rows' values and their series ids (``ids[k]`` is the series of row ``k``); the inverse
    broadcasts over trailing axes (a row may be a window's forecast of several steps).

    A series whose training values have no spread (one value, or a constant) gets the median
    scale of the other series (1 when there is none), not a scale of 0."""

    def __init__(self, mode: str = "per_series") -> None:
        if mode not in SCALES:
            raise ValueError(f"scale: expected one of {', '.join(map(repr, SCALES))}, got {mode!r}")
        self.mode = mode

    def fit(self, y: np.ndarray, ids) -> SeriesScaler:
        y, ids = np.asarray(y, dtype=np.float64).ravel(), np.asarray(ids, dtype=object).ravel()
        self.ids_ = list(dict.fromkeys(ids.tolist()))
        seen = np.isfinite(y)
        g_mean = float(y[seen].mean()) if seen.any() else 0.0
        g_sd = float(y[seen].std()) if seen.sum() > 1 else 0.0
        self.global_mean_, self.global_scale_ = g_mean, g_sd if g_sd > 0 else 1.0
        if self.mode == "none":
            self.mean_, self.scale_ = np.zeros(len(self.ids_)), np.ones(len(self.ids_))
        elif self.mode == "global":
            self.mean_ = np.full(len(self.ids_), self.global_mean_)
            self.scale_ = np.full(len(self.ids_), self.global_scale_)
        else:
            self.mean_, self.scale_ = self._stats(y, ids, self.ids_)
        return self

    def _stats(self, y: np.ndarray, ids: np.ndarray, order: list, pool=None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and SD of each series of ``order``; a series without spread gets the median of
        ``pool`` (the fitted scales; None: the other series' here)."""
        mean, sd = np.zeros(len(order)), np.zeros(len(order))
        for k, i in enumerate(order):
            v = y[(ids == i) & np.isfinite(y)]
            mean[k] = v.mean() if v.size else self.global_mean_
            sd[k] = v.std() if v.size > 1 else 0.0
        pool = sd[sd > 0] if pool is None else pool
        sd[sd <= 0] = float(np.median(pool)) if pool.size else 1.0
        return mean, sd

    def with_series(self, y: np.ndarray, ids) -> SeriesScaler:
        """A copy that also knows the series of ``ids`` it has not seen, fitted on ``y`` (their
        available history: new data at evaluate or predict time); known series keep their
        training statistics."""
        y, ids = np.asarray(y, dtype=np.float64).ravel(), np.asarray(ids, dtype=object).ravel()
        new = [i for i in dict.fromkeys(ids.tolist()) if i not in set(self.ids_)]
        out = SeriesScaler.from_json(self.to_json())
        if not new:
            return out
        if self.mode == "per_series":
            mean, sd = self._stats(y, ids, new, pool=self.scale_)
        else:
            mean, sd = np.full(len(new), self.mean_[0] if len(self.mean_) else 0.0), np.ones(len(new))
            if self.mode == "global":
                sd[:] = self.global_scale_
        out.ids_ = [*self.ids_, *new]
        out.mean_, out.scale_ = np.concatenate([self.mean_, mean]), np.concatenate([self.scale_, sd])
        return out

    def _index(self, ids) -> np.ndarray:
        pos = {i: k for k, i in enumerate(self.ids_)}
        ids = np.asarray(ids, dtype=object).ravel()
        unknown = [i for i in ids.tolist() if i not in pos]
        if unknown:
            raise ValueError(f"series {unknown[0]!r}: expected a series the scaler was fitted on (with_series adds it)")
        return np.array([pos[i] for i in ids.tolist()], dtype=np.int64)

    def _expand(self, a: np.ndarray, like: np.ndarray) -> np.ndarray:
        return a.reshape(a.shape + (1,) * (like.ndim - 1))

    def transform(self, y: np.ndarray, ids) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        k = self._index(ids)
        return (y - self._expand(self.mean_[k], y)) / self._expand(self.scale_[k], y)

    def inverse_transform(self, z: np.ndarray, ids) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        k = self._index(ids)
        return z * self._expand(self.scale_[k], z) + self._expand(self.mean_[k], z)

    def to_json(self) -> dict:
        return {"mode": self.mode, "ids_": list(self.ids_), "mean_": self.mean_.tolist(),
                "scale_": self.scale_.tolist(), "global_mean_": self.global_mean_,
                "global_scale_": self.global_scale_}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> SeriesScaler:
        s = cls(d["mode"])
        s.ids_ = list(d["ids_"])
        s.mean_, s.scale_ = np.asarray(d["mean_"], dtype=np.float64), np.asarray(d["scale_"], dtype=np.float64)
        s.global_mean_, s.global_scale_ = float(d["global_mean_"]), float(d["global_scale_"])
        return s


class StaticEncoder:
    """Per-series covariates as numbers: numeric columns standardised over the fitted series
    (a missing value becomes the mean, 0), text columns (and those named ``categorical``)
    one-hot over the categories seen in fitting; a category not seen then is all zeros."""

    def __init__(self, categorical: list | tuple = ()) -> None:
        self.categorical = list(categorical)

    def fit(self, rows: list[list], columns: list[str]) -> StaticEncoder:
        import pandas as pd

        self.columns_ = list(columns)
        self.categories_: dict = {}
        means, scales = [], []
        for k, c in enumerate(self.columns_):
            vals = [r[k] for r in rows]
            if c in self.categorical or any(isinstance(v, str) for v in vals):
                self.categories_[c] = sorted({str(v) for v in vals if v is not None}, key=str)
                continue
            x = pd.to_numeric(pd.Series(vals, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
            m = float(np.nanmean(x)) if np.isfinite(x).any() else 0.0
            s = float(np.nanstd(x)) if np.isfinite(x).sum() > 1 else 0.0
            means.append(m)
            scales.append(s if s > 0 else 1.0)
        self.mean_, self.scale_ = np.array(means), np.array(scales)
        return self

    @property
    def width(self) -> int:
        return len(self.mean_) + sum(len(v) for v in self.categories_.values())

    def names(self) -> list[str]:
        """The encoded columns' names: numeric columns as they are, categories as column=value."""
        out = [c for c in self.columns_ if c not in self.categories_]
        return out + [f"{c}={v}" for c in self.columns_ if c in self.categories_ for v in self.categories_[c]]

    def transform(self, rows: list[list]) -> np.ndarray:
        out = np.zeros((len(rows), self.width), dtype=np.float32)
        num = [k for k, c in enumerate(self.columns_) if c not in self.categories_]
        for j, k in enumerate(num):
            x = np.array([np.nan if r[k] is None else float(r[k]) for r in rows], dtype=np.float64)
            out[:, j] = np.nan_to_num((x - self.mean_[j]) / self.scale_[j])
        col = len(num)
        for k, c in enumerate(self.columns_):
            if c not in self.categories_:
                continue
            cats = {v: i for i, v in enumerate(self.categories_[c])}
            for n, r in enumerate(rows):
                i = cats.get(None if r[k] is None else str(r[k]))
                if i is not None:
                    out[n, col + i] = 1.0
            col += len(cats)
        return out

    def to_json(self) -> dict:
        return {"categorical": self.categorical, "columns_": self.columns_, "categories_": self.categories_,
                "mean_": self.mean_.tolist(), "scale_": self.scale_.tolist()}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> StaticEncoder:
        e = cls(d.get("categorical", ()))
        e.columns_, e.categories_ = list(d["columns_"]), dict(d["categories_"])
        e.mean_, e.scale_ = np.asarray(d["mean_"], dtype=np.float64), np.asarray(d["scale_"], dtype=np.float64)
        return e
