"""biolstm train / evaluate / predict: run folders, overrides, baselines, and every task."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from biolstm.cli import app

runner = CliRunner()


def motif_fastas(tmp_path, n=120, length=60, seed=0):
    """Two one-class FASTA files: 'bound' sequences carry TGACTCA, 'unbound' do not."""
    rng = np.random.default_rng(seed)
    for off, (name, motif) in enumerate((("bound", True), ("unbound", False))):
        lines = []
        for k in range(n):
            start = 1000 * k + 500 * off
            s = list(rng.choice(list("ACGT"), length))
            if motif:
                p = rng.integers(0, length - 7)
                s[p : p + 7] = list("TGACTCA")
            lines.append(f">chr{1 + k % 4}:{start}-{start + length} peak{k}\n{''.join(s)}\n")
        (tmp_path / f"{name}.fa").write_text("".join(lines))


def write_config(path, cfg):
    path.write_text(yaml.safe_dump(cfg))
    return path


def small_run(tmp, epochs: int, name: str = "ok.yaml"):
    """A finished run of SEQ_CONFIG on 30 + 30 short motif sequences in ``tmp``: its config path."""
    motif_fastas(tmp, n=30, length=30)
    cfg = write_config(tmp / name, SEQ_CONFIG)
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp / "run"), "-q", "--train.epochs", str(epochs)])
    assert res.exit_code == 0, res.output
    return cfg


SEQ_CONFIG = {
    "task": "sequence",
    "data": {"files": {"bound": "bound.fa", "unbound": "unbound.fa"}, "positive": "bound", "kmer": 3},
    "model": {"conv_filters": 8, "conv_kernel": 7, "pool": 2, "hidden_size": 6},
    "train": {"epochs": 6, "batch_size": 16, "lr": 0.01, "seed": 0},
}


def test_sequence_run_folder_evaluate_and_predict(tmp_path):
    motif_fastas(tmp_path)
    cfg = write_config(tmp_path / "motif.yaml", SEQ_CONFIG)
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(cfg), "-o", str(run), "-q", "--model.hidden-size", "5", "--train.epochs=6"])
    assert res.exit_code == 0, res.output
    for f in ("config.yaml", "state.json", "model.safetensors", "history.csv", "metrics.json", "loss.png", "roc.png",
              "pr.png", "test_predictions.tsv"):  # fmt: skip
        assert (run / f).is_file(), f
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["hidden_size"] == 5 and resolved["model"]["input_channels"] == 4
    assert resolved["data"]["files"]["bound"] == str(tmp_path / "bound.fa")  # absolute
    assert resolved["train"]["loss"] == "bce_with_logits"
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"model", "majority", "gc_content", "3-mer_logistic"}
    assert metrics["model"]["auroc"] > 0.9 and metrics["majority"]["auroc"] == 0.5
    assert len(list(csv.reader((run / "history.csv").open()))) == 7
    # evaluate again on the same (seeded) test split: the same numbers
    res = runner.invoke(app, ["evaluate", str(run), "--json", str(tmp_path / "eval.json")])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "eval.json").read_text())["metrics"]
    assert again["model"]["auroc"] == pytest.approx(metrics["model"]["auroc"], abs=1e-9)
    # new labelled data: every record of bound.fa is class 'bound'
    res = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "bound.fa"), "--label", "bound"])
    assert res.exit_code == 0 and "model" in res.output
    res = runner.invoke(app, ["predict", str(run), str(tmp_path / "unbound.fa"), "-o", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "p.tsv").open(), delimiter="\t"))
    assert len(rows) == 120 and set(rows[0]) == {"id", "predicted", "p_unbound", "p_bound"}
    assert all(abs(float(r["p_bound"]) + float(r["p_unbound"]) - 1) < 1e-5 for r in rows)
    # the same sequences get the same probabilities as in the run's own test predictions
    test = {r["id"]: r for r in csv.DictReader((run / "test_predictions.tsv").open(), delimiter="\t")}
    shared = [r for r in rows if r["id"] in test]
    assert shared and all(abs(float(r["p_bound"]) - float(test[r["id"]]["p_bound"])) < 1e-5 for r in shared)


def test_chromosome_split_and_resume_refusal(tmp_path):
    motif_fastas(tmp_path, n=40)
    cfg = dict(SEQ_CONFIG, data={**SEQ_CONFIG["data"], "split": "chromosome", "test_chromosomes": ["chr4"],
                                 "val_chromosomes": ["chr3"], "rc_augment": True})  # fmt: skip
    path = write_config(tmp_path / "c.yaml", cfg)
    res = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "r"), "-q", "--train.epochs", "1"])
    assert res.exit_code == 0, res.output
    preds = list(csv.DictReader((tmp_path / "r" / "test_predictions.tsv").open(), delimiter="\t"))
    assert preds and all(r["id"].startswith("chr4:") for r in preds)
    res = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "r"), "-q"])
    assert res.exit_code == 1 and "already holds a run" in res.output


def test_forecast_run(tmp_path):
    t = np.arange(200)
    v = 50 + 40 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 2, 200)
    (tmp_path / "s.csv").write_text("time,value\n" + "".join(f"{a},{b:.3f}\n" for a, b in zip(t, v)))
    cfg = {
        "task": "forecast",
        "data": {"file": "s.csv", "lookback": 24, "horizon": 3, "test": 30, "val": 20, "season": 12},
        "model": {"hidden_size": 16, "output": "quantile"},
        "train": {"epochs": 30, "batch_size": 32, "lr": 0.01, "restore_best": True},
    }
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(write_config(tmp_path / "f.yaml", cfg)), "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    m = json.loads((run / "metrics.json").read_text())["metrics"]
    assert set(m) == {"model", "naive", "seasonal_naive_12"}
    assert m["model"]["mase"] < m["naive"]["mase"]
    assert (run / "forecast.png").is_file()
    res = runner.invoke(app, ["predict", str(run), str(tmp_path / "s.csv"), "-o", str(tmp_path / "f.tsv")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "f.tsv").open(), delimiter="\t"))
    assert [r["step"] for r in rows] == ["1", "2", "3"] and rows[0]["after_time"] == "199"
    assert all(float(r["lower"]) <= float(r["forecast"]) <= float(r["upper"]) for r in rows)
    res = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "s.csv")])
    assert res.exit_code == 0 and "seasonal_naive_12" in res.output


def test_longitudinal_expression_and_text_runs(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["id,day,a,b,sex,status"]
    for i in range(60):
        sick = i % 2
        for k in range(rng.integers(2, 6)):
            a = "" if rng.random() < 0.3 else f"{rng.normal(2.0 * sick * k, 1):.3f}"
            rows.append(f"{i},{100 * k},{a},{rng.normal():.3f},{'fm'[i % 3 == 0]},{2 if sick else 0}")
    (tmp_path / "visits.csv").write_text("\n".join(rows) + "\n")
    lon = {
        "task": "longitudinal",
        "data": {
            "file": "visits.csv",
            "id_col": "id",
            "time_col": "day",
            "variables": ["a", "b"],
            "static": ["sex"],
            "target": "status",
            "positive": [2],
        },
        "model": {"conv_filters": 0, "hidden_size": 8, "pooling": "last"},
        "train": {"epochs": 3, "batch_size": 8},
    }
    x = rng.normal(size=(90, 40))
    labels = np.repeat(["liver", "brain", "kidney"], 30)
    x[labels == "liver", :5] += 3
    header = ",".join(f"g{k}" for k in range(40)) + ",y\n"
    body = "".join(",".join(f"{v:.3f}" for v in r) + f",{lab}\n" for r, lab in zip(x, labels))
    (tmp_path / "expr.csv").write_text(header + body)
    expr = {
        "task": "expression",
        "data": {"file": "expr.csv", "label": "y", "components": 8},
        "model": {"conv_filters": 0, "hidden_size": 8, "pooling": "last"},
        "train": {"epochs": 3, "batch_size": 16},
    }
    words = ["binds", "motif", "octamer", "enhancer", "repeat", "intron"]
    texts = [" ".join(rng.choice(words[:3] if k % 2 else words[3:], 6)) for k in range(80)]
    (tmp_path / "abstracts.tsv").write_text(
        "text\tlabel\n" + "".join(f"{t}\t{'tf' if k % 2 else 'other'}\n" for k, t in enumerate(texts))
    )
    text = {
        "task": "text",
        "data": {"file": "abstracts.tsv", "min_count": 1},
        "model": {"hidden_size": 8, "embedding_dim": 8, "pooling": "mean"},
        "train": {"epochs": 3, "batch_size": 16},
    }
    for name, cfg, base in (("lon", lon, "last_visit_logistic"), ("expr", expr, "logistic_pca"),
                            ("text", text, "bag_of_words_logistic")):  # fmt: skip
        run = tmp_path / name
        res = runner.invoke(app, ["train", str(write_config(tmp_path / f"{name}.yaml", cfg)), "-o", str(run), "-q"])
        assert res.exit_code == 0, (name, res.output)
        m = json.loads((run / "metrics.json").read_text())["metrics"]
        assert {"model", "majority", base} <= set(m), name
        assert 0 <= m["model"]["auroc"] <= 1
    state = json.loads((tmp_path / "text" / "state.json").read_text())
    assert state["classes"] == ["other", "tf"]
    res = runner.invoke(
        app, ["predict", str(tmp_path / "expr"), str(tmp_path / "expr.csv"), "-o", str(tmp_path / "e.tsv")]
    )
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "e.tsv").read_text().splitlines()) == 91


def test_quick_demo_runs_on_bundled_data(tmp_path):
    from biolstm.demo import run_demo

    done = run_demo(tmp_path / "demo", quick=True, verbose=0)
    assert set(done) == {"oct4_mafk", "sunspots_h1", "sunspots_h10"}
    m = json.loads((done["oct4_mafk"] / "metrics.json").read_text())
    assert m["n_test"] == 780  # 10% of the bundled 7,797 peaks
    assert "seasonal_naive_11" in json.loads((done["sunspots_h10"] / "metrics.json").read_text())["metrics"]


def test_streamed_training_matches_in_memory(tmp_path):
    motif_fastas(tmp_path, n=40, length=40)
    both = (tmp_path / "bound.fa").read_text().replace(" peak", " bound peak") + (
        tmp_path / "unbound.fa"
    ).read_text().replace(" peak", " unbound peak")
    (tmp_path / "all.fa").write_text(both)
    metrics = {}
    for stream in (False, True):
        cfg = dict(SEQ_CONFIG, data={"file": "all.fa", "label_field": 1, "positive": "bound", "stream": stream})
        cfg["train"] = dict(SEQ_CONFIG["train"], epochs=2)
        path = write_config(tmp_path / f"s{stream}.yaml", cfg)
        res = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / f"r{stream}"), "-q"])
        assert res.exit_code == 0, res.output
        metrics[stream] = json.loads((tmp_path / f"r{stream}" / "metrics.json").read_text())["metrics"]
    assert metrics[True]["model"] == metrics[False]["model"]
    assert set(metrics[True]) == {"model", "majority"}  # content baselines need the sequences in memory


def test_sequence_regression_on_a_numeric_label(tmp_path):
    rng = np.random.default_rng(2)
    lines, table = [], ["id\tgc"]
    for k in range(240):
        a = rng.uniform(0.05, 0.45)
        s = "".join(rng.choice(list("ACGT"), 40, p=[a, 0.5 - a, 0.5 - a, a]))
        lines.append(f">r{k}\n{s}\n")
        table.append(f"r{k}\t{(s.count('G') + s.count('C')) / 40:.4f}")
    (tmp_path / "reads.fa").write_text("".join(lines))
    (tmp_path / "gc.tsv").write_text("\n".join(table).replace("id\tgc", "id\tlabel") + "\n")
    cfg = {
        "task": "sequence",
        "data": {"file": "reads.fa", "labels": "gc.tsv", "target": "value", "kmer": 2},
        "model": {"conv_filters": 0, "hidden_size": 8, "pooling": "mean"},
        "train": {"epochs": 12, "batch_size": 16, "lr": 0.01},
    }
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(write_config(tmp_path / "r.yaml", cfg)), "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    m = json.loads((run / "metrics.json").read_text())["metrics"]
    assert set(m) == {"model", "train_mean", "gc_content", "2-mer_ridge"}
    assert m["model"]["pearson"] > 0.8 and m["gc_content"]["r2"] > 0.99  # GC content is the label itself
    assert (run / "predicted.png").is_file()
    res = runner.invoke(app, ["predict", str(run), str(tmp_path / "reads.fa"), "-o", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0 and len((tmp_path / "p.tsv").read_text().splitlines()) == 241
    (tmp_path / "gc.tsv").write_text("id\tlabel\nr0\thigh\n" + "".join(f"r{k}\t0.5\n" for k in range(1, 240)))
    res = runner.invoke(app, ["train", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "bad"), "-q"])
    assert (
        res.exit_code == 1
        and "gc.tsv: record 1 ('r0'): expected a number for outcome 'regression', got 'high'" in res.output
    )


def test_a_run_writes_only_into_its_folder_and_reports_resolved_paths(tmp_path, monkeypatch):
    from biolstm.pipeline.run import _paths_report, check_config

    data = tmp_path / "data"
    data.mkdir()
    motif_fastas(data, n=30)
    cfg = write_config(data / "motif.yaml", SEQ_CONFIG)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the default run folder is runs/<config>-<time> under here
    before = sorted(p.name for p in data.iterdir())
    res = runner.invoke(app, ["train", str(cfg), "-q", "--train.epochs", "1"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in data.iterdir()) == before  # nothing beside the inputs
    (runs,) = work.iterdir()
    (run,) = runs.iterdir()
    assert runs.name == "runs" and run.name.startswith("motif-") and (run / "model.safetensors").is_file()
    lines = _paths_report(check_config(cfg, [], None, False)[1], run)
    assert f"reading {data / 'bound.fa'}" in lines and f"reading {data / 'unbound.fa'}" in lines
    assert lines[-1] == f"writing only into {run.resolve()}"


def test_a_damaged_or_replaced_model_is_refused(tmp_path):
    motif_fastas(tmp_path, n=30)
    cfg = write_config(tmp_path / "motif.yaml", SEQ_CONFIG)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(cfg), "-o", str(run), "-q", "--train.epochs", "1"]).exit_code == 0
    model = run / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit pattern in the last weight
    model.write_bytes(bytes(data))
    res = runner.invoke(app, ["evaluate", str(run)])
    assert res.exit_code == 1 and "model.safetensors: checksum does not match" in res.output
    model.write_bytes(b"\x80\x04\x95")  # a pickle in its place
    res = runner.invoke(app, ["predict", str(run), str(tmp_path / "bound.fa"), "-o", str(tmp_path / "p.tsv")])
    assert res.exit_code == 1 and "never unpickles" in res.output and not (tmp_path / "p.tsv").exists()
