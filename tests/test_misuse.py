"""Misuse is input too: a table of bad configs, bad files, damaged runs and faults mid-run.

Every case runs one `biolstm` command and must end with exit code 1, exactly one line on
stderr that starts with ``error:`` and names the file/argument (the pieces listed), no
traceback, and every file that existed before byte-identical afterwards (a finished run, the
user's data and configs). A new run folder named by a failed command must not be left behind.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct

import pytest
import yaml
from typer.testing import CliRunner

from biolstm.cli import app

from .pipeline.test_runs import SEQ_CONFIG, small_run, write_config

runner = CliRunner()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A folder with motif FASTAs, their config, a finished run, a series and a visit table."""
    tmp = tmp_path_factory.mktemp("misuse")
    small_run(tmp, epochs=1, name="ok.yaml")
    (tmp / "series.csv").write_text("time,value\n" + "".join(f"{t},{(t * 7) % 13 + 0.5}\n" for t in range(80)))
    rows = ["id,day,a,b,status"]
    for i in range(40):
        rows += [f"{i},{100 * k},{k + i % 2},,{2 * (i % 2)}" for k in range(3)]  # column b: all missing
    (tmp / "visits.csv").write_text("\n".join(rows) + "\n")
    return tmp


def cfg_with(tmp, name, **sections):
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SEQ_CONFIG.items()}
    for sec, change in sections.items():
        if isinstance(change, dict) and isinstance(cfg.get(sec), dict):
            cfg[sec].update(change)
        else:
            cfg[sec] = change
    return str(write_config(tmp / name, cfg))


def raw_config(tmp, name, text):
    (tmp / name).write_text(text)
    return str(tmp / name)


def fasta(tmp, name, text):
    (tmp / name).write_text(text)
    return cfg_with(tmp, f"{name}.yaml", data={"files": {"bound": name, "unbound": "unbound.fa"}})


def train(cfg, tmp, *extra):
    return ["train", cfg, "-o", str(tmp / "new"), "-q", *extra]


def damaged_run(tmp, change):
    """A copy of the finished run with ``change(run)`` applied; returns its path."""
    run = tmp / "damaged"
    shutil.copytree(tmp / "run", run)
    change(run)
    return run


def rehash(run):
    """Record the current model.safetensors digest, as someone editing a run by hand would."""
    from biolstm.train.checkpoint import sha256_file

    digest = sha256_file(run / "model.safetensors")
    (run / "model.json").write_text(json.dumps({"file": "model.safetensors", "sha256": digest}))


def rewrite_safetensors(run, edit):
    """Rewrite model.safetensors with ``edit(header, payload) -> (header, payload)``."""
    data = (run / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header, payload = json.loads(data[8 : 8 + n]), data[8 + n :]
    header, payload = edit(header, payload)
    blob = json.dumps(header).encode()
    (run / "model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + payload)
    rehash(run)


def _first_tensor(h):
    return next(k for k in h if k != "__metadata__")


def edit_tensors(run, edit):
    """Rewrite model.safetensors with ``edit(tensors)`` applied, as a valid safetensors file."""
    from safetensors.torch import load_file, save_file

    t = load_file(str(run / "model.safetensors"))
    edit(t)
    save_file(t, str(run / "model.safetensors"))
    rehash(run)


def _nan(t):
    k = next(iter(t))
    t[k] = t[k].clone()
    t[k].view(-1)[0] = float("nan")


def _shape(h, p):
    k = _first_tensor(h)
    h[k]["shape"] = [*h[k]["shape"], 1]
    return h, p


def _offsets(h, p):
    k = _first_tensor(h)
    h[k]["data_offsets"] = [len(p) + 8, len(p) + 16]
    return h, p


def _huge_header(run):
    (run / "model.safetensors").write_bytes(struct.pack("<Q", 2**60) + b"{}")
    rehash(run)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)


# 200 distinct records of random bases: compresses to a few KB, so a cut at 400 bytes truncates it
RANDOM_FASTA = "".join(
    f">s{k}\n{''.join('ACGT'[(k * 7919 + j * j * 31) % 4] for j in range(60))}\n" for k in range(200)
).encode()


def series_cfg(tmp, name, text):
    (tmp / f"{name}.csv").write_text(text)
    cfg = {"task": "forecast", "data": {"file": f"{name}.csv", "lookback": 8, "horizon": 2, "test": 10, "val": 5},
           "model": {"hidden_size": 4}, "train": {"epochs": 1}}  # fmt: skip
    return str(write_config(tmp / f"{name}.yaml", cfg))


def visits_cfg(tmp, name, variables, positive=(2,)):
    cfg = {"task": "longitudinal",
           "data": {"file": "visits.csv", "id_col": "id", "time_col": "day", "variables": variables,
                    "target": "status", "positive": list(positive)},
           "model": {"conv_filters": 0, "hidden_size": 4}, "train": {"epochs": 1}}  # fmt: skip
    return str(write_config(tmp / name, cfg))


def nested(depth):
    return "task: sequence\ndata:\n  test_chromosomes: " + "[" * depth + "]" * depth + "\n"


# name: (function of the base folder returning the argv, pieces the one error line must contain)
CASES = {
    # --- config values
    "lr inf": (lambda t: train(cfg_with(t, "c.yaml", train={"lr": float("inf")}), t), ["lr", "finite"]),
    "lr nan": (lambda t: train(cfg_with(t, "c.yaml", train={"lr": float("nan")}), t), ["lr"]),
    "lr inf override": (lambda t: train(str(t / "ok.yaml"), t, "--train.lr", ".inf"), ["lr"]),
    "pool longer than the sequences": (
        lambda t: train(cfg_with(t, "c.yaml", model={"pool": 1000}), t), ["model.pool", "1000"]),
    "hidden size 1e8": (lambda t: train(str(t / "ok.yaml"), t, "--model.hidden-size", "1e8"), ["hidden_size"]),
    "hidden size 10**8": (
        lambda t: train(cfg_with(t, "c.yaml", model={"hidden_size": 10**8}), t), ["hidden_size", "100000000"]),
    "files as a string": (
        lambda t: train(cfg_with(t, "c.yaml", data={"files": "bound.fa"}), t), ["data.files", "mapping"]),
    "10,000-deep nesting": (lambda t: train(raw_config(t, "deep.yaml", nested(10_000)), t), ["deep.yaml", "deep"]),
    "alias bomb in a list": (
        lambda t: train(raw_config(t, "bomb.yaml", BOMB + "task: sequence\ndata:\n  test_chromosomes: *i\n"), t),
        ["bomb.yaml", "alias"]),
    "epochs 1e38": (lambda t: train(cfg_with(t, "c.yaml", train={"epochs": 1e38}), t), ["epochs"]),
    "epochs 1e38 override": (lambda t: train(str(t / "ok.yaml"), t, "--train.epochs", "1e38"), ["epochs"]),
    "epochs 0": (lambda t: train(cfg_with(t, "c.yaml", train={"epochs": 0}), t), ["epochs", ">= 1"]),
    "batch size -1": (lambda t: train(cfg_with(t, "c.yaml", train={"batch_size": -1}), t), ["batch_size"]),
    "kmer 40": (lambda t: train(cfg_with(t, "c.yaml", data={"kmer": 40}), t), ["data.kmer", "40"]),
    "kmer -2": (lambda t: train(cfg_with(t, "c.yaml", data={"kmer": -2}), t), ["data.kmer", "-2"]),
    "seed 1e23": (lambda t: train(cfg_with(t, "c.yaml", train={"seed": 1e23}), t), ["seed"]),
    "data seed 1e23": (lambda t: train(cfg_with(t, "c.yaml", data={"seed": 10**23}), t), ["data.seed"]),
    "max_length 0": (lambda t: train(cfg_with(t, "c.yaml", data={"max_length": 0}), t), ["data.max_length"]),
    "duplicate keys": (
        lambda t: train(raw_config(t, "dup.yaml", (t / "ok.yaml").read_text() + "task: sequence\n"), t),
        ["dup.yaml", "duplicate key", "task"]),
    "config is a folder": (lambda t: train(str(t), t), ["a folder"]),
    "config is a FIFO": (lambda t: (os.mkfifo(t / "fifo.yaml"), train(str(t / "fifo.yaml"), t))[1], ["fifo.yaml"]),
    "config is a symlink loop": (
        lambda t: (os.symlink(t / "loop.yaml", t / "loop.yaml"), train(str(t / "loop.yaml"), t))[1],
        ["loop.yaml", "symbolic links"]),
    "config is binary": (lambda t: train(raw_config(t, "bin.yaml", "\x00\x01\x02"), t), ["bin.yaml"]),
    "config is a list": (lambda t: train(raw_config(t, "list.yaml", "- a\n- b\n"), t), ["list.yaml", "mapping"]),
    "unknown task": (lambda t: train(cfg_with(t, "c.yaml", task="folding"), t), ["task", "folding"]),
    "override without a value": (lambda t: train(str(t / "ok.yaml"), t, "--train.epochs"), ["--train.epochs"]),
    "restart without resume": (lambda t: train(str(t / "ok.yaml"), t, "--restart"), ["--restart"]),
    # --- sequence files
    "non-ASCII letter in record 8": (
        lambda t: train(fasta(t, "b.fa", "".join(f">s{k}\nACGTACGT\n" for k in range(7)) + ">s7\nACGTÄCGT\n"), t),
        ["b.fa", "record 8"]),
    "duplicate record ids": (
        lambda t: train(fasta(t, "d.fa", "".join(f">s{k % 5}\nACGTACGTAC\n" for k in range(10))), t),
        ["d.fa", "duplicate", "s0"]),
    "labels with stray spaces": (
        lambda t: (
            (t / "reads.fa").write_text("".join(f">r{k}\nACGTACGTAC\n" for k in range(12))),
            (t / "lab.csv").write_text("id,label\n" + "".join(f"r{k},{'a ' if k % 3 == 0 else 'a' if k % 2 else 'b'}\n"
                                                            for k in range(12))),
            train(cfg_with(t, "c.yaml", data={"files": None, "file": "reads.fa", "labels": "lab.csv",
                                              "positive": None}), t),
        )[-1],
        ["lab.csv", "spaces"]),
    "a 50 MB sequence": (
        lambda t: train(fasta(t, "big.fa", ">big\n" + "ACGT" * 12_500_000 + "\n" + "".join(
            f">s{k}\nACGTACGTAC\n" for k in range(20))), t), ["big.fa", "max_length"]),
    "FASTA is a folder": (
        lambda t: ((t / "dir.fa").mkdir(exist_ok=True), train(cfg_with(t, "c.yaml", data={
            "files": {"bound": "dir.fa", "unbound": "unbound.fa"}}), t))[1], ["dir.fa", "folder"]),
    "empty FASTA": (lambda t: train(fasta(t, "empty.fa", ""), t), ["empty.fa"]),
    "truncated gzip": (
        lambda t: ((t / "cut.fa.gz").write_bytes(__import__("gzip").compress(RANDOM_FASTA)[:400]),
                   train(cfg_with(t, "c.yaml", data={"files": {"bound": "cut.fa.gz", "unbound": "unbound.fa"}}), t))[1],
        ["cut.fa.gz", "complete gzip"]),
    # --- tables
    "NaN in a series": (
        lambda t: train(series_cfg(t, "nan", "time,value\n" + "".join(
            f"{1700 + k},{'' if k == 30 else k % 7}\n" for k in range(80))), t), ["nan.csv", "value", "1730"]),
    "text in a series": (
        lambda t: train(series_cfg(t, "txt", "time,value\n" + "".join(
            f"{k},{'abc' if k == 3 else k}\n" for k in range(80))), t), ["txt.csv", "value"]),
    "an all-missing variable": (lambda t: train(visits_cfg(t, "v.yaml", ["a", "b"]), t), ["visits.csv", "'b'"]),
    "one class only": (lambda t: train(visits_cfg(t, "v1.yaml", ["a"], positive=(0, 2)), t), ["status", "class"]),
    # --- damaged run files
    "safetensors header size huge": (
        lambda t: ["evaluate", str(damaged_run(t, _huge_header))], ["model.safetensors"]),
    "safetensors offsets past the end": (
        lambda t: ["evaluate", str(damaged_run(t, lambda r: rewrite_safetensors(r, _offsets)))], ["model.safetensors"]),
    "safetensors shape mismatch": (
        lambda t: ["evaluate", str(damaged_run(t, lambda r: rewrite_safetensors(r, _shape)))], ["model.safetensors"]),
    "safetensors missing key": (
        lambda t: ["evaluate", str(damaged_run(t, lambda r: edit_tensors(r, lambda d: d.pop(next(iter(d))))))],
        ["model.safetensors", "Missing key"]),
    "model.json is a list": (
        lambda t: ["evaluate", str(damaged_run(t, lambda r: (r / "model.json").write_text("[1, 2]")))],
        ["model.json"]),
    "model.json not JSON": (
        lambda t: ["evaluate", str(damaged_run(t, lambda r: (r / "model.json").write_text("{oops")))], ["model.json"]),
    "state.json absurd length": (
        lambda t: ["predict", str(damaged_run(t, lambda r: (r / "state.json").write_text(json.dumps(
            {**json.loads((r / "state.json").read_text()), "length": 10**15})))), str(t / "bound.fa"), "-o",
            str(t / "p.tsv")], ["state.json", "length"]),
    "state.json not JSON": (
        lambda t: ["evaluate", str(damaged_run(t, lambda r: (r / "state.json").write_text("{")))], ["state.json"]),
    "config.yaml damaged": (
        lambda t: ["evaluate", str(damaged_run(t, lambda r: (r / "config.yaml").write_text("task: [")))],
        ["config.yaml"]),
    "NaN weights": (
        lambda t: ["predict", str(damaged_run(t, lambda r: edit_tensors(r, _nan))), str(t / "bound.fa"), "-o",
                   str(t / "p.tsv")],
        ["model.safetensors", "NaN"]),
    "not a run": (lambda t: ["evaluate", str(t)], ["run folder"]),
    # --- outputs and resuming
    "predict over the weights": (
        lambda t: ["predict", str(t / "run"), str(t / "bound.fa"), "-o", str(t / "run" / "model.safetensors")],
        ["model.safetensors", "run's own files"]),
    "predict over a user file": (
        lambda t: ["predict", str(t / "run"), str(t / "bound.fa"), "-o", str(t / "ok.yaml")], ["ok.yaml", "exists"]),
    "evaluate json over the config": (
        lambda t: ["evaluate", str(t / "run"), "--json", str(t / "run" / "config.yaml")], ["config.yaml"]),
    "resume a folder that is not a run": (
        lambda t: ["train", str(t / "ok.yaml"), "-o", str(t), "--resume", "-q"], ["not a biolstm run folder"]),
    "resume with another model": (
        lambda t: ["train", "-o", str(t / "run"), "--resume", "-q", "--model.hidden-size", "9"], ["model.hidden_size"]),
    "device cuda without a GPU": (lambda t: train(str(t / "ok.yaml"), t, "--train.device", "cuda"), ["train.device"]),
    "device banana": (lambda t: train(str(t / "ok.yaml"), t, "--train.device", "banana"), ["train.device"]),
    "keep_checkpoints -1": (
        lambda t: train(str(t / "ok.yaml"), t, "--train.keep-checkpoints", "-1"), ["train.keep_checkpoints"]),
    "log_grad_norms maybe": (
        lambda t: train(str(t / "ok.yaml"), t, "--train.log-grad-norms", "maybe"), ["train.log_grad_norms"]),
    "task is a mapping": (lambda t: train(raw_config(t, "tm.yaml", "task: {name: sequence}\n"), t), ["task"]),
    "a list as a key": (lambda t: train(raw_config(t, "lk.yaml", "[a]: 1\n"), t), ["lk.yaml", "line 1"]),
    "predict over a plot": (
        lambda t: ["predict", str(t / "run"), str(t / "bound.fa"), "-o", str(t / "run" / "loss.png"), "--overwrite"],
        ["loss.png", "run's own files"]),
    "predict into a run without its marker": (
        lambda t: ["predict", str(damaged_run(t, lambda r: (r / ".biolstm-run").unlink())), str(t / "bound.fa"), "-o",
                   str(t / "damaged" / "model.safetensors"), "--overwrite"], ["model.safetensors", "run's own"]),
    "resume a run without its marker": (
        lambda t: ["train", "-o", str(damaged_run(t, lambda r: (r / ".biolstm-run").unlink())), "--resume", "-q"],
        ["no .biolstm-run marker", "create an empty"]),
    "explain into a folder of other files": (lambda t: ["explain", str(t / "run"), "-o", str(t)], ["holds files"]),
    "resume with other data": (
        lambda t: ["train", "-o", str(t / "run"), "--resume", "-q", "--data.max-length", "20"], ["data.max_length"]),
}  # fmt: skip


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".biolstm.")}


@pytest.mark.parametrize("case", list(CASES))
def test_misuse_is_one_error_line_and_changes_no_file(base, tmp_path, case):
    make, pieces = CASES[case]
    work = tmp_path / "w"
    shutil.copytree(base, work, symlinks=True)
    argv = make(work)
    before = snapshot(work)
    res = runner.invoke(app, argv)
    stderr = res.stderr if hasattr(res, "stderr") else res.output
    lines = stderr.strip().splitlines()
    assert res.exit_code == 1, (case, res.output, repr(res.exception))
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, stderr)
    assert "Traceback" not in res.output
    for piece in pieces:
        assert piece in lines[0], (case, piece, lines[0])
    assert snapshot(work) == before, case
    assert not (work / "new").exists(), case


@pytest.mark.parametrize("fault", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_mid_run_is_one_line_and_keeps_earlier_work(base, tmp_path, monkeypatch, fault):
    """The disk fills up (or turns read-only) while the first checkpoint is written."""
    import biolstm.train.checkpoint as ck

    work = tmp_path / "w"
    shutil.copytree(base, work)
    before = snapshot(work)

    def failing(path, tensors):
        raise OSError(fault, os.strerror(fault), str(path))

    monkeypatch.setattr(ck, "save_tensors", failing)
    res = runner.invoke(app, ["train", str(work / "ok.yaml"), "-o", str(work / "new"), "-q", "--train.epochs", "1"])
    lines = (res.stderr if hasattr(res, "stderr") else res.output).strip().splitlines()
    lines = [w for w in lines if not w.startswith("warning: the test part has")]  # this run's test part is small
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert os.strerror(fault) in lines[0] and "model.safetensors" in lines[0]
    assert {p: b for p, b in snapshot(work).items() if "new" not in p.parts} == before
    assert not list((work / "new").glob("ckpt-*")) and not list((work / "new").glob(".ckpt-*"))


def test_the_table_has_at_least_40_cases():
    assert len(CASES) >= 40
    assert yaml.safe_load(nested(3)) is not None  # the nesting helper writes valid YAML
