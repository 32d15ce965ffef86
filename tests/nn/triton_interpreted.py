"""The Triton kernels of the LSTM, GRU and RNN (biolstm.nn.engine.triton_scan), run in Triton's
interpreter on the CPU: forward and backward give the float64 PyTorch loop's outputs, gates and gradients, with
variable lengths, recurrent-dropout masks, every activation the kernels know, and batch and
hidden sizes off the tile sizes. (On a GPU the same kernels are compiled; tests/nn/test_gpu.py
runs them there.)

Triton decides between compiling and interpreting when it is imported, so these tests run in
a process started with TRITON_INTERPRET=1: tests/nn/test_triton_scan.py starts it."""

from __future__ import annotations

import os

import pytest
import torch

from biolstm.nn.engine import gru as gru_module
from biolstm.nn.engine import lstm as lstm_module
from biolstm.nn.engine import rnn as rnn_module

from .test_scan_kernel import ACTS, LOSSES, _inputs, _run

triton = pytest.importorskip("triton", reason="Triton (Linux wheels) runs the CUDA kernels and their interpreter")


@pytest.fixture(scope="module")
def interpreted():
    assert os.environ.get("TRITON_INTERPRET") == "1", "run through tests/nn/test_triton_scan.py"
    from biolstm.nn.engine import triton_scan

    return triton_scan


# the activations as the C kernel is tested; the RNN has one
CELLS = [(c, a, r) for c in ("lstm", "gru") for a, r in ACTS] + [("rnn", a, "sigmoid") for a, _ in ACTS]


@pytest.mark.parametrize(("cell", "act", "rec"), CELLS)
@pytest.mark.parametrize(("B", "H"), [(3, 5), (40, 33)])  # one program / two; H off the 16- and 32-wide tiles
@pytest.mark.parametrize(("lengths", "mask"), [(False, False), (True, True)])
def test_triton_kernels_equal_the_float64_torch_loop(interpreted, cell, act, rec, B, H, lengths, mask, monkeypatch):
    calls = []

    def kernel(tensors, *acts):  # the Triton kernels for these CPU tensors, as on a GPU
        calls.append(tensors[0].dtype)
        return interpreted if tensors[0].dtype == torch.float32 else None

    for module in (lstm_module, gru_module, rnn_module):
        monkeypatch.setattr(module, "step_kernel", kernel)
    args, lens = _inputs(cell, B, H, lengths, mask, seed=B + H)
    got = _run(cell, args, lens, act, rec, torch.float32, LOSSES["weighted"])
    want = _run(cell, args, lens, act, rec, torch.float64, LOSSES["weighted"])
    assert calls == [torch.float32, torch.float64]
    for g, w in zip(got, want):
        assert g.dtype == torch.float32
        assert (g.double() - w).abs().max().item() < 3e-5 * (w.abs().max().item() + 1.0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_triton_reads_broadcast_output_gradients(interpreted, cell, monkeypatch):
    for module in (lstm_module, gru_module, rnn_module):
        monkeypatch.setattr(module, "step_kernel", lambda t, *_: interpreted if t[0].dtype == torch.float32 else None)
    args, lens = _inputs(cell, 5, 17, True, False, seed=3)
    got = _run(cell, args, lens, "tanh", "sigmoid", torch.float32, LOSSES["sum"])  # dY of strides (0, 0, 0)
    want = _run(cell, args, lens, "tanh", "sigmoid", torch.float64, LOSSES["sum"])
    for g, w in zip(got, want):
        assert (g.double() - w).abs().max().item() < 3e-5 * (w.abs().max().item() + 1.0)
