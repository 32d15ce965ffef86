"""Streamed prediction and evaluation (biolstm.pipeline.streaming): the same rows and metrics as
reading everything at once, with or without worker processes, in file order; bad records named
with their file and record; a failed run leaves no partial output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.pipeline import streaming
from biolstm.pipeline.run import evaluate, predict
from biolstm.validation import BiolstmWarning

from .test_runs import small_run

runner = CliRunner()


@pytest.fixture(scope="module")
def run_and_records(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stream")
    small_run(tmp, epochs=2)
    rng = np.random.default_rng(5)
    seqs = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(700)]  # 3 batches of 256
    for k in range(0, 700, 3):
        seqs[k] = seqs[k][:9] + "TGACTCA" + seqs[k][16:]
    (tmp / "new.fa").write_text("".join(f">n{k} some description\n{q}\n" for k, q in enumerate(seqs)))
    (tmp / "labels.csv").write_text("id,label\n" + "".join(f"n{k},{'bound' if k % 3 == 0 else 'unbound'}\n"
                                                          for k in range(700)))  # fmt: skip
    return tmp / "run", tmp


def test_streamed_predictions_equal_the_in_memory_ones_with_any_workers(run_and_records):
    run, tmp = run_and_records
    texts = []
    for i, (stream, workers) in enumerate([(False, None), (True, 0), (True, 1), (True, 2)]):
        out = tmp / f"p{i}.tsv"
        predict(run, str(tmp / "new.fa"), out, verbose=0, stream=stream, workers=workers)
        texts.append(out.read_text())
    assert texts[0].count("\n") == 701 and texts[0].startswith("id\tpredicted\t")
    for t in texts[1:]:  # the same rows in file order; probabilities to float32 rounding (batches differ)
        a, b = [r.split("\t") for r in texts[0].splitlines()], [r.split("\t") for r in t.splitlines()]
        assert [r[:2] for r in a] == [r[:2] for r in b]
        np.testing.assert_allclose(np.array([r[2:] for r in a[1:]], float), np.array([r[2:] for r in b[1:]], float),
                                   atol=2e-6)  # fmt: skip


def test_streamed_evaluation_equals_the_in_memory_one_baselines_included(run_and_records):
    run, tmp = run_and_records
    for opts in ({"labels": str(tmp / "labels.csv")}, {"label": "bound"}):
        got = evaluate(run, str(tmp / "new.fa"), verbose=0, workers=1, **opts)["metrics"]
        want = evaluate(run, str(tmp / "new.fa"), verbose=0, stream=False, **opts)["metrics"]
        assert set(got) == set(want) == {"model", "majority", "gc_content", "3-mer_logistic"}
        for name in want:
            for key, value in want[name].items():
                assert got[name][key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), (name, key)


def test_novel_records_are_counted_over_all_batches(run_and_records):
    run, tmp = run_and_records
    long = "".join(f">L{k}\n{'ACGT' * 10}\n" for k in range(300))  # 40 bp: longer than any training record
    (tmp / "long.fa").write_text(long)
    for stream in (False, True):
        with pytest.warns(BiolstmWarning, match=r"long.fa: 300 sequences, of which 300 longer than the longest in "
                                                r"training \(30; cut to 30\)"):  # fmt: skip
            predict(run, str(tmp / "long.fa"), tmp / f"long-{stream}.tsv", verbose=0, stream=stream)
    assert (tmp / "long-True.tsv").read_text().count("\n") == (tmp / "long-False.tsv").read_text().count("\n") == 301


def test_cli_shows_progress_and_a_bad_record_leaves_no_output(run_and_records):
    run, tmp = run_and_records
    res = runner.invoke(app, ["predict", str(run), str(tmp / "new.fa"), "-o", str(tmp / "cli.tsv"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "700 of 700" in res.output and "records/s" in res.output and "wrote 700 predictions" in res.output
    lines = (tmp / "new.fa").read_text().splitlines()
    lines[2 * 599 + 1] = "ACGTJ" + lines[2 * 599 + 1][5:]  # record 600, in the third batch
    (tmp / "bad.fa").write_text("\n".join(lines) + "\n")
    for workers in ("0", "2"):
        out = tmp / f"bad-{workers}.tsv"
        res = runner.invoke(app, ["predict", str(run), str(tmp / "bad.fa"), "-o", str(out), "--workers", workers])
        assert res.exit_code == 1
        error = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
        assert len(error) == 1 and "bad.fa" in error[0] and "record 600" in error[0] and "'J'" in error[0], error
        assert not out.exists() and not list(tmp.glob(".bad-*"))  # nothing half-written


def test_evaluate_without_labels_says_what_it_needs(run_and_records):
    run, tmp = run_and_records
    res = runner.invoke(app, ["evaluate", str(run), str(tmp / "new.fa"), "--json", str(tmp / "e.json")])
    assert res.exit_code == 1 and "expected labels to evaluate against" in res.output
    assert not (tmp / "e.json").exists()
    res = runner.invoke(app, ["evaluate", str(run), str(tmp / "new.fa"), "--label", "bound", "--json",
                              str(tmp / "e.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp / "e.json").read_text())["metrics"]["model"]["accuracy"] >= 0


def test_record_counts_for_the_progress_bar(tmp_path):
    (tmp_path / "a.fa").write_text(">a\nAC\nGT\n>b x\nA\n>c\nC\n")
    assert streaming.count_records(tmp_path / "a.fa", "fasta") == 3
    assert streaming.count_records(tmp_path / "a.fa", "fastq") is None
    import gzip

    with gzip.open(tmp_path / "a.fa.gz", "wt") as fh:
        fh.write(">a\nAC\n" * 1000)
    assert streaming.count_records(tmp_path / "a.fa.gz", "fasta") == 1000
