"""Data-parallel training with torch.distributed: 2 CPU processes (gloo) launched by torchrun
give the same weights and logged numbers as one process with the same global batch, and a
run resumes with a different number of processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(run_dir: Path, epochs: int, nproc: int, resume: bool = False) -> dict:
    args = [str(WORKER), str(run_dir), str(epochs), *(["--resume"] if resume else [])]
    if nproc > 1:
        args = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads((run_dir / "history.json").read_text())
    info["weights"] = load_file(str(run_dir / "final.safetensors"))
    return info


@pytest.mark.slow  # a long run; CI runs it (.ci/run)
def test_two_gloo_processes_equal_one_and_resume_with_another_count(tmp_path):
    one = _run(tmp_path / "one", 3, 1)
    two = _run(tmp_path / "two", 3, 2)
    assert (one["world"], two["world"]) == (1, 2) and one["steps"] == two["steps"] == 3 * 7
    for k, w in one["weights"].items():
        torch.testing.assert_close(two["weights"][k], w, atol=1e-5, rtol=1e-4)
    for k in ("loss", "accuracy", "auc"):  # logged over the whole epoch, not one shard
        assert two["history"][k] == pytest.approx(one["history"][k], abs=1e-5)
    assert len(list((tmp_path / "two").glob("ckpt-*"))) == 2  # written once, by rank 0
    # the group biolstm created was destroyed before exit in both processes (left to interpreter
    # shutdown, gloo's threads can abort a finished process)
    for r in (0, 1):
        assert json.loads((tmp_path / "two" / f"exit-{r}.json").read_text()) == {"group_alive": False}
    # 2 epochs on 2 processes, then the third on one process: the same as 3 epochs on one
    _run(tmp_path / "mixed", 2, 2)
    mixed = _run(tmp_path / "mixed", 3, 1, resume=True)
    assert mixed["steps"] == 3 * 7
    for k, w in one["weights"].items():
        torch.testing.assert_close(mixed["weights"][k], w, atol=1e-5, rtol=1e-4)


@pytest.mark.slow  # a long run; CI runs it (.ci/run)
def test_cli_nproc_trains_one_run_folder(tmp_path):
    from tests.pipeline.test_runs import SEQ_CONFIG, motif_fastas, write_config

    motif_fastas(tmp_path, n=60)
    cfg = write_config(tmp_path / "motif.yaml", SEQ_CONFIG)
    run = tmp_path / "run"
    base = [sys.executable, "-m", "biolstm", "train", str(cfg), "-o", str(run), "-q", "--nproc", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [*base, "--train.epochs", "3", "--model.dropout", "0"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    for f in ("config.yaml", "state.json", "model.safetensors", "history.csv", "metrics.json"):
        assert (run / f).is_file(), f
    assert len((run / "history.csv").read_text().splitlines()) == 4  # 3 epochs, logged once
    one = tmp_path / "one"  # the same run in one process: the same model
    args = [*base[:6], str(one), "-q", "--train.epochs", "3", "--model.dropout", "0"]  # no dropout: same draws
    res = subprocess.run(args, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    w1, w2 = load_file(str(one / "model.safetensors")), load_file(str(run / "model.safetensors"))
    for k in w1:  # Adam over 3 epochs amplifies the different summation order a little
        torch.testing.assert_close(w2[k], w1[k], atol=1e-4, rtol=1e-3)
    m1, m2 = (json.loads((r / "metrics.json").read_text())["metrics"]["model"]["auroc"] for r in (one, run))
    assert m2 == pytest.approx(m1, abs=1e-3)
    # config errors are reported once, before any process starts; the run folder is untouched
    before = {p: p.read_bytes() for p in run.iterdir() if p.is_file()}
    res = subprocess.run([*base, "--train.epocs", "3"], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 1 and res.stderr.count("error:") == 1 and "epocs" in res.stderr
    assert "torch.distributed" not in res.stderr
    assert {p: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_teardown_leaves_a_group_the_caller_created(tmp_path):
    import torch.distributed as dist

    from biolstm.train import distributed as dd

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        dd.setup()  # a group exists already: not biolstm's
        dd.teardown()
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
