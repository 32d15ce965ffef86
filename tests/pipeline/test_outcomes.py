"""Outcome kinds (binary, multi-class, multi-label, regression) for every input kind, through
the Outcome object, the tasks' prepare and the CLI; the multivariate long-table task on PBC."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.errors import InputError
from biolstm.pipeline.tasks import MultivariateData, MultivariateTask, Outcome

from ..datafiles import EXAMPLES, PBC

runner = CliRunner()
TISSUE = EXAMPLES / "data" / "tissue_gene_expression.csv.gz"


# ------------------------------------------------------------------ the Outcome object
def test_more_than_two_classes_are_never_cut_down_to_two():
    o = Outcome().fit(["0", "1", "2", "1"])
    assert o.kind_ == "multiclass" and o.classes_ == ["0", "1", "2"] and o.head() == {"task": "multiclass",
                                                                                      "num_outputs": 3}  # fmt: skip
    assert o.loss() == "cross_entropy" and o.truth([2, 0]).tolist() == [2, 0]
    with pytest.raises(InputError, match=r"outcome 'binary' needs two classes, got 3 .*data\.positive"):
        Outcome("binary").fit([0, 1, 2])


def test_positive_groups_classes_and_must_leave_a_negative_class():
    o = Outcome(positive=[2]).fit([0, 1, 2, 2])
    assert o.kind_ == "binary" and o.classes_ == ["0+1", "2"] and o.truth([0, 1, 2]).tolist() == [0, 0, 1]
    o2 = Outcome(positive="a").fit(["b", "a"])
    assert o2.classes_ == ["b", "a"]  # two classes: the positive last, names kept
    with pytest.raises(InputError, match=r"col: with data\.positive \[1, 2, 3\] every example is in one class"):
        Outcome(positive=[1, 2, 3], where="col").fit([1, 2, 3])
    with pytest.raises(InputError, match=r"data\.positive: expected classes among"):
        Outcome(positive=7).fit([1, 2])
    with pytest.raises(InputError, match="expected no positive with outcome 'multiclass'"):
        Outcome("multiclass", positive=1).fit([1, 2, 3])


def test_regression_scaling_round_trips_and_names_the_bad_value():
    o = Outcome("regression").fit([1.0, 3.0])
    assert (o.mean_, o.scale_) == (2.0, 1.0)
    y = o.transform([1.0, 3.0, 5.0])
    assert y.dtype == torch.float32 and y.tolist() == [-1.0, 1.0, 3.0]
    assert np.allclose(o.inverse_transform(y), [1, 3, 5]) and np.allclose(o.target_truth(y), [1, 3, 5])
    with pytest.raises(InputError, match=r"rec 2: expected a number for outcome 'regression', got 'high'"):
        Outcome("regression", at=lambda k: f"rec {k + 1}").fit(["1", "high"])


def test_multilabel_targets_rows_and_json():
    o = Outcome("multilabel").fit(["a;b", "b", "", "c; a"])
    assert o.classes_ == ["a", "b", "c"] and o.head() == {"task": "multilabel", "num_outputs": 3}
    assert o.truth(["a;b", "", "c"]).tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    header, rows = o.rows(["x"], np.array([[0.9, 0.2, 0.7]]))
    assert header == ["id", "predicted", "p_a", "p_b", "p_c"] and rows[0][1] == "a;c"
    back = Outcome.from_json(json.loads(json.dumps(o.to_json())))
    assert back.classes_ == o.classes_ and back.truth(["b"]).tolist() == [[0, 1, 0]]
    with pytest.raises(InputError, match=r"expected labels among \['a', 'b', 'c'\], got 'd'"):
        o.truth(["d"])


def test_runs_from_before_outcomes_still_load():
    assert Outcome.from_state({"classes": ["a", "b", "c"]}).kind_ == "multiclass"
    reg = Outcome.from_state({"target": "value", "classes": None})
    assert reg.kind_ == "regression" and reg.inverse_transform(torch.tensor([2.5])).tolist() == [2.5]


# ------------------------------------------------------------------ multivariate sequences (PBC, real data)
def pbc_data(**kw) -> MultivariateData:
    base = {"file": str(PBC), "id_col": "id", "time_col": "day", "target": "status", "static": ["age", "sex"],
            "variables": ["bili", "albumin", "protime"], "time_scale": 365.25, "seed": 0}  # fmt: skip
    return MultivariateData.from_dict({**base, **kw})


def test_pbc_status_is_a_three_class_outcome_with_patients_split_whole():
    prep = MultivariateTask().prepare(pbc_data(), lambda m: None)
    assert prep.state["outcome"]["classes_"] == ["0", "1", "2"]
    assert prep.model_overrides["task"] == "multiclass" and prep.model_overrides["num_outputs"] == 3
    parts = {k: set(prep.split[k]["ids"]) for k in ("train", "val", "test")}
    assert not (parts["train"] & parts["test"]) and not (parts["train"] & parts["val"])
    assert sum(len(v) for v in parts.values()) == 312  # every patient once
    assert set(prep.baselines) == {"majority", "last_visit_logistic", "summary_logistic", "summary_boosted_trees"}
    assert all(p.shape == (len(prep.test_ids), 3) for p in prep.baselines.values())
    # the scaler was fitted on the training patients' rows only
    import pandas as pd

    df = pd.read_csv(PBC)
    train_rows = df[df["id"].isin(parts["train"])]
    assert np.allclose(prep.state["scaler"]["mean_"], train_rows[["bili", "albumin", "protime"]].mean())


def test_pbc_with_positive_is_binary_and_every_numeric_column_is_a_variable_by_default():
    prep = MultivariateTask().prepare(pbc_data(positive=[2], variables=None, static=[]), lambda m: None)
    assert prep.state["outcome"]["classes_"] == ["0+1", "2"] and prep.model_overrides["num_outputs"] == 1
    assert "bili" in prep.state["variables"] and "status" not in prep.state["variables"]
    assert "id" not in prep.state["variables"] and "day" not in prep.state["variables"]


def test_an_outcome_that_changes_within_an_id_is_refused(tmp_path):
    f = tmp_path / "v.csv"
    f.write_text("id,t,a,y\n1,0,1,x\n1,1,2,z\n2,0,1,x\n")
    d = MultivariateData.from_dict({"file": str(f), "time_col": "t", "target": "y"})
    with pytest.raises(InputError, match=r"v\.csv: column 'y': expected one value per id, got \['x', 'z'\] for id 1"):
        MultivariateTask().prepare(d, lambda m: None)


def _cfg(tmp_path, name, cfg) -> str:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def test_pbc_three_classes_through_the_cli(tmp_path):
    cfg = _cfg(tmp_path, "pbc.yaml", {
        "task": "multivariate", "data": {**{k: v for k, v in vars(pbc_data()).items()}},
        "model": {"conv_filters": 0, "hidden_size": 8, "bidirectional": False, "pooling": "last", "members": 2},
        "train": {"epochs": 2, "batch_size": 32, "seed": 0},
    })  # fmt: skip
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", cfg, "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["classes"]["per_class"]) == {"0", "1", "2"} and len(m["classes"]["confusion"]) == 3
    assert sum(map(sum, m["classes"]["confusion"])) == m["n_test"]
    assert {"auroc", "auprc", "accuracy", "log_loss"} <= set(m["metrics"]["model"])
    assert (run / "confusion.png").is_file()
    rows = list(csv.reader((run / "test_predictions.tsv").open(), delimiter="\t"))
    assert rows[0] == ["id", "predicted", "p_0", "p_1", "p_2", "true"]
    assert all(abs(sum(float(v) for v in r[2:5]) - 1) < 1e-4 for r in rows[1:])
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["loss"] == "model"  # an ensemble of 2
    res = runner.invoke(app, ["evaluate", str(run), str(PBC)])  # new data with the target column
    assert res.exit_code == 0, res.output
    assert "auroc" in res.output and "summary_boosted_trees" in res.output  # the training baselines too
    res = runner.invoke(app, ["predict", str(run), str(PBC), "-o", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 1 + 312
    res = runner.invoke(app, ["train", cfg, "-o", str(tmp_path / "m"), "--train.metrics", "[auc]"])
    assert res.exit_code == 1 and "train.metrics: not with model.members > 1" in res.output


# ------------------------------------------------------------------ expression, sequence and text outcomes
def test_expression_regression_and_multilabel(tmp_path):
    """Tissue profiles (real): predict one gene's expression from the others (regression), and
    tissue groups as labels (multi-label)."""
    import pandas as pd

    df = pd.read_csv(TISSUE)
    gene = df.columns[1]
    reg = df.drop(columns=["y"]).rename(columns={gene: "target"})
    reg.to_csv(tmp_path / "reg.csv", index=False)
    groups = {"cerebellum": "brain", "hippocampus": "brain"}
    ml = df.assign(y=[f"{t};{groups.get(t, 'other')}" for t in df["y"]])
    ml.to_csv(tmp_path / "ml.csv", index=False)
    model = {"hidden_size": 8, "conv_filters": 0}
    for name, data in (("reg", {"file": "reg.csv", "label": "target", "outcome": "regression"}),
                       ("ml", {"file": "ml.csv", "outcome": "multilabel", "components": 8})):  # fmt: skip
        cfg = _cfg(tmp_path, f"{name}.yaml", {"task": "expression", "data": data, "model": model,
                                              "train": {"epochs": 30, "lr": 0.01}})  # fmt: skip
        res = runner.invoke(app, ["train", cfg, "-o", str(tmp_path / name), "-q"])
        assert res.exit_code == 0, res.output
    reg_m = json.loads((tmp_path / "reg" / "metrics.json").read_text())["metrics"]
    assert {"model", "train_mean", "ridge_pca"} == set(reg_m) and "r2" in reg_m["model"]
    assert abs(reg_m["train_mean"]["r2"]) < 0.3 and reg_m["model"]["r2"] > reg_m["train_mean"]["r2"]
    ml_m = json.loads((tmp_path / "ml" / "metrics.json").read_text())["metrics"]
    assert set(ml_m) == {"model", "label_rates", "logistic_pca"} and ml_m["model"]["auroc"] > 0.8
    rows = list(csv.reader((tmp_path / "ml" / "test_predictions.tsv").open(), delimiter="\t"))
    assert "p_brain" in rows[0] and all(";" in r[-1] for r in rows[1:])  # every sample has two labels


def test_sequence_multiclass_from_a_labels_table_and_text_regression(tmp_path):
    rng = np.random.default_rng(0)
    motifs = {"a": "TGACTCA", "b": "ATGCAAAT", "c": "CCGGAA"}
    fa, lab, texts = [], ["id,label"], ["text,label"]
    for k in range(180):
        c = "abc"[k % 3]
        s = list(rng.choice(list("ACGT"), 40))
        s[10 : 10 + len(motifs[c])] = motifs[c]
        fa.append(f">r{k}\n{''.join(s)}\n")
        lab.append(f"r{k},{c}")
        n = int(rng.integers(1, 9))
        texts.append(" ".join(["gene"] * n + ["x"] * (9 - n)) + f",{n}")
    (tmp_path / "s.fa").write_text("".join(fa))
    (tmp_path / "l.csv").write_text("\n".join(lab) + "\n")
    (tmp_path / "t.csv").write_text("\n".join(texts) + "\n")
    seq = _cfg(tmp_path, "s.yaml", {"task": "sequence", "data": {"file": "s.fa", "labels": "l.csv", "kmer": 2},
                                    "model": {"conv_filters": 8, "hidden_size": 8}, "train": {"epochs": 2}})
    res = runner.invoke(app, ["train", seq, "-o", str(tmp_path / "s"), "-q"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert m["classes"]["classes"] == ["a", "b", "c"] and set(m["metrics"]) == {"model", "majority", "gc_content",
                                                                                "2-mer_logistic"}  # fmt: skip
    txt = _cfg(tmp_path, "t.yaml", {"task": "text", "data": {"file": "t.csv", "outcome": "regression", "min_count": 1},
                                    "model": {"hidden_size": 8}, "train": {"epochs": 2}})  # fmt: skip
    res = runner.invoke(app, ["train", txt, "-o", str(tmp_path / "t"), "-q"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "t" / "metrics.json").read_text())["metrics"]
    assert set(m) == {"model", "train_mean", "bag_of_words_ridge"} and m["bag_of_words_ridge"]["r2"] > 0.9


def test_summaries_join_the_static_inputs_and_leave_the_baselines_alone():
    plain = MultivariateTask().prepare(pbc_data(), lambda m: None)
    summ = MultivariateTask().prepare(pbc_data(summaries=True), lambda m: None)
    V = 3
    assert plain.model_overrides["static_size"] == 2 and summ.model_overrides["static_size"] == 2 + 6 * V + 2
    x = summ.train[0]["static"]
    assert torch.equal(x[:, :2], plain.train[0]["static"])  # the covariates first, unchanged
    assert abs(float(x[:, 2:].mean())) < 0.1  # summaries standardised on the training ids
    for name in plain.baselines:  # the baselines read the same features either way
        assert np.allclose(plain.baselines[name], summ.baselines[name])
    with pytest.raises(InputError, match=r"data\.summaries: needs data\.inputs 'masked'"):
        pbc_data(summaries=True, inputs="mean_imputed")
