"""Biological data in: sequence files, tables, encoders, and splits that do not leak."""

from .encode import DNA, PROTEIN, RNA, kmer_tokens, one_hot, reverse_complement
from .expression import Expression, read_expression
from .sequences import (
    IndexedSequences,
    SequenceFileError,
    SequenceRecord,
    detect_format,
    load_labeled,
    load_sequences,
    read_label_table,
    read_sequences,
)
from .splits import Split, chromosome_of, read_bed, split_by_chromosome, split_by_group, split_random
from .text import Tokenizer

__all__ = [
    "DNA",
    "PROTEIN",
    "RNA",
    "Expression",
    "IndexedSequences",
    "SequenceFileError",
    "SequenceRecord",
    "Split",
    "Tokenizer",
    "chromosome_of",
    "detect_format",
    "kmer_tokens",
    "load_labeled",
    "load_sequences",
    "one_hot",
    "read_bed",
    "read_expression",
    "read_label_table",
    "read_sequences",
    "reverse_complement",
    "split_by_chromosome",
    "split_by_group",
    "split_random",
]
