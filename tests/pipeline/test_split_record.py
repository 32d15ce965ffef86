"""Every run records its split (split.json), and through the CLI no chromosome, group, subject or
target time is in two parts: the command runs the splits of biolstm.data.splits, and a leak
there or in the task layer fails here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from biolstm.cli import app

from .test_runs import SEQ_CONFIG, motif_fastas, write_config

runner = CliRunner()
PARTS = ("train", "val", "test")


def trained_split(tmp_path, cfg: dict, name: str) -> dict:
    run = tmp_path / name
    res = runner.invoke(app, ["train", str(write_config(tmp_path / f"{name}.yaml", cfg)), "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    return json.loads((run / "split.json").read_text())


def assert_disjoint(split: dict, key: str) -> None:
    for i, a in enumerate(PARTS):
        for b in PARTS[i + 1 :]:
            shared = set(split[a][key]) & set(split[b][key])
            assert not shared, (key, a, b, sorted(shared)[:5])


def test_chromosome_split_puts_each_chromosome_in_one_part(tmp_path):
    motif_fastas(tmp_path, n=40, length=30)
    cfg = dict(SEQ_CONFIG, data={**SEQ_CONFIG["data"], "split": "chromosome", "test_chromosomes": ["chr4"],
                                 "val_chromosomes": ["chr3"]}, train={**SEQ_CONFIG["train"], "epochs": 1})  # fmt: skip
    split = trained_split(tmp_path, cfg, "chrom")
    assert split["by"] == "chromosome"
    assert (split["test"]["chromosomes"], split["val"]["chromosomes"]) == (["chr4"], ["chr3"])
    assert split["train"]["chromosomes"] == ["chr1", "chr2"]
    assert_disjoint(split, "chromosomes")
    assert_disjoint(split, "ids")
    for part in PARTS:  # each id's own header agrees with its part's chromosomes
        assert {i.split(":")[0] for i in split[part]["ids"]} == set(split[part]["chromosomes"])
    assert sum(len(split[p]["ids"]) for p in PARTS) == 80
    # the same split as biolstm.data.split_by_chromosome on the same ids
    from biolstm.data import split_by_chromosome

    ids = split["train"]["ids"] + split["val"]["ids"] + split["test"]["ids"]
    s = split_by_chromosome(ids, ["chr4"], ["chr3"])
    assert [ids[i] for i in s.test] == split["test"]["ids"]


def test_val_and_test_chromosomes_may_not_overlap(tmp_path):
    motif_fastas(tmp_path, n=40, length=30)
    cfg = dict(SEQ_CONFIG, data={**SEQ_CONFIG["data"], "split": "chromosome", "test_chromosomes": ["chr4"],
                                 "val_chromosomes": ["chr4", "chr3"]})  # fmt: skip
    res = runner.invoke(app, ["train", str(write_config(tmp_path / "c.yaml", cfg)), "-o", str(tmp_path / "r"), "-q"])
    assert res.exit_code == 1 and "data.val_chromosomes" in res.output and "chr4" in res.output


@pytest.mark.parametrize("split", ["group", "random"])
def test_expression_groups_and_samples_stay_in_one_part(tmp_path, split):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 12))
    labels = np.tile(["liver", "brain", "kidney"], 30)
    x[labels == "liver", :3] += 2
    donors = [f"d{k // 3}" for k in range(90)]  # 30 donors, 3 samples each
    rows = "".join(f"s{k},{donors[k]}," + ",".join(f"{v:.3f}" for v in x[k]) + f",{labels[k]}\n" for k in range(90))
    (tmp_path / "expr.csv").write_text("sample,donor," + ",".join(f"g{j}" for j in range(12)) + ",y\n" + rows)
    cfg = {
        "task": "expression",
        "data": {"file": "expr.csv", "label": "y", "sample": "sample", "group": "donor", "components": 4,
                 "split": split},
        "model": {"conv_filters": 0, "hidden_size": 4, "pooling": "last"},
        "train": {"epochs": 1, "batch_size": 16},
    }  # fmt: skip
    rec = trained_split(tmp_path, cfg, f"expr-{split}")
    assert rec["by"] == split
    assert_disjoint(rec, "ids")
    assert sum(len(rec[p]["ids"]) for p in PARTS) == 90
    if split == "group":
        assert_disjoint(rec, "groups")
        assert sum(len(rec[p]["groups"]) for p in PARTS) == 30


def test_longitudinal_subjects_stay_in_one_part(tmp_path):
    rows = ["id,day,a,status"]
    for i in range(40):
        rows += [f"{i},{100 * k},{k + i % 2},{2 * (i % 2)}" for k in range(3)]
    (tmp_path / "v.csv").write_text("\n".join(rows) + "\n")
    cfg = {
        "task": "longitudinal",
        "data": {"file": "v.csv", "id_col": "id", "time_col": "day", "variables": ["a"], "target": "status",
                 "positive": [2]},
        "model": {"conv_filters": 0, "hidden_size": 4},
        "train": {"epochs": 1},
    }  # fmt: skip
    rec = trained_split(tmp_path, cfg, "lon")
    assert rec["by"] == "group"
    assert_disjoint(rec, "groups")
    assert sorted(g for p in PARTS for g in rec[p]["groups"]) == sorted(str(i) for i in range(40))


def test_forecast_parts_share_no_target_time(tmp_path):
    t = np.arange(120)
    (tmp_path / "s.csv").write_text("time,value\n" + "".join(f"{a},{np.sin(a / 3):.4f}\n" for a in t))
    cfg = {"task": "forecast", "data": {"file": "s.csv", "lookback": 12, "horizon": 3, "test": 20, "val": 10},
           "model": {"hidden_size": 4}, "train": {"epochs": 1}}  # fmt: skip
    rec = trained_split(tmp_path, cfg, "fc")
    assert rec["by"] == "time"
    (a0, a1), (b0, b1), (c0, c1) = (rec[p]["target_times"] for p in PARTS)
    assert a0 == 12 and a1 < b0 <= b1 < c0 <= c1 == 119
    assert (c1 - c0 + 1, b1 - b0 + 1) == (20, 10)
