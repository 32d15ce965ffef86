"""Wrong types and shapes at the public API's boundaries: the error names the argument, what
was expected and what was given ("name: expected X, got Y")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import biolstm.nn as bnn
from biolstm.data.encode import kmer_tokens, one_hot, reverse_complement
from biolstm.data.sequences import read_sequences
from biolstm.data.splits import split_random
from biolstm.data.timeseries import make_windows
from biolstm.interpret import attribute, gate_statistics, in_silico_mutagenesis
from biolstm.models import SequenceClassifierConfig
from biolstm.train import Trainer, TrainerConfig

CASES = {
    "input": lambda: bnn.LSTM(4, 8)([1, 2]),
    "input ": lambda: bnn.LSTM(4, 8)(torch.zeros(2, 3, 4, dtype=torch.long)),
    "hx": lambda: bnn.LSTM(4, 8, batch_first=True)(torch.zeros(2, 3, 4), (torch.zeros(1, 3, 8), torch.zeros(1, 3, 8))),
    "input_size": lambda: bnn.LSTM("4", 8),
    "hidden_size": lambda: bnn.GRU(4, 0),
    "x": lambda: bnn.MinLSTM(4, 8)(torch.zeros(3, 4)),
    "seqs": lambda: one_hot(None),
    "seqs ": lambda: one_hot([1, 2]),
    "k": lambda: kmer_tokens("ACGT", 0),
    "x ": lambda: reverse_complement([1, 2]),
    "path": lambda: list(read_sequences(123)),
    "test, val": lambda: split_random([0, 1] * 10, test=2.0),
    "labels": lambda: split_random(5),
    "lookback, horizon, stride": lambda: make_windows(np.zeros((10, 1)), 0, 1),
    "model": lambda: Trainer(None),
    "x  ": lambda: Trainer(torch.nn.Linear(1, 1)).fit("abc", torch.zeros(3)),
    "y": lambda: Trainer(torch.nn.Linear(1, 1)).fit(torch.zeros(4, 1), torch.zeros(3)),
    "epochs": lambda: TrainerConfig(epochs="3"),
    "lr": lambda: TrainerConfig(lr="a"),
    "optimizer": lambda: TrainerConfig(optimizer="adamx"),
    "model ": lambda: gate_statistics(None, torch.zeros(2, 3, 4)),
    "model  ": lambda: attribute("not a model", torch.zeros(2, 3, 4)),
    "x   ": lambda: in_silico_mutagenesis(torch.nn.Linear(4, 1), torch.zeros(3, 4)),
    "hidden_size ": lambda: SequenceClassifierConfig(hidden_size=-1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_names_argument_expected_and_given(name):
    with pytest.raises((TypeError, ValueError)) as info:
        CASES[name]()
    msg = str(info.value)
    assert msg.startswith(f"{name.strip()}: expected "), msg
    assert "got" in msg, msg
