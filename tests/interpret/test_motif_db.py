"""Named motifs: JASPAR (CORE vertebrates, bundled by pyjaspar, offline) compared by TOMTOM."""

from __future__ import annotations

import numpy as np
import pytest

from biolstm.interpret.motif_db import MotifMatch, bh_qvalues, is_named, jaspar, jaspar_release, match_motifs


@pytest.fixture(scope="module")
def db():
    return jaspar()


def _by_name(db, name):
    return next(m for m in db if m.name == name)


def _sampled(pwm: np.ndarray, n: int, rng) -> np.ndarray:
    """A motif rebuilt from ``n`` sites drawn from ``pwm``: what a motif finder returns."""
    sites = np.stack([rng.choice(4, size=n, p=row / row.sum()) for row in pwm], 1)  # (n, W)
    counts = np.stack([(sites == b).sum(0) for b in range(4)], 1) + 0.5
    return counts / counts.sum(1, keepdims=True)


def test_the_bundled_jaspar_core_vertebrates_is_read_offline(db):
    assert len(db) > 800 and jaspar_release().startswith("JASPAR")
    names = {m.name for m in db}
    assert {"POU5F1", "MAFK", "CTCF", "GATA1"} <= names
    for m in db[:50]:
        assert m.pwm.shape[1] == 4 and np.allclose(m.pwm.sum(1), 1) and (m.pwm > 0).all()
    assert len({m.matrix_id for m in db}) == len(db)  # one (latest) version per matrix


def test_planted_factors_are_named_first_on_either_strand(db):
    rng = np.random.default_rng(0)
    for factor in ("CTCF", "GATA1", "MAFK", "POU5F1"):
        pwm = _by_name(db, factor).pwm
        query = _sampled(pwm, 60, rng)[1:-1]  # a noisy, trimmed copy
        rc = query[::-1, ::-1]  # the reverse complement (A C G T columns reversed)
        fwd, rev = match_motifs([query, rc], db, top=3)
        for matches in (fwd, rev):
            assert len(matches) == 3 and all(isinstance(m, MotifMatch) for m in matches)
            assert [m.p for m in matches] == sorted(m.p for m in matches)
            assert is_named(matches, [factor]) is not None, (factor, matches)
        hit = next(m for m in fwd if m.name == factor)
        hit_rc = next(m for m in rev if m.name == factor)
        assert {hit.strand, hit_rc.strand} == {"+", "-"} and hit.q < 0.05 and hit.q >= hit.p


def test_flat_flanks_are_trimmed_and_flat_queries_get_no_name(db):
    rng = np.random.default_rng(1)
    noise = rng.dirichlet(np.ones(4) * 20, size=10)  # near-flat columns: no factor
    assert match_motifs([noise], db, top=3) == [[]]
    core = _sampled(_by_name(db, "GATA1").pwm, 60, rng)
    padded = np.concatenate([noise[:3], core, noise[3:6]])
    (matches,) = match_motifs([padded], db, top=3)
    assert is_named(matches, ["GATA1"]) is not None
    assert matches[0].query_start >= 3 and matches[0].query_end <= 3 + len(core)


def test_qvalues_and_names():
    q = bh_qvalues(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5])  # BH: p * n / rank, made monotone
    m = [MotifMatch("MA1", "ZNF1", 1e-5, 1e-3, 0, "+"), MotifMatch("MA2", "Pou5f1::Sox2", 1e-4, 0.01, 1, "-")]
    assert is_named(m, ["POU"]) == 2 and is_named(m, ["SOX2"]) == 2 and is_named(m, ["MAF"]) is None
    assert is_named(m, ["POU"], q=0.005) is None


def test_bad_queries_name_what_is_wrong(db):
    with pytest.raises(ValueError, match=r"motif 0: expected a \(width >= 4, 4\) matrix .* got shape \(6, 5\)"):
        match_motifs([np.ones((6, 5))], db)
    with pytest.raises(ValueError, match=r"motif 1: expected non-negative finite weights"):
        match_motifs([np.ones((6, 4)), -np.ones((6, 4))], db)
    with pytest.raises(ValueError, match=r"top: expected a positive number"):
        match_motifs([np.ones((6, 4))], db, top=0)
    assert match_motifs([], db) == []
