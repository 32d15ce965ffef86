"""Gradient checkpointing through time gives the same outputs, states and gradients as full
storage, for every cell, with lengths, projections and either layout."""

from __future__ import annotations

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
