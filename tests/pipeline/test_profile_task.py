"""`biolstm train` of a profile task: a synthetic genome with GATA and E-box sites at random
places, two bigWig tracks whose coverage is a bump around each site of their factor, and
200-bp tiles of the genome (every 150 bp) as regions. The model must place the bumps (Pearson along each
region) and their amount (Pearson across regions) far better than the baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.interpret.motif_db import MotifMatch, is_named

runner = CliRunner()
SITES = {"gata": ("AGATAAGA", 20.0), "ebox": ("CACGTGAC", 8.0)}  # factor: (site, bump height)


def profile_genome(path, chroms: int = 5, length: int = 20_000, seed: int = 0):
    """genome.fa (+ .fai), gata.bw and ebox.bw (a Gaussian bump, sd 6 bp, at each of the
    factor's sites), and tiles.bed (200-bp tiles every 150 bp)."""
    import pyBigWig
    import pyfaidx

    rng = np.random.default_rng(seed)
    text, cover = [], {name: {} for name in SITES}
    tiles = []
    for c in range(1, chroms + 1):
        bases = list(rng.choice(list("ACGT"), length))
        tracks = {name: np.zeros(length) for name in SITES}
        pos = 100
        while pos < length - 100:
            name = list(SITES)[int(rng.integers(2))]
            site, height = SITES[name]
            bases[pos : pos + len(site)] = site
            d = np.arange(length) - (pos + len(site) / 2)
            near = np.abs(d) < 40
            tracks[name][near] += height * np.exp(-0.5 * (d[near] / 6) ** 2)
            pos += int(rng.integers(60, 260))
        for name in SITES:
            cover[name][f"chr{c}"] = tracks[name]
        seq = "".join(bases)
        text.append(f">chr{c}\n" + "\n".join(seq[i : i + 70] for i in range(0, length, 70)) + "\n")
        tiles += [f"chr{c}\t{s}\t{s + 200}\n" for s in range(0, length - 200 + 1, 150)]
    (path / "genome.fa").write_text("".join(text))
    pyfaidx.Faidx(str(path / "genome.fa")).close()
    (path / "tiles.bed").write_text("".join(tiles))
    for name in SITES:
        bw = pyBigWig.open(str(path / f"{name}.bw"), "w")
        bw.addHeader([(chrom, length) for chrom in cover[name]])
        for chrom, values in cover[name].items():
            bw.addEntries(chrom, 0, values=values.round(3).tolist(), span=1, step=1)
        bw.close()


def _config(path, **data):
    cfg = {
        "task": "profile",
        "data": {"genome": "genome.fa", "regions": {"tiles": "tiles.bed"}, "center": "interval", "width": 200,
                 "bin": 10, "tracks": {"gata": "gata.bw", "ebox": "ebox.bw"}, **data},
        "model": {"conv_filters": 16, "conv_kernel": 9, "hidden_size": 16},
        "train": {"epochs": 25, "batch_size": 32, "lr": 0.01, "seed": 0},
    }  # fmt: skip
    (path / "profile.yaml").write_text(yaml.safe_dump(cfg))
    return path / "profile.yaml"


def test_profiles_of_two_tracks_train_with_the_poisson_loss(tmp_path):
    profile_genome(tmp_path)
    res = runner.invoke(app, ["train", str(_config(tmp_path)), "-o", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "run" / "metrics.json").read_text())
    m = result["metrics"]
    print(json.dumps(m, indent=1))
    assert set(m) == {"model", "mean_profile", "3-mer_ridge"}
    assert m["model"]["pearson_per_region"] > 0.7 > m["mean_profile"]["pearson_per_region"] + 0.3
    assert m["model"]["pearson_across_regions"] > max(0.7, m["3-mer_ridge"]["pearson_across_regions"] + 0.1)
    assert np.isnan(m["mean_profile"]["pearson_across_regions"])  # one amount for every region
    assert m["model"]["poisson_nll"] < m["mean_profile"]["poisson_nll"]
    assert set(result["tracks"]) == {"gata", "ebox"} and result["tracks"]["gata"]["n"] == m["model"]["n"]
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["by"] == "chromosome" and split["test"]["chromosomes"] == ["chr5"]
    rows = (tmp_path / "run" / "test_predictions.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["id", "track", "bin_start", "bin_end", "predicted", "true"]
    assert len(rows) == 1 + m["model"]["n"] * 2 * 20
    assert (tmp_path / "run" / "profiles.png").stat().st_size > 10_000
    # predict and evaluate on new regions: a BED file cut from the run's genome
    (tmp_path / "new.bed").write_text("chr5\t1000\t1200\nchr5\t5000\t5200\n")
    new, out = str(tmp_path / "new.bed"), str(tmp_path / "p.tsv")
    res = runner.invoke(app, ["predict", str(tmp_path / "run"), new, "-o", out])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 1 + 2 * 2 * 20
    res = runner.invoke(app, ["evaluate", str(tmp_path / "run"), new])
    assert res.exit_code == 0, res.output
    assert "pearson_per_region" in res.output
    # explain: the track with the most coverage (GATA's) is explained, and its motif is named
    res = runner.invoke(app, ["explain", str(tmp_path / "run"), "--examples", "1"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "run" / "explain" / "explain.json").read_text())
    assert summary["explained_output"] == "log coverage of gata (mean over bins)"
    up = [[MotifMatch(**h) for h in m["matches"]] for m in summary["motifs"] if m["sign"] > 0]
    assert any(is_named(hits, ["GATA", "Gata"]) for hits in up), summary["motifs"]


def test_mse_on_log1p_coverage_also_trains(tmp_path):
    profile_genome(tmp_path, chroms=4)
    res = runner.invoke(app, ["train", str(_config(tmp_path)), "-o", str(tmp_path / "run"), "-q",
                              "--model.loss", "mse", "--train.epochs", "15"])  # fmt: skip
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert m["model"]["pearson_per_region"] > 0.6 > m["mean_profile"]["pearson_per_region"] + 0.3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"width": 205}, r"data\.width: expected a multiple of data\.bin \(10\), got 205"),
        ({"tracks": None}, r"data\.tracks: expected a mapping, got none"),
        ({"tracks": {"gata": "missing.bw"}}, r"missing\.bw: no such bigWig file"),
        ({"tracks": {"gata": "tiles.bed"}}, r"tiles\.bed: not a bigWig file"),
        ({"background": "shuffle"}, r"data\.background: expected one of 'none', 'gc', 'flank', got 'shuffle'"),
    ],
)
def test_profile_misuse_is_one_error_line(tmp_path, capfd, data, message):
    import re

    profile_genome(tmp_path, chroms=3, length=3000)
    res = runner.invoke(app, ["train", str(_config(tmp_path, **data)), "-o", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 1, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
    assert "bwHdrRead" not in capfd.readouterr().err  # nothing from the bigWig library on the terminal
    assert re.search(message, res.output), res.output
    assert not (tmp_path / "run").exists()
