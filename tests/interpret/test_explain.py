"""biolstm explain on a small trained run: every figure as PNG and SVG, motifs, explain.json."""

from __future__ import annotations

import json

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
            "gradient_flow"} <= set(summary["figures"])  # fmt: skip
    assert summary["integrated_gradients_completeness"]["max_relative_error"] < 0.01
    assert len(summary["examples"]) == 2 and set(summary["examples"][0]["gates"]) == {"i", "f", "g", "o", "c", "h"}
    assert len(summary["examples"][0]["bases"]) == 40
    assert summary["gradient_flow"]["lstm"]["first_over_last"] > summary["gradient_flow"]["rnn"]["first_over_last"]
    if "motifs" in summary:
        assert (out / "motifs.meme").read_text().startswith("MEME version 4")
    # new data: a FASTA file
    res = runner.invoke(app, ["explain", str(tmp_path / "run"), str(tmp_path / "bound.fa"), "-o", str(tmp_path / "e2")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "e2" / "explain.json").read_text())["n"] == 60
