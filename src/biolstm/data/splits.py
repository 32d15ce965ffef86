"""Splits that do not leak: by chromosome (from ``chr:start-end`` headers), stratified random.

A random split of genomic windows lets near-identical or overlapping sequences fall on both
sides; holding out whole chromosomes is the honest test of a sequence model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import InputError

_REGION = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d+)-(?P<end>\d+)")


class Split(NamedTuple):
    train: np.ndarray  # indices
    val: np.ndarray
    test: np.ndarray


def chromosome_of(header: str) -> str:
    """'chr1' from 'chr1:15710957-15711157' (anything after the region is ignored)."""
    m = _REGION.match(header.strip().lstrip(">"))
    if m is None:
        raise InputError(f"header: expected 'chrom:start-end' (e.g. chr1:100-300), got {header!r}")
    return m.group("chrom")


def split_by_chromosome(ids: Sequence[str], test: Sequence[str], val: Sequence[str] = ()) -> Split:
    """Indices of records on the ``test`` chromosomes, the ``val`` ones, and all others; the
    chromosome of each record comes from its ``chrom:start-end`` id."""
    return split_chromosomes(np.array([chromosome_of(i) for i in ids]), test, val)


def split_chromosomes(
    chroms: Sequence[str], test: Sequence[str], val: Sequence[str] = (), keys: tuple[str, str] = ("test", "val")
) -> Split:
    """Indices of the records whose chromosome (``chroms``, one per record) is in ``test``, in
    ``val``, and all others: no chromosome is in two parts. ``keys`` name the two lists in
    errors (the config's ``data.test_chromosomes``, ``data.val_chromosomes``)."""
    test, val, chroms = list(test), list(val), np.asarray(chroms)
    if not test:
        raise InputError(f"{keys[0]}: expected at least one chromosome for the test part, got none")
    overlap = set(test) & set(val)
    if overlap:
        raise InputError(f"{keys[1]}: expected chromosomes not in {keys[0]}, got {sorted(overlap)} in both")
    missing = sorted((set(test) | set(val)) - set(chroms.tolist()))
    if missing:
        raise InputError(f"{keys[0]}/{keys[1]}: chromosomes {missing} do not occur in the data")
    is_test, is_val = np.isin(chroms, test), np.isin(chroms, val)
    idx = np.arange(len(chroms))
    return Split(idx[~is_test & ~is_val], idx[is_val], idx[is_test])


def check_stratified_sizes(labels: Sequence, test: float, val: float, what: str = "test, val") -> None:
    """InputError naming ``what`` when a stratified split of ``labels`` into test, validation
    and training parts (sized as scikit-learn sizes them) leaves a part with fewer examples
    than there are classes: it could not hold one of each."""
    import math

    n, k = len(labels), len(np.unique(np.asarray(labels)))
    n_test = math.ceil(test * n)
    rest = n - n_test
    n_val = math.ceil(val / (1 - test) * rest) if val else 0  # split_random's second split, as sklearn sizes it
    sizes = {"test": n_test, "validation": n_val, "training": rest - n_val}
    if not val:
        del sizes["validation"]
    if min(sizes.values()) < k:
        shown = ", ".join(f"{m} {part}" for part, m in sizes.items())
        raise InputError(
            f"{what}: a stratified split of {n} examples in {k} classes gives {shown} examples; expected at least "
            f"{k} in each part (one per class); use larger fractions or more examples"
        )


def split_random(labels: Sequence, test: float = 0.1, val: float = 0.1, seed: int = 0, stratify: bool = True) -> Split:
    """Random (stratified by label) split into train/val/test index arrays."""
    from sklearn.model_selection import train_test_split

    if not 0 < test < 1 or not 0 <= val < 1 or test + val >= 1:
        raise InputError(f"test, val: expected fractions with 0 < test, 0 <= val, test + val < 1, got {test}, {val}")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise TypeError(f"labels: expected one label per sample (a 1-D sequence), got shape {labels.shape}")
    if stratify:
        check_stratified_sizes(labels, test, val)
    idx = np.arange(len(labels))
    strat = labels if stratify else None
    rest, te = train_test_split(idx, test_size=test, random_state=seed, stratify=strat)
    if val == 0:
        return Split(np.sort(rest), np.array([], dtype=int), np.sort(te))
    tr, va = train_test_split(
        rest, test_size=val / (1 - test), random_state=seed, stratify=labels[rest] if stratify else None
    )
    return Split(np.sort(tr), np.sort(va), np.sort(te))


def read_bed(path) -> dict[str, str]:
    """``{name: chromosome}`` from a BED file's name column (4th), for records whose headers do
    not carry coordinates; errors name the file and line."""
    from .._io import check_input_file

    p = check_input_file(path, "a BED file")
    out: dict[str, str] = {}
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{p}: expected a UTF-8 text BED file, got byte 0x{err.object[err.start]:02X}") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        cols = line.split("\t")
        if len(cols) < 4 or not cols[1].isdigit() or not cols[2].isdigit():
            raise InputError(f"{p}: line {n}: expected 'chrom<TAB>start<TAB>end<TAB>name', got {line[:60]!r}")
        out[cols[3]] = cols[0]
    return out


def split_by_group(
    groups: Sequence, test: float = 0.2, val: float = 0.1, seed: int = 0, labels: Sequence | None = None
) -> Split:
    """Whole groups (patients, families, donors) to one side each: no group is in two parts.

    With ``labels`` (one label per group, its first row's) the shuffled groups are dealt class
    by class, each to the part furthest behind its share, so every part keeps the label balance.
    """
    if not 0 < test < 1 or not 0 <= val < 1 or test + val >= 1:
        raise InputError(f"test, val: expected fractions with 0 < test, 0 <= val, test + val < 1, got {test}, {val}")
    groups = np.asarray(groups)
    uniq = np.unique(groups)
    if len(uniq) < 3:
        raise InputError(f"groups: expected at least 3 distinct groups to split, got {len(uniq)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(uniq)
    if labels is not None:  # deal the groups class by class so every part gets each class
        labels = np.asarray(labels)
        first = {g: labels[groups == g][0] for g in uniq}
        order = np.concatenate([order[[first[g] == c for g in order]] for c in np.unique(labels)])
        parts = np.empty(len(order), dtype=int)
        step = {0: 1 - test - val, 1: val, 2: test}
        acc = np.zeros(3)
        for k in range(len(order)):  # interleaved: each group goes to the part furthest behind its share
            part = int(np.argmin([acc[p] / step[p] if step[p] > 0 else np.inf for p in range(3)]))
            parts[k] = part
            acc[part] += 1
        assign = dict(zip(order, parts))
    else:
        n_test, n_val = max(1, round(test * len(uniq))), round(val * len(uniq))
        assign = {g: 2 if k < n_test else 1 if k < n_test + n_val else 0 for k, g in enumerate(order)}
    part = np.array([assign[g] for g in groups])
    idx = np.arange(len(groups))
    return Split(idx[part == 0], idx[part == 1], idx[part == 2])


def split_folds(
    n: int, folds: int, fold: int, val: float = 0.1, seed: int = 0, strata=None, groups=None
) -> Split:
    """Fold ``fold`` (1..``folds``) of a K-fold partition as the test part, the validation part
    drawn from the other folds (``val`` of all examples), the rest for training.

    With ``groups`` (patients, chromosomes) whole groups go to one fold (stratified by
    ``strata`` when given: scikit-learn's StratifiedGroupKFold); else stratified or plain
    K-fold. The folds are the same for every ``fold`` with the same ``seed``, so K runs cover
    every example exactly once as test data. The validation part follows the same rules."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    if not (isinstance(folds, int) and folds >= 2) or not (isinstance(fold, int) and 1 <= fold <= folds):
        raise InputError(f"folds, fold: expected 2 <= folds and 1 <= fold <= folds, got {folds}, {fold}")
    idx = np.arange(n)
    units = np.unique(groups) if groups is not None else idx
    if len(units) < folds:
        what = "groups" if groups is not None else "examples"
        raise InputError(f"--cv: {folds} folds need at least {folds} {what}, got {len(units)}")
    if groups is not None and strata is not None:
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    elif groups is not None:
        splitter = GroupKFold(folds, shuffle=True, random_state=seed)
    elif strata is not None:
        counts = np.bincount(np.asarray(strata))
        if counts[counts > 0].min() < folds:
            raise InputError(f"--cv: a class has {counts[counts > 0].min()} examples, fewer than the {folds} folds")
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed)
    rest, test = list(splitter.split(idx, strata, groups))[fold - 1]
    if val == 0:
        return Split(np.sort(rest), np.array([], dtype=int), np.sort(test))
    share = min(val * n / len(rest), 0.5)  # of the remaining folds
    if groups is not None:
        sub = split_by_group(np.asarray(groups)[rest], test=share, val=0, seed=seed,
                             labels=None if strata is None else np.asarray(strata)[rest])  # fmt: skip
        return Split(np.sort(rest[sub.train]), np.sort(rest[sub.test]), np.sort(test))
    from sklearn.model_selection import train_test_split

    tr, va = train_test_split(rest, test_size=share, random_state=seed,
                              stratify=None if strata is None else np.asarray(strata)[rest])  # fmt: skip
    return Split(np.sort(tr), np.sort(va), np.sort(test))
