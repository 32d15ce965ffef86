"""Fitted preprocessing steps with scikit-learn's conventions, saved as JSON (never pickled).

``fit`` on the training part only returns self; learned attributes end in ``_``; ``transform``
and ``inverse_transform`` apply them to any part or to new data; ``to_json``/``from_json``
carry them in a run's state.json so ``evaluate`` and ``predict`` apply exactly the same steps.
The outcome's encoding is :class:`biolstm.pipeline.tasks.outcome.Outcome`; series transforms
(log, Box-Cox, per-series scaling) are in :mod:`biolstm.pipeline.tasks.panel`.
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
