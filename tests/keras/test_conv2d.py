"""Conv2D, MaxPooling2D and Flatten on (B, H, W, C) against Keras 3 (torch backend); Lambda."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import keras
from biolstm import keras as bk
from biolstm.keras import layers as L

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
B, H, W, C = 2, 7, 6, 3
TOL = dict(atol=1e-5, rtol=1e-5)


def _x(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _roundtrip(layer):
    cfg = layer.get_config()
    again = L.layer_from_config({"class_name": type(layer).__name__, "config": cfg})
    assert again.get_config() == cfg
    return again


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kernel,strides", [(3, 1), ((2, 3), 2), (3, (2, 3)), (1, 1)])
def test_conv2d_matches_keras(padding, kernel, strides):
    kw = dict(filters=4, kernel_size=kernel, strides=strides, padding=padding, activation="relu")
    theirs = keras.layers.Conv2D(**kw)
    x = _x(B, H, W, C)
    theirs(x)
    weights = [w + 0.1 for w in theirs.get_weights()]
    theirs.set_weights(weights)
    mine = _roundtrip(L.Conv2D(**kw))
    mine.ensure_built((H, W, C))
    mine.set_weights(weights)
    assert [tuple(w.shape) for w in mine.get_weights()] == [w.shape for w in weights]
    out = mine(torch.from_numpy(x))
    expected = theirs(x).detach().cpu().numpy()
    np.testing.assert_allclose(out.detach().numpy(), expected, **TOL)
    assert mine.compute_output_shape((H, W, C)) == expected.shape[1:]
    assert mine.compute_output_shape((None, W, C))[0] is None


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool,strides", [(2, None), (3, 2), ((2, 3), (1, 2)), (3, None)])
def test_max_pooling2d_matches_keras(padding, pool, strides):
    kw = dict(pool_size=pool, strides=strides, padding=padding)
    x = _x(B, H, W, C, seed=1)
    expected = keras.layers.MaxPooling2D(**kw)(x).detach().cpu().numpy()
    mine = _roundtrip(L.MaxPooling2D(**kw))
    out = mine(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), expected, **TOL)
    assert mine.compute_output_shape((H, W, C)) == expected.shape[1:]


def test_a_small_cnn_with_flatten_matches_keras_after_a_weight_transfer():
    kl = keras.layers
    theirs = keras.Sequential(
        [
            keras.Input((H, W, C)),
            kl.Conv2D(4, 3, padding="same", activation="relu"),
            kl.MaxPooling2D(),
            kl.Conv2D(5, (2, 2)),
            kl.Flatten(),
            kl.Dense(3, activation="softmax"),
        ]
    )
    x = _x(B, H, W, C, seed=2)
    ours = bk.Sequential(
        [
            L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(H, W, C)),
            L.MaxPooling2D(),
            L.Conv2D(5, (2, 2)),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    ours.predict(x)  # builds
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), **TOL)


def test_flatten_is_row_major_channels_last():
    x = torch.arange(2 * 2 * 3 * 4, dtype=torch.float32).reshape(2, 2, 3, 4)
    expected = keras.layers.Flatten()(x.numpy()).detach().cpu().numpy()
    np.testing.assert_array_equal(L.Flatten()(x.permute(0, 3, 1, 2).permute(0, 2, 3, 1)).numpy(), expected)


def test_lambda_calls_the_function_and_infers_shapes():
    double = L.Lambda(lambda t: 2 * t)
    x = torch.ones(2, 3, 4)
    assert torch.equal(double(x), 2 * x)
    assert double.compute_output_shape((None, 4)) == (None, 4)
    first = L.Lambda(lambda t: t[:, 0])
    assert first.compute_output_shape((None, 4)) == (4,)
    summed = L.Lambda(lambda ts: ts[0] + ts[1], output_shape=(3, 4))
    assert torch.equal(summed([x, x]), 2 * x) and summed.compute_output_shape([(3, 4), (3, 4)]) == (3, 4)
    assert L.Lambda(torch.flatten, arguments={"start_dim": 1})(x).shape == (2, 12)


def test_lambda_in_a_functional_model_and_its_save_error(tmp_path):
    a, b = bk.Input((3, 4), name="a"), bk.Input((3, 4), name="b")
    mid = L.Lambda(lambda ts: ts[0] * ts[1], name="prod")([a, b])
    out = L.Dense(2)(L.Lambda(lambda t: t.mean(1))(mid))
    model = bk.Model([a, b], out)
    x, y = _x(2, 3, 4, seed=3), _x(2, 3, 4, seed=4)
    dense = model.layers_[-1]
    expected = (torch.from_numpy(x * y).mean(1) @ dense.get_weights()[0]).numpy()
    np.testing.assert_allclose(model.predict([x, y]), expected, **TOL)
    with pytest.raises(ValueError, match="prod: a Lambda layer cannot be saved"):
        model.save(tmp_path / "m")
    with pytest.raises(TypeError, match="callable"):
        L.Lambda(3)
