"""Gradient checkpointing through time gives the same outputs, states and gradients as full
storage, for every cell, with lengths, projections and either layout."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import biolstm.nn as bnn


@pytest.mark.parametrize(
    "cls,kw",
    [(bnn.LSTM, {}), (bnn.LSTM, {"proj_size": 3, "num_layers": 2}), (bnn.GRU, {"num_layers": 2}),
     (bnn.RNN, {"nonlinearity": "relu"}), (bnn.LSTM, {"engine": "transparent", "batch_first": False})],
)  # fmt: skip
@pytest.mark.parametrize("segment", [True, 7])
def test_checkpointed_equals_full_storage(cls, kw, segment):
    torch.manual_seed(0)
    batch_first = kw.pop("batch_first", True)
    full = cls(4, 6, batch_first=batch_first, **kw).double()
    ckpt = cls(4, 6, batch_first=batch_first, checkpoint=segment, **kw).double()
    ckpt.load_state_dict(full.state_dict())
    x = torch.randn(3, 50, 4, dtype=torch.float64)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    lengths = torch.tensor([50, 23, 1])
    results = []
    for m in (full, ckpt):
        xi = x.clone().requires_grad_()
        out, state = m(xi, lengths=lengths)
        h = state[0] if isinstance(state, tuple) else state
        (out.square().sum() + h.sum()).backward()
        results.append((out.detach(), h.detach(), xi.grad, [p.grad.clone() for p in m.parameters()]))
        m.zero_grad()
    (o1, h1, gx1, gp1), (o2, h2, gx2, gp2) = results
    torch.testing.assert_close(o2, o1)
    torch.testing.assert_close(h2, h1)
    torch.testing.assert_close(gx2, gx1)
    for a, b in zip(gp2, gp1):
        torch.testing.assert_close(a, b)


def test_checkpoint_options():
    with pytest.raises(ValueError, match="checkpoint: expected True, False or a segment length >= 2"):
        bnn.LSTM(2, 3, checkpoint=1)
    with pytest.raises(ValueError, match="expected bidirectional=False"):
        bnn.LSTM(2, 3, checkpoint=True, bidirectional=True)
    m = bnn.LSTM(2, 3, batch_first=True, checkpoint=True)
    with torch.no_grad():  # no graph: the plain path
        out, _ = m(torch.randn(2, 9, 2))
    assert out.shape == (2, 9, 3)


PEAK = r"""
import sys, torch
import biolstm.nn as bnn
from biolstm.nn._heap import peak_resident_mib as hwm, reset_peak_resident
torch.set_num_threads(1)
torch.manual_seed(0)
m = bnn.LSTM(64, 64, batch_first=True, engine="transparent", checkpoint=sys.argv[1] == "checkpointed")
m(torch.randn(8, 16, 64))[0].sum().backward()
x = torch.randn(8, 4000, 64)
reset_peak_resident()
base = hwm()
m(x)[1][0][-1].sum().backward()
print(hwm() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_checkpointed_resident_memory_is_a_small_share_of_full_storage():
    # peak resident memory of one step (loss on the final state), each engine in its own process:
    # full storage keeps every step's gates; checkpointing keeps 64 segment states and one
    # segment's workspace (the 8 MB output aside), and hands freed workspaces back to the system
    peaks = {}
    for case in ("full", "checkpointed"):
        res = subprocess.run([sys.executable, "-c", PEAK, case], capture_output=True, text=True, check=True)
        peaks[case] = float(res.stdout.split()[-1])
    assert peaks["full"] > 80, peaks
    assert peaks["checkpointed"] < 0.2 * peaks["full"], peaks


def test_release_free_memory_runs_where_glibc_is():
    import platform

    from biolstm.nn._heap import release_free_memory

    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")
