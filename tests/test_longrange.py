"""Long-range tasks: their statistics, and a small budgeted run of every cell."""

from __future__ import annotations

import pytest
import torch

from biolstm.longrange import CELLS, adding_problem, copy_task, format_table, run_one, two_motifs


def test_task_generators():
    g = torch.Generator().manual_seed(0)
    x, y = adding_problem(20000, 50, g)
    assert x.shape == (20000, 50, 2) and (x[..., 1].sum(1) == 2).all()
    assert abs(float(((y - 1.0) ** 2).mean()) - 1 / 6) < 0.01  # the memoryless baseline MSE
    x, y = copy_task(4, 30, g)
    assert x.shape == (4, 51, 10) and y.shape == (4, 10) and (x[:, :10].argmax(-1) == y).all()
    x, y = two_motifs(8, 200, g)
    assert x.shape == (8, 200, 4) and y.tolist() == [1, 0, 0, 0] * 2


def test_every_cell_runs_under_a_budget():
    results = [
        run_one("adding", 20, cell, steps=30, seconds=30, hidden=8, check_every=10, n_test=100) for cell in CELLS
    ]
    assert [r.cell for r in results] == list(CELLS) and all(r.steps <= 30 for r in results)
    assert all(0 <= r.paper_share <= 1 for r in results)
    table = format_table(results)
    assert table.count("\n") == len(CELLS) + 1 and "| adding | 20 | lstm |" in table
    motif = run_one("motifs", 60, "lstm", steps=5, seconds=30, hidden=4, check_every=5, n_test=40)
    copy = run_one("copy", 5, "gru", steps=5, seconds=30, hidden=4, check_every=5, n_test=40)
    assert motif.metric == copy.metric == "accuracy"


def test_results_merge_into_a_table_and_a_plot(tmp_path):
    import json

    from biolstm.longrange import run_longrange

    quiet = lambda *a: None  # noqa: E731
    run_longrange(["adding"], [12], ["rnn", "gru"], steps=4, seconds=30, print_fn=quiet, out=tmp_path)
    first = json.loads((tmp_path / "longrange.json").read_text())
    run_longrange(["adding"], [12], ["gru", "lstm"], steps=8, seconds=30, print_fn=quiet, out=tmp_path)
    rows = json.loads((tmp_path / "longrange.json").read_text())
    assert [r["cell"] for r in rows] == ["rnn", "gru", "lstm"]  # gru re-run replaces its row
    assert rows[0] == first[0] and rows[1]["steps"] == 8 and len(rows[1]["history"]) >= 2
    table = (tmp_path / "longrange.md").read_text()
    assert table.count("| adding | 12 |") == 3
    assert (tmp_path / "longrange.png").stat().st_size > 5000 and (tmp_path / "longrange.svg").is_file()
    (tmp_path / "longrange.json").write_text("[{")
    with pytest.raises(ValueError, match=r"longrange\.json: expected the JSON list this command writes"):
        run_longrange(["adding"], [12], ["rnn"], steps=2, seconds=30, print_fn=quiet, out=tmp_path)
