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


def test_two_gloo_processes_equal_one_and_resume_with_another_count(tmp_path):
    one = _run(tmp_path / "one", 3, 1)
    two = _run(tmp_path / "two", 3, 2)
    assert (one["world"], two["world"]) == (1, 2) and one["steps"] == two["steps"] == 3 * 7
    for k, w in one["weights"].items():
        torch.testing.assert_close(two["weights"][k], w, atol=1e-5, rtol=1e-4)
    for k in ("loss", "accuracy", "auc"):  # logged over the whole epoch, not one shard
        assert two["history"][k] == pytest.approx(one["history"][k], abs=1e-5)
    assert len(list((tmp_path / "two").glob("ckpt-*"))) == 2  # written once, by rank 0
    # 2 epochs on 2 processes, then the third on one process: the same as 3 epochs on one
    _run(tmp_path / "mixed", 2, 2)
    mixed = _run(tmp_path / "mixed", 3, 1, resume=True)
    assert mixed["steps"] == 3 * 7
    for k, w in one["weights"].items():
        torch.testing.assert_close(mixed["weights"][k], w, atol=1e-5, rtol=1e-4)
