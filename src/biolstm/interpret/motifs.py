"""From attributions to motifs: attribution logos (logomaker), top-scoring windows collected
into position weight matrices, and MEME-format output for tools such as Tomtom.

The score of a position is its attribution on the base actually present (``attr * x``).
Positive scores push the output up (towards the positive class), negative ones down, so
:func:`find_motifs` collects windows of each sign separately.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

DNA = "ACGT"


class Motif(NamedTuple):
    name: str
    pwm: np.ndarray  # (W, C) base probabilities per position
    sites: int  # windows that built it
    sign: int  # +1: raises the output (positive class), -1: lowers it
    alphabet: str = DNA

    @property
    def consensus(self) -> str:
        return "".join(self.alphabet[i] for i in self.pwm.argmax(1))


def position_scores(attr: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Attribution on the base present at each position ``(B, T)``."""
    return (np.asarray(attr) * np.asarray(x)).sum(-1)


def _windows(scores, x, width, sign, per_sequence, min_score):
    """Windows ``(n, width, C)`` around each sequence's best-scoring stretches of one sign."""
    B = len(x)
    s = sign * scores
    kernel = np.ones(width)
    out, strength = [], []
    for b in range(B):
        total = np.convolve(s[b], kernel, mode="valid")  # window sums, start positions 0..T-width
        taken = np.zeros(len(total), dtype=bool)
        for _ in range(per_sequence):
            cand = np.where(taken, -np.inf, total)
            k = int(np.argmax(cand))
            if not np.isfinite(cand[k]) or cand[k] <= min_score:
                break
            out.append(x[b, k : k + width])
            strength.append(cand[k])
            taken[max(0, k - width + 1) : k + width] = True  # no overlapping windows
    return np.array(out), np.array(strength)


def _revcomp(w: np.ndarray) -> np.ndarray:
    return w[::-1, ::-1]  # reverse positions, A<->T and C<->G (ACGT order)


def _align(windows: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Orient each window (as is, or its reverse complement) to agree best with the average."""
    if len(windows) == 0 or windows.shape[-1] != 4:
        return windows
    out = windows.copy()
    for _ in range(iterations):
        pwm = out.mean(0)
        fwd = (windows * pwm).sum((1, 2))
        rev = np.array([(_revcomp(w) * pwm).sum() for w in windows])
        out = np.where((rev > fwd)[:, None, None], np.stack([_revcomp(w) for w in windows]), windows)
    return out


def find_motifs(
    attr: np.ndarray,
    x: np.ndarray,
    width: int = 12,
    top: int = 200,
    per_sequence: int = 1,
    alphabet: str = DNA,
) -> list[Motif]:
    """One motif per sign: the ``top`` strongest windows of ``width`` positions (at most
    ``per_sequence`` per sequence, none overlapping), oriented by strand for DNA, averaged
    into a position weight matrix (0.01 pseudocount per base)."""
    x = np.asarray(x, dtype=np.float64)
    scores = position_scores(attr, x)
    motifs = []
    for sign, label in ((1, "up"), (-1, "down")):
        win, strength = _windows(scores, x, width, sign, per_sequence, 0.0)
        if len(win) == 0:
            continue
        win = win[np.argsort(-strength)[:top]]
        win = _align(win) if alphabet == DNA else win
        counts = win.sum(0) + 0.01
        motifs.append(
            Motif(f"{label}_{len(motifs) + 1}", counts / counts.sum(1, keepdims=True), len(win), sign, alphabet)
        )
    return motifs


def best_match(motif: Motif, consensus: str) -> tuple[int, str]:
    """(mismatches, where) of ``consensus`` (IUPAC letters allowed, e.g. 'TGCTGASTCAGCA')
    against the motif's consensus on either strand at the best offset; a consensus longer
    than the motif is compared over the overlapping part."""
    iupac = {"A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT",
             "M": "AC", "N": "ACGT"}  # fmt: skip
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    fwd = motif.consensus
    rev = "".join(comp[c] for c in reversed(fwd))
    best = (len(consensus) + 1, "")
    for strand, s in (("+", fwd), ("-", rev)):
        for off in range(-len(consensus) + 4, len(s) - 3):  # at least 4 positions overlap
            pairs = [(s[off + k], consensus[k]) for k in range(len(consensus)) if 0 <= off + k < len(s)]
            miss = sum(a not in iupac[b] for a, b in pairs) + (len(consensus) - len(pairs))
            best = min(best, (miss, f"{strand}{off}"))
    return best


def write_meme(motifs: list[Motif], path: str | Path) -> Path:
    """Motifs in MEME minimal format (letter-probability matrices), atomically."""
    from .._io import atomic_write_text

    if not motifs:
        raise ValueError("motifs: expected at least one motif to write, got none")
    alphabet = motifs[0].alphabet
    lines = ["MEME version 4", "", f"ALPHABET= {alphabet}", ""]
    if alphabet == DNA:
        lines += ["strands: + -", "", "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for m in motifs:
        head = f"letter-probability matrix: alength= {len(alphabet)} w= {len(m.pwm)} nsites= {m.sites} E= 0"
        lines += [f"MOTIF {m.name} {m.consensus}", "", head]
        lines += [" " + " ".join(f"{p:.4f}" for p in row) for row in m.pwm]
        lines.append("")
    atomic_write_text(Path(path), "\n".join(lines))
    return Path(path)


def logo(matrix: np.ndarray, alphabet: str = DNA, ax=None, title: str = "", kind: str = "attribution"):
    """A sequence logo of ``matrix`` ``(T, C)`` with logomaker: attributions (letters above and
    below the axis) or a PWM drawn in bits (``kind='pwm'``). Returns the matplotlib axes."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(np.asarray(matrix, dtype=np.float64), columns=list(alphabet))
    if kind == "pwm":
        df = logomaker.transform_matrix(df, from_type="probability", to_type="information")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 0.28 * len(df)), 2.2))
    logomaker.Logo(df, ax=ax, color_scheme="classic" if alphabet == DNA else "chemistry")
    ax.set(title=title, ylabel="bits" if kind == "pwm" else "attribution", xlabel="position")
    return ax
