"""torch.autograd.gradcheck on the transparent engine's hand-written backward pass."""

from __future__ import annotations

import pytest
import torch

import biolstm.nn as bnn
from biolstm.nn.activations import get_activation
from biolstm.nn.engine import LSTMScan

DT = torch.float64
ACTIVATIONS = [
    "tanh",
    "relu",
    "sigmoid",
    "hard_sigmoid",
    "linear",
    "elu",
    "softsign",
    "softplus",
    "silu",
    "gelu",
    torch.sin,
]


def _check(module, x, lengths=None, seed=None):
    params = [p for p in module.parameters()]
    n = len(params)

    def f(x, *ps):
        if seed is not None:
            torch.manual_seed(seed)  # the same recurrent-dropout mask on every call
        out = torch.func.functional_call(
            module,
            dict(zip([k for k, _ in module.named_parameters()], ps)),
            (x,),
            {"lengths": lengths} if lengths is not None else {},
        )
        hidden = out[1] if isinstance(out[1], tuple) else (out[1],)
        return (out[0], *hidden)

    assert n > 0
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-4)


def _params_as_leaves(module):
    for p in module.parameters():
        p.requires_grad_(True)
    return module


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a if isinstance(a, str) else a.__name__)
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_gradcheck_each_activation(mode, act):
    torch.manual_seed(11)
    cls = {"LSTM": bnn.LSTM, "GRU": bnn.GRU, "RNN": bnn.RNN}[mode]
    kw = dict(activation=act)
    if mode != "RNN":
        kw["recurrent_activation"] = "hard_sigmoid" if act == "elu" else "sigmoid"
    m = _params_as_leaves(cls(3, 4, batch_first=True, dtype=DT, engine="transparent", **kw))
    x = torch.randn(2, 4, 3, dtype=DT, requires_grad=True)
    _check(m, x)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_gradcheck_layer_norm_lengths_and_recurrent_dropout(mode):
    torch.manual_seed(12)
    cls = {"LSTM": bnn.LSTM, "GRU": bnn.GRU, "RNN": bnn.RNN}[mode]
    x = torch.randn(3, 5, 2, dtype=DT, requires_grad=True)
    ln = _params_as_leaves(cls(2, 4, batch_first=True, dtype=DT, layer_norm=True, bidirectional=True))
    _check(ln, x, lengths=torch.tensor([5, 2, 0]))
    rd = _params_as_leaves(
        cls(2, 4, num_layers=2, batch_first=True, dtype=DT, recurrent_dropout=0.3, engine="transparent")
    )
    rd.train()
    _check(rd, x, lengths=torch.tensor([4, 5, 1]), seed=3)


def test_gradcheck_projection_and_bidirectional_lengths():
    torch.manual_seed(13)
    m = _params_as_leaves(
        bnn.LSTM(2, 5, proj_size=2, num_layers=2, bidirectional=True, batch_first=True, dtype=DT, engine="transparent")
    )
    x = torch.randn(3, 4, 2, dtype=DT, requires_grad=True)
    _check(m, x, lengths=torch.tensor([2, 4, 3]))


@pytest.mark.parametrize("fast", [False, True])
def test_lstm_scan_gradcheck_both_tanh_paths(fast):
    torch.manual_seed(14)
    T, B, D, H = 4, 3, 2, 3
    args = [
        torch.randn(T, B, D, dtype=DT),
        torch.randn(4 * H, D, dtype=DT),
        torch.randn(4 * H, dtype=DT),
        torch.randn(B, H, dtype=DT),
        torch.randn(B, H, dtype=DT),
        torch.randn(4 * H, H, dtype=DT),
    ]
    args = [a.requires_grad_(True) for a in args]
    tanh, sig = get_activation("tanh"), get_activation("sigmoid")

    def f(*a):
        y, h, c, _, _ = LSTMScan.apply(*a, None, None, None, None, tanh, sig, fast)
        return y, h, c

    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-6)


def test_fast_tanh_path_equals_exact_path():
    torch.manual_seed(15)
    T, B, D, H = 30, 4, 3, 8
    x, w_ih, b = torch.randn(T, B, D, dtype=DT), torch.randn(4 * H, D, dtype=DT), torch.randn(4 * H, dtype=DT)
    h0, c0, w_hh = torch.randn(B, H, dtype=DT), torch.randn(B, H, dtype=DT), torch.randn(4 * H, H, dtype=DT) / 3
    tanh, sig = get_activation("tanh"), get_activation("sigmoid")
    exact = LSTMScan.apply(x, w_ih, b, h0, c0, w_hh, None, None, None, None, tanh, sig, False)
    fast = LSTMScan.apply(x, w_ih, b, h0, c0, w_hh, None, None, None, None, tanh, sig, True)
    for a, c in zip(exact, fast):
        torch.testing.assert_close(a, c, atol=1e-13, rtol=0)


def test_backward_workspace_reuse_gives_identical_gradients():
    from biolstm.nn.engine import release_workspace

    torch.manual_seed(16)
    lstm = bnn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True, dtype=DT, engine="transparent")
    x = torch.randn(4, 6, 3, dtype=DT, requires_grad=True)
    release_workspace()
    first = torch.autograd.grad(lstm(x)[0].sum(), [x, *lstm.parameters()])
    other = torch.randn(4, 6, 3, dtype=DT)  # a call in between leaves other numbers in the scratch buffers
    lstm(other)[0].sum().backward()
    second = torch.autograd.grad(lstm(x)[0].sum(), [x, *lstm.parameters()])
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    lengths = torch.tensor([6, 2, 4, 1])  # variable lengths: padded positions must be cleared
    g1 = torch.autograd.grad(lstm(x, lengths=lengths)[0].sum(), x)[0]
    release_workspace()
    g2 = torch.autograd.grad(lstm(x, lengths=lengths)[0].sum(), x)[0]
    assert torch.equal(g1, g2)
