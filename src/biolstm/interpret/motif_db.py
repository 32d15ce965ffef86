"""Names for motifs: comparison with the JASPAR database by TOMTOM.

A motif found in a model (from attributions, or a first-layer convolution filter) is compared
with every matrix of a JASPAR collection (by default CORE vertebrates of the newest release that
``pyjaspar`` bundles, read offline from its SQLite file) with ``memelite``'s TOMTOM (complete
scores, both strands). Each query gets the p-value of every target and, as MEME's tomtom does,
q-values by the Benjamini-Hochberg procedure over that query's p-values; the best matches come
back with the target's matrix id, name, p, q, offset and strand.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

DNA = "ACGT"


@dataclass(frozen=True)
class DatabaseMotif:
    matrix_id: str  # e.g. MA0142.1
    name: str  # e.g. Pou5f1::Sox2
    pwm: np.ndarray  # (W, 4) base probabilities, A C G T


@dataclass(frozen=True)
class MotifMatch:
    matrix_id: str
    name: str
    p: float
    q: float
    offset: int  # the target's position relative to the first compared query position (TOMTOM)
    strand: str  # "+" or "-" (the target reverse-complemented)
    query_start: int = 0  # the first query position compared (low-information flanks trimmed)
    query_end: int = 0  # one past the last

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=4)
def jaspar(collection: str = "CORE", tax_group: str = "vertebrates", release: str | None = None) -> tuple:
    """The JASPAR matrices of one collection and taxonomic group (latest versions only), as
    :class:`DatabaseMotif` with probabilities; ``release`` e.g. 'JASPAR2024' (default: the newest
    that pyjaspar bundles). Read offline; cached per process."""
    from pyjaspar import jaspardb

    db = jaspardb(release=release) if release else jaspardb()
    if release and release not in db.get_releases():  # pragma: no cover - pyjaspar raises first
        raise ValueError(f"release: expected one of {db.get_releases()}, got {release!r}")
    found = db.fetch_motifs(collection=collection, tax_group=[tax_group])
    if not found:
        raise ValueError(f"JASPAR {db.release}: no matrices for collection={collection!r}, tax_group={tax_group!r}")
    out = []
    for m in found:
        counts = np.array([m.counts[b] for b in DNA], dtype=np.float64).T  # (W, 4)
        counts = counts + 1e-3 * counts.sum(1, keepdims=True).clip(min=1)  # no zero probability
        out.append(DatabaseMotif(f"{m.matrix_id}", str(m.name), counts / counts.sum(1, keepdims=True)))
    return tuple(out)


def jaspar_release(release: str | None = None) -> str:
    from pyjaspar import jaspardb

    return (jaspardb(release=release) if release else jaspardb()).release


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of the p-values ``p`` (1-D), monotone, at most 1."""
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = np.empty(n)
    out[order] = q
    return out


def information(pwm: np.ndarray) -> np.ndarray:
    """Information content of each position of a (W, 4) probability matrix, in bits (0 to 2)."""
    p = np.clip(np.asarray(pwm, dtype=np.float64), 1e-12, None)
    p = p / p.sum(1, keepdims=True)
    return 2.0 + (p * np.log2(p)).sum(1)


def trim(pwm: np.ndarray, min_bits: float = 0.3) -> tuple[int, int]:
    """(start, end) of the motif without its flanks of positions below ``min_bits``."""
    keep = np.flatnonzero(information(pwm) >= min_bits)
    return (int(keep[0]), int(keep[-1]) + 1) if len(keep) else (0, 0)


def match_motifs(
    pwms: list[np.ndarray], database: tuple | list | None = None, top: int = 3, min_bits: float = 0.3,
    min_total_bits: float = 4.0,
) -> list[list[MotifMatch]]:  # fmt: skip
    """The ``top`` best database matches of each query (``(W, 4)`` base probabilities, or any
    non-negative (W, 4) matrix such as a convolution filter's positive part), best first.

    Flanks of positions under ``min_bits`` of information are trimmed first, and a query with
    fewer than 4 positions or ``min_total_bits`` of information left gets no match (an empty
    list): TOMTOM's p-values for near-flat queries are meaningless (flat columns "match" the
    flat parts of long targets)."""
    from memelite import tomtom

    if top < 1:
        raise ValueError(f"top: expected a positive number of matches, got {top}")
    targets = list(database if database is not None else jaspar())
    queries = []
    for k, q in enumerate(pwms):
        q = np.asarray(q, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != 4 or len(q) < 4:
            raise ValueError(f"motif {k}: expected a (width >= 4, 4) matrix of A C G T weights, got shape {q.shape}")
        if (q < 0).any() or not np.isfinite(q).all():
            raise ValueError(f"motif {k}: expected non-negative finite weights")
        q = q + 1e-6
        q = q / q.sum(1, keepdims=True)
        start, end = trim(q, min_bits)
        informative = end - start >= 4 and information(q[start:end]).sum() >= min_total_bits
        queries.append((q[start:end].T, start, end) if informative else None)  # (4, W): tomtom's layout
    out: list[list[MotifMatch]] = [[] for _ in queries]
    asked = [i for i, q in enumerate(queries) if q is not None]
    if not asked:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tomtom's warning about few targets
        p, _, offsets, _, strands = tomtom([queries[i][0] for i in asked], [t.pwm.T for t in targets])
    for row, i in enumerate(asked):
        q = bh_qvalues(p[row])
        best = np.argsort(p[row], kind="stable")[:top]
        _, start, end = queries[i]
        out[i] = [
            MotifMatch(
                targets[j].matrix_id,
                targets[j].name,
                float(p[row, j]),
                float(q[j]),
                int(offsets[row, j]),
                "-" if strands[row, j] else "+",
                start,
                end,
            )
            for j in best
        ]
    return out


def is_named(matches: list[MotifMatch], names, q: float = 0.05) -> int | None:
    """The rank (1-based) of the first match whose name contains one of ``names`` (case
    insensitive; a dimer such as 'Pou5f1::Sox2' counts for each part) with q below ``q``."""
    wanted = [n.lower() for n in names]
    for rank, m in enumerate(matches, 1):
        parts = m.name.lower().split("::")
        if m.q < q and any(part.startswith(w) for part in parts for w in wanted):
            return rank
    return None


__all__ = [
    "DatabaseMotif",
    "MotifMatch",
    "bh_qvalues",
    "information",
    "is_named",
    "jaspar",
    "jaspar_release",
    "match_motifs",
    "trim",
]
