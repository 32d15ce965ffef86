"""On the bundled Oct4 vs MafK peaks, the motifs collected from a trained model's attributions
include the Oct4 octamer (ATGCAAAT) and the MafK recognition element (TGCTGA(C/G)TCAGCA), and
JASPAR names them: a POU-family factor for a motif that raises the Oct4 output, a MAF/NFE2-family
factor for one that lowers it (among each motif's top 3 TOMTOM matches, q < 0.05)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biolstm.data import load_labeled, one_hot
from biolstm.demo import demo_config
from biolstm.interpret import attribute, best_match, find_motifs, write_meme
from biolstm.interpret.motif_db import is_named, match_motifs
from biolstm.pipeline import load_run, train


@pytest.fixture(scope="module")
def oct4_run(tmp_path_factory):
    return train(demo_config("oct4_mafk.yaml"), out=tmp_path_factory.mktemp("oct4") / "run", verbose=0)


@pytest.mark.slow  # a long run; CI runs it (.ci/run)
def test_learned_motifs_match_oct4_and_mafk(oct4_run, tmp_path):
    _, _, model, _, _ = load_run(oct4_run)
    d = demo_config("oct4_mafk.yaml").parent
    _, seqs, _ = load_labeled({"oct4": d / "oct4.fa.gz", "mafk": d / "mafk.fa.gz"})
    pick = np.random.default_rng(0).choice(len(seqs), 800, replace=False)
    x = torch.from_numpy(one_hot([seqs[i] for i in pick])[0])
    a = attribute(model, x, method="input_x_gradient")
    motifs = find_motifs(a.values, x.numpy(), width=12, output=a.output)
    up = [m for m in motifs if m.sign > 0]
    down = [m for m in motifs if m.sign < 0]
    assert up and down
    # the model's output is the Oct4 logit: Oct4's octamer raises it, MafK's MARE lowers it
    octamer = min(best_match(m, "ATGCAAAT")[0] for m in up)
    mare = min(best_match(m, "TGCTGASTCAGCA")[0] for m in down)
    assert octamer <= 1, [m.consensus for m in up]
    assert mare <= 2, [m.consensus for m in down]
    # and not the other way round: the MARE is not among the motifs that raise the Oct4 logit
    assert min(best_match(m, "TGCTGASTCAGCA")[0] for m in up) > mare
    # named by JASPAR
    matches = match_motifs([m.pwm for m in motifs], top=3)
    pou = [is_named(h, ["POU"]) for m, h in zip(motifs, matches) if m.sign > 0]
    maf = [is_named(h, ["MAF", "NFE2", "BACH"]) for m, h in zip(motifs, matches) if m.sign < 0]
    named = [(m.consensus, [(x.name, f"{x.q:.1g}") for x in h]) for m, h in zip(motifs, matches)]
    assert any(r is not None for r in pou), named
    assert any(r is not None for r in maf), named
    meme = write_meme(motifs, tmp_path / "motifs.meme").read_text()
    assert meme.startswith("MEME version 4") and meme.count("MOTIF ") == len(motifs)
    assert "letter-probability matrix: alength= 4 w= 12" in meme
