"""TF-MoDISco as the second motif method: patterns from planted hypothetical contributions, per
sign, trimmed to their core and named like the clustering method's motifs."""

from __future__ import annotations

import numpy as np
import pytest

from biolstm.data import one_hot
from biolstm.interpret.modisco import modisco_motifs

UP, DOWN = "TGACTCAT", "GATAAGGC"


def planted(n: int = 600, length: int = 100, seed: int = 0):
    """Random sequences; a third carry UP (its bases contribute +1), a third DOWN (-1); every other
    position contributes noise. Hypothetical contributions: the motif's own base at each of its
    positions scores the full weight, any other base a quarter of it with the other sign."""
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]
    hyp = rng.normal(0, 0.02, (n, length, 4)).astype(np.float32)
    for k in range(n):
        motif, sign = ((UP, 1.0), (DOWN, -1.0), (None, 0))[k % 3]
        if motif is None:
            continue
        p = int(rng.integers(10, length - len(motif) - 10))
        seqs[k] = seqs[k][:p] + motif + seqs[k][p + len(motif) :]
        for j, base in enumerate(motif):
            hyp[k, p + j] = -0.25 * sign
            hyp[k, p + j, "ACGT".index(base)] = sign
    x, _ = one_hot(seqs)
    return x[..., :4], hyp


def test_modisco_finds_each_planted_motif_with_its_sign():
    x, hyp = planted()
    found = modisco_motifs(hyp, x, leiden_runs=2)
    up = [m for m in found.motifs if m.sign > 0]
    down = [m for m in found.motifs if m.sign < 0]
    assert up and down
    assert UP in up[0].consensus or UP in _rc(up[0].consensus), [m.consensus for m in up]
    assert DOWN in down[0].consensus or DOWN in _rc(down[0].consensus), [m.consensus for m in down]
    assert up[0].name == "up_1" and down[0].name == "down_1"
    # trimmed to the planted core (noise flanks cut), a probability matrix, with its seqlets counted
    assert len(up[0].pwm) <= len(UP) + 4
    assert np.allclose(up[0].pwm.sum(1), 1.0)
    assert found.seqlets["up"] >= up[0].sites >= 20 and found.seqlets["down"] >= down[0].sites >= 20
    assert found.settings["n_leiden_runs"] == 2


def _rc(s: str) -> str:
    return s.translate(str.maketrans("ACGT", "TGCA"))[::-1]


def test_modisco_refuses_what_is_not_dna():
    with pytest.raises(ValueError, match="expected two"):
        modisco_motifs(np.zeros((3, 10, 20)), np.zeros((3, 10, 20)))
