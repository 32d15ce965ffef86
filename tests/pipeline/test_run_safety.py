"""Nothing a user does loses a finished run or a file biolstm did not write (issue 14, part 1).

Each test reproduces one way a run or a user's files were lost, and checks that the command now
refuses with one line, exit code 1, and every existing file byte-identical.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.pipeline.runfolder import MARKER
from biolstm.train.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    remove_directory,
    remove_partial,
    save_checkpoint,
    write_directory_atomically,
)

from .test_runs import small_run

runner = CliRunner()


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(res, *pieces):
    assert res.exit_code == 1, res.output
    lines = [w for w in res.output.strip().splitlines() if not w.startswith("warning: the test part has")]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    for piece in pieces:
        assert piece in lines[0], (piece, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run (2 epochs) and its config."""
    tmp = tmp_path_factory.mktemp("finished")
    cfg = small_run(tmp, epochs=2)
    return tmp, cfg, tmp / "run"


def copy_run(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_resume_with_a_changed_model_or_data_setting_is_refused_and_writes_nothing(finished, tmp_path):
    _, cfg, run = finished
    run = copy_run(run, tmp_path / "run")
    before = snapshot(run)
    for args in (
        [str(cfg), "--model.hidden-size", "7"],  # the reported case: config plus a changed model key
        ["--model.hidden-size", "7"],  # no config: the run's own
        ["--data.kmer", "4"],
        ["--train.lr", "0.5"],  # the optimiser state would silently keep the old rate
    ):
        res = runner.invoke(app, ["train", *args, "-o", str(run), "--resume", "-q"])
        key = args[-2].lstrip("-").replace("-", "_")
        one_error(res, key, "a resumed run keeps its model")
    assert snapshot(run) == before
    res = runner.invoke(app, ["evaluate", str(run)])
    assert res.exit_code == 0, res.output


def test_resume_takes_the_runs_own_config_and_may_extend_it(finished, tmp_path):
    _, cfg, run = finished
    run = copy_run(run, tmp_path / "run")
    state = (run / "state.json").read_bytes()
    res = runner.invoke(app, ["train", "--resume", "-o", str(run), "-q", "--train.epochs", "3"])
    assert res.exit_code == 0, res.output
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 3
    assert "epochs: 3" in (run / "config.yaml").read_text()
    assert (run / "state.json").read_bytes() == state  # the fitted preprocessing is kept, not refitted
    # with the original config too (same values): nothing to refuse
    res = runner.invoke(app, ["train", str(cfg), "--resume", "-o", str(run), "-q", "--train.epochs=3"])
    assert res.exit_code == 0, res.output


def test_resume_into_a_folder_that_is_not_a_run_touches_nothing(finished, tmp_path):
    _, cfg, _ = finished
    folder = tmp_path / "mine"
    (folder / "ckpt-00000001").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "config.yaml").write_text("task: sequence\n")
    (folder / "history.csv").write_text("a,b\n1,2\n")
    (folder / "ckpt-00000001" / "important.txt").write_text("keep me")
    before = snapshot(folder)
    for args in ([str(cfg)], []):
        res = runner.invoke(app, ["train", *args, "-o", str(folder), "--resume", "-q"])
        one_error(res, "is not a biolstm run folder", MARKER)
    res = runner.invoke(app, ["train", str(cfg), "-o", str(folder), "-q"])  # nor as a new run
    one_error(res, "already holds files that are not a biolstm run")
    assert snapshot(folder) == before
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "nowhere"), "--resume", "-q"])
    one_error(res, "does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_a_second_process_on_a_run_folder_is_refused_naming_the_holder(finished, tmp_path):
    _, cfg, run = finished
    run = copy_run(run, tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from biolstm.pipeline.runfolder import locked
            with locked(Path({str(run)!r})):
                print("locked", flush=True)
                sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(run)
        res = runner.invoke(app, ["train", str(cfg), "-o", str(run), "--resume", "-q"])
        one_error(res, "is in use by process", str(holder.pid))
        assert {k: v for k, v in snapshot(run).items() if k.name != ".biolstm.owner"} == {
            k: v for k, v in before.items() if k.name != ".biolstm.owner"
        }
    finally:
        holder.communicate("", timeout=60)
    res = runner.invoke(app, ["train", "-o", str(run), "--resume", "-q"])  # free again once it ends
    assert res.exit_code == 0, res.output


def test_outputs_never_replace_a_runs_files_and_folders_get_a_default_name(finished, tmp_path):
    tmp, _, run = finished
    run = copy_run(run, tmp_path / "run")
    before = snapshot(run)
    fasta = str(tmp / "bound.fa")
    for target in ("model.safetensors", "config.yaml", "state.json", "metrics.json", MARKER):
        res = runner.invoke(app, ["predict", str(run), fasta, "-o", str(run / target), "--overwrite"])
        one_error(res, "never overwrites a run's own files")
        res = runner.invoke(app, ["evaluate", str(run), "--json", str(run / target), "--overwrite"])
        one_error(res, "never overwrites a run's own files")
    ckpt = list_checkpoints(run)[-1]
    res = runner.invoke(app, ["predict", str(run), fasta, "-o", str(ckpt / "meta.json"), "--overwrite"])
    one_error(res, "never overwrites")
    assert snapshot(run) == before
    out = tmp_path / "out"
    out.mkdir()
    res = runner.invoke(app, ["predict", str(run), fasta, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "predictions.tsv").read_text().startswith("id\tpredicted")
    res = runner.invoke(app, ["evaluate", str(run), "--json", f"{out}/"])
    assert res.exit_code == 0, res.output
    assert "metrics" in json.loads((out / "evaluation.json").read_text())
    # an existing file is replaced only when asked
    mine = tmp_path / "mine.tsv"
    mine.write_text("my table\n")
    res = runner.invoke(app, ["predict", str(run), fasta, "-o", str(mine)])
    one_error(res, "already exists", "--overwrite")
    assert mine.read_text() == "my table\n"
    res = runner.invoke(app, ["predict", str(run), fasta, "-o", str(mine), "--overwrite"])
    assert res.exit_code == 0 and mine.read_text().startswith("id\t")
    # a new file inside the run folder is fine
    res = runner.invoke(app, ["predict", str(run), fasta, "-o", str(run / "new_predictions.tsv")])
    assert res.exit_code == 0, res.output


def test_damaged_checkpoints_are_named_and_never_silently_restarted(finished, tmp_path):
    run = finished[2]
    run = copy_run(run, tmp_path / "run")
    ckpts = list_checkpoints(run)
    assert len(ckpts) == 2
    for c in ckpts:  # one bit flipped in each checkpoint's weights
        data = bytearray((c / "model.safetensors").read_bytes())
        data[-1] ^= 1
        (c / "model.safetensors").write_bytes(bytes(data))
    before = snapshot(run)
    res = runner.invoke(app, ["train", "-o", str(run), "--resume", "-q"])
    line = one_error(res, "cannot be resumed", "--restart")
    for c in ckpts:
        assert f"{c.name}: refused" in line and "checksum" in line
    assert snapshot(run) == before
    (run / "model.safetensors").unlink()
    res = runner.invoke(app, ["evaluate", str(run)])
    line = one_error(res, "every checkpoint is refused")
    assert all(c.name in line for c in ckpts)
    res = runner.invoke(app, ["train", "-o", str(run), "--resume", "--restart", "-q"])
    assert res.exit_code == 0, res.output
    assert [c.name for c in list_checkpoints(run)] == [c.name for c in ckpts]
    assert latest_checkpoint(run) is not None and (run / "model.safetensors").is_file()
    res = runner.invoke(app, ["train", "-o", str(run), "--resume", "--restart", "-q"])
    one_error(res, "has a checkpoint that verifies")


def test_checkpoint_deletion_is_atomic_and_loaders_skip_incomplete_directories(tmp_path, monkeypatch):
    import shutil

    import torch

    model = torch.nn.Linear(2, 1)
    for step in (1, 2):
        save_checkpoint(tmp_path, step, model, {"epoch": step}, keep=5)
    real_rmtree = shutil.rmtree

    def killed(path, *a, **k):  # the process dies after deleting one file of the directory
        victim = next(p for p in sorted(os.scandir(path), key=lambda e: e.name))
        inner = victim.path
        if os.path.isdir(inner):
            os.remove(next(os.scandir(inner)).path)
        else:
            os.remove(inner)
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        remove_directory(tmp_path / "ckpt-00000001")
    with pytest.raises(KeyboardInterrupt):  # replacing a checkpoint: the old one goes the same way
        write_directory_atomically(tmp_path / "ckpt-00000002", lambda d: (d / "meta.json").write_text("{}"))
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert not (tmp_path / "ckpt-00000001").exists()  # gone under its name in one step
    assert (tmp_path / "ckpt-00000002" / "meta.json").read_text() == "{}"  # the new one, complete
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000002"]
    assert remove_partial(tmp_path) and not list(tmp_path.glob(".trash-*"))
    # a ckpt-* directory without meta.json (as a kill left them before) is skipped with a note
    (tmp_path / "ckpt-00000009").mkdir()
    (tmp_path / "ckpt-00000009" / "model.safetensors").write_bytes(b"x")
    notes: list[str] = []
    assert [p.name for p in list_checkpoints(tmp_path, notes)] == ["ckpt-00000002"]
    assert notes == ["ckpt-00000009: skipped, incomplete (no meta.json)"]


def test_rotation_deletes_only_directories_biolstm_wrote(tmp_path):
    import torch

    model = torch.nn.Linear(2, 1)
    save_checkpoint(tmp_path, 1, model, {}, keep=1)
    (tmp_path / "ckpt-00000001" / "important.txt").write_text("keep me")
    for step in (2, 3):
        save_checkpoint(tmp_path, step, model, {}, keep=1)
    assert (tmp_path / "ckpt-00000001" / "important.txt").read_text() == "keep me"
    assert not (tmp_path / "ckpt-00000002").exists() and (tmp_path / "ckpt-00000003").is_dir()


def test_run_files_follow_the_umask(finished, tmp_path):
    _, cfg, _ = finished
    old = os.umask(0o022)
    try:
        res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "run"), "-q", "--train.epochs", "1"])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    run = tmp_path / "run"
    for f in ("model.safetensors", "config.yaml", "state.json", MARKER):
        assert stat.S_IMODE((run / f).stat().st_mode) == 0o644, f
    for c in list_checkpoints(run):
        assert stat.S_IMODE(c.stat().st_mode) == 0o755
        assert stat.S_IMODE((c / "model.safetensors").stat().st_mode) == 0o644


def test_optimiser_and_rng_state_is_verified_like_the_weights(finished, tmp_path):
    """state.safetensors (optimiser moments, RNG states) has its own checksum in meta.json: a
    changed byte there refuses the checkpoint as a changed weight does."""
    run = copy_run(finished[2], tmp_path / "run")
    newest, older = list_checkpoints(run)[::-1]

    def flip(path):
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))

    flip(newest / "state.safetensors")
    notes: list[str] = []
    path, _ = latest_checkpoint(run, notes)
    assert path == older and notes and "state.safetensors" in notes[0] and "checksum" in notes[0]
    flip(older / "state.safetensors")
    res = runner.invoke(app, ["train", "-o", str(run), "--resume", "-q"])
    line = one_error(res, "cannot be resumed")
    assert line.count("state.safetensors") == 2


def test_predict_warns_with_counts_on_input_unlike_the_training_data(finished, tmp_path):
    """The run trained on 30 bp sequences without N: a 21 bp one, a 500 bp one and one with 20
    leading Ns get predictions, and one warning line that counts each kind."""
    import random

    run = finished[2]
    rng = random.Random(0)
    seqs = {"short": 21, "long": 500, "normal": 30}
    text = "".join(f">{k}\n{''.join(rng.choice('ACGT') for _ in range(n))}\n" for k, n in seqs.items())
    text += ">ns\n" + "N" * 20 + "ACGTACGTAC\n"
    (tmp_path / "odd.fa").write_text(text)
    res = runner.invoke(app, ["predict", str(run), str(tmp_path / "odd.fa"), "-o", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0, res.output
    warn = [w for w in res.stderr.splitlines() if w.startswith("warning: ")]
    assert len(warn) == 1, res.stderr
    for piece in ("4 sequences", "1 shorter than the shortest in training (30)",
                  "1 longer than the longest in training (30; cut to 30)",
                  "1 with more unknown letters (N)"):  # fmt: skip
        assert piece in warn[0], (piece, warn[0])
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 5
    (tmp_path / "same.fa").write_text(">a\n" + "ACGT" * 7 + "AC\n")  # like the training data: no warning
    res = runner.invoke(app, ["predict", str(run), str(tmp_path / "same.fa"), "-o", str(tmp_path / "q.tsv")])
    assert res.exit_code == 0 and "warning" not in res.stderr, res.stderr


def test_a_user_folder_at_a_checkpoints_name_is_never_replaced(finished, tmp_path):
    run = copy_run(finished[2], tmp_path / "run")
    nxt = int(list_checkpoints(run)[-1].name[5:]) + 3  # where the next epoch's checkpoint goes (3 steps each)
    mine = run / f"ckpt-{nxt:08d}"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    res = runner.invoke(app, ["train", "-o", str(run), "--resume", "-q", "--train.epochs", "3"])
    one_error(res, mine.name, "did not write")
    assert (mine / "notes.txt").read_text() == "mine"


def test_resume_may_not_go_below_the_epochs_done_and_a_stray_rank_is_no_launch(finished, tmp_path, monkeypatch):
    run = copy_run(finished[2], tmp_path / "run")
    before = snapshot(run)
    res = runner.invoke(app, ["train", "-o", str(run), "--resume", "-q", "--train.epochs", "1"])
    one_error(res, "train.epochs 1 is fewer than the 2 epochs")
    assert snapshot(run) == before
    monkeypatch.setenv("RANK", "1")  # without WORLD_SIZE: not a torchrun process, so this one writes the run
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    res = runner.invoke(app, ["train", str(finished[1]), "-o", str(tmp_path / "new"), "-q", "--train.epochs", "1"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "new" / MARKER).is_file() and (tmp_path / "new" / "model.safetensors").is_file()


def test_yaml_merge_keys_still_load(tmp_path):
    from biolstm.config import load_yaml

    (tmp_path / "m.yaml").write_text("base: &d {epochs: 2, lr: 0.01}\ntrain: {<<: *d, lr: 0.02}\n")
    assert load_yaml(tmp_path / "m.yaml")["train"] == {"epochs": 2, "lr": 0.02}
