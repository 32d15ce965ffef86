"""`biolstm train` on regions of a reference genome: a synthetic genome (5 chromosomes of random
bases) with two factors' motifs planted at the summits of their own narrowPeak files; windows
are cut from the indexed genome, background windows drawn from it (seeded), and the split is by
chromosome."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from biolstm.cli import app

runner = CliRunner()
MOTIFS = {"gata": "AGATAAGA", "ebox": "CACGTGAC"}


def synthetic_genome(tmp_path, per_chrom: int = 80, length: int = 30_000, seed: int = 0):
    """genome.fa (+ .fai) with each factor's motif planted at its peaks, and one narrowPeak per
    factor (summit at the motif); the peaks of the two factors never overlap."""
    import pyfaidx

    rng = np.random.default_rng(seed)
    peaks = {name: [] for name in MOTIFS}
    text = []
    for c in range(1, 6):
        bases = list(rng.choice(list("ACGT"), length))
        for k in range(per_chrom):
            name = list(MOTIFS)[k % 2]
            start = 500 + k * (length - 1000) // per_chrom
            bases[start : start + 8] = MOTIFS[name]
            peaks[name].append(f"chr{c}\t{start - 40}\t{start + 48}\tp{c}_{k}\t0\t.\t1\t1\t1\t44\n")
        seq = "".join(bases)
        text.append(f">chr{c}\n" + "\n".join(seq[i : i + 70] for i in range(0, length, 70)) + "\n")
    (tmp_path / "genome.fa").write_text("".join(text))
    pyfaidx.Faidx(str(tmp_path / "genome.fa")).close()
    for name, lines in peaks.items():
        (tmp_path / f"{name}.narrowPeak").write_text("".join(lines))
    return tmp_path / "genome.fa"


def _config(tmp_path, regions, **data):
    cfg = {
        "task": "sequence",
        "data": {"genome": "genome.fa", "regions": regions, "width": 60, "kmer": 3, **data},
        "model": {"conv_filters": 8, "conv_kernel": 9, "pool": 2, "hidden_size": 8},
        "train": {"epochs": 15, "batch_size": 32, "lr": 0.01, "seed": 0},
    }
    path = tmp_path / "genome.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_one_experiment_against_gc_matched_background_trains_with_a_chromosome_split(tmp_path):
    synthetic_genome(tmp_path)
    cfg = _config(tmp_path, {"gata": "gata.narrowPeak"})
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 0, res.output
    split = json.loads((tmp_path / "run" / "split.json").read_text()) if (tmp_path / "run" / "split.json").exists() \
        else json.loads((tmp_path / "run" / "state.json").read_text())["split"]  # fmt: skip
    text = json.dumps(split)
    assert "chromosome" in text and "chr5" in text  # the last chromosome held out for testing
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert metrics["model"]["auroc"] > 0.9, metrics  # the planted motif against GC-matched background
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert resolved["data"]["background"] == "gc" and resolved["data"]["seed"] == 0  # recorded in the run


def test_streamed_windows_read_by_workers_train_exactly_as_windows_in_memory(tmp_path):
    """data.stream cuts and encodes each batch from the genome (two DataLoader workers here):
    the same batches as in memory, so the same model and metrics."""
    synthetic_genome(tmp_path, per_chrom=40)
    cfg = _config(tmp_path, {"gata": "gata.narrowPeak"})
    runs = {}
    for name, extra in (("memory", []), ("stream", ["--data.stream", "true", "--data.workers", "2"])):
        res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / name), "-q", "--train.epochs", "3", *extra])
        assert res.exit_code == 0, res.output
        runs[name] = json.loads((tmp_path / name / "metrics.json").read_text())["metrics"]
    assert runs["stream"]["model"] == runs["memory"]["model"]
    assert set(runs["stream"]) == {"model", "majority"}  # content baselines need every sequence in memory
    bad = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "bad"), "-q", "--data.workers", "2"])
    assert bad.exit_code == 1 and "data.workers: encode batches in workers only with data.stream: true" in bad.output


def test_genome_windows_shuffles_are_the_same_whoever_reads_them(tmp_path):
    import pickle

    from biolstm.data.genome import GenomeWindows, Region

    synthetic_genome(tmp_path, per_chrom=4)
    windows = [Region("chr1", 100 * k, 100 * k + 60) for k in range(6)]
    source = GenomeWindows(tmp_path / "genome.fa", windows, shuffled=[False, True] * 3, seed=3, width=60)
    together = source.take([5, 1, 0])["x"]
    alone = [source.take([k])["x"][0] for k in (5, 1, 0)]
    assert all(torch.equal(a, b) for a, b in zip(together, alone))
    copy = pickle.loads(pickle.dumps(source))  # what a worker process gets: no open file handle
    assert copy._genome is None and torch.equal(copy.take([5, 1, 0])["x"], together)
    assert not torch.equal(together[0], GenomeWindows(tmp_path / "genome.fa", windows, [False, True] * 3, seed=4,
                                                      width=60).take([5])["x"][0])  # fmt: skip
    assert source.subset([1, 3]).take([1])["x"].shape == (1, 60, 4)


def test_two_experiments_give_one_output_each_against_shuffled_background(tmp_path):
    synthetic_genome(tmp_path)
    cfg = _config(tmp_path, {"gata": "gata.narrowPeak", "ebox": "ebox.narrowPeak"}, background="shuffle")
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "run"), "-q", "--train.epochs", "20"])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "run" / "metrics.json").read_text())
    per_task = result["classes"]["per_label"]
    assert set(per_task) == {"ebox", "gata"}  # one output per experiment, metrics for each
    assert all(v["auroc"] > 0.9 for v in per_task.values()), per_task
    mean = np.mean([v["auroc"] for v in per_task.values()])
    assert result["metrics"]["model"]["auroc"] == pytest.approx(mean)  # and their mean


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"genome": "genome.fa"}, r"data\.genome and data\.regions: give both"),
        ({"regions": {"gata": "gata.narrowPeak"}, "genome": "nope.fa"}, r"nope\.fa: no such genome FASTA"),
        ({"regions": {"gata": "gata.narrowPeak"}, "genome": "genome.fa", "files": {"a": "x.fa"}},
         r"data\.genome: sequences come from the genome"),
        ({"regions": {"gata": "gata.narrowPeak"}, "genome": "genome.fa", "background": "none"},
         r"data\.background: one experiment without background windows has no negatives"),
        ({"regions": {"gata": "missing.bed"}, "genome": "genome.fa"}, r"missing\.bed: no such region file"),
    ],
)
def test_genome_misuse_is_one_error_line(tmp_path, data, message):
    synthetic_genome(tmp_path, per_chrom=4)
    cfg = {"task": "sequence", "data": data, "train": {"epochs": 1}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    import re

    assert re.search(message, lines[0]), lines[0]


def test_a_bigwig_tracks_mean_coverage_is_the_regression_target(tmp_path):
    import pyBigWig

    synthetic_genome(tmp_path)
    bw = pyBigWig.open(str(tmp_path / "signal.bw"), "w")
    bw.addHeader([(f"chr{c}", 30_000) for c in range(1, 6)])
    entries = []
    for name, value in (("gata", 12.0), ("ebox", 3.0)):  # coverage over each factor's peaks
        for line in (tmp_path / f"{name}.narrowPeak").read_text().splitlines():
            chrom, start, end = line.split("\t")[:3]
            entries.append((int(chrom[3:]), int(start), int(end), value))
    for c, start, end, value in sorted(entries):  # bigWig entries in genome order
        bw.addEntries([f"chr{c}"], [start], ends=[end], values=[value])
    bw.close()
    cfg = _config(tmp_path, {"gata": "gata.narrowPeak", "ebox": "ebox.narrowPeak"}, tracks={"signal": "signal.bw"})
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "run"), "-q", "--train.epochs", "20"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert metrics["model"]["pearson"] > 0.9, metrics  # the motif predicts its factor's coverage
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]
    assert resolved["tracks"]["signal"] == str(tmp_path / "signal.bw") and resolved["track_transform"] == "log1p"
    bad = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "r2"), "-q",
                              "--data.tracks", "{a: signal.bw, b: signal.bw}"])  # fmt: skip
    assert bad.exit_code == 1 and "data.tracks: expected one {name: bigWig file}" in bad.output
