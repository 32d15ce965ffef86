"""Time series for forecasting: reading, splitting in time, windows, scaling, baselines, metrics.

The order of operations is what keeps a forecast honest: split the series in time first,
fit the scaler on the training part only, and cut windows inside each part, so no window
sees values from the part it is scored on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError


def _show(v) -> str:
    """repr of a table cell without numpy's type wrapper (1, not np.int64(1))."""
    return repr(v.item() if hasattr(v, "item") else v)


class Series(NamedTuple):
    time: np.ndarray  # (N,) time stamps as read
    values: np.ndarray  # (N, F) float32
    columns: list[str]  # names of the value columns


def read_series(path: str | os.PathLike, time_col: str = "time", value_cols: list[str] | None = None) -> Series:
    """A wide time-series table (CSV, TSV or Parquet) sorted by time; ValueError names the file,
    column and row of what is wrong (missing columns, non-numeric values, repeated times)."""
    import pandas as pd

    from .tables import read_table

    p = Path(path)
    df = read_table(p)
    if time_col not in df.columns:
        raise InputError(f"{p}: expected a time column {time_col!r}, got columns {list(df.columns)}")
    cols = value_cols or [c for c in df.columns if c != time_col]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{p}: expected value columns {missing}, got columns {list(df.columns)}")
    if df[time_col].duplicated().any():
        row = int(np.argmax(df[time_col].duplicated().to_numpy())) + 2  # 1-based, after the header
        raise InputError(
            f"{p}: line {row}: time {_show(df[time_col].iloc[row - 2])} appears twice; expected one row per time"
        )
    df = df.sort_values(time_col)
    values = np.empty((len(df), len(cols)), dtype=np.float32)
    for k, c in enumerate(cols):
        col = pd.to_numeric(df[c], errors="coerce")
        with np.errstate(over="ignore"):
            as32 = col.to_numpy(dtype=np.float32)
        bad = (col.isna() & df[c].notna()) | np.isinf(as32)  # an empty cell is a gap; text, inf or > 3.4e38 is wrong
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise InputError(
                f"{p}: column {c!r}: expected finite numbers, got {_show(df[c].iloc[row])} at time "
                f"{_show(df[time_col].iloc[row])}"
            )
        values[:, k] = as32
    return Series(df[time_col].to_numpy(), values, list(cols))


class TimeSplit(NamedTuple):
    train: slice
    val: slice
    test: slice


def split_in_time(n: int, test: float | int = 0.2, val: float | int = 0.1) -> TimeSplit:
    """Contiguous train | val | test blocks of an n-step series (fractions or step counts)."""
    n_test = round(test * n) if isinstance(test, float) else int(test)
    n_val = round(val * n) if isinstance(val, float) else int(val)
    if n_test <= 0 or n_val < 0 or n_test + n_val >= n:
        raise InputError(
            f"test, val: expected sizes leaving a training part of a {n}-step series, got test={test}, val={val}"
        )
    a, b = n - n_test - n_val, n - n_test
    return TimeSplit(slice(0, a), slice(a, b), slice(b, n))


def make_windows(
    values: np.ndarray, lookback: int, horizon: int = 1, stride: int = 1, context: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(W, lookback, F)`` and targets ``(W, horizon, F)`` from one contiguous block.

    ``context`` (the values just before the block, e.g. the end of the training part) lets the
    first windows of a validation or test block look back across the boundary without any
    target leaving the block.
    """
    if lookback < 1 or horizon < 1 or stride < 1:
        raise InputError(f"lookback, horizon, stride: expected ints >= 1, got {lookback}, {horizon}, {stride}")
    v = np.asarray(values, dtype=np.float32)
    v = v[:, None] if v.ndim == 1 else v
    start = 0
    if context is not None:
        c = np.asarray(context, dtype=np.float32)
        c = (c[:, None] if c.ndim == 1 else c)[-lookback:]
        start = len(c)
        v = np.concatenate([c, v])
    first_target = max(lookback, start)
    last = len(v) - horizon
    idx = np.arange(first_target, last + 1, stride)
    if len(idx) == 0:
        raise InputError(
            f"values: a block of {len(values)} steps is too short for lookback={lookback} and horizon={horizon}"
        )
    X = np.stack([v[t - lookback : t] for t in idx])
    Y = np.stack([v[t : t + horizon] for t in idx])
    return X, Y


def naive_forecast(X: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last observed value: ``(W, horizon, F)``."""
    return np.repeat(X[:, -1:], horizon, axis=1)


def seasonal_naive_forecast(X: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the value one season back: y_{t+h} = y_{t+h-season} (needs lookback >= season)."""
    if X.shape[1] < season:
        raise InputError(f"season: expected at most the lookback ({X.shape[1]}), got {season}")
    reps = -(-horizon // season)
    return np.concatenate([X[:, -season:]] * reps, axis=1)[:, :horizon]


def mase_scale(values: np.ndarray, season: int = 1) -> float:
    """The MASE scale: the in-sample seasonal-naive mean absolute error of ``values`` (lag
    ``season``; 1 is the naive forecast), pairs with a missing value left out; NaN when no pair
    is observed. The tasks compute it on every value before the test block (training and
    validation parts), so the scale does not change when a validation block is used."""
    v = np.asarray(values, dtype=np.float64)
    v = v.reshape(len(v), -1)
    if len(v) <= season:
        return float("nan")
    d = np.abs(v[season:] - v[:-season])
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else float("nan")


def forecast_metrics(
    y: np.ndarray, pred: np.ndarray, train: np.ndarray | None = None, season: int = 1, scale: float | None = None
) -> dict[str, float]:
    """MAE, RMSE, sMAPE (%) and MASE: the MAE divided by ``scale``, or without it by
    :func:`mase_scale` of ``train`` (the values before the test block) at lag ``season``."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    err = pred - y
    if scale is None:
        scale = mase_scale(train, season) if train is not None else float("nan")
    denom = np.abs(y) + np.abs(pred)
    smape = np.where(denom > 0, 2 * np.abs(err) / np.where(denom > 0, denom, 1), 0.0)
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "smape": float(100 * np.mean(smape)),
        "mase": float(np.mean(np.abs(err)) / scale) if scale > 0 else float("nan"),
    }
