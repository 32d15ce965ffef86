"""Integrated gradients against dinucleotide-shuffled references: the references keep each
sequence's dinucleotides and padding, the hypothetical contributions of a linear model are exact,
projected contributions sum to f(x) - f(reference), and the aligned view cuts at the strongest
seqlet."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from biolstm.data import one_hot
from biolstm.interpret.attributions import shuffled_integrated_gradients, shuffled_references
from biolstm.interpret.motifs import aligned_view


def _text(rows: np.ndarray) -> str:
    return "".join("ACGT"[i] if r.max() > 0 else "-" for i, r in zip(rows.argmax(-1), rows))


def test_references_keep_dinucleotides_and_padding():
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), n)) for n in (30, 50, 17)]
    x, lengths = one_hot(seqs)
    refs = shuffled_references(x, 4, lengths, seed=3)
    assert refs.shape == (4, *x.shape)
    for k, b in itertools.product(range(4), range(3)):
        n = int(lengths[b])
        s, r = _text(x[b, :n]), _text(refs[k, b, :n])
        assert Counter(itertools.pairwise(s)) == Counter(itertools.pairwise(r))
        assert (refs[k, b, n:] == 0).all()
    assert (refs[0] != x).any() and not np.array_equal(refs[0], refs[1])  # shuffled, and differently
    assert np.array_equal(refs, shuffled_references(x, 4, lengths, seed=3))  # seeded


class Linear(torch.nn.Module):
    def __init__(self, T: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(T, 4, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        return (x * self.w).sum((1, 2))


def test_linear_model_hypothetical_contributions_are_exact():
    rng = np.random.default_rng(0)
    x, _ = one_hot(["".join(rng.choice(list("ACGT"), 24)) for _ in range(5)])
    x = torch.from_numpy(x[..., :4])
    model = Linear(24)
    a = shuffled_integrated_gradients(model, x, references=6, steps=2, seed=0)
    refs = torch.from_numpy(shuffled_references(x.numpy(), 6, None, seed=0))
    w = model.w.detach()
    expected = (w - (refs * w).sum(-1, keepdim=True)).mean(0)  # w[t, c] - w . r[t], over references
    assert np.allclose(a.hypothetical, expected.numpy(), atol=1e-5)
    assert np.allclose(a.values, a.hypothetical * x.numpy())
    # projected contributions sum to the mean of f(x) - f(r) exactly for a linear model
    gap = (model(x)[None] - torch.stack([model(r) for r in refs])).mean(0).detach()
    assert np.allclose(a.values.sum((1, 2)), gap.numpy(), atol=1e-4)
    assert np.abs(a.delta).max() < 1e-4 and a.relative_error < 1e-4 and a.references == 6


def test_completeness_on_a_recurrent_model_improves_with_steps():
    from biolstm.nn import LSTM

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.rnn = LSTM(4, 8, batch_first=True)
            self.out = torch.nn.Linear(8, 1)

        def forward(self, x, lengths=None):
            return self.out(self.rnn(x)[0][:, -1])[:, 0]

    rng = np.random.default_rng(2)
    x = torch.from_numpy(one_hot(["".join(rng.choice(list("ACGT"), 30)) for _ in range(4)])[0][..., :4])
    coarse = shuffled_integrated_gradients(Net(), x, references=3, steps=1)
    fine = shuffled_integrated_gradients(Net(), x, references=3, steps=32)
    assert fine.relative_error < 1e-3 and fine.relative_error < coarse.relative_error
    assert fine.hypothetical.shape == x.shape and np.abs(fine.values).sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 1"):
        shuffled_integrated_gradients(Linear(5), torch.zeros(2, 5, 4), references=0)
    with pytest.raises(ValueError, match="one-hot"):
        shuffled_references(np.random.default_rng(0).normal(size=(1, 80, 4)), 1)


def test_aligned_view_centres_each_row_on_its_strongest_window():
    values = np.zeros((3, 50, 4))
    values[0, 10:14, 0] = 1.0  # a 4-position window at 10..13: centre 12
    values[1, 40:44, 2] = -2.0  # negative counts by magnitude
    values[2, 0:4, 1] = 0.5  # near the start: the window runs past the sequence
    aligned, centres = aligned_view(values, width=4, flank=5)
    assert aligned.shape == (3, 10, 4)
    assert list(centres) == [12, 42, 2]
    assert aligned[0, 5 - 2 : 5 + 2, 0].tolist() == [1.0] * 4
    assert aligned[1, 3:7, 2].tolist() == [-2.0] * 4
    assert np.isnan(aligned[2, :3]).all() and aligned[2, 3:7, 1].tolist() == [0.5] * 4
