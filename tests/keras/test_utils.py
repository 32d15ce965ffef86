"""keras.utils: set_random_seed, to_categorical and pad_sequences with Keras' semantics (checked
against Keras 3 on its torch backend, a dev dependency)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import keras
from biolstm.keras import utils

SEQS = [[1, 2, 3], [4], [5, 6, 7, 8, 9], []]


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 2, 4, 7])
def test_pad_sequences_matches_keras(padding, truncating, maxlen):
    ours = utils.pad_sequences(SEQS, maxlen=maxlen, padding=padding, truncating=truncating, value=-1)
    theirs = keras.utils.pad_sequences(SEQS, maxlen=maxlen, padding=padding, truncating=truncating, value=-1)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_pad_sequences_of_feature_vectors_and_errors():
    seqs = [np.ones((2, 3)), np.zeros((1, 3))]
    ours = utils.pad_sequences(seqs, dtype="float32", padding="post")
    assert ours.shape == (2, 2, 3) and np.array_equal(ours, keras.utils.pad_sequences(seqs, dtype="float32",
                                                                                      padding="post"))  # fmt: skip
    with pytest.raises(ValueError, match="padding: expected 'pre' or 'post', got 'mid'"):
        utils.pad_sequences(SEQS, padding="mid")


@pytest.mark.parametrize("y", [[0, 2, 1], [[1], [0]], [[0, 1], [2, 0]]])
def test_to_categorical_matches_keras(y):
    assert np.array_equal(utils.to_categorical(y), keras.utils.to_categorical(y))
    assert np.array_equal(utils.to_categorical(y, 4), keras.utils.to_categorical(y, 4))


def test_to_categorical_refuses_what_is_not_a_class_id():
    with pytest.raises(ValueError, match="expected class ids >= 0"):
        utils.to_categorical([0, -1])
    with pytest.raises(ValueError, match="expected more than the largest class id 3, got 2"):
        utils.to_categorical([3], 2)
    with pytest.raises(ValueError, match="expected integer class ids"):
        utils.to_categorical([0.5])


def test_set_random_seed_makes_weights_and_numbers_repeat():
    from biolstm.keras.layers import LSTM

    def draw():
        layer = LSTM(4)
        layer.ensure_built((3, 2))
        rng = np.random.rand(3)  # noqa: NPY002 (the global generator set_random_seed seeds)
        return [p.detach().clone() for p in layer.parameters()], rng, torch.rand(2)

    utils.set_random_seed(7)
    a = draw()
    utils.set_random_seed(7)
    b = draw()
    assert all(torch.equal(x, y) for x, y in zip(a[0], b[0]))
    assert np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])
    with pytest.raises(ValueError, match="seed: expected an int"):
        utils.set_random_seed(-1)
