"""One-hot encoding of DNA, RNA and protein, with IUPAC codes and soft-masking; k-mer tokens.

``one_hot(seqs)`` returns an array ``(N, T, C)`` (float32, batch-first) and the lengths.
DNA channels are A, C, G, T (RNA: A, C, G, U); an ambiguity code becomes the probabilities of
the bases it stands for (N -> 0.25 each) by default, or all zeros with ``ambiguity='zeros'``.
Lowercase (soft-masked repeats) is read as its base; ``soft_mask='channel'`` adds one more
channel that is 1 at lowercase positions. Protein channels are the 20 amino acids in the order
``ACDEFGHIKLMNPQRSTVWY``; X, B, Z, J spread over what they stand for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError

DNA = "ACGT"
RNA = "ACGU"
PROTEIN = "ACDEFGHIKLMNPQRSTVWY"

_IUPAC = {  # nucleotide ambiguity codes (T and U interchangeable)
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT",
    "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}  # fmt: skip
_PROTEIN_AMBIG = {"X": PROTEIN, "B": "DN", "Z": "EQ", "J": "IL", "U": "C", "O": "K"}


def _table(alphabet: str, ambiguity: str) -> tuple[np.ndarray, np.ndarray]:
    """(256, C) float rows per byte, and a bool (256,) of bytes that are valid."""
    letters = {"dna": DNA, "rna": RNA, "protein": PROTEIN}[alphabet]
    C = len(letters)
    table = np.zeros((256, C), dtype=np.float32)
    valid = np.zeros(256, dtype=bool)
    if alphabet == "protein":
        codes = {a: a for a in PROTEIN} | _PROTEIN_AMBIG
        index = {a: k for k, a in enumerate(PROTEIN)}
    else:
        codes = _IUPAC
        index = {b: k for k, b in enumerate(DNA)}  # RNA's U sits in T's place
    for code, meaning in codes.items():
        row = np.zeros(C, dtype=np.float32)
        if len(meaning) == 1 or ambiguity == "probabilities":
            for m in meaning:
                row[index[m]] = 1.0 / len(meaning)
        for ch in (code, code.lower()):
            table[ord(ch)] = row
            valid[ord(ch)] = True
    return table, valid


class EncodingError(InputError):
    """A character outside the alphabet: ``index`` (which sequence) and ``position`` (1-based)."""

    def __init__(self, message: str, index: int, position: int) -> None:
        super().__init__(message)
        self.index, self.position = index, position


def one_hot(
    seqs: Sequence[str],
    alphabet: str = "dna",
    ambiguity: str = "probabilities",
    soft_mask: str = "keep",
    length: int | None = None,
    origins: Sequence[tuple] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode sequences as ``(N, T, C)`` float32, padded with zeros to the longest (or
    ``length``, truncating longer ones), and their lengths ``(N,)``.

    Raises EncodingError naming the sequence (``seqs[i]``, or the file and record number from
    ``origins[i] = (path, record)`` as :func:`load_sequences` fills it) and the position of a
    character outside the alphabet.
    """
    if alphabet not in ("dna", "rna", "protein"):
        raise ValueError(f"alphabet: expected 'dna', 'rna' or 'protein', got {alphabet!r}")
    if ambiguity not in ("probabilities", "zeros"):
        raise ValueError(f"ambiguity: expected 'probabilities' or 'zeros', got {ambiguity!r}")
    if soft_mask not in ("keep", "channel"):
        raise ValueError(f"soft_mask: expected 'keep' or 'channel', got {soft_mask!r}")
    if isinstance(seqs, str):
        raise TypeError("seqs: expected a list of sequences, got a single string")
    if not isinstance(seqs, Sequence) or not all(isinstance(s, str) for s in seqs):
        bad = seqs if not isinstance(seqs, Sequence) else next(s for s in seqs if not isinstance(s, str))
        raise TypeError(f"seqs: expected a list of str sequences, got {type(bad).__name__} {bad!r:.40}")
    table, valid = _table(alphabet, ambiguity)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    T = int(length if length is not None else (lengths.max() if len(seqs) else 0))
    C = table.shape[1] + (1 if soft_mask == "channel" else 0)
    out = np.zeros((len(seqs), T, C), dtype=np.float32)
    step = 4096  # sequences per array operation: bounds the temporaries of a large batch
    if all(_encode_all_at_once(seqs[k : k + step], lengths[k : k + step], T, table, valid, soft_mask,
                               out[k : k + step]) for k in range(0, len(seqs), step)):  # fmt: skip
        return out, np.minimum(lengths, T)
    # a letter outside the alphabet somewhere: sequence by sequence, to name it
    where = (lambda i: f"{origins[i][0]}: record {origins[i][1]}") if origins is not None else (lambda i: f"seqs[{i}]")
    for i, s in enumerate(seqs):
        try:
            b = np.frombuffer(s[:T].encode("ascii"), dtype=np.uint8)
        except UnicodeEncodeError as err:
            raise EncodingError(
                f"{where(i)}: expected ASCII {alphabet.upper()} letters, got {s[err.start]!r} at "
                f"position {err.start + 1}",
                i,
                err.start + 1,
            ) from err
        bad = ~valid[b]
        if bad.any():
            pos = int(np.argmax(bad))
            raise EncodingError(
                f"{where(i)}: expected {alphabet.upper()} letters (IUPAC codes allowed), got "
                f"{chr(b[pos])!r} at position {pos + 1}",
                i,
                pos + 1,
            )
        out[i, : len(b), : table.shape[1]] = table[b]
        if soft_mask == "channel":
            out[i, : len(b), -1] = (b >= ord("a")) & (b <= ord("z"))
    return out, np.minimum(lengths, T)


def _encode_all_at_once(seqs, lengths: np.ndarray, T: int, table: np.ndarray, valid: np.ndarray, soft_mask: str,
                        out: np.ndarray) -> bool:  # fmt: skip
    """Fill ``out`` for every sequence with a few array operations (no loop over sequences), or
    return False, leaving it for the loop that names a bad letter, when a letter is invalid."""
    try:
        codes = np.frombuffer("".join(s[:T] for s in seqs).encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:
        return False
    if not valid[codes].all():
        return False
    kept = np.minimum(lengths, T)
    if (kept == T).all():  # the common case: every sequence fills the window
        grid = codes.reshape(len(seqs), T)
    else:  # byte 0 (never a valid letter) pads, and its table row is zeros
        grid = np.zeros((len(seqs), T), dtype=np.uint8)
        starts = np.cumsum(kept) - kept  # where each sequence's letters begin in codes
        grid[np.repeat(np.arange(len(seqs)), kept), np.arange(len(codes)) - np.repeat(starts, kept)] = codes
    out[..., : table.shape[1]] = table[grid]
    if soft_mask == "channel":
        out[..., -1] = (grid >= ord("a")) & (grid <= ord("z"))
    return True


def reverse_complement(x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Reverse complement of one-hot DNA/RNA ``(N, T, 4[+1])``: reverse each sequence within its
    length and swap A<->T, C<->G (an extra soft-mask channel is carried along)."""
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[-1] not in (4, 5):
        got = f"shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"x: expected a one-hot array (N, T, 4 or 5), got {got}")
    out = np.zeros_like(x)
    lengths = np.full(len(x), x.shape[1]) if lengths is None else lengths
    for i, n in enumerate(lengths):
        rev = x[i, :n][::-1]
        out[i, :n, :4] = rev[:, [3, 2, 1, 0]]
        out[i, :n, 4:] = rev[:, 4:]
    return out


def kmer_tokens(seq: str, k: int = 3, alphabet: str = DNA) -> np.ndarray:
    """Overlapping k-mers as integer tokens: 0 for any k-mer with a letter outside the
    alphabet (e.g. N), else 1 + the k-mer's base-|alphabet| number."""
    if k < 1:
        raise ValueError(f"k: expected an int >= 1, got {k}")
    idx = {a: i for i, a in enumerate(alphabet)}
    s = seq.upper()
    out = np.zeros(max(len(s) - k + 1, 0), dtype=np.int64)
    for j in range(len(out)):
        v = 0
        for ch in s[j : j + k]:
            if ch not in idx:
                v = -1
                break
            v = v * len(alphabet) + idx[ch]
        out[j] = v + 1
    return out
