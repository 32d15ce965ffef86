"""Labels from tables and headers, indexed (streamed) training, BED and group splits,
expression matrices (CSV and h5ad) and the text tokenizer."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from biolstm.data import (
    IndexedSequences,
    SequenceFileError,
    Tokenizer,
    load_sequences,
    one_hot,
    read_bed,
    read_expression,
    split_by_group,
)
from biolstm.models import SequenceClassifier
from biolstm.train import Trainer, TrainerConfig

FASTA = ">s1 class=a|x\nACGTACGTAA\n>s2 class=b|y\nTTTTGGGG\n>s3 class=a|z\nACGTTTAC\n"


def test_labels_from_a_table_or_a_header_field(tmp_path):
    fa = tmp_path / "r.fa"
    fa.write_text(FASTA)
    (tmp_path / "labels.tsv").write_text("id\tlabel\ns2\tneg\ns1\tpos\ns3\tpos\n")
    ids, seqs, labels = load_sequences(file=fa, labels=tmp_path / "labels.tsv")
    assert ids == ["s1", "s2", "s3"] and labels == ["pos", "neg", "pos"] and seqs[1] == "TTTTGGGG"
    _, _, from_header = load_sequences(file=fa, label_field=1, label_sep="|")
    assert from_header == ["x", "y", "z"]
    (tmp_path / "short.csv").write_text("id,label\ns1,pos\ns3,pos\n")
    with pytest.raises(SequenceFileError, match=r"short.csv: expected a label for record 2 \('s2'\) of .*r.fa"):
        load_sequences(file=fa, labels=tmp_path / "short.csv")
    (tmp_path / "dup.csv").write_text("id,label\ns1,pos\ns1,neg\n")
    with pytest.raises(SequenceFileError, match=r"dup.csv: line 3: id 's1' appears twice"):
        load_sequences(file=fa, labels=tmp_path / "dup.csv")
    with pytest.raises(SequenceFileError, match=r"r.fa: record 1: expected a header with field 5"):
        load_sequences(file=fa, label_field=5, label_sep="|")
    with pytest.raises(ValueError, match="either 'files'"):
        load_sequences()


def test_training_from_an_indexed_file_equals_training_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), n)) for n in rng.integers(20, 40, 48)]
    fa = tmp_path / "big.fa"
    fa.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    y = torch.tensor([s.count("GC") > 1 for s in seqs], dtype=torch.float32)
    streamed = IndexedSequences(fa, max_length=40)
    assert len(streamed) == 48 and streamed.sequence(3) == seqs[3]
    x, lengths = one_hot(seqs, length=40)
    cfg = TrainerConfig(epochs=2, batch_size=8, loss="bce_with_logits", seed=3)
    weights = []
    for inputs in (streamed, {"x": x, "lengths": lengths}):
        torch.manual_seed(0)
        model = SequenceClassifier(conv_filters=4, conv_kernel=3, pool=2, hidden_size=3)
        Trainer(model, cfg).fit(inputs, y)
        weights.append(model.state_dict())
    for k in weights[0]:
        torch.testing.assert_close(weights[0][k], weights[1][k], atol=0, rtol=0)
    # BGZF files index too; plain gzip is refused with the fix named
    from Bio import bgzf

    with bgzf.BgzfWriter(str(tmp_path / "big.fa.gz"), "wb") as w:
        w.write(fa.read_bytes())
    assert IndexedSequences(tmp_path / "big.fa.gz").sequence(5) == seqs[5]
    (tmp_path / "plain.fa.gz").write_bytes(gzip.compress(fa.read_bytes()))
    with pytest.raises(SequenceFileError, match=r"plain.fa.gz: expected plain or BGZF.*bgzip"):
        IndexedSequences(tmp_path / "plain.fa.gz")
    bad = tmp_path / "bad.fa"
    bad.write_text(">a\nACGT\n>b\nACXT\n")
    with pytest.raises(SequenceFileError, match=r"bad.fa: seqs\[1\]: expected DNA letters .* 'X' at position 3"):
        IndexedSequences(bad).take(torch.tensor([0, 1]))


def test_bed_names_and_group_splits(tmp_path):
    bed = tmp_path / "peaks.bed"
    bed.write_text("track name=x\nchr1\t10\t210\tpeak1\nchr2\t5\t205\tpeak2\n")
    assert read_bed(bed) == {"peak1": "chr1", "peak2": "chr2"}
    bed.write_text("chr1\tten\t210\tpeak1\n")
    with pytest.raises(ValueError, match=r"peaks.bed: line 1: expected 'chrom<TAB>start"):
        read_bed(bed)
    patients = np.repeat(np.arange(40), 5)  # 5 visits each
    dead = np.repeat(np.arange(40) % 4 == 0, 5)
    for labels in (None, dead):
        s = split_by_group(patients, test=0.25, val=0.1, seed=1, labels=labels)
        parts = [set(patients[p]) for p in s]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert sum(len(p) for p in s) == 200
        if labels is not None:
            assert 0 < dead[s.test].mean() < 0.5 and 0 < dead[s.val].mean()


def test_expression_tables_and_h5ad(tmp_path):
    import anndata
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    df = pd.DataFrame(x, columns=["g1", "g2", "g3", "g4"])
    df["tissue"] = list("aabbcc")
    df["donor"] = [1, 1, 2, 2, 3, 3]
    df.to_csv(tmp_path / "m.csv", index=False)
    e = read_expression(tmp_path / "m.csv", label="tissue", group="donor")
    np.testing.assert_allclose(e.x, x, rtol=1e-6)
    assert (
        e.genes == ["g1", "g2", "g3", "g4"]
        and list(e.labels) == list("aabbcc")
        and list(e.groups) == [1, 1, 2, 2, 3, 3]
    )
    # pandas 3 string columns; Python-backed, since anndata 0.12 cannot write the pyarrow-backed
    # ones pandas makes when pyarrow (a dependency, for Parquet) is installed
    python_strings = pd.option_context("mode.string_storage", "python")
    with python_strings, anndata.settings.override(allow_write_nullable_strings=True):
        ad = anndata.AnnData(x, obs=pd.DataFrame({"tissue": list("aabbcc")}, index=[f"c{i}" for i in range(6)]))
        ad.var_names = ["g1", "g2", "g3", "g4"]
        ad.write_h5ad(tmp_path / "m.h5ad")
    h = read_expression(tmp_path / "m.h5ad", label="tissue", genes=["g3", "g1"])
    np.testing.assert_allclose(h.x, x[:, [2, 0]], rtol=1e-6)
    assert h.samples[0] == "c0" and list(h.labels) == list("aabbcc")
    with pytest.raises(ValueError, match=r"m.h5ad: expected an obs column 'cell_type'"):
        read_expression(tmp_path / "m.h5ad", label="cell_type")
    df["g2"] = df["g2"].astype(object)
    df.loc[3, "g2"] = "high"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv: gene column 'g2': expected finite numbers, got 'high' in sample"):
        read_expression(tmp_path / "bad.csv", label="tissue", group="donor")
    df.loc[3, "g2"] = None
    df.to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(ValueError, match=r"gap.csv: gene column 'g2': expected finite numbers, got a missing value"):
        read_expression(tmp_path / "gap.csv", label="tissue")


def test_tokenizer_vocabulary_comes_from_training_texts_only():
    train = ["Oct4 binds the octamer motif.", "MafK binds MARE elements", "the motif"]
    tok = Tokenizer("word", min_count=1).fit(train)
    ids, lengths = tok.encode(["the unseen-word motif", ""])
    assert ids.shape == (2, 3) and list(lengths) == [3, 1]
    assert ids[0, 1] == 1 and ids[0, 0] == tok.vocab["the"] and ids[1, 0] == 1  # OOV, then empty -> one OOV
    assert "unseen-word" not in tok.vocab and tok.vocab["<pad>"] == 0
    assert Tokenizer.from_json(tok.to_json()).vocab == tok.vocab
    chars = Tokenizer("char").fit(["acgt"])
    assert chars.encode(["gattaca"], max_length=4)[0].tolist() == [[chars.vocab[c] for c in "gatt"]]
    with pytest.raises(ValueError, match="call fit"):
        Tokenizer().encode(["x"])
