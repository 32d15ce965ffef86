"""TF-MoDISco (``modisco-lite``) as biolstm's second motif-discovery method.

TF-MoDISco cuts seqlets (windows of high attribution) out of the projected contributions,
clusters them on their hypothetical contributions, and returns patterns per sign: the
contributions that raise the output and those that lower it. Each pattern becomes a
:class:`~biolstm.interpret.motifs.Motif` (its position probability matrix, trimmed to the
positions whose contribution reaches ``trim`` of its largest, as TF-MoDISco's own report does),
named ``up_k`` / ``down_k`` like the clustering method's motifs so that every later step (JASPAR
names, MEME, logos, the report) treats both alike.

The hypothetical contributions come from
:func:`~biolstm.interpret.attributions.shuffled_integrated_gradients`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .motifs import DNA, Motif


class ModiscoResult(NamedTuple):
    motifs: list[Motif]
    seqlets: dict[str, int]  # seqlets in the patterns, per sign ("up", "down")
    settings: dict


def _trimmed(pattern, trim: float) -> tuple[int, int]:
    score = np.abs(np.asarray(pattern.contrib_scores).sum(1))
    keep = np.flatnonzero(score >= trim * score.max())
    return int(keep[0]), int(keep[-1]) + 1


def modisco_motifs(
    hypothetical: np.ndarray,
    x: np.ndarray,
    per_sign: int = 3,
    window: int = 20,
    flank: int = 5,
    max_seqlets: int = 2000,
    leiden_runs: int = 10,
    min_seqlets: int = 20,
    trim: float = 0.3,
) -> ModiscoResult:
    """Run TF-MoDISco on one-hot DNA ``x`` (B, T, 4) and its hypothetical contributions (same
    shape). Returns at most ``per_sign`` patterns of each sign with at least ``min_seqlets``
    seqlets, largest first. ``window``, ``flank``: TF-MoDISco's sliding window and seqlet flank;
    ``max_seqlets`` per metacluster; ``leiden_runs``: Leiden clusterings tried (seeded, so the
    result is reproducible)."""
    from modiscolite.tfmodisco import TFMoDISco

    x = np.asarray(x, dtype=np.float32)
    hyp = np.asarray(hypothetical, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] != 4 or hyp.shape != x.shape:
        raise ValueError(f"x, hypothetical: expected two (B, T, 4) arrays of DNA, got {x.shape} and {hyp.shape}")
    settings = {
        "sliding_window_size": window,
        "flank_size": flank,
        "max_seqlets_per_metacluster": max_seqlets,
        "n_leiden_runs": leiden_runs,
        "final_min_cluster_size": min_seqlets,
        "trim_threshold": trim,
    }
    up, down = TFMoDISco(
        one_hot=x,
        hypothetical_contribs=hyp,
        sliding_window_size=window,
        flank_size=flank,
        max_seqlets_per_metacluster=max_seqlets,
        n_leiden_runs=leiden_runs,
        final_min_cluster_size=min_seqlets,
        verbose=False,
    )
    motifs, seqlets = [], {}
    for sign, label, patterns in ((1, "up", up), (-1, "down", down)):
        patterns = sorted(patterns or [], key=lambda p: -len(p.seqlets))
        seqlets[label] = int(sum(len(p.seqlets) for p in patterns))
        for k, p in enumerate(patterns[:per_sign]):
            lo, hi = _trimmed(p, trim)
            ppm = np.asarray(p.sequence, dtype=np.float64)[lo:hi] + 0.01
            motifs.append(Motif(f"{label}_{k + 1}", ppm / ppm.sum(1, keepdims=True), len(p.seqlets), sign, DNA))
    return ModiscoResult(motifs, seqlets, settings)


__all__ = ["ModiscoResult", "modisco_motifs"]
