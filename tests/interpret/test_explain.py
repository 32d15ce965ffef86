"""biolstm explain on a small trained run: every figure as PNG and SVG, motifs, explain.json."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from biolstm.cli import app

from ..pipeline.test_runs import SEQ_CONFIG, motif_fastas, write_config

runner = CliRunner()


def test_explain_writes_figures_and_numbers(tmp_path):
    motif_fastas(tmp_path, n=60, length=40)
    cfg = write_config(tmp_path / "m.yaml", SEQ_CONFIG)
    assert runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "run"), "-q"]).exit_code == 0
    res = runner.invoke(app, ["explain", str(tmp_path / "run"), "--examples", "2"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "run" / "explain"
    summary = json.loads((out / "explain.json").read_text())
    for name in summary["figures"]:
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.svg").is_file(), name
    assert {"gate_saturation", "timescales", "gates_example1", "gates_example2", "attribution_example1",
            "gradient_flow", "gradient_flow_cells"} <= set(summary["figures"])  # fmt: skip
    # DNA: integrated gradients against dinucleotide shuffles, complete within 1% on average
    ig = summary["integrated_gradients_completeness"]
    assert ig["baseline"].startswith("10 dinucleotide-shuffled") and ig["mean_relative_error"] < 0.01
    assert "attribution_aligned" in summary["figures"] and "strongest 12-bp seqlet" in summary["captions"][
        "attribution_aligned"]  # fmt: skip
    assert sorted(summary["aligned"]["rows"]) == list(range(summary["n"])) and summary["aligned"]["flank"] == 40
    assert summary["motif_method"]["name"] == "cluster"
    assert len(summary["examples"]) == 2 and set(summary["examples"][0]["gates"]) == {"i", "f", "g", "o", "c", "h"}
    assert len(summary["examples"][0]["bases"]) == 40
    # outputs in data units (a probability of the class explained), steps mapped to base pairs, layers in words
    first = summary["examples"][0]
    assert first["output_what"] == "P(bound)" and 0 <= first["output"] <= 1
    assert first["bp_per_step"] == 2 and first["layer"] == "BiLSTM, forward (left to right)"
    # gradient flow through the trained model on the test split, captioned with what was computed
    flow, caption = summary["gradient_flow"]["model"], summary["captions"]["gradient_flow"]
    assert (flow["layer"], flow["target"], flow["loss"], flow["n"]) == ("rnn", "loss", "bce_with_logits", summary["n"])
    assert len(flow["norms"]) == 20 and flow["counts"] == [summary["n"]] * 20  # 40 bases, pooled by 2
    assert caption.startswith(
        "Gradient flow through the trained model: norm of the gradient of each example's own training loss "
        "(bce_with_logits) with respect to the input x_t of its recurrent layer 'rnn' (the BiLSTM) at step t, "
        "mean over the "
        f"{summary['n']} examples of the run's test split"
    )
    assert "both directions" in caption and "reverse complement" not in caption  # a BiLSTM, rc_average off
    # untrained cells, said to be an illustration
    cells = summary["gradient_flow"]["cells"]
    assert cells["lstm"]["first_over_last"] > cells["rnn"]["first_over_last"]
    assert summary["captions"]["gradient_flow_cells"].startswith("Illustration, not this run's model or data")
    assert "64 sequences of 50 standard-normal steps" in summary["captions"]["gradient_flow_cells"]
    if "motifs" in summary:  # MEME minimal format, nsites as found
        from Bio import motifs

        with (out / "motifs.meme").open() as handle:
            record = motifs.parse(handle, "minimal")
        assert [(m.name, m.num_occurrences) for m in record] == [(m["name"], m["sites"]) for m in summary["motifs"]]
        # every motif named against JASPAR: its top matches with p <= q, best first
        assert summary["motif_database"]["name"].startswith("JASPAR")
        assert summary["output_class"] == "bound"  # the class whose output is explained
        for m in summary["motifs"]:
            assert len(m["matches"]) in (0, 3)
            assert all(h["p"] <= h["q"] <= 1 and h["matrix_id"].startswith("MA") for h in m["matches"])
            assert [h["p"] for h in m["matches"]] == sorted(h["p"] for h in m["matches"])
    for f in summary.get("filters", []):  # first-layer filters read as motifs, named the same way
        assert f["name"].startswith("filter_") and f["sites"] >= 10 and len(f["matches"]) in (0, 3)
    # TF-MoDISco instead of clustering; an unknown method is one error
    res = runner.invoke(app, ["explain", str(tmp_path / "run"), "--motifs", "modisco", "-o", str(tmp_path / "mo")])
    assert res.exit_code == 0, res.output
    mo = json.loads((tmp_path / "mo" / "explain.json").read_text())
    assert mo["motif_method"]["name"] == "modisco" and set(mo["motif_method"]["seqlets"]) == {"up", "down"}
    res = runner.invoke(app, ["explain", str(tmp_path / "run"), "--motifs", "meme", "-o", str(tmp_path / "bad")])
    assert res.exit_code == 1 and res.output.startswith("error: --motifs: expected one of cluster, modisco")
    assert not (tmp_path / "bad").exists()
    # new data: a FASTA file
    res = runner.invoke(app, ["explain", str(tmp_path / "run"), str(tmp_path / "bound.fa"), "-o", str(tmp_path / "e2")])
    assert res.exit_code == 0, res.output
    new = json.loads((tmp_path / "e2" / "explain.json").read_text())
    assert new["n"] == 60 and new["gradient_flow"]["model"]["target"] == "output"  # no labels in a new FASTA
    assert "of bound.fa that reach step t" in new["captions"]["gradient_flow"]
    assert "the model's output (the data has no targets)" in new["captions"]["gradient_flow"]


@pytest.mark.slow
def test_gradient_flow_of_a_forecaster_and_of_visits_read_from_parquet(tmp_path):
    """The forecaster's own loss (quantile) on its test windows, and a BiLSTM on longitudinal
    visits (variable lengths, static covariates) read from Parquet: captions say which."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    t = np.arange(120)
    pd.DataFrame({"time": t, "value": 50 + 40 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, 120)}).to_csv(
        tmp_path / "s.csv", index=False
    )
    rows = [
        {"id": i, "day": 100 * k, "a": rng.normal(2.0 * (i % 2) * k), "sex": "fm"[i % 3 == 0], "status": i % 2}
        for i in range(40)
        for k in range(int(rng.integers(2, 6)))
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "visits.parquet")
    configs = {
        "fc": {"task": "forecast", "data": {"file": "s.csv", "lookback": 24, "horizon": 3, "test": 20, "val": 10},
               "model": {"hidden_size": 8, "output": "quantile"}, "train": {"epochs": 1}},
        "lon": {"task": "longitudinal", "data": {"file": "visits.parquet", "time_col": "day", "variables": ["a"],
                "static": ["sex"]}, "model": {"conv_filters": 0, "hidden_size": 8, "pooling": "last"},
                "train": {"epochs": 1}},
    }  # fmt: skip
    for name, cfg in configs.items():
        cfg_file = write_config(tmp_path / f"{name}.yaml", cfg)
        res = runner.invoke(app, ["train", str(cfg_file), "-o", str(tmp_path / name), "-q"])
        assert res.exit_code == 0, res.output
        assert runner.invoke(app, ["explain", str(tmp_path / name)]).exit_code == 0
    fc = json.loads((tmp_path / "fc" / "explain" / "explain.json").read_text())
    flow, caption = fc["gradient_flow"]["model"], fc["captions"]["gradient_flow"]
    assert flow["loss"] == "model" and len(flow["norms"]) == 24 and flow["counts"] == [flow["n"]] * 24
    assert "training loss (Forecaster.loss)" in caption and "both directions" not in caption  # one direction
    lon = json.loads((tmp_path / "lon" / "explain" / "explain.json").read_text())
    flow, caption = lon["gradient_flow"]["model"], lon["captions"]["gradient_flow"]
    assert flow["loss"] == "bce_with_logits" and flow["counts"][0] == flow["n"] > flow["counts"][-1] > 0  # lengths
    assert len(flow["norms"]) == 5 and "both directions" in caption


def test_the_report_lists_each_motifs_jaspar_matches_with_p_and_q():
    from biolstm.report import _motif_table

    hit = {"matrix_id": "MA1115.1", "name": "POU5F1", "p": 1e-6, "q": 2e-4, "offset": 0, "strand": "+",
           "query_start": 0, "query_end": 12}  # fmt: skip
    weak = dict(hit, name="ZNF<1>", matrix_id="MA0001.1", p=0.01, q=0.4)
    up = {"name": "up_1", "consensus": "ATGCAAAT", "sign": 1, "sites": 30, "matches": [hit, weak]}
    down = {"name": "down_1", "consensus": "AAAAAAAA", "sign": -1, "sites": 12, "matches": []}
    summary = {"motif_database": {"name": "JASPAR2026", "collection": "CORE", "tax_group": "vertebrates"},
               "motifs": [up, down]}  # fmt: skip
    table = _motif_table(summary)
    assert "JASPAR2026 CORE vertebrates" in table and table.count("<tr") == 4  # header + 2 matches + 1 empty
    assert '<tr class="hit"><td>up_1</td><td><code>ATGCAAAT</code></td><td>raises the output</td>' in table
    assert "<td>raises P(oct4)</td>" in _motif_table({**summary, "output_class": "oct4"})  # the class named
    assert "<td>POU5F1</td><td>MA1115.1</td><td>1e-06</td><td>0.0002</td>" in table
    assert "ZNF&lt;1&gt;" in table and "too little information to compare" in table
    assert _motif_table({"motifs": [{"name": "up_1"}]}) == ""  # a run explained before motifs were named
