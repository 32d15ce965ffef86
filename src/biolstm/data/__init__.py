"""Biological data in: sequence files, encoders, and splits that do not leak."""

from .encode import DNA, PROTEIN, RNA, kmer_tokens, one_hot, reverse_complement
from .sequences import SequenceFileError, SequenceRecord, detect_format, load_labeled, read_sequences
from .splits import Split, chromosome_of, split_by_chromosome, split_random

__all__ = [
    "DNA",
    "PROTEIN",
    "RNA",
    "SequenceFileError",
    "SequenceRecord",
    "Split",
    "chromosome_of",
    "detect_format",
    "kmer_tokens",
    "load_labeled",
    "one_hot",
    "read_sequences",
    "reverse_complement",
    "split_by_chromosome",
    "split_random",
]
