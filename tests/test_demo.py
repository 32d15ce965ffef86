"""`biolstm demo`: a bar per model, one table of every model against its baselines, the next
commands with the actual run folders, and a short output."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from biolstm import demo
from biolstm.cli import app


def _check_output(text: str, out, runs: dict[str, list[str]]) -> list[str]:
    lines = text.splitlines()
    assert len(lines) < 60, text
    commands = [line.split("#")[0].strip() for line in lines if line.startswith("  biolstm ")]
    for name, predictors in runs.items():
        assert sum(line.startswith(name + " ") and "epochs" in line for line in lines) == 1, text  # one bar
        row = next(i for i, line in enumerate(lines) if line.startswith(f" {name} "))  # its table section
        assert [line.split("│")[0].strip() for line in lines[row + 1 : row + 1 + len(predictors)]] == predictors
        assert f"biolstm report {out / name}" in commands
    assert "Test split: each model against its baselines (--quick: 2 epochs, not the real numbers)" in lines
    assert "Epoch 1/2" not in text  # no per-epoch lines
    return lines


def test_quick_demo_prints_bars_a_summary_table_and_next_steps(tmp_path, monkeypatch):
    runs = (("sunspots_h1", "sunspots.yaml", ["data.horizon=1"]), ("sunspots_h3", "sunspots.yaml", ["data.horizon=3"]))
    monkeypatch.setattr(demo, "RUNS", runs)  # the two small runs: the format, not the classifier
    res = CliRunner().invoke(app, ["demo", "--quick", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    forecasts = ["model", "naive", "seasonal_naive_11"]
    lines = _check_output(res.output, tmp_path, {"sunspots_h1": forecasts, "sunspots_h3": forecasts})
    assert "Lower is better for mase, smape, mae, rmse (best of each run in bold)." in lines


def test_best_value_of_a_run_follows_the_metric_direction():
    metrics = {"model": {"mae": 2.0, "auroc": 0.9}, "naive": {"mae": 1.0, "auroc": 0.5}, "none": {}}
    assert demo._best(metrics, "mae") == 1.0 and demo._best(metrics, "auroc") == 0.9
    assert demo._best(metrics, "rmse") is None
    assert demo._best({"m": {"log_loss": 0.5}, "b": {"log_loss": 0.3}}, "log_loss") == 0.3  # a loss: lower
    assert demo._cell(0.91234, True) == "[bold]0.912[/bold]" and demo._cell(float("nan"), False) == ""


@pytest.mark.slow
def test_quick_demo_from_the_command_line(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--quick", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    forecasts = ["model", "naive", "seasonal_naive_11"]
    runs = {"oct4_mafk": ["model", "majority", "gc_content", "5-mer_logistic"]}
    lines = _check_output(res.output, tmp_path, {**runs, "sunspots_h1": forecasts, "sunspots_h10": forecasts})
    explain = f"  biolstm explain {tmp_path / 'oct4_mafk'}   # gate statistics, attributions, motifs"
    assert any(line.startswith(explain) for line in lines)
    legend = "Higher is better for auroc, auprc, accuracy; lower is better for log_loss, mase, smape, mae, rmse"
    assert legend in res.output
