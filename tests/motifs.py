"""A synthetic motif task shared by tests: half the sequences carry TGACTCA (an AP-1/MARE-like
site) at a random place, the other half do not."""

from __future__ import annotations

import numpy as np

MOTIF = "TGACTCA"


def motif_sequences(n: int, length: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """(sequences, labels): odd-numbered sequences carry the motif (label 1)."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for k in range(n):
        s = list(rng.choice(list("ACGT"), length))
        if k % 2:
            p = rng.integers(0, length - len(MOTIF))
            s[p : p + len(MOTIF)] = list(MOTIF)
        seqs.append("".join(s))
        labels.append(k % 2)
    return seqs, labels
