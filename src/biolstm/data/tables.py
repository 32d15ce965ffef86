"""One reader for the tables biolstm takes: CSV, TSV (``.tsv``, ``.tab``, ``.txt``) or Parquet
(``.parquet``, ``.pq``, read with pyarrow, a dependency)."""

from __future__ import annotations

import os
from pathlib import Path

from .._io import check_input_file
from ..errors import InputError

PARQUET = (".parquet", ".pq")


def _one_line(err: BaseException) -> str:
    """An error's message on one line (pyarrow's may span several)."""
    return " ".join(str(err).split())


def read_table(path: str | os.PathLike, **csv_options):
    """A DataFrame from ``path`` (the format from the suffix); ``csv_options`` go to
    ``pandas.read_csv``. InputError (a ValueError) names the file when it is missing, damaged
    or unreadable, in one line."""
    import pandas as pd

    p = check_input_file(path, "a CSV/TSV/Parquet table")
    if p.suffix.lower() in PARQUET:
        return _read_parquet(p)
    compressed = p.suffix.lower() in (".gz", ".bz2", ".xz", ".zst", ".zip")
    kind = Path(p.stem).suffix.lower() if compressed else p.suffix.lower()  # x.tsv.gz is a TSV
    sep = "\t" if kind in (".tsv", ".tab", ".txt") else ","
    try:
        return pd.read_csv(p, sep=sep, **csv_options)
    except EOFError as err:  # a compressed table (.csv.gz, ...) cut short
        raise InputError(f"{p}: expected a complete compressed file, but it ends early ({_one_line(err)})") from err
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise InputError(f"{p}: expected a CSV/TSV/Parquet table, got an error ({_one_line(err)})") from err


def _read_parquet(p: Path):
    try:
        import pyarrow as pa
    except ImportError as err:  # a dependency, but a broken install should still read as one line
        raise InputError(f"{p}: reading Parquet needs pyarrow, which is not installed (pip install pyarrow)") from err
    import pandas as pd

    try:
        return pd.read_parquet(p, engine="pyarrow")  # the engine biolstm depends on
    except (pa.ArrowException, OSError, ValueError) as err:  # damaged: bad footer, thrift, pages, ...
        raise InputError(f"{p}: expected a Parquet table, got an error ({_one_line(err)})") from err
