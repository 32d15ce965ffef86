"""Recurrent layers with ``initial_state=`` and ``return_state=True`` (the LSTM encoder-decoder's
two pieces), in Keras' ordering of states, against Keras 3 (torch backend) after a weight copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import keras
from biolstm.keras import layers as L

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
B, T, D, H = 4, 7, 3, 5


def _pair(kind: str, **kw):
    ours = getattr(L, kind)(H, **kw)
    theirs = getattr(keras.layers, kind)(H, **kw)
    return ours, theirs


def _copy(ours, theirs, x):
    theirs(x)  # builds
    ours.ensure_built(tuple(x.shape[1:]))
    ours.set_weights([torch.from_numpy(np.asarray(w)) for w in theirs.get_weights()])
    ours.eval()


def _np(v):
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("sequences", [False, True])
def test_initial_state_and_return_state_match_keras(kind, sequences):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D)).astype("float32")
    n = 2 if kind == "LSTM" else 1
    init = [rng.normal(size=(B, H)).astype("float32") for _ in range(n)]
    ours, theirs = _pair(kind, return_state=True, return_sequences=sequences)
    _copy(ours, theirs, x)
    mine = ours(torch.from_numpy(x), initial_state=[torch.from_numpy(s) for s in init])
    ref = theirs(x, initial_state=init)
    assert len(mine) == len(ref) == 1 + n  # [output, state_h(, state_c)]
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5)
    assert ours.compute_output_shape((T, D)) == [(T, H) if sequences else (H,), *[(H,)] * n]


def test_bidirectional_states_are_forward_then_backward_as_keras():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, D)).astype("float32")
    init = [rng.normal(size=(B, H)).astype("float32") for _ in range(4)]
    ours = L.Bidirectional(L.LSTM(H, return_state=True, return_sequences=True))
    theirs = keras.layers.Bidirectional(keras.layers.LSTM(H, return_state=True, return_sequences=True))
    _copy(ours, theirs, x)
    mine = ours(torch.from_numpy(x), initial_state=[torch.from_numpy(s) for s in init])
    ref = theirs(x, initial_state=init)
    assert len(mine) == len(ref) == 5  # output, forward h, c, backward h, c
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5)
    assert ours.compute_output_shape((T, D)) == [(T, 2 * H), (H,), (H,), (H,), (H,)]


def test_a_wrong_initial_state_is_one_clear_error():
    layer = L.LSTM(H, name="encoder")
    x = torch.zeros(B, T, D)
    with pytest.raises(ValueError, match=r"encoder: initial_state: expected 2 tensors of shape \(batch, 5\), got 1"):
        layer(x, initial_state=[torch.zeros(B, H)])
    with pytest.raises(ValueError, match=r"encoder: initial_state: expected shape \(4, 5\), got \(4, 6\)"):
        layer(x, initial_state=[torch.zeros(B, H), torch.zeros(B, 6)])
