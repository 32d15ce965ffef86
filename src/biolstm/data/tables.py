"""One reader for the tables biolstm takes: CSV, TSV (``.tsv``, ``.tab``, ``.txt``) or Parquet."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError


def read_table(path: str | os.PathLike, **csv_options):
    """A DataFrame from ``path`` (the format from the suffix); ``csv_options`` go to
    ``pandas.read_csv``. ValueError names the file when it is missing or unreadable."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: expected a CSV/TSV/Parquet table, found no such file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        sep = "\t" if p.suffix.lower() in (".tsv", ".tab", ".txt") else ","
        return pd.read_csv(p, sep=sep, **csv_options)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise InputError(f"{p}: expected a CSV/TSV/Parquet table, got an error ({str(err).strip()})") from err
