"""Truncated BPTT and streaming: carry_state feeds a long sequence in chunks as one, and the
Trainer's tbptt option trains on chunks with the state carried forward."""

from __future__ import annotations

import pytest
import torch

import biolstm.nn as bnn
from biolstm.train import Trainer, TrainerConfig


class Tagger(torch.nn.Module):
    """One output per step: (B, T, D) -> (B, T)."""

    def __init__(self, hidden=16, bidirectional=False):
        super().__init__()
        self.lstm = bnn.LSTM(1, hidden, batch_first=True, bidirectional=bidirectional)
        self.head = torch.nn.Linear(hidden * (2 if bidirectional else 1), 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0]).squeeze(-1)


def test_chunks_with_carried_state_equal_the_whole_sequence():
    torch.manual_seed(0)
    model = Tagger().double()
    x = torch.randn(3, 100, 1, dtype=torch.float64)
    whole = model(x)
    with bnn.carry_state(model) as carry:
        parts = torch.cat([model(x[:, lo : lo + 30]) for lo in range(0, 100, 30)], 1)
        torch.testing.assert_close(parts, whole)
        carry.reset()  # a fresh start gives the first chunk again
        torch.testing.assert_close(model(x[:, :30]), whole[:, :30])
        with pytest.raises(ValueError, match="same batch size as the previous chunk"):
            model(x[:2, 30:60])
    torch.testing.assert_close(model(x[:, :30]), whole[:, :30])  # outside the block: no state carried
    with pytest.raises(ValueError, match="bidirectional layers read the future"):
        with bnn.carry_state(Tagger(bidirectional=True)):
            pass


def test_tbptt_over_one_chunk_is_plain_training_and_chunks_learn_a_delayed_copy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 120, 1, generator=g)
    y = torch.zeros(64, 120)
    y[:, 3:] = x[:, :-3, 0]  # output the input of three steps ago
    base = {"epochs": 2, "batch_size": 16, "lr": 0.01, "loss": "mse", "seed": 1}
    weights = []
    for tb in (0, 120):
        torch.manual_seed(0)
        m = Tagger()
        Trainer(m, TrainerConfig(**base, tbptt=tb)).fit(x, y)
        weights.append(m.state_dict())
    for k in weights[0]:
        torch.testing.assert_close(weights[0][k], weights[1][k])
    torch.manual_seed(0)
    m = Tagger()
    t = Trainer(m, TrainerConfig(**{**base, "epochs": 25}, tbptt=20))
    hist = t.fit(x, y)
    assert t.global_step == 25 * 4 * 6  # one optimiser step per chunk
    assert hist.history["loss"][-1] < 0.1 * hist.history["loss"][0]
    with pytest.raises(ValueError, match="tbptt: expected one input tensor"):
        Trainer(Tagger(), TrainerConfig(**base, tbptt=10)).fit({"x": x, "lengths": torch.full((64,), 120)}, y)
