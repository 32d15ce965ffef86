"""Genome regions: BED / narrowPeak reading, an indexed FASTA (plain and bgzip) through pyfaidx,
fixed-width windows, multi-task labels, and seeded backgrounds (flanks, GC-matched, shuffles)."""

from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pytest

from biolstm.data.genome import (
    Genome,
    Region,
    dinucleotide_shuffle,
    fixed_width,
    flank_background,
    gc_content,
    gc_matched_background,
    multitask_labels,
    overlaps,
    read_regions,
    reverse_complement,
)
from biolstm.errors import InputError


def _genome(tmp_path, bgzip=False, index=True):
    """Two chromosomes of random bases (chr1 20 kb, chr2 5 kb, lower case in one stretch)."""
    rng = np.random.default_rng(0)
    chroms = {"chr1": "".join(rng.choice(list("ACGT"), 20_000)), "chr2": "".join(rng.choice(list("ACGT"), 5_000))}
    chroms["chr2"] = chroms["chr2"][:100] + chroms["chr2"][100:200].lower() + chroms["chr2"][200:]
    text = "".join(f">{c}\n" + "\n".join(s[i : i + 60] for i in range(0, len(s), 60)) + "\n" for c, s in chroms.items())
    path = tmp_path / ("genome.fa.gz" if bgzip else "genome.fa")
    if bgzip:
        from Bio import bgzf

        with bgzf.BgzfWriter(str(path), "wb") as w:
            w.write(text.encode())
    else:
        path.write_text(text)
    if index:
        import pyfaidx

        pyfaidx.Faidx(str(path)).close()
    return path, chroms


def test_bed_and_narrowpeak_lines_become_regions(tmp_path):
    bed = tmp_path / "peaks.narrowPeak.gz"
    with gzip.open(bed, "wt") as fh:
        fh.write("track name=x\n# comment\n")
        fh.write("chr1\t100\t300\tp1\t50\t+\t1.0\t2.0\t3.0\t120\n")
        fh.write("chr2\t10\t40\tp2\t0\t-\t1\t2\t3\t-1\n")
        fh.write("chr1\t500\t600\n")
    r = read_regions(bed)
    assert r[0] == Region("chr1", 100, 300, "p1", "+", 120) and r[1].summit is None and r[1].strand == "-"
    assert r[2] == Region("chr1", 500, 600) and r[0].id == "chr1:100-300(+)" and r[2].id == "chr1:500-600"
    w = fixed_width(r, 50)
    assert [(x.start, x.end) for x in w] == [(195, 245), (0, 50), (525, 575)]  # summit, else the middle
    middle = fixed_width(r, 50, center="interval")[0]
    assert (middle.start, middle.end) == (175, 225)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("chr1\t5", r"bad\.bed:1: expected tab-separated chrom, start, end"),
        ("chr1\tx\t9", r"bad\.bed:1: expected integer start and end, got 'x' and '9'"),
        ("chr1\t9\t9", r"bad\.bed:1: expected 0 <= start < end, got start 9, end 9"),
        ("chr1\t1\t9\tn\t0\t*", r"bad\.bed:1: expected strand \+, - or \. in column 6, got '\*'"),
        ("chr1\t1\t9\tn\t0\t+\t1\t1\t1\t20", r"bad\.bed:1: summit offset 20 lies outside the peak \(length 8\)"),
    ],
)
def test_bad_region_lines_name_the_file_and_line(tmp_path, line, message):
    (tmp_path / "bad.bed").write_text(line + "\n")
    with pytest.raises(InputError, match=message):
        read_regions(tmp_path / "bad.bed")


def test_missing_or_empty_region_files_and_bad_widths(tmp_path):
    with pytest.raises(InputError, match=r"no such region file"):
        read_regions(tmp_path / "none.bed")
    (tmp_path / "empty.bed").write_text("track x\n")
    with pytest.raises(InputError, match=r"empty\.bed: no regions found"):
        read_regions(tmp_path / "empty.bed")
    with pytest.raises(InputError, match=r"width: expected a positive number of bases, got 0"):
        fixed_width([Region("c", 0, 5)], 0)


@pytest.mark.parametrize("bgzip", [False, True])
def test_sequences_come_from_the_indexed_genome_padded_past_the_ends(tmp_path, bgzip):
    path, chroms = _genome(tmp_path, bgzip)
    g = Genome(path)
    assert g.sizes == {"chr1": 20_000, "chr2": 5_000}
    assert g.fetch("chr1", 100, 130) == chroms["chr1"][100:130]
    assert g.fetch("chr2", 90, 110) == chroms["chr2"][90:110]  # soft-masked bases kept
    assert g.fetch("chr1", -5, 5) == "NNNNN" + chroms["chr1"][:5]
    assert g.fetch("chr2", 4_990, 5_010) == chroms["chr2"][4_990:] + "N" * 10
    assert g.fetch("chr1", 10, 20, "-") == reverse_complement(chroms["chr1"][10:20])
    assert g.sequences([Region("chr1", 0, 4, strand="-")]) == [reverse_complement(chroms["chr1"][:4])]
    with pytest.raises(InputError, match=r"no chromosome 'chrX' \(it has chr1, chr2\)"):
        g.fetch("chrX", 0, 10)
    g.close()


def test_an_unindexed_genome_is_refused_and_nothing_is_written_beside_it(tmp_path):
    path, _ = _genome(tmp_path, index=False)
    with pytest.raises(
        InputError, match=r"genome\.fa: no index genome\.fa\.fai beside it; .*samtools faidx genome\.fa"
    ):
        Genome(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.fa"]
    plain_gz = tmp_path / "plain.fa.gz"
    plain_gz.write_bytes(gzip.compress(b">c\nACGT\n"))
    (tmp_path / "plain.fa.gz.fai").write_text("c\t4\t3\t4\t5\n")
    with pytest.raises(InputError, match=r"must be bgzip-compressed and indexed"):
        Genome(plain_gz)


def test_multitask_labels_mark_windows_whose_centre_lies_in_each_experiments_peaks():
    windows = [Region("chr1", 0, 100), Region("chr1", 1000, 1100), Region("chr2", 0, 100)]
    exps = {"a": [Region("chr1", 40, 60)], "b": [Region("chr1", 1030, 1040), Region("chr2", 45, 55)]}
    np.testing.assert_array_equal(multitask_labels(windows, exps), [[1, 0], [0, 0], [0, 1]])


def test_backgrounds_are_seeded_inside_the_genome_and_overlap_no_region(tmp_path):
    path, _ = _genome(tmp_path)
    g = Genome(path)
    peaks = fixed_width([Region("chr1", s, s + 10, f"p{s}") for s in range(1000, 18_000, 1500)], 200)
    flanks = flank_background(peaks, g)
    assert len(flanks) == len(peaks)
    assert all(not any(overlaps(f, p) for p in peaks) and 0 <= f.start and f.end <= 20_000 for f in flanks)
    a = gc_matched_background(peaks, g, np.random.default_rng(5), per_region=2)
    b = gc_matched_background(peaks, g, np.random.default_rng(5), per_region=2)
    assert a == b and len(a) >= len(peaks)  # seeded
    assert all(not any(overlaps(x, p) for p in peaks) for x in a)
    gc_peaks = sorted(int(gc_content(s) * 20) for s in g.sequences(peaks))
    gc_bg = Counter(int(gc_content(s) * 20) for s in g.sequences(a))
    assert set(gc_bg) <= set(gc_peaks)  # every background window in a GC bin of the peaks


def test_dinucleotide_shuffles_keep_every_dinucleotide_count():
    rng = np.random.default_rng(0)
    seq = "".join(np.random.default_rng(1).choice(list("ACGT"), 300, p=[0.4, 0.1, 0.1, 0.4]))
    pairs = lambda s: Counter(s[i : i + 2] for i in range(len(s) - 1))  # noqa: E731
    shuffled = [dinucleotide_shuffle(seq, rng) for _ in range(5)]
    for s in shuffled:
        assert pairs(s) == pairs(seq) and s[0] == seq[0] and s[-1] == seq[-1] and s != seq
    assert len(set(shuffled)) == 5
    assert dinucleotide_shuffle(seq, np.random.default_rng(3)) == dinucleotide_shuffle(seq, np.random.default_rng(3))


def test_track_means_count_missing_bases_as_zero_and_stop_at_chromosome_ends(tmp_path):
    import pyBigWig

    from biolstm.data.genome import track_means

    bw = pyBigWig.open(str(tmp_path / "t.bw"), "w")
    bw.addHeader([("chr1", 1000)])
    bw.addEntries(["chr1", "chr1"], [0, 100], ends=[100, 200], values=[1.0, 3.0])
    bw.close()
    windows = [Region("chr1", 50, 150), Region("chr1", 150, 250), Region("chr1", 990, 1010)]
    np.testing.assert_allclose(track_means(tmp_path / "t.bw", windows), [2.0, 1.5, 0.0])
    with pytest.raises(InputError, match=r"no chromosome 'chr9' in this track \(it has chr1\)"):
        track_means(tmp_path / "t.bw", [Region("chr9", 0, 10)])
    (tmp_path / "x.bw").write_text("not a bigwig")
    with pytest.raises(InputError, match=r"x\.bw: not a bigWig file"):
        track_means(tmp_path / "x.bw", windows)
    with pytest.raises(InputError, match=r"none\.bw: no such bigWig file"):
        track_means(tmp_path / "none.bw", windows)
