"""Attention and AdditiveAttention against Keras 3 (torch backend): outputs, scores, masks, weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import keras
from biolstm import keras as bk
from biolstm.keras import layers as L

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
B, TQ, TV, D, DV = 3, 4, 5, 6, 2
TOL = dict(atol=1e-5, rtol=1e-5)


def _rand(*shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def _masks(seed=0):
    rng = np.random.default_rng(seed)
    qm, vm = rng.random((B, TQ)) > 0.3, rng.random((B, TV)) > 0.4
    vm[:, 0] = True  # every row keeps a value step
    return [torch.from_numpy(qm), torch.from_numpy(vm)]


def _np(t):
    return t.detach().cpu().numpy()


CASES = {
    "Attention": {},
    "Attention_scaled": {"use_scale": True},
    "Attention_concat": {"score_mode": "concat", "use_scale": True},
    "AdditiveAttention": {},
    "AdditiveAttention_noscale": {"use_scale": False},
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("with_key", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_keras(name, masked, with_key, causal):
    cls, kw = name.split("_")[0], CASES[name]
    q, v, k = _rand(B, TQ, D, seed=1), _rand(B, TV, DV if with_key else D, seed=2), _rand(B, TV, D, seed=3)
    xs = [q, v, k] if with_key else [q, v]
    mask = _masks() if masked else None
    theirs = getattr(keras.layers, cls)(**kw)
    exp_out, exp_scores = theirs(xs, mask=mask, return_attention_scores=True, use_causal_mask=causal)
    mine = getattr(L, cls)(**kw)
    mine.ensure_built([tuple(x.shape[1:]) for x in xs])
    weights = [np.asarray(w) + 0.1 * i for i, w in enumerate(theirs.get_weights())]  # not the initial ones
    theirs.set_weights(weights)
    exp_out, exp_scores = theirs(xs, mask=mask, return_attention_scores=True, use_causal_mask=causal)
    mine.set_weights(weights)
    assert [tuple(w.shape) for w in mine.get_weights()] == [w.shape for w in weights]
    again = L.layer_from_config({"class_name": cls, "config": mine.get_config()})
    assert again.get_config() == mine.get_config()
    out, scores = mine(xs, mask, return_attention_scores=True, use_causal_mask=causal)
    np.testing.assert_allclose(_np(out), _np(exp_out), **TOL)
    np.testing.assert_allclose(_np(scores), _np(exp_scores), **TOL)
    np.testing.assert_allclose(_np(mine(xs, mask=mask, use_causal_mask=causal)), _np(exp_out), **TOL)
    shapes = [tuple(x.shape[1:]) for x in xs]
    assert mine.compute_output_shape(shapes) == tuple(out.shape[1:])
    assert mine.compute_output_shape(shapes, return_attention_scores=True) == [
        tuple(out.shape[1:]),
        tuple(scores.shape[1:]),
    ]
    m = mine.compute_mask(xs, mask)
    assert (m is None) if not masked else torch.equal(m, mask[0])


def _model(lib, layers, cls, scores):
    qi, vi = lib.Input((TQ, D), name="q"), lib.Input((TV, D), name="v")
    qm, vm = layers.Masking(name="mq")(qi), layers.Masking(name="mv")(vi)
    att = getattr(layers, cls)(name="att")
    out = att([qm, vm], return_attention_scores=True) if scores else att([qm, vm])
    return lib.Model([qi, vi], out)


@pytest.mark.parametrize("cls", ["Attention", "AdditiveAttention"])
@pytest.mark.parametrize("scores", [False, True])
def test_functional_models_with_masking_match_keras(cls, scores):
    theirs, ours = _model(keras, keras.layers, cls, scores), _model(bk, L, cls, scores)
    ours.set_weights(theirs.get_weights())
    q, v = _np(_rand(B, TQ, D, seed=4)), _np(_rand(B, TV, D, seed=5))
    q[0, 1:3], v[1, 2:], v[2, 0] = 0.0, 0.0, 0.0  # padded steps
    exp = theirs.predict([q, v], verbose=0)
    got = ours.predict([q, v])
    for a, b in zip(got if scores else [got], exp if scores else [exp]):
        np.testing.assert_allclose(a, b, **TOL)


def test_errors_name_the_layer():
    att = L.Attention(name="att")
    with pytest.raises(ValueError, match="att: expected a list"):
        att(_rand(B, TQ, D))
    with pytest.raises(ValueError, match="att: expected a list of 2 or 3"):
        att([_rand(B, TQ, D)])
    with pytest.raises(ValueError, match="same last axis"):
        att([_rand(B, TQ, D), _rand(B, TV, D + 1), _rand(B, TV, D + 1)])
    with pytest.raises(ValueError, match="score_mode"):
        L.Attention(score_mode="general")
