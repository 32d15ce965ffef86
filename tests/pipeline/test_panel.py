"""The panel task: fitted transforms and scalers, forecasts indexed by target time, no test-block
value in anything fitted, a MASE scale that does not move with the validation block, new data,
rolling-origin backtests, and a run end to end through ``biolstm train`` on real panels
(examples/data/chickweight.csv and dietox.csv)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import boxcox_normmax
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.pipeline.preprocess import SeriesScaler, StaticEncoder, TargetTransform
from biolstm.pipeline.tasks import TASKS
from biolstm.pipeline.tasks.forecast import SeriesData
from biolstm.pipeline.tasks.panel import PanelData, backtest

from ..datafiles import EXAMPLES, SUNSPOTS
from .test_runs import write_config

runner = CliRunner()
CHICKS = EXAMPLES / "data" / "chickweight.csv"
DIETOX = EXAMPLES / "data" / "dietox.csv"
CHICK_DATA = {"id_col": "Chick", "time_col": "Time", "target": "weight", "static": ["Diet"], "categorical": ["Diet"]}


def quiet(*_):
    pass


def chick_subset(path, n: int = 10, scale_test: float | None = None):
    """The first ``n`` chicks of ChickWeight as a file; ``scale_test`` multiplies each chick's
    last 3 weights (its test block)."""
    df = pd.read_csv(CHICKS)
    df = df[df.Chick <= n].copy()
    if scale_test is not None:
        last3 = df.groupby("Chick").cumcount(ascending=False) < 3
        df.loc[last3, "weight"] = df.loc[last3, "weight"] * scale_test
    df.to_csv(path, index=False)
    return path


def prepare(file, **data):
    task = TASKS["panel"]()
    d = PanelData.from_dict({"file": str(file), **data})
    return task, d, task.prepare(d, quiet)


def test_transforms_round_trip_and_keep_their_fitted_state():
    rng = np.random.default_rng(0)
    y = rng.lognormal(3, 1, 200)
    for kind in ("none", "log", "log1p", "boxcox"):
        t = TargetTransform(kind).fit(y[:150])
        back = TargetTransform.from_json(json.loads(json.dumps(t.to_json())))
        np.testing.assert_allclose(back.inverse_transform(back.transform(y)), y, rtol=1e-9)
        np.testing.assert_array_equal(back.transform(y), t.transform(y))
    bc = TargetTransform("boxcox").fit(y[:150])
    assert bc.lambda_ == pytest.approx(boxcox_normmax(y[:150], method="mle"))  # the training values'
    assert bc.lambda_ != pytest.approx(boxcox_normmax(y, method="mle"))
    with pytest.raises(ValueError, match=r"transform 'log': expected training values > 0, got 0"):
        TargetTransform("log").fit(np.array([0.0, 1.0]))
    ids = np.repeat(["a", "b"], 100)
    for mode in ("per_series", "global", "none"):
        s = SeriesScaler(mode).fit(y, ids)
        z = s.transform(y, ids)
        np.testing.assert_allclose(SeriesScaler.from_json(s.to_json()).inverse_transform(z, ids), y, rtol=1e-12)
    s = SeriesScaler("per_series").fit(y, ids)
    assert s.mean_[1] == pytest.approx(y[100:].mean()) and s.scale_[0] == pytest.approx(y[:100].std())
    # a new series gets its own statistics; the known ones keep theirs
    s2 = s.with_series(np.array([1.0, 3.0]), ["c", "c"])
    assert s2.ids_ == ["a", "b", "c"] and s2.mean_[2] == 2.0 and s2.scale_[2] == 1.0 and s2.mean_[1] == s.mean_[1]
    enc = StaticEncoder(["Diet"]).fit([[1, 2.0], [2, 4.0], [1, None]], ["Diet", "w"])
    np.testing.assert_allclose(enc.transform([[2, 3.0], [9, None]]), [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    assert enc.names() == ["w", "Diet=1", "Diet=2"]


def test_preprocessing_is_fitted_on_the_training_part_only(tmp_path):
    f = chick_subset(tmp_path / "c.csv", 12)
    prep = prepare(f, **CHICK_DATA, transform="boxcox", test=3, val=3, baselines=["naive"])[2]
    df = pd.read_csv(f).sort_values(["Chick", "Time"])
    train = df[df.groupby("Chick").cumcount(ascending=False) >= 6]  # before each validation and test block
    assert prep.state["transform"]["lambda_"] == pytest.approx(boxcox_normmax(train.weight.to_numpy(), method="mle"))
    tr = TargetTransform.from_json(prep.state["transform"])
    sc = prep.state["scaler"]
    k = sc["ids_"].index(3)
    z = tr.transform(train[train.Chick == 3].weight.to_numpy())
    assert sc["mean_"][k] == pytest.approx(z.mean()) and sc["scale_"][k] == pytest.approx(z.std())


def test_no_test_block_value_is_used_to_fit_anything(tmp_path):
    data = {**CHICK_DATA, "transform": "log", "test": 3, "baselines": ["naive", "auto_arima", "auto_ets"]}
    a = prepare(chick_subset(tmp_path / "a.csv", 8), **data)[2]
    b = prepare(chick_subset(tmp_path / "b.csv", 8, scale_test=3.0), **data)[2]
    assert a.state == b.state  # transform, scalers, static encoding, MASE scales
    for part in ("train",):
        (xa, ya), (xb, yb) = getattr(a, part), getattr(b, part)
        assert all(torch.equal(xa[k], xb[k]) for k in xa) and torch.equal(ya, yb)
    # the test inputs stop at each origin, before the test block; the baselines were fitted
    # before it (one origin per series: test == horizon)
    assert all(torch.equal(a.test[0][k], b.test[0][k]) for k in a.test[0])
    assert set(a.baselines) == {"naive", "auto_arima", "auto_ets"}
    for name in a.baselines:
        np.testing.assert_array_equal(a.baselines[name], b.baselines[name])
    truth_a = np.array([r["truth"] for r in a.test_ids])
    np.testing.assert_allclose(np.array([r["truth"] for r in b.test_ids]), 3 * truth_a)  # the block did change


def test_mase_scale_is_everything_before_the_test_block_whatever_val(tmp_path):
    f = chick_subset(tmp_path / "c.csv", 10)
    s0 = prepare(f, **CHICK_DATA, test=3, val=0, baselines=["naive"])[2].state["mase_scale"]
    s3 = prepare(f, **CHICK_DATA, test=3, val=3, baselines=["naive"])[2].state["mase_scale"]
    assert s0 == s3
    w = pd.read_csv(f).query("Chick == 1").sort_values("Time").weight.to_numpy()[:-3]
    assert s0[0] == pytest.approx(np.mean(np.abs(np.diff(w))))
    # the single-series forecast task: the same definition (its training values alone before)
    task = TASKS["forecast"]()
    v = pd.read_csv(SUNSPOTS).value.to_numpy()
    for val in (0, 20):
        st = task.prepare(SeriesData.from_dict({"file": str(SUNSPOTS), "test": 30, "val": val, "season": 11}),
                          quiet).state  # fmt: skip
        assert st["mase_scale"] == pytest.approx(np.mean(np.abs(v[11:-30] - v[:-41])), rel=1e-6)


def test_covariates_with_missing_values_static_text_and_one_series(tmp_path):
    _, _, prep = prepare(DIETOX, id_col="Pig", time_col="Time", target="Weight", covariates=["Feed"],
                         static=["Evit", "Cu", "Litter", "Start"], baselines=["naive"])  # fmt: skip
    x = prep.train[0]["x"]
    assert x.shape[-1] == 5 and prep.model_overrides["static_size"] == 8  # Evit x3, Cu x3, Litter, Start
    # Feed is missing in week 1: its mask channel (3) is 0 at each pig's first step and its value 0
    first = x[x[:, :, 1].sum(1) == 1][:, -1]  # windows whose origin is a first step
    assert len(first) > 0 and (first[:, 3] == 0).all() and (first[:, 2] == 0).all()
    assert prep.state["static"]["categories_"]["Evit"] == ["Evit000", "Evit100", "Evit200"]
    # a table without an id column is one series, named after the file
    _, _, one = prepare(EXAMPLES / "data" / "lh.csv", test=10, baselines=["naive"])
    assert one.state["ids"] == ["lh"] and len(one.test_ids) == 10 - 3 + 1
    assert [r["origin"] for r in one.test_ids] == list(range(38, 46))
    with pytest.raises(ValueError, match=r"data.horizon: expected at most data.test \(2\), got 3"):
        PanelData.from_dict({"file": "x.csv", "test": 2})


def test_panel_run_end_to_end_predict_evaluate_and_backtest(tmp_path):
    cfg = {
        "task": "panel",
        "data": {"file": str(CHICKS), **CHICK_DATA, "ensemble": 2, "nonnegative": True},
        "model": {"hidden_size": 8},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.01},
    }
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(write_config(tmp_path / "p.yaml", cfg)), "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    out = json.loads((run / "metrics.json").read_text())
    m = out["metrics"]
    assert set(m) == {"model", "naive", "auto_arima", "auto_ets"}
    assert all(np.isfinite(v["mase"]) and v["mase"] > 0 for v in m.values())
    assert "before the series' test block" in out["mase_scale"] and out["series_scored"] == 49
    assert out["series_not_scored"] == [18]  # 2 weighings: no test block, training only
    # test predictions: each row's target time is the step-th weighing after its origin, with its truth
    df = pd.read_csv(CHICKS)
    by = {c: g.sort_values("Time") for c, g in df.groupby("Chick")}
    rows = list(csv.DictReader((run / "test_predictions.tsv").open(), delimiter="\t"))
    assert len(rows) == 49 * 3 and set(rows[0]) >= {"series", "origin_time", "target_time", "step", "forecast", "truth"}
    for r in rows:
        g = by[int(r["series"])]
        t = g.Time.tolist()
        k = t.index(int(r["origin_time"])) + int(r["step"])
        assert int(r["target_time"]) == t[k] and float(r["truth"]) == g.weight.iloc[k]
        assert float(r["forecast"]) >= 0
    assert {r["target_time"] for r in rows if r["series"] == "1"} == {"18", "20", "21"}
    # the model's MAE in metrics.json is the mean over chicks of the rows' absolute errors
    err = pd.DataFrame(rows).astype({"forecast": float, "truth": float})
    err["e"] = (err.forecast - err.truth).abs()
    assert m["model"]["mae"] == pytest.approx(err.groupby("series").e.mean().mean(), rel=1e-4)
    # predict on new data: the next 3 steps after each chick's last weighing, by target time
    new = tmp_path / "new.csv"
    df[df.Chick.isin([1, 2])].assign(Chick=lambda x: x.Chick.map({1: 1, 2: 99})).to_csv(new, index=False)
    res = runner.invoke(app, ["predict", str(run), str(new), "-o", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0, res.output
    pred = list(csv.DictReader((tmp_path / "p.tsv").open(), delimiter="\t"))
    assert [(r["series"], r["origin_time"], r["target_time"], r["step"]) for r in pred[:3]] == [
        ("1", "21", "23", "1"), ("1", "21", "25", "2"), ("1", "21", "27", "3")]  # fmt: skip
    assert {r["series"] for r in pred} == {"1", "99"} and all(float(r["forecast"]) >= 0 for r in pred)
    res = runner.invoke(app, ["evaluate", str(run), str(new)])
    assert res.exit_code == 0 and "auto_arima" in res.output, res.output
    # backtest: fold 0 is the run's test block (test == horizon, no validation)
    bt = backtest(run, folds=2, baselines=["naive"])
    assert [f["fold"] for f in bt["folds"]] == [1, 0]
    assert bt["folds"][1]["metrics"]["model"]["mase"] == pytest.approx(m["model"]["mase"], rel=1e-5)
    assert bt["folds"][1]["metrics"]["naive"]["mase"] == pytest.approx(m["naive"]["mase"], rel=1e-9)
    assert bt["folds"][1]["seen_in_training"] == 0.0 and bt["folds"][0]["seen_in_training"] > 0
    assert bt["mean"]["model"]["mae"] == pytest.approx(np.mean([f["metrics"]["model"]["mae"] for f in bt["folds"]]))
    # the report of a panel run (an ensemble: outputs (B, members, horizon)) explains its gates
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    summary = json.loads((run / "explain" / "explain.json").read_text())
    assert summary["examples"][0]["output_what"] == "forecast, first step (scaled per series)"


def test_one_series_without_ids_trains_and_predicts_by_target_time(tmp_path):
    cfg = {"task": "panel", "data": {"file": str(EXAMPLES / "data" / "lh.csv"), "test": 10, "ensemble": 1,
                                     "baselines": ["naive"]},
           "model": {"hidden_size": 4}, "train": {"epochs": 2}}  # fmt: skip
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(write_config(tmp_path / "lh.yaml", cfg)), "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((run / "test_predictions.tsv").open(), delimiter="\t"))
    assert len(rows) == 8 * 3 and {r["series"] for r in rows} == {"lh"}
    assert all(int(r["target_time"]) == int(r["origin_time"]) + int(r["step"]) for r in rows)
    other = tmp_path / "other.csv"  # another file name: still the run's one series (its scaling)
    other.write_text((EXAMPLES / "data" / "lh.csv").read_text())
    res = runner.invoke(app, ["predict", str(run), str(other), "-o", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0, res.output
    pred = list(csv.DictReader((tmp_path / "p.tsv").open(), delimiter="\t"))
    assert [(r["series"], r["origin_time"], r["target_time"]) for r in pred] == [
        ("lh", "48", "49"), ("lh", "48", "50"), ("lh", "48", "51")]  # fmt: skip
    res = runner.invoke(app, ["predict", str(run), str(EXAMPLES / "data" / "lh.csv"), "-o", str(tmp_path / "q.tsv")])
    assert res.exit_code == 0, res.output
    assert [r["forecast"] for r in csv.DictReader((tmp_path / "q.tsv").open(), delimiter="\t")] == [
        r["forecast"] for r in pred]  # fmt: skip
