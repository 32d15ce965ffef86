"""Sequence files, one-hot encoding, k-mers and leak-free splits, on the bundled Oct4/MafK data."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from biolstm.data import (
    SequenceFileError,
    chromosome_of,
    kmer_tokens,
    load_labeled,
    one_hot,
    read_sequences,
    reverse_complement,
    split_by_chromosome,
    split_random,
)

from ..datafiles import MAFK, OCT4


def test_reads_the_gzipped_oct4_file_and_its_plain_copy(tmp_path):
    recs = list(read_sequences(OCT4))
    assert len(recs) == 3897
    assert all(len(r.seq) == 200 for r in recs)
    assert recs[0].id.startswith("chr") and ":" in recs[0].id
    plain = tmp_path / "oct4.fa"
    plain.write_bytes(gzip.decompress(OCT4.read_bytes()))
    assert [r.seq for r in read_sequences(plain)][:5] == [r.seq for r in recs[:5]]


def test_labeled_sequences_and_chromosome_split():
    ids, seqs, labels = load_labeled({1: OCT4, 0: MAFK})
    assert len(ids) == 3897 + 3900 and labels.count(1) == 3897
    split = split_by_chromosome(ids, test=["chr8"], val=["chr9"])
    chrom = np.array([chromosome_of(i) for i in ids])
    assert set(chrom[split.test]) == {"chr8"} and set(chrom[split.val]) == {"chr9"}
    assert not {"chr8", "chr9"} & set(chrom[split.train])
    assert len(split.train) + len(split.val) + len(split.test) == len(ids)
    x, lengths = one_hot(seqs[:10])
    assert x.shape == (10, 200, 4) and (lengths == 200).all()
    np.testing.assert_allclose(x.sum(-1), 1.0)  # no N in these files: every position is one base


def test_fastq_and_bad_files(tmp_path):
    fq = tmp_path / "reads.fastq"
    fq.write_text("@r1 first\nACGTN\n+\nIIII#\n@r2\nacgt\n+\nIIII\n")
    recs = list(read_sequences(fq))
    assert [r.id for r in recs] == ["r1", "r2"] and recs[0].quality == (40, 40, 40, 40, 2)
    bad = tmp_path / "bad.fastq"
    bad.write_text("@r1\nACGT\n+\nII\n")
    with pytest.raises(SequenceFileError, match=r"bad\.fastq: record 1: expected valid FASTQ"):
        list(read_sequences(bad))
    notseq = tmp_path / "table.txt"
    notseq.write_text("id,value\n")
    with pytest.raises(SequenceFileError, match=r"table\.txt: expected FASTA \('>'\) or FASTQ \('@'\)"):
        list(read_sequences(notseq))
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(SequenceFileError, match="expected at least one FASTA record"):
        list(read_sequences(empty))
    with pytest.raises(SequenceFileError, match="no such file"):
        list(read_sequences(tmp_path / "missing.fa"))


def test_one_hot_ambiguity_soft_mask_and_alphabets():
    x, lengths = one_hot(["ACGTN", "acR"])
    np.testing.assert_array_equal(x[0, :4], np.eye(4))
    np.testing.assert_allclose(x[0, 4], [0.25] * 4)
    np.testing.assert_allclose(x[1, 2], [0.5, 0, 0.5, 0])  # R = A or G
    assert lengths.tolist() == [5, 3] and not x[1, 3:].any()
    z, _ = one_hot(["ANT"], ambiguity="zeros")
    assert not z[0, 1].any()
    m, _ = one_hot(["AcG"], soft_mask="channel")
    assert m.shape == (1, 3, 5) and m[0, :, 4].tolist() == [0, 1, 0]
    r, _ = one_hot(["ACGU"], alphabet="rna")
    np.testing.assert_array_equal(r[0], np.eye(4))
    p, _ = one_hot(["MKX"], alphabet="protein")
    assert p.shape == (1, 3, 20) and p[0, 2].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"seqs\[0\]: expected DNA letters .* got 'Z' at position 3"):
        one_hot(["ACZ"])
    with pytest.raises(ValueError, match="alphabet: expected"):
        one_hot(["A"], alphabet="rnaa")
    t, tl = one_hot(["ACGTACGT", "AC"], length=4)
    assert t.shape == (2, 4, 4) and tl.tolist() == [4, 2]


def test_reverse_complement_and_kmers():
    x, lengths = one_hot(["AACG", "GT"])
    rc = reverse_complement(x, lengths)
    back, _ = one_hot(["CGTT", "AC"])
    np.testing.assert_array_equal(rc, back)
    np.testing.assert_array_equal(reverse_complement(rc, lengths), x)
    assert kmer_tokens("ACGTN", 2).tolist() == [1 + 1, 1 + 6, 1 + 11, 0]  # AC, CG, GT, TN
    assert len(kmer_tokens("AC", 3)) == 0


def test_split_random_is_stratified_and_disjoint():
    labels = [0] * 80 + [1] * 20
    s = split_random(labels, test=0.2, val=0.1, seed=1)
    assert len(set(s.train) | set(s.val) | set(s.test)) == 100
    assert not (set(s.train) & set(s.test)) and not (set(s.val) & set(s.test))
    assert np.asarray(labels)[s.test].mean() == pytest.approx(0.2)
    with pytest.raises(ValueError, match="header: expected 'chrom:start-end'"):
        chromosome_of("seq1 some read")
    with pytest.raises(ValueError, match=r"chromosomes \['chrZ'\] do not occur"):
        split_by_chromosome(["chr1:1-10"], test=["chrZ"])


@pytest.mark.parametrize("alphabet", ["dna", "rna", "protein"])
@pytest.mark.parametrize("soft_mask", ["keep", "channel"])
def test_one_hot_of_a_batch_equals_letter_by_letter_lookup(alphabet, soft_mask):
    # the batch is encoded in a few array operations; every row must be what the table gives
    # letter by letter, zeros past its length, cut at `length`
    from biolstm.data.encode import _table

    rng = np.random.default_rng(0)
    letters = {"dna": "ACGTNacgtnRY", "rna": "ACGUNacgunRY", "protein": "ACDEFGHIKLMNPQRSTVWYXacdx"}[alphabet]
    seqs = ["".join(rng.choice(list(letters), n)) for n in rng.integers(1, 40, 50)]
    table, _ = _table(alphabet, "probabilities")
    for length in (None, 25):
        x, lengths = one_hot(seqs, alphabet, soft_mask=soft_mask, length=length)
        T = x.shape[1]
        assert T == (length or max(map(len, seqs)))
        for i, s in enumerate(seqs):
            s = s[:T]
            assert lengths[i] == len(s)
            want = np.zeros((T, x.shape[2]), dtype=np.float32)
            codes = np.frombuffer(s.encode(), dtype=np.uint8)
            want[: len(s), : table.shape[1]] = table[codes]
            if soft_mask == "channel":
                want[: len(s), -1] = [c.islower() for c in s]
            np.testing.assert_array_equal(x[i], want)
