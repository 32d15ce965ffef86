"""On the bundled Oct4 vs MafK peaks, the motifs collected from a trained model's attributions
include the Oct4 octamer (ATGCAAAT) and the MafK recognition element (TGCTGA(C/G)TCAGCA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biolstm.data import load_labeled, one_hot
from biolstm.demo import demo_config
from biolstm.interpret import attribute, best_match, find_motifs, write_meme
from biolstm.pipeline import load_run, train


@pytest.fixture(scope="module")
def oct4_run(tmp_path_factory):
    return train(demo_config("oct4_mafk.yaml"), out=tmp_path_factory.mktemp("oct4") / "run", verbose=0)


def test_learned_motifs_match_oct4_and_mafk(oct4_run, tmp_path):
    _, _, model, _, _ = load_run(oct4_run)
    d = demo_config("oct4_mafk.yaml").parent
    _, seqs, _ = load_labeled({"oct4": d / "oct4.fa.gz", "mafk": d / "mafk.fa.gz"})
    pick = np.random.default_rng(0).choice(len(seqs), 400, replace=False)
    x = torch.from_numpy(one_hot([seqs[i] for i in pick])[0])
    a = attribute(model, x, method="input_x_gradient")
    motifs = {m.sign: m for m in find_motifs(a.values, x.numpy(), width=12, top=200)}
    # the model's output is the Oct4 logit: Oct4's site raises it, MafK's lowers it
    octamer, _ = best_match(motifs[1], "ATGCAAAT")
    mare, _ = best_match(motifs[-1], "TGCTGASTCAGCA")
    assert octamer <= 1, motifs[1].consensus
    assert mare <= 3, motifs[-1].consensus
    # and not the other way round
    assert best_match(motifs[-1], "ATGCAAAT")[0] > octamer
    meme = write_meme(list(motifs.values()), tmp_path / "motifs.meme").read_text()
    assert meme.startswith("MEME version 4") and meme.count("MOTIF ") == 2
    assert "letter-probability matrix: alength= 4 w= 12" in meme
