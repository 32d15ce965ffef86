"""Sequence files in: FASTA and FASTQ, plain or gzipped, read with Biopython, streamed.

``read_sequences(path)`` yields one :class:`SequenceRecord` at a time, so a file larger than
memory can be scanned; ``load_labeled({label: path})`` collects labelled records for
training. Bad input raises :class:`SequenceFileError` naming the file, the record number and
what was expected.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._io import check_input_file
from ..errors import InputError


class SequenceFileError(InputError):
    """A sequence file that cannot be read as expected; the message names file and record."""


class SequenceRecord(NamedTuple):
    id: str  # first word of the header
    description: str  # the whole header line
    seq: str  # the residues, case kept (lowercase = soft-masked)
    quality: tuple[int, ...] | None = None  # FASTQ Phred scores, else None


_FASTA_SUFFIXES = {".fa", ".fasta", ".fna", ".ffn", ".faa", ".frn", ".fas"}
_FASTQ_SUFFIXES = {".fq", ".fastq"}


def _check_file(path, expected: str) -> Path:
    """:func:`biolstm._io.check_input_file` (missing, a folder, a FIFO, a symbolic-link loop,
    unreadable) raising this module's SequenceFileError."""
    try:
        return check_input_file(path, expected)
    except InputError as err:
        raise SequenceFileError(str(err)) from None


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


_BOM = "\xef\xbb\xbf"  # a UTF-8 byte-order mark read one character per byte


def _open(path: Path):
    """The file as text, gunzipped if it is gzip, one character per byte (latin-1): no decoder
    can fail somewhere in a buffer, so a stray byte is found in its record by :func:`_utf8`."""
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="latin-1")
    return open(path, encoding="latin-1")


def _utf8(text: str) -> str:
    """Text read one character per byte, as UTF-8; bytes that are not UTF-8 become lone
    surrogates (which :func:`_show_char` shows as the byte)."""
    return text if text.isascii() else text.encode("latin-1").decode("utf-8", "surrogateescape")


def _show_char(ch: str) -> str:
    """A character for a message: repr, or the raw byte of one that was not UTF-8."""
    return f"byte 0x{ord(ch) - 0xDC00:02X}" if 0xDC80 <= ord(ch) <= 0xDCFF else repr(ch)


def _not_ascii(text: str) -> int | None:
    """0-based position of the first non-ASCII character of ``text``, or None."""
    if text.isascii():
        return None
    return next(k for k, ch in enumerate(text) if not ch.isascii())


def _read_error(p: Path, gz: bool, n: int, fmt: str, err: BaseException) -> SequenceFileError:
    """One-line error for a failure while parsing record ``n + 1`` of ``p``."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, EOFError) and gz:
        return SequenceFileError(
            f"{p}: expected a complete gzip file, but it ends early (after record {n}); it may have been cut "
            f"short while copying or downloading ({first})"
        )
    if gz and isinstance(err, (zlib.error, gzip.BadGzipFile)):
        return SequenceFileError(f"{p}: record {n + 1}: expected intact gzip data, got a damaged stream ({first})")
    if "at the beginning of the file" in first:  # text before the first '>' header
        return SequenceFileError(f"{p}: line 1: expected a '>' header line before the first sequence")
    return SequenceFileError(f"{p}: record {n + 1}: expected valid {fmt.upper()}, got an error ({first})")


def detect_format(path: str | os.PathLike) -> str:
    """'fasta' or 'fastq' from the suffix (before .gz) or, failing that, the first character."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _FASTA_SUFFIXES:
        return "fasta"
    if suffixes and suffixes[-1] in _FASTQ_SUFFIXES:
        return "fastq"
    _check_file(p, "a FASTA or FASTQ file")
    try:
        with _open(p) as fh:
            first = fh.read(1)
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as err:
        raise SequenceFileError(f"{p}: expected a FASTA or FASTQ text file, could not read it ({err})") from err
    if first == ">":
        return "fasta"
    if first == "@":
        return "fastq"
    raise SequenceFileError(f"{p}: expected FASTA ('>') or FASTQ ('@') at the start, got {first!r}")


def read_sequences(path: str | os.PathLike, format: str = "auto") -> Iterator[SequenceRecord]:
    """Stream the records of a FASTA/FASTQ file (plain or gzipped).

    SequenceFileError names the file and the record: not a regular file, binary data, a letter
    outside ASCII (with its position), an empty record, a gzip file cut short, or what
    Biopython could not parse."""
    from Bio import SeqIO  # lazy: keeps `import biolstm` light

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or os.PathLike), got {type(path).__name__} {path!r:.40}")
    p = _check_file(path, "a FASTA/FASTQ file")
    fmt = detect_format(p) if format == "auto" else format
    if fmt not in ("fasta", "fastq"):
        raise SequenceFileError(f"format: expected 'auto', 'fasta' or 'fastq', got {format!r}")
    gz, n = _is_gzip(p), 0
    try:
        with _open(p) as fh:
            head = fh.read(8192)
            if "\x00" in head:
                at = head.index("\x00") + 1
                raise SequenceFileError(f"{p}: expected FASTA/FASTQ text, got binary data (NUL at character {at})")
            fh.seek(0)
            fh.read(len(_BOM) if head.startswith(_BOM) else 0)
            for n, rec in enumerate(SeqIO.parse(fh, "fastq" if fmt == "fastq" else "fasta"), start=1):
                rid, header = _utf8(rec.id), _utf8(rec.description)
                bad = [] if header.isascii() else [k for k, ch in enumerate(header) if 0xDC80 <= ord(ch) <= 0xDCFF]
                if bad:
                    raise SequenceFileError(
                        f"{p}: record {n}: expected a UTF-8 text header, got {_show_char(header[bad[0]])} at "
                        f"column {bad[0] + 2}"
                    )
                raw = bytes(rec.seq)  # Biopython keeps the one-character-per-byte text UTF-8 encoded
                seq = raw.decode("ascii") if raw.isascii() else _utf8(raw.decode("utf-8"))
                if not seq:
                    raise SequenceFileError(f"{p}: record {n} ({rid}): expected a sequence, got an empty one")
                k = _not_ascii(seq)
                if k is not None:
                    raise SequenceFileError(
                        f"{p}: record {n} ({rid}): expected ASCII sequence letters, got {_show_char(seq[k])} at "
                        f"position {k + 1}"
                    )
                qual = rec.letter_annotations.get("phred_quality") if fmt == "fastq" else None
                yield SequenceRecord(rid, header, seq, tuple(qual) if qual is not None else None)
    except SequenceFileError:
        raise
    except (ValueError, UnicodeDecodeError, EOFError, OSError, zlib.error) as err:
        raise _read_error(p, gz, n, fmt, err) from err
    if n == 0:
        raise SequenceFileError(f"{p}: expected at least one {fmt.upper()} record, found none")


def load_labeled(files: dict, format: str = "auto", origins: list | None = None) -> tuple[list[str], list[str], list]:
    """Records from one file per class: ``{label: path}`` -> (ids, sequences, labels)."""
    return load_sequences(files=files, format=format, origins=origins)


def read_label_table(path: str | os.PathLike, id_col: str = "id", label_col: str = "label") -> dict[str, str]:
    """``{record id: label}`` from a CSV/TSV table; errors name the file, column or line."""
    import pandas as pd

    p = _check_file(path, "a CSV/TSV label table")
    try:
        df = pd.read_csv(p, sep=None, engine="python", dtype=str, keep_default_na=False)
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as err:
        raise SequenceFileError(f"{p}: expected a CSV/TSV table, got an error ({err})") from err
    for c in (id_col, label_col):
        if c not in df.columns:
            raise SequenceFileError(f"{p}: expected a column {c!r}, got columns {list(df.columns)}")
    dup = df[id_col].duplicated()
    if dup.any():
        k = int(np.argmax(dup.to_numpy()))
        raise SequenceFileError(f"{p}: line {k + 2}: id {df[id_col].iloc[k]!r} appears twice; expected one label each")
    empty = df[label_col].str.strip() == ""
    if empty.any():
        k = int(np.argmax(empty.to_numpy()))
        raise SequenceFileError(f"{p}: line {k + 2}: expected a label for {df[id_col].iloc[k]!r}, got none")
    for c, why in ((id_col, "a record id never has them"), (label_col, "'a ' and 'a' would be two classes")):
        stray = df[c] != df[c].str.strip()
        if stray.any():
            k = int(np.argmax(stray.to_numpy()))
            raise SequenceFileError(
                f"{p}: line {k + 2}: column {c!r}: {df[c].iloc[k]!r} has leading or trailing spaces; expected "
                f"none ({why}); remove them"
            )
    return dict(zip(df[id_col], df[label_col]))


def header_label(record: SequenceRecord, field: int, sep: str | None = None) -> str:
    """Field ``field`` (0-based; 0 is the id) of the header split on ``sep`` (whitespace if None)."""
    parts = record.description.split(sep)
    if not -len(parts) <= field < len(parts):
        raise InputError(f"expected a header with field {field} (split on {sep!r}), got {record.description!r}")
    return parts[field].strip()


def labeled_records(
    files: dict | None = None,
    file: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    label_field: int | None = None,
    label_sep: str | None = None,
    format: str = "auto",
) -> Iterator[tuple[str, int, SequenceRecord, str]]:
    """Stream ``(path, record number, record, label)`` with labels from one of three places:

    - ``files={label: path}``: one file per class;
    - ``file=path, labels=table.csv``: a CSV/TSV with ``id`` and ``label`` columns keyed by
      record id (every record needs a label);
    - ``file=path, label_field=k``: field k of each header split on ``label_sep``.
    """
    if (files is None) == (file is None):
        raise InputError("data: expected either 'files' (one per class) or 'file', not both or neither")
    seen: dict[str, tuple] = {}  # record id -> (path, record number) where it first appeared

    def unique(path, n: int, rec: SequenceRecord) -> None:
        first = seen.setdefault(rec.id, (path, n))
        if first != (path, n):
            where = f"record {first[1]}" if first[0] == path else f"{first[0]}: record {first[1]}"
            raise SequenceFileError(
                f"{path}: record {n}: duplicate record id {rec.id!r} (first at {where}); expected unique ids "
                "(a record twice would be labelled twice and could fall on both sides of the split)"
            )

    if files is not None:
        if not isinstance(files, dict) or not files:
            raise InputError(f"files: expected a mapping {{label: path}} with at least one entry, got {files!r:.60}")
        for label, path in files.items():
            for n, rec in enumerate(read_sequences(path, format), start=1):
                unique(path, n, rec)
                yield path, n, rec, label
        return
    if (labels is None) == (label_field is None):
        raise InputError(f"data: for file {file}, expected either 'labels' (a CSV/TSV) or 'label_field'")
    table = read_label_table(labels) if labels is not None else None
    for n, rec in enumerate(read_sequences(file, format), start=1):
        unique(file, n, rec)
        if table is not None:
            if rec.id not in table:
                raise SequenceFileError(f"{labels}: expected a label for record {n} ({rec.id!r}) of {file}, found none")
            label = table[rec.id]
        else:
            try:
                label = header_label(rec, label_field, label_sep)
            except ValueError as err:
                raise SequenceFileError(f"{file}: record {n}: {err}") from None
        yield file, n, rec, label


def load_sequences(
    files: dict | None = None,
    file: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    label_field: int | None = None,
    label_sep: str | None = None,
    format: str = "auto",
    origins: list | None = None,
) -> tuple[list[str], list[str], list]:
    """Labelled records as (ids, sequences, labels); see :func:`labeled_records` for where the
    labels come from. ``origins``, if given a list, receives ``(path, record number)`` of each."""
    ids, seqs, out = [], [], []
    for path, n, rec, label in labeled_records(files, file, labels, label_field, label_sep, format):
        if origins is not None:
            origins.append((path, n))
        ids.append(rec.id)
        seqs.append(rec.seq)
        out.append(label)
    return ids, seqs, out


class IndexedSequences:
    """A FASTA/FASTQ file (plain or BGZF-compressed) indexed on disk and one-hot encoded on demand.

    Only record offsets are held in memory, so a file larger than memory can be trained on:
    pass it to :meth:`biolstm.train.Trainer.fit` as ``x`` (its :meth:`take` returns
    ``{"x": one-hot, "lengths": ...}`` for a batch of rows). ``ids`` are in file order.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        alphabet: str = "dna",
        ambiguity: str = "probabilities",
        soft_mask: str = "keep",
        max_length: int | None = None,
        format: str = "auto",
    ) -> None:
        from Bio import SeqIO

        p = _check_file(path, "a FASTA/FASTQ file")
        with open(p, "rb") as fh:
            head = fh.read(4)
        if head[:2] == b"\x1f\x8b" and head[3:4] != b"\x04":  # gzip without the BGZF extra field
            raise SequenceFileError(
                f"{p}: expected plain or BGZF-compressed (bgzip) text to index; plain gzip cannot be read "
                "at random, recompress it with `bgzip` or decompress it"
            )
        fmt = detect_format(p) if format == "auto" else format
        try:
            self._index = SeqIO.index(str(p), fmt)
        except (ValueError, OSError) as err:
            raise SequenceFileError(f"{p}: expected valid {fmt.upper()} with unique ids, got an error ({err})") from err
        self.path, self.ids = p, list(self._index.keys())
        if not self.ids:
            raise SequenceFileError(f"{p}: expected at least one {fmt.upper()} record, found none")
        self.options = {"alphabet": alphabet, "ambiguity": ambiguity, "soft_mask": soft_mask, "length": max_length}
        self.workers = 0  # DataLoader workers that encode batches (biolstm.train.inputs)

    def __len__(self) -> int:
        return len(self.ids)

    def sequence(self, i: int) -> str:
        return str(self._index[self.ids[i]].seq)

    def subset(self, rows) -> _Rows:
        """A view on some records (e.g. a split's indices) with the same ``take``."""
        return _Rows(self, np.asarray(rows, dtype=np.int64))

    def take(self, idx) -> dict:
        import torch

        from .encode import one_hot

        rows = [int(i) for i in idx]
        seqs = [self.sequence(i) for i in rows]
        try:
            x, lengths = one_hot(seqs, **self.options)
        except ValueError as err:
            raise SequenceFileError(f"{self.path}: {err} (records {[r + 1 for r in rows]})") from err
        return {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}


class _Rows:
    """Rows ``rows`` of a source that loads rows on demand (:class:`IndexedSequences`,
    :class:`~biolstm.data.genome.GenomeWindows`), read by as many DataLoader workers as it asks
    for (its ``workers``)."""

    def __init__(self, source, rows: np.ndarray) -> None:
        self.source, self.rows = source, rows

    @property
    def workers(self) -> int:
        return getattr(self.source, "workers", 0)

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx) -> dict:
        return self.source.take(self.rows[np.asarray(idx, dtype=np.int64)])
