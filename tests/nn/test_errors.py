"""Bad arguments raise ValueError/TypeError naming the argument, what was expected and got."""

from __future__ import annotations

import pytest
import torch

import biolstm.nn as bnn


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        (dict(input_size=0, hidden_size=4), ValueError, r"input_size: expected an int >= 1, got 0"),
        (dict(input_size=3, hidden_size=2.5), TypeError, r"hidden_size: expected int, got 2.5"),
        (dict(input_size=3, hidden_size=4, num_layers=0), ValueError, r"num_layers: expected an int >= 1"),
        (
            dict(input_size=3, hidden_size=4, proj_size=4),
            ValueError,
            r"proj_size: expected an int smaller than hidden_size=4, got 4",
        ),
        (dict(input_size=3, hidden_size=4, proj_size=-1), ValueError, r"proj_size: expected an int >= 0"),
        (dict(input_size=3, hidden_size=4, dropout=1.5), ValueError, r"dropout: expected a float in \[0, 1\]"),
        (dict(input_size=3, hidden_size=4, recurrent_dropout="x"), TypeError, r"recurrent_dropout: expected"),
        (dict(input_size=3, hidden_size=4, batch_first=1), TypeError, r"batch_first: expected bool"),
        (
            dict(input_size=3, hidden_size=4, engine="cudnn"),
            ValueError,
            r"engine: expected one of 'auto', 'fused', 'transparent', 'autograd', got 'cudnn'",
        ),
        (dict(input_size=3, hidden_size=4, activation="tanhh"), ValueError, r"activation: expected one of"),
    ],
)
def test_constructor_errors(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        bnn.LSTM(**kwargs)


def test_gru_rejects_projection_and_rnn_rejects_gates():
    with pytest.raises(TypeError):
        bnn.GRU(3, 4, proj_size=2)
    with pytest.raises(TypeError, match="recurrent_activation"):
        bnn.RNN(3, 4, recurrent_activation="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity: expected one of 'tanh', 'relu', got 'sigmoid'"):
        bnn.RNN(3, 4, nonlinearity="sigmoid")


def test_dropout_on_one_layer_warns():
    with pytest.warns(UserWarning, match="dropout: applies between stacked layers"):
        bnn.LSTM(3, 4, dropout=0.2)


@pytest.mark.parametrize("engine", ["transparent", "fused"])
def test_forward_errors(engine):
    lstm = bnn.LSTM(3, 4, batch_first=True, engine=engine)
    with pytest.raises(ValueError, match=r"input: expected 3-D \(batch, seq, feature\) or 2-D .* got 4-D"):
        lstm(torch.randn(2, 3, 4, 3))
    with pytest.raises(ValueError, match=r"input: expected 3-D .* got 1-D"):
        lstm(torch.randn(3))
    with pytest.raises(ValueError, match=r"input: expected last dimension input_size=3, got 5"):
        lstm(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"input: expected dtype torch.float32 .* got torch.float64"):
        lstm(torch.randn(2, 4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"input: expected at least one time step"):
        lstm(torch.randn(2, 0, 3))
    with pytest.raises(TypeError, match=r"input: expected a Tensor or PackedSequence, got list"):
        lstm([[1.0, 2.0, 3.0]])
    x = torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 4\] .* got min -1, max 2"):
        lstm(x, lengths=torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 4\] .* max 5"):
        lstm(x, lengths=[5, 2])
    with pytest.raises(ValueError, match=r"lengths: expected a 1-D tensor of size batch=2, got shape \(3,\)"):
        lstm(x, lengths=[1, 2, 3])
    with pytest.raises(TypeError, match=r"lengths: expected an integer tensor, got dtype torch.float32"):
        lstm(x, lengths=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"hx: expected h_0 of shape \(1, 2, 4\), got \(1, 3, 4\)"):
        lstm(x, (torch.zeros(1, 3, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match=r"hx: expected c_0 of shape \(1, 2, 4\), got \(2, 2, 4\)"):
        lstm(x, (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(TypeError, match=r"hx: expected a tuple \(h_0, c_0\) for LSTM, got Tensor"):
        lstm(x, torch.zeros(1, 2, 4))
    packed = torch.nn.utils.rnn.pack_sequence([torch.randn(3, 3)])
    with pytest.raises(ValueError, match="lengths: a PackedSequence input carries its own lengths"):
        lstm(packed, lengths=[3])


def test_cell_errors():
    cell = bnn.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"input: expected last dimension input_size=3, got 2"):
        cell(torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"input: expected 1-D \(input_size,\) or 2-D"):
        cell(torch.randn(1, 5, 3))
    with pytest.raises(TypeError, match=r"hx: expected a tuple \(h, c\)"):
        cell(torch.randn(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="hx: expected 2-D"):
        bnn.GRUCell(3, 4)(torch.randn(5, 3), torch.zeros(4))
