"""Gradient flow through time: the norm of dLoss/dh_t against t for RNN, GRU and LSTM cells on
the same task (the seed article's vanishing-gradient claim, measured).

The recurrence is unrolled with biolstm's cells so that every hidden state h_t is a node of
the graph; the loss is read at the last step only, so dLoss/dh_t measures how much of the
error signal reaches step t.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

CELLS = ("rnn", "gru", "lstm")


class GradientFlow(NamedTuple):
    cell: str
    norms: np.ndarray  # (T,) mean over the batch of ||dLoss/dh_t||
    ratio: float  # norms[0] / norms[-1]: the share of the signal that reaches the first step


def gradient_flow(
    cell: str = "lstm",
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
    hidden_size: int = 32,
    steps: int = 100,
    seed: int = 0,
    forget_bias: float = 1.0,
) -> GradientFlow:
    """||dLoss/dh_t|| for a freshly initialised ``cell`` ('rnn', 'gru', 'lstm') reading ``x``
    ``(B, T, D)`` and predicting ``y`` ``(B,)`` from its last state (binary cross-entropy).

    Without data, the task is the sign of the first input among ``steps`` standard normal
    ones, so the answer depends on the first step and the signal must travel the whole way.
    """
    from ..nn import GRUCell, LSTMCell, RNNCell

    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {CELLS}, got {cell!r}")
    g = torch.Generator().manual_seed(seed)
    if x is None:
        x = torch.randn(64, steps, 1, generator=g)
        y = (x[:, 0, 0] > 0).float()
    if y is None:
        raise ValueError("y: expected targets (B,) with x, got None")
    torch.manual_seed(seed)
    D = x.shape[-1]
    if cell == "lstm":
        rnn = LSTMCell(D, hidden_size, forget_bias=forget_bias)  # the usual unit forget bias
    else:
        rnn = GRUCell(D, hidden_size) if cell == "gru" else RNNCell(D, hidden_size)
    head = torch.nn.Linear(hidden_size, 1)
    rnn, head, x = rnn.double(), head.double(), x.double()  # float64: tiny gradients do not underflow to 0
    B, T, _ = x.shape
    h = torch.zeros(B, hidden_size, dtype=torch.float64)
    c = torch.zeros(B, hidden_size, dtype=torch.float64)
    states = []
    for t in range(T):
        if cell == "lstm":
            h, c = rnn(x[:, t], (h, c))
        else:
            h = rnn(x[:, t], h)
        h.retain_grad()
        states.append(h)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(head(h).squeeze(-1), y.double())
    loss.backward()
    norms = np.array([float(s.grad.norm(dim=-1).mean()) for s in states])
    return GradientFlow(cell, norms, float(norms[0] / max(norms[-1], 1e-30)))
