"""Panels of time series from a long table: one row per (series id, time).

Each row holds the target value, dynamic covariates (known per time, missing values allowed)
and static covariates (one value per series; text columns are categories). A table without an
id column is one series. :func:`read_panel` returns the series sorted by time, each with its
own arrays; missing target values stay NaN (the task masks them), and every error names the
file, the column and the series or line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError


def _plain(v):
    return v.item() if hasattr(v, "item") else v


class Panel(NamedTuple):
    ids: list  # series ids in order of first appearance (plain Python values)
    times: list[np.ndarray]  # per series (T_i,) times, increasing
    y: list[np.ndarray]  # per series (T_i,) float64 target values; NaN where missing
    cov: list[np.ndarray]  # per series (T_i, C) float64 dynamic covariates; NaN where missing
    static: list[list]  # per series one value per static column (as read: numbers or text)
    covariates: list[str]  # the dynamic covariate columns (C)
    static_cols: list[str]  # the static columns


def read_panel(
    path: str | os.PathLike,
    id_col: str | None,
    time_col: str,
    target: str,
    covariates: list[str] = (),
    static: list[str] = (),
) -> Panel:
    """A long table (CSV, TSV or Parquet) as a :class:`Panel`; ``id_col`` None (or a table
    with one id) is a single series. InputError names the file and what is wrong: a missing
    column, a non-numeric target or covariate, a time repeated within a series, a static
    column whose value changes within a series, a series without any observed target."""
    import pandas as pd

    from .tables import read_table

    p = Path(path)
    df = read_table(p)
    need = [c for c in (time_col, target, *covariates, *static) if c is not None]
    if id_col is not None:
        need.insert(0, id_col)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"{p}: expected columns {missing}, got columns {[str(c) for c in df.columns]}")
    if len(df) == 0:
        raise InputError(f"{p}: expected rows of data, got an empty table")
    if id_col is None:
        df = df.assign(__series__=p.stem)
        id_col = "__series__"
    if df[id_col].isna().any():
        row = int(np.argmax(df[id_col].isna().to_numpy())) + 2
        raise InputError(f"{p}: line {row}: column {id_col!r}: expected a series id, got an empty cell")
    if df[time_col].isna().any():
        row = int(np.argmax(df[time_col].isna().to_numpy())) + 2
        raise InputError(f"{p}: line {row}: column {time_col!r}: expected a time, got an empty cell")
    dup = df.duplicated([id_col, time_col])
    if dup.any():
        row = int(np.argmax(dup.to_numpy()))
        who = "" if id_col == "__series__" else f"{id_col} {_plain(df[id_col].iloc[row])!r} has "
        raise InputError(f"{p}: line {row + 2}: {who}time {_plain(df[time_col].iloc[row])!r} appears twice; "
                         "expected one row per series and time")  # fmt: skip
    for c in (target, *covariates):
        col = pd.to_numeric(df[c], errors="coerce")
        bad = (col.isna() & df[c].notna()) | ~np.isfinite(col.fillna(0).to_numpy(dtype=np.float64))
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise InputError(f"{p}: line {row + 2}: column {c!r}: expected a finite number or an empty cell, got "
                             f"{_plain(df[c].iloc[row])!r}")  # fmt: skip
        df[c] = col.astype(np.float64)
    ids, times, ys, covs, statics = [], [], [], [], []
    for key, g in df.groupby(id_col, sort=False):
        g = g.sort_values(time_col, kind="stable")
        y = g[target].to_numpy(dtype=np.float64)
        if np.isnan(y).all():
            raise InputError(f"{p}: column {target!r}: {id_col} {_plain(key)!r} has no observed value; expected "
                             "at least one (drop the series)")  # fmt: skip
        row = []
        for c in static:
            vals = g[c].dropna().unique()
            if len(vals) > 1:
                shown = sorted(map(str, vals))[:3]
                raise InputError(f"{p}: column {c!r}: expected one value per {id_col} (a static covariate), got "
                                 f"{shown} for {id_col} {_plain(key)!r}")  # fmt: skip
            row.append(_plain(vals[0]) if len(vals) else None)
        ids.append(_plain(key))
        times.append(g[time_col].to_numpy())
        ys.append(y)
        covs.append(g[list(covariates)].to_numpy(dtype=np.float64).reshape(len(g), len(covariates)))
        statics.append(row)
    return Panel(ids, times, ys, covs, statics, list(covariates), list(static))


def time_step(times: np.ndarray):
    """The median step between successive times of one series (numbers, or a timedelta for
    dates); None for a series of one time."""
    if len(times) < 2:
        return None
    t = np.asarray(times)
    if np.issubdtype(t.dtype, np.number):
        return float(np.median(np.diff(t.astype(np.float64))))
    import pandas as pd

    d = pd.to_datetime(pd.Series(t), errors="coerce")
    if d.isna().any():
        return None
    return d.diff().dropna().median()


def future_times(times: np.ndarray, horizon: int, step=None) -> list:
    """The ``horizon`` times after the last of ``times``: the last time plus 1..horizon
    ``step`` (the series' median step unless given); None where times are neither numbers nor
    dates."""
    step = time_step(times) if step is None else step
    last = np.asarray(times)[-1]
    if step is None:
        return [None] * horizon
    if isinstance(step, float):
        out = [float(last) + h * step for h in range(1, horizon + 1)]
        return [int(v) if float(v).is_integer() and np.issubdtype(np.asarray(times).dtype, np.integer) else v
                for v in out]  # fmt: skip
    import pandas as pd

    t0 = pd.to_datetime(last)
    return [str(t0 + h * step) for h in range(1, horizon + 1)]
