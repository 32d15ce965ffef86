"""LSTMCell, GRUCell and RNNCell against their torch.nn namesakes."""

from __future__ import annotations

import pytest
import torch

import biolstm.nn as bnn

DT = torch.float64
PAIRS = [
    (torch.nn.LSTMCell, bnn.LSTMCell, {}),
    (torch.nn.GRUCell, bnn.GRUCell, {}),
    (torch.nn.RNNCell, bnn.RNNCell, {"nonlinearity": "relu"}),
    (torch.nn.RNNCell, bnn.RNNCell, {"bias": False}),
]


@pytest.mark.parametrize("ref_cls, cls, kw", PAIRS)
@pytest.mark.parametrize("batched", [True, False])
def test_cell_equals_torch(ref_cls, cls, kw, batched):
    torch.manual_seed(4)
    ref = ref_cls(3, 5, dtype=DT, **kw)
    torch.manual_seed(4)
    mine = cls(3, 5, dtype=DT, **kw)
    for a, b in zip(ref.state_dict().values(), mine.state_dict().values()):
        assert torch.equal(a, b)  # same initial weights under the same seed
    x = torch.randn(*((4,) if batched else ()), 3, dtype=DT, requires_grad=True)
    h = torch.randn(*((4,) if batched else ()), 5, dtype=DT, requires_grad=True)
    hx = (h, h.detach().clone().requires_grad_(True) * 0.5) if ref_cls is torch.nn.LSTMCell else h
    out_r, out_m = ref(x, hx), mine(x, hx)
    outs_r = out_r if isinstance(out_r, tuple) else (out_r,)
    outs_m = out_m if isinstance(out_m, tuple) else (out_m,)
    for a, b in zip(outs_m, outs_r):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    loss_r = sum((o * (k + 1)).sum() for k, o in enumerate(outs_r))
    loss_m = sum((o * (k + 1)).sum() for k, o in enumerate(outs_m))
    for a, b in zip(
        torch.autograd.grad(loss_m, [x, h, *mine.parameters()]), torch.autograd.grad(loss_r, [x, h, *ref.parameters()])
    ):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert torch.equal(
        mine(x)[0] if isinstance(out_m, tuple) else mine(x), mine(x)[0] if isinstance(out_m, tuple) else mine(x)
    )


def test_cell_loop_equals_layer_and_exposes_gates():
    layer = bnn.LSTM(3, 4, dtype=DT, activation="relu")
    cell = bnn.LSTMCell(3, 4, dtype=DT, activation="relu")
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = torch.randn(6, 2, 3, dtype=DT)
    out, _, tr = layer(x, return_gates=True)
    h = c = torch.zeros(2, 4, dtype=DT)
    for t in range(6):
        (h, c), (_i, f, _g, _o) = cell(x[t], (h, c), return_gates=True)
        torch.testing.assert_close(h, out[t], atol=1e-12, rtol=0)
        torch.testing.assert_close(f, tr["f"][:, t], atol=1e-12, rtol=0)


def test_cell_forget_bias_and_activation():
    cell = bnn.LSTMCell(3, 4, forget_bias=1.0, activation="elu")
    assert torch.equal(cell.bias_ih[4:8], torch.ones(4))
    assert cell.activation.name == "elu"
    assert bnn.RNNCell(3, 4, activation="softsign").activation.name == "softsign"
