"""Bad input through the CLI: one clear line naming the file (and line, record or key), exit
code 1, and an earlier run folder left exactly as it was."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from biolstm.cli import app

from .test_runs import SEQ_CONFIG, motif_fastas, small_run, write_config

runner = CliRunner()


def snapshot(folder):
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("earlier")
    small_run(tmp, epochs=1)
    return tmp


CASES = {  # name: (FASTA text for the 'bound' class or None, config change, expected message pieces)
    "no header": ("ACGTACGT\n>b\nACGT\n", {}, ["bound.fa: line 1: expected a '>' header"]),
    "empty record": (">a\n>b\nACGT\n", {}, ["bound.fa: record 1 (a): expected a sequence, got an empty one"]),
    "letter outside the alphabet": (
        "".join(f">s{k}\nACGTAACG\n" for k in range(6)) + ">s6\nACGTJACG\n", {},
        ["bound.fa: record 7: expected DNA letters", "'J' at position 5"],
    ),
    "unknown key": (None, {"model": {"hiden_size": 3}}, ["bad.yaml: model config: unknown key 'hiden_size'"]),
    "wrong type": (None, {"train": {"epochs": "ten"}}, ["bad.yaml:", "epochs", "'ten'"]),
    "unknown section": (None, {"trian": {}}, ["bad.yaml: unknown section 'trian'"]),
    "missing file": (
        None, {"data": {"files": {"bound": "nowhere.fa", "unbound": "unbound.fa"}}},
        ["nowhere.fa: expected a FASTA/FASTQ file, found no such file"],
    ),
    "one sequence in a class": (">a\nACGTACGT\n", {}, ["data.split: class 'bound' has 1 example", "at least"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_1_and_touches_no_run(earlier_run, tmp_path, case):
    fasta, change, pieces = CASES[case]
    motif_fastas(tmp_path, n=30, length=30)
    if fasta is not None:
        (tmp_path / "bound.fa").write_text(fasta)
    cfg = {k: (dict(v, **change[k]) if isinstance(v, dict) and k in change else v) for k, v in SEQ_CONFIG.items()}
    cfg.update({k: v for k, v in change.items() if k not in cfg})
    path = write_config(tmp_path / "bad.yaml", cfg)
    before = snapshot(earlier_run / "run")
    # into the earlier run (resuming: refused, as the data or a setting differs, or for the error
    # itself) and into a fresh folder (the error itself)
    for out, flags in ((earlier_run / "run", ["--resume"]), (tmp_path / "new", [])):
        res = runner.invoke(app, ["train", str(path), "-o", str(out), "-q", *flags])
        assert res.exit_code == 1, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), res.output
        if not flags or "resumed run keeps" not in lines[0]:
            for piece in pieces:
                assert piece in lines[0], (piece, lines[0])
    assert snapshot(earlier_run / "run") == before
    assert not (tmp_path / "new").exists()


def test_fastq_quality_mismatch_label_table_and_bad_overrides(earlier_run, tmp_path):
    motif_fastas(tmp_path, n=30, length=30)
    (tmp_path / "reads.fq").write_text("@r1\nACGT\n+\nIIII\n@r2\nACGTA\n+\nIII\n")
    (tmp_path / "labels.csv").write_text("id,label\nr1,a\n")
    cfg = dict(SEQ_CONFIG, data={"file": "reads.fq", "labels": "labels.csv"})
    path = write_config(tmp_path / "fq.yaml", cfg)
    res = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "x"), "-q"])
    assert res.exit_code == 1
    assert "reads.fq: record 2: expected valid FASTQ" in res.output and "quality" in res.output
    (tmp_path / "reads.fq").write_text("@r1\nACGT\n+\nIIII\n@r2\nACGTA\n+\nIIIII\n")
    res = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "x"), "-q"])
    assert res.exit_code == 1 and "labels.csv: expected a label for record 2 ('r2') of" in res.output
    res = runner.invoke(app, ["train", str(path), "--model.hidden-size"])
    assert res.exit_code == 1 and "expected a value after it" in res.output
    res = runner.invoke(app, ["train", str(tmp_path / "absent.yaml")])
    assert res.exit_code == 1 and "absent.yaml: expected a YAML config file, found no such file" in res.output
    (tmp_path / "broken.yaml").write_text("task: sequence\ndata: [unclosed\n")
    res = runner.invoke(app, ["train", str(tmp_path / "broken.yaml")])
    assert res.exit_code == 1 and "broken.yaml: line" in res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert res.exit_code == 1 and "expected a run folder with config.yaml" in res.output
    res = runner.invoke(
        app, ["predict", str(earlier_run / "run"), str(tmp_path / "none.fa"), "-o", str(tmp_path / "p.tsv")]
    )
    assert res.exit_code == 1 and "none.fa: expected a FASTA/FASTQ file, found no such file" in res.output


def test_tables_with_non_numeric_cells(tmp_path):
    (tmp_path / "s.csv").write_text("time,value\n" + "".join(f"{t},{t % 7}\n" for t in range(60)) + "60,high\n")
    cfg = {"task": "forecast", "data": {"file": "s.csv", "lookback": 5, "test": 5, "val": 5}}
    res = runner.invoke(app, ["train", str(write_config(tmp_path / "f.yaml", cfg)), "-o", str(tmp_path / "r"), "-q"])
    assert res.exit_code == 1
    assert "s.csv: column 'value': expected finite numbers, got 'high' at time 60" in res.output
    (tmp_path / "v.csv").write_text("id,day,a,status\n1,0,1.0,0\n1,5,x,0\n2,0,2.0,2\n")
    cfg = {"task": "longitudinal", "data": {"file": "v.csv", "time_col": "day", "variables": ["a"]}}
    res = runner.invoke(app, ["train", str(write_config(tmp_path / "l.yaml", cfg)), "-o", str(tmp_path / "r"), "-q"])
    assert res.exit_code == 1 and "v.csv: column 'a': expected numbers" in res.output
    assert not (tmp_path / "r").exists()
