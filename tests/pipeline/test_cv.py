"""K-fold cross-validation (``biolstm train --cv K``): folds that cover every example once as
test data, keep groups and chromosomes whole and keep the class balance; one ordinary run per
fold; mean and SD over folds for the model and every baseline; the small-test-part warning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.data.splits import split_folds
from biolstm.errors import InputError

from .test_runs import SEQ_CONFIG, motif_fastas

runner = CliRunner()


@pytest.mark.parametrize("kind", ["plain", "stratified", "grouped", "stratified_grouped"])
def test_every_example_is_test_data_in_exactly_one_fold(kind):
    rng = np.random.default_rng(0)
    n = 120
    strata = rng.integers(0, 3, n) if "stratified" in kind else None
    groups = rng.integers(0, 30, n) if "grouped" in kind else None
    seen = np.zeros(n, dtype=int)
    for k in range(1, 6):
        s = split_folds(n, 5, k, val=0.1, seed=3, strata=strata, groups=groups)
        parts = [set(s.train), set(s.val), set(s.test)]
        assert sum(map(len, parts)) == n and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        seen[s.test] += 1
        if groups is not None:  # no group on two sides
            g = [set(groups[list(p)]) for p in parts]
            assert not (g[0] & g[1] or g[0] & g[2] or g[1] & g[2])
        if strata is not None and groups is None:  # each class in the test fold near its share
            share = np.bincount(strata[s.test], minlength=3) / len(s.test)
            assert np.abs(share - np.bincount(strata, minlength=3) / n).max() < 0.05
    assert (seen == 1).all()
    again = split_folds(n, 5, 2, val=0.1, seed=3, strata=strata, groups=groups)
    assert again.test.tolist() == split_folds(n, 5, 2, val=0.1, seed=3, strata=strata, groups=groups).test.tolist()


def test_folds_refuse_what_they_cannot_do():
    with pytest.raises(InputError, match="a class has 2 examples, fewer than the 5 folds"):
        split_folds(10, 5, 1, strata=np.array([0] * 8 + [1] * 2))
    with pytest.raises(InputError, match="5 folds need at least 5 groups, got 3"):
        split_folds(9, 5, 1, groups=np.arange(9) % 3)


def test_cv_through_the_cli(tmp_path):
    motif_fastas(tmp_path, n=40, length=30)
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({**SEQ_CONFIG, "train": {**SEQ_CONFIG["train"], "epochs": 2}}))
    out = tmp_path / "cv"
    res = runner.invoke(app, ["train", str(cfg), "--cv", "3", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "cv.json").read_text())
    assert summary["folds"] == 3 and set(summary["mean"]) == {"model", "majority", "gc_content", "3-mer_logistic"}
    tests = []
    for k in (1, 2, 3):
        run = out / f"fold-{k}"
        assert yaml.safe_load((run / "config.yaml").read_text())["data"]["fold"] == k
        tests += json.loads((run / "split.json").read_text())["test"]["ids"]
    assert len(tests) == len(set(tests)) == 80  # every peak is test data once
    aurocs = [f["metrics"]["3-mer_logistic"]["auroc"] for f in summary["per_fold"]]
    assert summary["mean"]["3-mer_logistic"]["auroc"] == pytest.approx(np.mean(aurocs))
    assert summary["sd"]["3-mer_logistic"]["auroc"] == pytest.approx(np.std(aurocs, ddof=1))
    rows = (out / "cv.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["fold", "name", "auroc"] and len(rows) == 1 + 3 * 4 + 2 * 4
    before = (out / "fold-1" / "metrics.json").read_bytes()
    res = runner.invoke(app, ["train", "--resume", "--cv", "3", "-o", str(out), "-q"])  # finished folds are kept
    assert res.exit_code == 0, res.output
    assert (out / "fold-1" / "metrics.json").read_bytes() == before
    res = runner.invoke(app, ["train", str(cfg), "--cv", "3", "-o", str(out), "-q"])
    assert res.exit_code == 1 and res.output.startswith("error: --out:") and "already holds files" in res.output
    res = runner.invoke(app, ["train", str(cfg), "--cv", "3", "-o", str(tmp_path / "x"), "--data.fold", "1"])
    assert res.exit_code == 1 and "sets data.folds and data.fold itself" in res.output


def test_a_small_test_part_is_warned_about(tmp_path):
    motif_fastas(tmp_path, n=30, length=30)
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({**SEQ_CONFIG, "train": {**SEQ_CONFIG["train"], "epochs": 1}}))
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "r"), "-q"])
    assert res.exit_code == 0, res.output
    assert "warning: the test part has 6 examples (fewer than 30); fewer than 10 examples of class" in res.output


def test_backtest_from_the_cli_on_a_panel_run(tmp_path):
    from ..datafiles import EXAMPLES

    cfg = tmp_path / "chick.yaml"
    cfg.write_text(yaml.safe_dump({
        "task": "panel",
        "data": {"file": str(EXAMPLES / "data" / "chickweight.csv"), "id_col": "Chick", "time_col": "Time",
                 "target": "weight", "horizon": 3, "test": 3, "baselines": ["naive"], "ensemble": 1},
        "train": {"epochs": 2, "seed": 0},
    }))  # fmt: skip
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(cfg), "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "bt.json"
    res = runner.invoke(app, ["evaluate", str(run), "--backtest", "2", "--json", str(out)])
    assert res.exit_code == 0, res.output
    bt = json.loads(out.read_text())
    assert len(bt["folds"]) == 2 and set(bt["mean"]) == {"model", "naive"} and "mase" in bt["mean"]["model"]
    assert "rolling origin: 2 origins" in res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path / "nope"), "--backtest", "2"])
    assert res.exit_code == 1 and res.output.startswith("error:")
