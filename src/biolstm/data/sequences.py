"""Sequence files in: FASTA and FASTQ, plain or gzipped, read with Biopython, streamed.

``read_sequences(path)`` yields one :class:`SequenceRecord` at a time, so a file larger than
memory can be scanned; ``load_labeled({label: path})`` collects labelled records for
training. Bad input raises :class:`SequenceFileError` naming the file, the record number and
what was expected.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple


class SequenceFileError(ValueError):
    """A sequence file that cannot be read as expected; the message names file and record."""


class SequenceRecord(NamedTuple):
    id: str  # first word of the header
    description: str  # the whole header line
    seq: str  # the residues, case kept (lowercase = soft-masked)
    quality: tuple[int, ...] | None = None  # FASTQ Phred scores, else None


_FASTA_SUFFIXES = {".fa", ".fasta", ".fna", ".ffn", ".faa", ".frn", ".fas"}
_FASTQ_SUFFIXES = {".fq", ".fastq"}


def _open(path: Path):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="ascii", errors="strict") if gz else open(path, encoding="ascii")


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
    try:
        with _open(p) as fh:
            first = fh.read(1)
    except (OSError, UnicodeDecodeError) as err:
        raise SequenceFileError(f"{p}: expected a FASTA or FASTQ text file, could not read it ({err})") from err
    if first == ">":
        return "fasta"
    if first == "@":
        return "fastq"
    raise SequenceFileError(f"{p}: expected FASTA ('>') or FASTQ ('@') at the start, got {first!r}")


def read_sequences(path: str | os.PathLike, format: str = "auto") -> Iterator[SequenceRecord]:
    """Stream the records of a FASTA/FASTQ file (plain or gzipped)."""
    from Bio import SeqIO  # lazy: keeps `import biolstm` light

    p = Path(path)
    if not p.is_file():
        raise SequenceFileError(f"{p}: expected a FASTA/FASTQ file, found no such file")
    fmt = detect_format(p) if format == "auto" else format
    if fmt not in ("fasta", "fastq"):
        raise SequenceFileError(f"format: expected 'auto', 'fasta' or 'fastq', got {format!r}")
    n = 0
    try:
        with _open(p) as fh:
            for n, rec in enumerate(SeqIO.parse(fh, "fastq" if fmt == "fastq" else "fasta"), start=1):
                seq = str(rec.seq)
                if not seq:
                    raise SequenceFileError(f"{p}: record {n} ({rec.id}): expected a sequence, got an empty one")
                qual = rec.letter_annotations.get("phred_quality") if fmt == "fastq" else None
                yield SequenceRecord(rec.id, rec.description, seq, tuple(qual) if qual is not None else None)
    except SequenceFileError:
        raise
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as err:
        raise SequenceFileError(f"{p}: record {n + 1}: expected valid {fmt.upper()}, got an error ({err})") from err
    if n == 0:
        raise SequenceFileError(f"{p}: expected at least one {fmt.upper()} record, found none")


def load_labeled(files: dict, format: str = "auto") -> tuple[list[str], list[str], list]:
    """Records from one file per class: ``{label: path}`` -> (ids, sequences, labels)."""
    if not files:
        raise ValueError("files: expected at least one {label: path} entry, got none")
    ids, seqs, labels = [], [], []
    for label, path in files.items():
        for rec in read_sequences(path, format):
            ids.append(rec.id)
            seqs.append(rec.seq)
            labels.append(label)
    return ids, seqs, labels
