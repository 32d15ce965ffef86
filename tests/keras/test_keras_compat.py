"""Keras weight lists load with set_weights and give Keras' own predictions (keras 3, torch backend)."""

from __future__ import annotations

import numpy as np
import pytest

import keras
from biolstm.keras import layers as L
from biolstm.keras.models import Sequential

T, D = 9, 3
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras' own numpy-2 notices


def _random_weights(model, rng):
    return [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()]


CASES = {
    "lstm": (
        lambda K: [K.LSTM(6, return_sequences=True), K.Dense(2)],
        lambda: [L.LSTM(6, return_sequences=True), L.Dense(2)],
    ),
    "lstm_relu": (
        lambda K: [K.LSTM(5, activation="relu", recurrent_activation="hard_sigmoid"), K.Dense(1)],
        lambda: [L.LSTM(5, activation="relu", recurrent_activation="hard_sigmoid"), L.Dense(1)],
    ),
    "gru": (lambda K: [K.GRU(4, return_sequences=True), K.GRU(3)], lambda: [L.GRU(4, return_sequences=True), L.GRU(3)]),
    "simple_rnn": (
        lambda K: [K.SimpleRNN(4, activation="relu"), K.Dense(2, activation="softmax")],
        lambda: [L.SimpleRNN(4, activation="relu"), L.Dense(2, activation="softmax")],
    ),
    "bidirectional_conv": (
        lambda K: [
            K.Conv1D(4, 3, padding="same", activation="relu"),
            K.MaxPooling1D(2),
            K.Bidirectional(K.LSTM(3)),
            K.Dense(1, activation="sigmoid"),
        ],
        lambda: [
            L.Conv1D(4, 3, padding="same", activation="relu"),
            L.MaxPooling1D(2),
            L.Bidirectional(L.LSTM(3)),
            L.Dense(1, activation="sigmoid"),
        ],
    ),
    "go_backwards_time_distributed": (
        lambda K: [K.LSTM(4, go_backwards=True, return_sequences=True), K.TimeDistributed(K.Dense(2))],
        lambda: [L.LSTM(4, go_backwards=True, return_sequences=True), L.TimeDistributed(L.Dense(2))],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_keras_weights_give_keras_predictions(case):
    make_keras, make_mine = CASES[case]
    rng = np.random.default_rng(0)
    km = keras.Sequential([keras.Input((T, D)), *make_keras(keras.layers)])
    km.set_weights(_random_weights(km, rng))
    x = rng.normal(size=(5, T, D)).astype("float32")
    expected = np.asarray(km.predict(x, verbose=0))
    mine = Sequential(make_mine())
    mine.build((T, D))
    mine.set_weights(km.get_weights())
    np.testing.assert_allclose(mine.predict(x), expected, atol=1e-5, rtol=1e-5)
    for a, b in zip(mine.get_weights(), km.get_weights()):  # and back out in Keras' layout
        np.testing.assert_array_equal(a, np.asarray(b))
    assert mine.count_params() <= sum(np.asarray(w).size for w in km.get_weights()) + 64  # + torch's 2nd GRU bias
