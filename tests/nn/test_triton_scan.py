"""The LSTM, GRU and RNN Triton kernels checked in Triton's interpreter (tests/nn/triton_interpreted.py), in a
process of their own: Triton reads TRITON_INTERPRET once, when it is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="Triton (Linux wheels) runs the CUDA kernels and their interpreter")


def test_triton_kernels_in_the_interpreter():
    here = Path(__file__).parent
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here / "triton_interpreted.py")]
    res = subprocess.run(cmd, cwd=here.parent.parent, env=dict(os.environ, TRITON_INTERPRET="1"), capture_output=True,
                         text=True, timeout=900)  # fmt: skip
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and "skipped" not in res.stdout, res.stdout[-2000:]
