"""Activations, recurrent dropout, layer norm and gate-bias initialisation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import biolstm.nn as bnn
from biolstm.nn.activations import get_activation

DT = torch.float64
NAMES = ["tanh", "relu", "sigmoid", "hard_sigmoid", "linear", "elu", "softsign", "softplus", "silu", "gelu", "swish"]


def _engines_agree(cls, train=False, **kw):
    torch.manual_seed(21)
    a = cls(3, 5, num_layers=2, bidirectional=True, batch_first=True, dtype=DT, engine="transparent", **kw)
    b = cls(3, 5, num_layers=2, bidirectional=True, batch_first=True, dtype=DT, engine="autograd", **kw)
    b.load_state_dict(a.state_dict())
    a.train(train)
    b.train(train)
    x = torch.randn(3, 6, 3, dtype=DT, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])
    outs = []
    for m in (a, b):
        torch.manual_seed(99)
        y, hid = m(x, lengths=lengths)
        hid = hid if isinstance(hid, tuple) else (hid,)
        loss = (y**2).sum() + sum(h.sum() for h in hid)
        outs.append((y, hid, torch.autograd.grad(loss, [x, *m.parameters()])))
    (ya, ha, ga), (yb, hb, gb) = outs
    torch.testing.assert_close(ya, yb, atol=1e-11, rtol=0)
    for u, v in zip(ha, hb):
        torch.testing.assert_close(u, v, atol=1e-11, rtol=0)
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, atol=1e-10, rtol=0)
    return ya


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("cls", [bnn.LSTM, bnn.GRU, bnn.RNN], ids=["LSTM", "GRU", "RNN"])
def test_hand_written_backward_equals_autograd_for_each_activation(cls, name):
    kw = {"activation": name}
    if cls is not bnn.RNN:
        kw["recurrent_activation"] = "hard_sigmoid" if name == "relu" else "sigmoid"
    _engines_agree(cls, **kw)


def test_callable_activation():
    y = _engines_agree(bnn.LSTM, activation=torch.sin, recurrent_activation=lambda v: torch.sigmoid(2 * v))
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("cls", [bnn.LSTM, bnn.GRU, bnn.RNN], ids=["LSTM", "GRU", "RNN"])
def test_recurrent_dropout_engines_agree_and_mask_is_per_sequence(cls):
    y = _engines_agree(cls, train=True, recurrent_dropout=0.4)
    m = cls(3, 5, batch_first=True, recurrent_dropout=0.4, dtype=DT)
    m.eval()  # no dropout at inference: equal to a model without it
    ref = cls(3, 5, batch_first=True, dtype=DT)
    ref.load_state_dict(m.state_dict())
    x = torch.randn(2, 4, 3, dtype=DT)
    torch.testing.assert_close(m(x)[0], ref(x)[0], atol=1e-12, rtol=0)
    assert torch.isfinite(y).all()


def test_recurrent_dropout_mask_is_constant_over_time():
    # With W_hh = identity, zero input weights and linear activation, an RNN adds h_{t-1}*mask
    # at each step: h_t = mask^t * h_0, so log|h_t / h_0| / t is the same for every t.
    rnn = bnn.RNN(1, 8, activation="linear", recurrent_dropout=0.5, bias=False, engine="transparent", dtype=DT)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.eye(8, dtype=DT))
        rnn.weight_ih_l0.zero_()
    rnn.train()
    h0 = torch.ones(1, 4, 8, dtype=DT)
    out, _ = rnn(torch.zeros(5, 4, 1, dtype=DT), h0)
    mask = out[0]  # h_1 = mask * h_0
    assert set(mask.unique().tolist()) <= {0.0, 2.0}
    for t in range(5):
        torch.testing.assert_close(out[t], mask ** (t + 1), atol=0, rtol=0)


def test_layer_norm_parameters_and_engines():
    m = bnn.LSTM(3, 5, layer_norm=True, bidirectional=True)
    names = {n for n, _ in m.named_parameters()}
    assert {
        "ln_ih_weight_l0",
        "ln_hh_weight_l0",
        "ln_cell_weight_l0",
        "ln_cell_bias_l0",
        "ln_ih_weight_l0_reverse",
    } <= names
    assert torch.equal(m.ln_cell_weight_l0, torch.ones(5)) and torch.equal(m.ln_cell_bias_l0, torch.zeros(5))
    _engines_agree(bnn.LSTM, layer_norm=True)
    with pytest.raises(ValueError, match="layer_norm"):
        bnn.LSTM(3, 5, layer_norm=True, engine="fused")(torch.randn(2, 1, 3))


def test_layer_norm_normalises_cell_before_activation():
    m = bnn.LSTM(2, 6, layer_norm=True, batch_first=True, dtype=DT)
    x = 50 * torch.randn(2, 9, 2, dtype=DT)  # large inputs: the gates saturate either way
    out, _, tr = m(x, return_gates=True)
    c = tr["c"]
    cn = (c - c.mean(-1, keepdim=True)) / torch.sqrt(c.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(out, tr["o"] * torch.tanh(cn), atol=1e-10, rtol=0)


def test_activation_names_and_errors():
    assert get_activation("hard_sigmoid").fn(torch.tensor([-3.0, 0.0, 3.0])).tolist() == [0.0, 0.5, 1.0]
    assert get_activation(None).name == "linear"
    assert get_activation("swish").name == "silu"
    assert get_activation(torch.tanh).name == "tanh"  # the callable keeps the fast path

    def tanh(v):  # a user function that merely shares a built-in's name
        return torch.tanh(v) * 0.5

    assert get_activation(tanh).name == "callable tanh"
    assert bnn.LSTM(2, 3, activation=tanh).fused_blocker() == "activation='callable tanh' (fused needs 'tanh')"
    with pytest.raises(ValueError, match=r"activation: expected one of .*got 'tanhh'"):
        bnn.LSTM(2, 3, activation="tanhh")
    with pytest.raises(ValueError, match="recurrent_activation"):
        bnn.GRU(2, 3, recurrent_activation="nope")
    with pytest.raises(TypeError, match="activation"):
        bnn.LSTM(2, 3, activation=3)


@pytest.mark.parametrize("name", NAMES)
def test_activation_derivatives(name):
    act = get_activation(name)
    x = torch.linspace(-4, 4, 101, dtype=DT).requires_grad_(True)
    (expected,) = torch.autograd.grad(act.fn(x).sum(), x)
    got = act.grad(act.fn(x).detach(), x.detach())
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_forget_bias_and_chrono_init():
    m = bnn.LSTM(3, 4, num_layers=2, forget_bias=1.0)
    for k in (0, 1):
        assert torch.equal(getattr(m, f"bias_ih_l{k}")[4:8], torch.ones(4))
        assert torch.equal(getattr(m, f"bias_hh_l{k}")[4:8], torch.zeros(4))
    g = bnn.GRU(3, 4, forget_bias=2.0)
    assert torch.equal(g.bias_ih_l0[4:8], torch.full((4,), 2.0))  # update gate z keeps the state
    torch.manual_seed(0)
    c = bnn.LSTM(3, 64, chrono_init=100, bidirectional=True)
    bf = c.bias_ih_l0_reverse[64:128] + c.bias_hh_l0_reverse[64:128]
    assert bf.min() >= 0 and bf.max() <= math.log(99) + 1e-6 and bf.std() > 0.3
    torch.testing.assert_close(c.bias_ih_l0[:64] + c.bias_hh_l0[:64], -(c.bias_ih_l0[64:128]))
    with pytest.raises(ValueError, match="forget_bias"):
        bnn.RNN(3, 4, forget_bias=1.0)
    with pytest.raises(ValueError, match="forget_bias, chrono_init"):
        bnn.LSTM(3, 4, forget_bias=1.0, chrono_init=10)
    with pytest.raises(ValueError, match="chrono_init"):
        bnn.LSTM(3, 4, chrono_init=1)
    with pytest.raises(ValueError, match="bias=True"):
        bnn.LSTM(3, 4, bias=False, forget_bias=1.0)
    assert math.isclose(bnn.init.forget_time_scale(1.0), -1 / math.log(1 / (1 + math.exp(-1))))


def test_keras_style_relu_lstm_trains_on_a_toy_task():
    # The seed's LSTM(50, activation='relu'): learns the sign of a sequence's sum.
    torch.manual_seed(0)
    x = torch.randn(512, 10, 1)
    y = (x.sum(1) > 0).float()
    lstm = bnn.LSTM(1, 16, batch_first=True, activation="relu", forget_bias=1.0)
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=0.01)
    for _ in range(150):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(head(lstm(x)[0][:, -1]), y)
        loss.backward()
        opt.step()
    acc = ((head(lstm(x)[0][:, -1]) > 0).float() == y).float().mean()
    assert acc > 0.9


def test_modules_deepcopy_with_their_activations():
    import copy

    m = bnn.LSTM(2, 3, activation="relu", recurrent_activation="hard_sigmoid")
    m2 = copy.deepcopy(m)
    assert m2.activation is m.activation  # built-ins travel by name and resolve to the same object
    x = torch.randn(4, 1, 2)
    torch.testing.assert_close(m2(x)[0], m(x)[0])
    c = copy.deepcopy(bnn.GRU(2, 3, activation=torch.sin))
    assert c.activation.fn is torch.sin
