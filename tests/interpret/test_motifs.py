"""motifs.meme: each motif's nsites is the number of seqlets that built it, no E-value is made
up, and the file parses as MEME minimal format (Biopython's reader)."""

from __future__ import annotations

import re

import numpy as np
from Bio import motifs as bio_motifs

from biolstm.interpret import find_motifs, write_meme

DNA = "ACGT"
PLANTED = {"TGACTCA": (30, 1.0), "CCGGAAT": (18, 1.0), "GATAAGA": (12, -1.0)}  # site: (sequences, sign)


def _planted(n=90, length=40, seed=0):
    """One-hot sequences ``(n, length, 4)`` and attributions that are nonzero only on the
    planted sites, each site in its own sequences (one seqlet per sequence); the last sequences
    carry nothing, so they give no seqlet."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 4, (n, length))
    attr = np.zeros((n, length, 4))
    row = 0
    for site, (count, sign) in PLANTED.items():
        for _ in range(count):
            p = int(rng.integers(0, length - len(site)))
            ids[row, p : p + len(site)] = [DNA.index(c) for c in site]
            attr[row, p : p + len(site)] = sign * rng.uniform(0.5, 1.5)  # any base: x picks the present one
            row += 1
    x = np.eye(4)[ids]
    return x, attr * x


def test_meme_nsites_are_the_seqlets_of_each_motif_and_no_e_value(tmp_path):
    x, attr = _planted()
    found = find_motifs(attr, x, width=7, min_sites=10, shift=0)  # no shifts: each window is one planted site
    comp = str.maketrans(DNA, "TGCA")
    by_site = {}
    for m in found:
        site = next(s for s in PLANTED if m.consensus in (s, s.translate(comp)[::-1]))  # either strand
        by_site[site] = m
    assert set(by_site) == set(PLANTED)
    for site, (count, sign) in PLANTED.items():
        assert by_site[site].sites == count and by_site[site].sign == sign

    path = write_meme(found, tmp_path / "motifs.meme")
    text = path.read_text()
    assert "E=" not in text  # no significance is computed, so none is written
    heads = re.findall(r"^MOTIF (\S+) (\S+)\n\nletter-probability matrix: (.*)$", text, re.MULTILINE)
    assert [h[0] for h in heads] == [m.name for m in found]
    for (_, consensus, head), m in zip(heads, found):
        assert head == f"alength= 4 w= 7 nsites= {m.sites}" and consensus == m.consensus

    with path.open() as handle:
        record = bio_motifs.parse(handle, "minimal")
    assert [r.name for r in record] == [m.name for m in found]
    for r, m in zip(record, found):
        assert r.num_occurrences == m.sites and r.length == 7
        assert str(r.consensus) == m.consensus
        read = [r.pwm[c][k] for k in range(7) for c in DNA]  # from counts: probability x nsites, rounded
        np.testing.assert_allclose(read, m.pwm.ravel(), atol=1 / m.sites)


def test_windows_that_hold_a_site_off_centre_are_shifted_into_line():
    """Attribution windows (width 10) that hold the planted octamer at different offsets: with
    shifts one cluster lines them all up; without, each offset makes its own smaller cluster."""
    rng = np.random.default_rng(3)
    site = "ATGCAAAT"
    ids = rng.integers(0, 4, (80, 40))
    attr = np.zeros((80, 40, 4))
    for row in range(80):
        p = int(rng.integers(3, 28))
        ids[row, p : p + 8] = [DNA.index(c) for c in site]
        lead = int(rng.integers(0, 3))  # the strongest 10-wide window starts 0-2 bases before the site
        attr[row, p - lead : p - lead + 10] = rng.uniform(0.5, 1.5)
    x = np.eye(4)[ids]
    attr = attr * x
    sharp = find_motifs(attr, x, width=10, min_sites=10, per_sign=1)[0]
    blurred = find_motifs(attr, x, width=10, min_sites=10, per_sign=1, shift=0)[0]
    assert site in sharp.consensus and sharp.sites == 80
    assert site in blurred.consensus and blurred.sites < 40


def test_a_first_layer_filter_reads_as_the_motif_it_detects():
    import torch

    from biolstm.interpret import filter_motifs

    site = "AGATAAGA"
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 4, (60, 40))
    for row in range(40):  # 40 of 60 sequences carry the site
        p = int(rng.integers(0, 32))
        ids[row, p : p + 8] = [DNA.index(c) for c in site]
    x = np.eye(4)[ids]
    model = torch.nn.Sequential(torch.nn.Conv1d(4, 2, 8, padding=4))
    with torch.no_grad():
        w = torch.full((2, 4, 8), -1.0)
        for j, c in enumerate(site):
            w[0, DNA.index(c), j] = 1.0  # filter 1 detects the site
        model[0].weight.copy_(w)
        model[0].weight[1].zero_()  # filter 2 never fires
        model[0].bias.zero_()
    found = filter_motifs(model, x, threshold=0.9)
    assert [m.name for m in found] == ["filter_1"]
    assert found[0].consensus == site and found[0].sites == 40
    assert filter_motifs(torch.nn.Sequential(torch.nn.Linear(4, 2)), x) == []  # no convolution
