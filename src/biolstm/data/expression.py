"""Gene-expression matrices in: CSV/TSV/Parquet tables and AnnData ``.h5ad`` files.

``read_expression(path)`` returns samples x genes as float32 with the sample labels (a table
column, or an ``obs`` column of an AnnData file) and optional groups (donor, patient) for
leak-free splits. Non-numeric cells and missing values are errors naming the file, the
gene and the sample, never silent zeros.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError


class Expression(NamedTuple):
    x: np.ndarray  # (N, G) float32
    labels: np.ndarray | None  # (N,) as read (strings or numbers), or None
    genes: list[str]
    samples: list[str]
    groups: np.ndarray | None  # (N,) group per sample, or None


def read_expression(
    path: str | os.PathLike,
    label: str | None = "y",
    group: str | None = None,
    sample: str | None = None,
    genes: list[str] | None = None,
    layer: str | None = None,
) -> Expression:
    """Samples x genes from a table (one row per sample; ``label``/``group``/``sample`` name
    columns, every other column is a gene) or from ``.h5ad`` (``X`` or ``layers[layer]``;
    ``label`` and ``group`` name ``obs`` columns). ``genes`` picks and orders the genes."""
    from .._io import check_input_file

    p = check_input_file(path, "an expression matrix (CSV/TSV/Parquet/h5ad)")
    if p.suffix.lower() == ".h5ad":
        return _read_h5ad(p, label, group, genes, layer)
    import pandas as pd

    from .tables import read_table

    df = read_table(p)
    meta = [c for c in (label, group, sample) if c is not None]
    missing = [c for c in meta if c not in df.columns]
    if missing:
        raise InputError(f"{p}: expected columns {missing}, got columns {list(df.columns)[:8]}...")
    unnamed = [c for c in df.columns if str(c).startswith("Unnamed:")]
    names = df[sample].astype(str).tolist() if sample else [str(k) for k in range(len(df))]
    cols = genes if genes is not None else [c for c in df.columns if c not in meta and c not in unnamed]
    absent = [g for g in cols if g not in df.columns]
    if absent:
        raise InputError(f"{p}: expected gene columns {absent[:5]}, found none of them")
    if unnamed and sample is None:  # a row-name column written by R or pandas
        names = df[unnamed[0]].astype(str).tolist()
    x = np.empty((len(df), len(cols)), dtype=np.float32)
    for k, c in enumerate(cols):
        col = pd.to_numeric(df[c], errors="coerce")
        with np.errstate(over="ignore"):
            as32 = col.to_numpy(dtype=np.float32)
        bad = col.isna() | np.isinf(as32)  # also values beyond float32's range
        if bad.any():
            r = int(np.argmax(bad.to_numpy()))
            cell = df[c].iloc[r]
            got = "a missing value" if pd.isna(cell) else repr(cell) if isinstance(cell, str) else str(cell)
            raise InputError(
                f"{p}: gene column {c!r}: expected finite numbers, got {got} in sample {names[r]!r} (line {r + 2})"
            )
        x[:, k] = as32
    labels = df[label].to_numpy() if label else None
    return Expression(x, labels, [str(c) for c in cols], names, df[group].to_numpy() if group else None)


def _read_h5ad(p: Path, label, group, genes, layer) -> Expression:
    try:
        import anndata
    except ImportError as err:  # pragma: no cover - anndata is a dependency
        raise ImportError("reading .h5ad needs the anndata package: pip install anndata") from err
    try:
        ad = anndata.read_h5ad(p, backed=None)
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{p}: expected an AnnData .h5ad file, got an error ({err})") from err
    for c in (label, group):
        if c is not None and c not in ad.obs.columns:
            raise InputError(f"{p}: expected an obs column {c!r}, got obs columns {list(ad.obs.columns)}")
    if genes is not None:
        absent = [g for g in genes if g not in ad.var_names]
        if absent:
            raise InputError(f"{p}: expected genes {absent[:5]} in var_names, found none of them")
        ad = ad[:, genes]
    if layer is not None and layer not in ad.layers:
        raise InputError(f"{p}: expected a layer {layer!r}, got layers {list(ad.layers)}")
    m = ad.layers[layer] if layer is not None else ad.X
    x = np.asarray(m.toarray() if hasattr(m, "toarray") else m, dtype=np.float32)
    if not np.isfinite(x).all():
        r, c = map(int, np.argwhere(~np.isfinite(x))[0])
        raise InputError(
            f"{p}: expected finite values, got {x[r, c]} for gene {ad.var_names[c]!r} in {ad.obs_names[r]!r}"
        )
    return Expression(
        x,
        ad.obs[label].to_numpy() if label else None,
        list(map(str, ad.var_names)),
        list(map(str, ad.obs_names)),
        ad.obs[group].to_numpy() if group else None,
    )
