"""evaluate on new data in every form training reads (one file per class, labels in headers, a
labels table, a table with a label column), with the baselines fitted on the run's training
part scored on the new data too."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from biolstm.cli import app

from .test_runs import SEQ_CONFIG, motif_fastas

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ev")
    motif_fastas(tmp, n=40, length=30)
    cfg = tmp / "m.yaml"
    cfg.write_text(yaml.safe_dump({**SEQ_CONFIG, "train": {**SEQ_CONFIG["train"], "epochs": 3}}))
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp / "run"), "-q"])
    assert res.exit_code == 0, res.output
    new = tmp / "new"
    new.mkdir()
    motif_fastas(new, n=25, length=30, seed=7)  # new bound.fa / unbound.fa
    return tmp


def _metrics(res):
    assert res.exit_code == 0, res.output
    return res


def test_one_file_per_class_gives_the_model_and_the_training_baselines(trained):
    out = trained / "e1.json"
    files = f"{{bound: {trained / 'new/bound.fa'}, unbound: {trained / 'new/unbound.fa'}}}"
    _metrics(runner.invoke(app, ["evaluate", str(trained / "run"), "--data.files", files, "--json", str(out)]))
    m = json.loads(out.read_text())["metrics"]
    assert set(m) == {"model", "majority", "gc_content", "3-mer_logistic"}
    assert all(v["n"] == 50 for v in m.values())  # every new record, for the model and each baseline
    assert m["3-mer_logistic"]["auroc"] > 0.8  # a fitted baseline, not a constant


def test_labels_in_headers_and_a_labels_table_give_the_same_numbers(trained):
    new = trained / "new"
    both = (new / "bound.fa").read_text().replace(" peak", " bound peak") + (new / "unbound.fa").read_text().replace(
        " peak", " unbound peak")  # fmt: skip
    (new / "all.fa").write_text(both)
    ids = [line[1:].split()[0] for line in both.splitlines() if line.startswith(">")]
    labels = ["bound"] * 25 + ["unbound"] * 25
    (new / "labels.csv").write_text("id,label\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, labels)))
    a, b = trained / "a.json", trained / "b.json"
    _metrics(runner.invoke(app, ["evaluate", str(trained / "run"), str(new / "all.fa"), "--labels",
                                 str(new / "labels.csv"), "--json", str(a)]))  # fmt: skip
    _metrics(runner.invoke(app, ["evaluate", str(trained / "run"), "--data.file", str(new / "all.fa"),
                                 "--data.label-field", "1", "--json", str(b)]))  # fmt: skip
    ma, mb = json.loads(a.read_text())["metrics"], json.loads(b.read_text())["metrics"]
    assert ma == mb and set(ma) == {"model", "majority", "gc_content", "3-mer_logistic"}


def test_only_data_keys_are_taken(trained):
    res = runner.invoke(app, ["evaluate", str(trained / "run"), "--model.hidden-size", "3"])
    assert res.exit_code == 1 and "evaluate takes only data.* keys" in res.output


def test_a_model_key_the_data_decides_is_not_silently_replaced(tmp_path):
    motif_fastas(tmp_path, n=20, length=30)
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({**SEQ_CONFIG, "model": {**SEQ_CONFIG["model"], "input_channels": 20}}))
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "r"), "-q"])
    assert res.exit_code == 1 and not (tmp_path / "r").exists()
    assert "model.input_channels: the sequence task sets it from the data (4), got 20; leave it out" in res.output
