"""The biolstm command: help, version, fast start, and the bench command."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import biolstm
from biolstm.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "bench" in result.output


def test_help_does_not_import_torch():
    code = "import sys; from biolstm.cli import app; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bench_rejects_bad_repeats():
    result = runner.invoke(app, ["bench", "--repeats", "0"])
    assert result.exit_code != 0
    assert "repeats" in result.output


def test_engine_benchmark_runs_on_a_tiny_shape():
    from biolstm.bench import run_engine_benchmark

    lines = []
    rows = run_engine_benchmark(repeats=1, threads=1, shapes=[(2, 5, 3, 4)], print_fn=lines.append)
    cases = {r["case"] for r in rows}
    assert "biolstm transparent" in cases and "torch.nn.LSTM (oneDNN)" in cases
    base = next(r for r in rows if r["case"] == "torch.nn.LSTM (oneDNN)")
    assert base["ratio"] == 1.0
    assert any(line.startswith("| biolstm transparent |") for line in lines)


def test_usage_errors_are_one_error_line_and_exit_1():
    """click's own usage errors (a value out of range, a missing argument, an unknown command)
    read like every other error: one `error:` line, exit code 1."""
    import subprocess
    import sys

    for argv in (["predict", "x", "y", "-o", "z", "--threads", "0"], ["explain"], ["nosuch"]):
        res = subprocess.run([sys.executable, "-m", "biolstm", *argv], capture_output=True, text=True)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (argv, res.stderr)
    res = subprocess.run([sys.executable, "-m", "biolstm"], capture_output=True, text=True)
    assert res.returncode == 0 and "Usage" in res.stdout  # no arguments: the help


def test_an_interrupt_is_one_error_line_and_exit_130(monkeypatch, capfd):
    import biolstm.pipeline.reference as reference
    from biolstm.cli import run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reference, "reference_text", interrupted)
    assert run(["config", "sequence"]) == 130
    assert capfd.readouterr().err == "error: interrupted\n"


def test_version_and_the_kernels_in_use(monkeypatch):
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert lines[0] == f"biolstm {biolstm.__version__}" and lines[1].startswith("torch ")
    assert lines[2].startswith("LSTM/GRU/RNN step kernel: active, ")
    assert lines[3].startswith("MinLSTM/MinGRU C kernel: active, ")
    from biolstm.nn.native import build

    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setenv("BIOLSTM_NATIVE", "0")
    res = runner.invoke(app, ["--version"])
    assert "LSTM/GRU/RNN step kernel: not available (disabled by BIOLSTM_NATIVE=0); the transparent" in res.output
    assert "MinLSTM/MinGRU C kernel: not available (disabled by BIOLSTM_NATIVE=0)" in res.output
