"""Splits that do not leak: by chromosome (from ``chr:start-end`` headers), stratified random.

A random split of genomic windows lets near-identical or overlapping sequences fall on both
sides; holding out whole chromosomes is the honest test of a sequence model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

_REGION = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d+)-(?P<end>\d+)")


class Split(NamedTuple):
    train: np.ndarray  # indices
    val: np.ndarray
    test: np.ndarray


def chromosome_of(header: str) -> str:
    """'chr1' from 'chr1:15710957-15711157' (anything after the region is ignored)."""
    m = _REGION.match(header.strip().lstrip(">"))
    if m is None:
        raise ValueError(f"header: expected 'chrom:start-end' (e.g. chr1:100-300), got {header!r}")
    return m.group("chrom")


def split_by_chromosome(ids: Sequence[str], test: Sequence[str], val: Sequence[str] = ()) -> Split:
    """Indices of records on the ``test`` chromosomes, the ``val`` ones, and all others."""
    overlap = set(test) & set(val)
    if overlap:
        raise ValueError(f"val: expected chromosomes not in test, got {sorted(overlap)} in both")
    chroms = np.array([chromosome_of(i) for i in ids])
    is_test, is_val = np.isin(chroms, list(test)), np.isin(chroms, list(val))
    missing = sorted((set(test) | set(val)) - set(chroms.tolist()))
    if missing:
        raise ValueError(f"test/val: chromosomes {missing} do not occur in the headers")
    idx = np.arange(len(ids))
    return Split(idx[~is_test & ~is_val], idx[is_val], idx[is_test])


def split_random(labels: Sequence, test: float = 0.1, val: float = 0.1, seed: int = 0, stratify: bool = True) -> Split:
    """Random (stratified by label) split into train/val/test index arrays."""
    from sklearn.model_selection import train_test_split

    if not 0 < test < 1 or not 0 <= val < 1 or test + val >= 1:
        raise ValueError(f"test, val: expected fractions with 0 < test, 0 <= val, test + val < 1, got {test}, {val}")
    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    strat = labels if stratify else None
    rest, te = train_test_split(idx, test_size=test, random_state=seed, stratify=strat)
    if val == 0:
        return Split(np.sort(rest), np.array([], dtype=int), np.sort(te))
    tr, va = train_test_split(
        rest, test_size=val / (1 - test), random_state=seed, stratify=labels[rest] if stratify else None
    )
    return Split(np.sort(tr), np.sort(va), np.sort(te))
