"""Merge, shape and normalisation layers against Keras 3 (torch backend): outputs, masks, weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from keras.src.backend import get_keras_mask, set_keras_mask

import keras
from biolstm.keras import layers as L

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
B, T, F = 4, 5, 3
TOL = dict(atol=1e-5, rtol=1e-5)


def _rand(*shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def _masks(seed=0):
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.random((B, T)) > 0.4) for _ in range(3)]


def _keras_call(layer, xs, masks=None):
    xs = [x.clone() for x in xs]
    for x, m in zip(xs, masks or [None] * len(xs)):
        if m is not None:
            set_keras_mask(x, m)
    out = layer(xs)
    mask = get_keras_mask(out)
    return out.detach().cpu().numpy(), None if mask is None else mask.cpu().numpy()


def _roundtrip(layer):
    cfg = layer.get_config()
    again = L.layer_from_config({"class_name": type(layer).__name__, "config": cfg})
    assert type(again) is type(layer) and again.get_config() == cfg
    return again


MERGES = {
    "Add": {},
    "Subtract": {},
    "Multiply": {},
    "Average": {},
    "Maximum": {},
    "Minimum": {},
    "Concatenate": {},
    "Concatenate_time": {"axis": 1},
}


@pytest.mark.parametrize("name", list(MERGES))
@pytest.mark.parametrize("masked", ["none", "all", "some"])
def test_merge_matches_keras(name, masked):
    cls = name.split("_")[0]
    n = 2 if cls == "Subtract" else 3
    xs = [_rand(B, T, F, seed=k) for k in range(n)]
    masks = {"none": None, "all": _masks()[:n], "some": [_masks()[0], None, *_masks()[2:n]][:n]}[masked]
    expected, expected_mask = _keras_call(getattr(keras.layers, cls)(**MERGES[name]), xs, masks)
    mine = _roundtrip(getattr(L, cls)(**MERGES[name]))
    out = mine(xs, masks)
    np.testing.assert_allclose(out.numpy(), expected, **TOL)
    assert tuple(out.shape[1:]) == mine.compute_output_shape([tuple(x.shape[1:]) for x in xs])
    mask = mine.compute_mask(xs, masks)
    if expected_mask is None:
        assert mask is None
    else:
        np.testing.assert_array_equal(mask.numpy(), expected_mask)


def test_merge_shapes_and_broadcasting():
    assert L.Add().compute_output_shape([(None, 3), (None, 3)]) == (None, 3)
    assert L.Multiply().compute_output_shape([(5, 1), (5, 3)]) == (5, 3)
    assert L.Concatenate().compute_output_shape([(5, 2), (5, 3), (None, 1)]) == (5, 6)
    assert L.Concatenate(axis=1).compute_output_shape([(5, 2), (None, 2)]) == (None, 2)
    x, y = _rand(B, 1, F), _rand(B, T, F, seed=1)
    expected, _ = _keras_call(keras.layers.Multiply(), [x, y])
    np.testing.assert_allclose(L.Multiply()([x, y]).numpy(), expected, **TOL)
    v = _rand(B, F)
    np.testing.assert_allclose(L.Concatenate()([v, v]).numpy(), np.concatenate([v, v], -1))


@pytest.mark.parametrize(
    "layer, inputs, message",
    [
        (L.Add(), [_rand(B, F)], "Add: expected at least 2 inputs, got 1"),
        (L.Subtract(), [_rand(B, F)] * 3, "Subtract: expected exactly 2 inputs, got 3"),
        (L.Add(), [_rand(B, F), _rand(B, F + 1)], r"Add: expected inputs of the same shape .*\(3,\), \(4,\)"),
        (L.Maximum(), [_rand(B, T, F), _rand(B, F)], "Maximum: expected inputs of one rank"),
        (L.Concatenate(), [_rand(B, T, F), _rand(B, T + 1, F)], "Concatenate: expected shapes that match except"),
        (L.Concatenate(axis=3), [_rand(B, F), _rand(B, F)], "Concatenate: axis 3 is out of range"),
        (L.Average(), _rand(B, F), "Average: expected a list of at least 2 tensors"),
        (L.Add(), [_rand(B, F), _rand(B + 1, F)], "Add: expected inputs with one batch size"),
    ],
)
def test_merge_errors(layer, inputs, message):
    with pytest.raises(ValueError, match=message):
        layer(inputs)


def test_merge_checks_shapes_after_build():
    layer = L.Add()
    layer([_rand(B, F), _rand(B, F)])
    with pytest.raises(ValueError, match="Add: expected inputs of the same shape"):
        layer([_rand(B, F), _rand(B, F + 2)])


SHAPES = [
    ("Reshape", {"target_shape": (F, T)}, (B, T, F)),
    ("Reshape", {"target_shape": (-1, 1)}, (B, T, F)),
    ("Reshape", {"target_shape": (T * F,)}, (B, T, F)),
    ("Permute", {"dims": (2, 1)}, (B, T, F)),
    ("Permute", {"dims": (3, 1, 2)}, (B, 2, T, F)),
    ("RepeatVector", {"n": 4}, (B, F)),
]


@pytest.mark.parametrize("name, kwargs, shape", SHAPES)
def test_shape_layers_match_keras(name, kwargs, shape):
    x = _rand(*shape)
    expected = getattr(keras.layers, name)(**kwargs)(x).detach().numpy()
    mine = _roundtrip(getattr(L, name)(**kwargs))
    out = mine(x)
    np.testing.assert_array_equal(out.numpy(), expected)
    assert tuple(out.shape[1:]) == mine.compute_output_shape(shape[1:])


def test_shape_layer_errors():
    with pytest.raises(ValueError, match="at most one -1"):
        L.Reshape((-1, -1))
    with pytest.raises(ValueError, match=r"Reshape: expected inputs of 12 values .* got shape \(5, 3\) \(15 values\)"):
        L.Reshape((4, 3))(_rand(B, T, F))
    with pytest.raises(ValueError, match=r"cannot reshape inputs of shape \(5, 3\)"):
        L.Reshape((-1, 2))(_rand(B, T, F))
    with pytest.raises(ValueError, match=r"Permute: expected dims to be a permutation of 1..2, got \(0, 1\)"):
        L.Permute((0, 1))
    with pytest.raises(ValueError, match="Permute: expected inputs with 3 non-batch axes"):
        L.Permute((1, 3, 2))(_rand(B, T, F))
    with pytest.raises(ValueError, match=r"RepeatVector: expected inputs of shape \(batch, features\)"):
        L.RepeatVector(2)(_rand(B, T, F))
    assert L.Reshape((-1, F)).compute_output_shape((None, F)) == (None, F)


def _keras_norm(name, kwargs, x, mine):
    layer = getattr(keras.layers, name)(**kwargs)
    layer.build(tuple(x.shape))
    rng = np.random.default_rng(3)
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    if name == "BatchNormalization":
        weights[-1] = np.abs(weights[-1]) + 0.1  # a variance
    layer.set_weights(weights)
    mine.ensure_built(tuple(x.shape[1:]))
    mine.set_weights(layer.get_weights())
    for a, b in zip(mine.get_weights(), layer.get_weights()):
        np.testing.assert_array_equal(a.numpy(), np.asarray(b))
    return layer


NORMS = [
    ("LayerNormalization", {}),
    ("LayerNormalization", {"axis": [1, 2], "epsilon": 1e-2}),
    ("LayerNormalization", {"center": False}),
    ("LayerNormalization", {"scale": False, "epsilon": 1e-5}),
    ("BatchNormalization", {}),
    ("BatchNormalization", {"momentum": 0.5, "center": False}),
]


@pytest.mark.parametrize("name, kwargs", NORMS)
def test_norm_layers_match_keras(name, kwargs):
    x = _rand(B, T, F) * 3 + 1
    mine = _roundtrip(getattr(L, name)(**kwargs))
    km = _keras_norm(name, kwargs, x, mine)
    mine.eval()
    np.testing.assert_allclose(mine(x).detach().numpy(), km(x, training=False).detach().numpy(), **TOL)
    if name == "BatchNormalization":
        mine.train()
        mask = _masks()[0]
        for k, m in enumerate([None, None, mask]):
            xk = _rand(B, T, F, seed=10 + k) * 2 - 1
            expected = km(xk, training=True, mask=m).detach().numpy()
            np.testing.assert_allclose(mine(xk, m).detach().numpy(), expected, **TOL)
        for a, b in zip(mine.get_weights(), km.get_weights()):
            np.testing.assert_allclose(a.numpy(), np.asarray(b), **TOL)
        mine.eval()
        np.testing.assert_allclose(mine(x).detach().numpy(), km(x, training=False).detach().numpy(), **TOL)
        assert set(mine.state_dict()) >= {"moving_mean", "moving_variance"}
    assert mine.compute_mask(x, _masks()[0]) is not None  # the mask passes through


def test_batch_norm_2d_and_weight_errors():
    x = _rand(8, F)
    mine, km = L.BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    mine.ensure_built(x.shape[1:])
    km.build(x.shape)
    assert mine.training  # a torch module starts in training mode: a bare call updates the moving statistics
    np.testing.assert_allclose(mine(x).detach().numpy(), km(x, training=True).detach().numpy(), **TOL)
    np.testing.assert_allclose(mine.moving_variance.numpy(), km.moving_variance.numpy(), **TOL)
    with pytest.raises(ValueError, match="expected 4 arrays for BatchNormalization, got 2"):
        mine.set_weights(mine.get_weights()[:2])
    with pytest.raises(ValueError, match=r"weights\[0\] of LayerNormalization: expected shape \(3,\)"):
        ln = L.LayerNormalization()
        ln(x)
        ln.set_weights([np.ones(4), np.zeros(3)])
    with pytest.raises(ValueError, match="BatchNormalization: axis 2 is out of range"):
        L.BatchNormalization(axis=2)(x)
