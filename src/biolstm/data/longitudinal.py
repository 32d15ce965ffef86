"""Longitudinal tables (one row per visit) to padded sequences with missingness made explicit.

Missing lab values are not silently zero: each variable gets a mask channel (1 = observed)
and a time-since-last-observation channel, the inputs of GRU-D (Che et al. 2018). Values
are carried forward from the last observation (the empirical mean of the training part
before the first one), and irregular visit times become a gap channel, so a recurrent model
sees both what was measured and when.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError


class Longitudinal(NamedTuple):
    ids: np.ndarray  # (N,) subject ids
    x: np.ndarray  # (N, T, 3V + 1) float32: values | masks | time since last observation | gap
    lengths: np.ndarray  # (N,) visits per subject
    static: np.ndarray  # (N, S) per-subject covariates (first row's values)
    variables: list[str]  # the V time-varying variables
    static_columns: list[str]


def read_longitudinal(
    path: str | os.PathLike,
    id_col: str,
    time_col: str,
    variables: list[str],
    static: list[str] = (),
    fill: dict[str, float] | None = None,
    layout: str = "long",
    sep: str = "_",
) -> Longitudinal:
    """Build per-subject sequences from a long table (CSV/TSV/Parquet).

    ``fill`` gives the value used before a variable's first observation (default: its mean over
    the whole table; pass training-set means to avoid leakage). Non-numeric static columns are
    encoded as category codes. Errors name the file and the offending column.

    ``layout='wide'`` reads one row per subject whose visits are numbered columns
    ``<time_col><sep>1, <var><sep>1, <time_col><sep>2, ...`` (a visit with no time is absent).
    """
    from .._io import check_input_file
    from .tables import read_table

    p = check_input_file(path, "a CSV/TSV/Parquet table of visits")

    df = read_table(p)
    if layout == "wide":
        df = wide_to_long(df, p, id_col, [time_col, *variables], sep)
    elif layout != "long":
        raise InputError(f"layout: expected 'long' or 'wide', got {layout!r}")
    import pandas as pd

    missing = [c for c in [id_col, time_col, *variables, *static] if c not in df.columns]
    if missing:
        raise InputError(f"{p}: expected columns {missing}, got {list(df.columns)}")
    if df.empty:
        raise InputError(f"{p}: expected at least one visit row, got none")
    unseen = [c for c in variables if df[c].isna().all()]
    if unseen:
        raise InputError(
            f"{p}: column {unseen[0]!r}: expected at least one observed value, got none (missing at every visit); "
            "leave it out of the variables"
        )
    for c in [time_col, *variables]:
        if not pd.api.types.is_numeric_dtype(df[c]):
            got = df[c].dropna()
            got = f"values such as {got.iloc[0]!r}" if len(got) else f"no values ({df[c].dtype} column)"
            raise InputError(f"{p}: column {c!r}: expected numbers, got {got}")
        bad = np.isinf(df[c].to_numpy(dtype=np.float64))  # NaN is a missing value; inf is an error
        if c == time_col:
            bad |= df[c].isna().to_numpy()
        if bad.any():
            r = int(np.argmax(bad))
            raise InputError(
                f"{p}: column {c!r}: expected finite numbers{' (every visit needs a time)' if c == time_col else ''}, "
                f"got {df[c].iloc[r]} for {id_col} {df[id_col].iloc[r]!r} (data row {r + 1})"
            )
    df = df.sort_values([id_col, time_col], kind="stable")
    means = df[variables].mean()
    fill = {v: float(means[v]) if fill is None or v not in fill else float(fill[v]) for v in variables}
    groups = list(df.groupby(id_col, sort=False))
    V, T = len(variables), max(len(g) for _, g in groups)
    x = np.zeros((len(groups), T, 3 * V + 1), dtype=np.float32)
    lengths = np.zeros(len(groups), dtype=np.int64)
    stat = np.zeros((len(groups), len(static)), dtype=np.float32)
    codes = {
        c: {k: i for i, k in enumerate(sorted(df[c].dropna().astype(str).unique()))}
        for c in static
        if not pd.api.types.is_numeric_dtype(df[c])
    }
    for n, (_, g) in enumerate(groups):
        vals = g[variables].to_numpy(dtype=np.float64)  # (t, V) with NaN
        times = g[time_col].to_numpy(dtype=np.float64)
        seen = ~np.isnan(vals)
        last = np.array([fill[v] for v in variables])
        last_time = np.full(V, times[0])
        for t in range(len(g)):
            last = np.where(seen[t], vals[t], last)
            last_time = np.where(seen[t], times[t], last_time)
            x[n, t, :V] = last
            x[n, t, V : 2 * V] = seen[t]
            x[n, t, 2 * V : 3 * V] = times[t] - last_time
            x[n, t, 3 * V] = times[t] - times[t - 1] if t else 0.0
        lengths[n] = len(g)
        first = g.iloc[0]
        for k, c in enumerate(static):
            stat[n, k] = codes[c][str(first[c])] if c in codes else float(first[c])
            if not np.isfinite(stat[n, k]):
                raise InputError(f"{p}: static column {c!r}: expected a finite number for {id_col} {first[id_col]!r}, "
                                 f"got {first[c]}")  # fmt: skip
    ids = np.array([key for key, _ in groups])
    return Longitudinal(ids, x, lengths, stat, list(variables), list(static))


def wide_to_long(df, p: Path, id_col: str, stubs: list[str], sep: str = "_"):
    """One row per subject with numbered visit columns -> one row per visit (static columns kept)."""
    import pandas as pd

    if id_col not in df.columns:
        raise InputError(f"{p}: expected an id column {id_col!r}, got {list(df.columns)}")
    numbered = {
        s: [c for c in df.columns if str(c).startswith(f"{s}{sep}") and str(c)[len(s) + len(sep) :].isdigit()]
        for s in stubs
    }
    absent = [s for s, cols in numbered.items() if not cols]
    if absent:
        raise InputError(f"{p}: expected numbered visit columns such as {absent[0]}{sep}1, found none")
    long = pd.wide_to_long(df, stubnames=stubs, i=id_col, j="_visit", sep=sep).reset_index()
    return long.dropna(subset=[stubs[0]]).sort_values([id_col, stubs[0]], kind="stable")
