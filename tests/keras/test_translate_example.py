"""examples/translate_dna.py in --quick mode: coding DNA -> protein with an LSTM encoder-decoder
with attention; the pieces work (data, shapes, greedy and beam decoding, the exact codon-table
baseline, the attention plot). The accuracy target is checked by the full run (docs/benchmarks.md)."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
EXAMPLE = Path(__file__).parents[2] / "examples" / "translate_dna.py"


@pytest.fixture(scope="module")
def ex():
    return runpy.run_path(str(EXAMPLE), run_name="translate_dna")


def test_the_data_holds_out_one_protein_and_the_codon_table_is_exact(ex):
    fragments, test = ex["make_data"](quick=True)
    rng = np.random.default_rng(0)
    dna, prot = ex["epoch_pairs"](fragments, rng, shuffled=0.5)
    assert len(dna) == len(prot) == len(fragments) > 100 and all(len(d) == 3 * len(p) for d, p in zip(dna, prot))
    assert sum(p == f for p, f in zip(prot, fragments)) >= len(fragments) // 2  # half kept in order
    assert all(sorted(p) == sorted(f) for p, f in zip(prot, fragments))  # the others: the same residues shuffled
    again, _ = ex["epoch_pairs"](fragments, rng, shuffled=0.5)
    assert again != dna  # new synonymous codons every epoch
    held_out = ex["read_fasta"]()[ex["TEST_ID"]]
    assert all(p in held_out for pairs in test.values() for p in pairs[1])
    assert not any(p in held_out for p in fragments if len(p) >= 20)  # no long training fragment in the test protein
    for d, p in [(dna, prot), *test.values()]:
        assert ex["accuracy"]([ex["translate"](s) for s in d], p) == (1.0, 1.0)
    assert ex["translate"]("ATGTGGTAA") == "MW*"
    _, d_in, _ = ex["encode"](dna[:50], prot[:50])
    dropped = ex["word_dropout"](d_in, rng, 0.3)
    hidden = dropped == ex["UNK"]
    assert (d_in[hidden] > ex["END"]).all() and (dropped[~hidden] == d_in[~hidden]).all()
    assert 0.2 < hidden.sum() / (d_in > ex["END"]).sum() < 0.4 and (dropped[:, 0] == ex["START"]).all()


def test_the_model_trains_and_greedy_and_beam_decoding_give_protein_strings(ex, tmp_path):
    ex["set_random_seed"](0)
    fragments, test = ex["make_data"](quick=True)
    dna, prot = ex["epoch_pairs"](fragments, np.random.default_rng(0))
    models = ex["build_models"](units=16, emb=8)
    x, d_in, d_out = ex["encode"](dna[:64], prot[:64])
    assert x.shape[1] + 1 == d_in.shape[1] == d_out.shape[1] and x.shape[0] == 64
    probs = models["model"].predict([x, d_in])
    assert probs.shape == (64, d_in.shape[1], ex["N_OUT"])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    losses = ex["train"](models, fragments[:256], epochs=2)
    assert len(losses) == 2 and np.isfinite(losses).all()
    memory, h, c = models["encoder"].predict(x[:4])
    assert memory.shape == (4, x.shape[1], 16) and h.shape == c.shape == (4, 16)
    assert models["encoder"].get_layer("encoder") is models["model"].get_layer("encoder")  # shared weights
    tdna, tprot = test[12]
    tx, _, _ = ex["encode"](tdna, tprot)
    amino = set(ex["AMINO"]) | {"X"}
    for decode in (ex["greedy_decode"], lambda m, a: ex["beam_decode"](m, a, 3)):
        out = decode(models, tx)
        assert len(out) == len(tprot) and all(isinstance(s, str) and set(s) <= amino for s in out)
        assert all(len(s) <= tx.shape[1] + 5 for s in out)
        res, exact = ex["accuracy"](out, tprot)
        assert 0.0 <= exact <= res <= 1.0
    plot = ex["plot_attention"](models, tdna[0], tprot[0], tmp_path / "att.png")
    assert plot.exists() and plot.stat().st_size > 1000
    share = ex["diagonal_share"](models, test)
    assert set(share) == set(test) and all(0.0 <= v <= 1.0 for v in share.values())


def test_the_variant_without_attention_and_the_cli_in_quick_mode(ex, tmp_path, capsys):
    plain = ex["build_models"](units=8, emb=4, attention=False)
    assert plain["scores"] is None and len(plain["step"].outputs) == 3
    out = ex["main"](["--out", str(tmp_path), "--quick"])
    text = capsys.readouterr().out
    assert "attn beam3" in text and "no-attn greedy" in text and "time" in text
    assert (tmp_path / "attention.png").exists() and out["plot"] == tmp_path / "attention.png"
    rows = out["results"][True]
    assert [r["baseline"] for r in rows] == [(1.0, 1.0)] * len(rows) and "beam" in rows[1]


@pytest.mark.slow
def test_the_full_run_translates_an_unseen_protein_at_training_lengths(ex):
    """The issue's target: >= 0.99 per-residue accuracy on the unseen protein at training lengths,
    with attention that follows the codon-to-residue diagonal (the default run, attention only)."""
    ex["set_random_seed"](0)
    fragments, test = ex["make_data"]()
    test = {n: test[n] for n in (12, 24)}
    models = ex["build_models"](units=64)
    ex["train"](models, fragments, epochs=30, seed=0)
    rows = ex["evaluate"](models, test)
    assert [r["length"] for r in rows] == [12, 24]
    for row in rows:
        assert row["greedy"][0] >= 0.99, row
    assert min(ex["diagonal_share"](models, test).values()) >= 0.9
