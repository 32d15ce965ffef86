"""The Keras-style facade: the seed's example, a learnable task, layers, save/load."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from biolstm.keras import layers as L
from biolstm.keras import optimizers as O
from biolstm.keras.models import Sequential, load_model
from biolstm.train import CheckpointError

EXAMPLE = Path(__file__).parents[2] / "examples" / "seed_example.py"


def test_seed_example_runs_verbatim(capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="__main__")
    model = ns["model"]
    hist = model.history.history
    assert len(hist["loss"]) == 10 and np.isfinite(hist["loss"]).all()
    assert model.predict(ns["X"]).shape == (100, 1)
    assert "Epoch 10/10" in capsys.readouterr().out
    # the relu LSTM runs on the transparent engine (torch's kernels only know tanh)
    assert model.layers[0].rnn._choose_engine(False) == "transparent"


def test_sequential_learns_the_sign_of_a_sum():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 20, 1)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    model = Sequential([L.LSTM(32, input_shape=(20, 1)), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=15, batch_size=32, validation_split=0.2, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert hist.history["val_accuracy"][-1] >= 0.95
    loss, acc = model.evaluate(x[-300:], y[-300:])
    assert acc >= 0.95 and loss < 0.3


def test_summary_and_shapes(capsys):
    model = Sequential()
    model.add(L.Conv1D(8, 5, activation="relu", input_shape=(40, 4)))
    model.add(L.MaxPooling1D(2))
    model.add(L.Bidirectional(L.LSTM(6, return_sequences=True)))
    model.add(L.GlobalMaxPooling1D())
    model.add(L.Dense(1, activation="sigmoid"))
    model.summary()
    out = capsys.readouterr().out
    assert "(None, 36, 8)" in out and "(None, 18, 8)" in out and "(None, 18, 12)" in out
    # params: conv 4*8*5+8, BiLSTM 2*(4*6*(8+6)+4*6) (Keras counts one bias), dense 12+1
    assert f"Total params: {168 + 2 * (4 * 6 * 14 + 24) + 13:,}" in out
    assert model.predict(np.zeros((3, 40, 4), "float32")).shape == (3, 1)


def test_layers_shapes_and_masks():
    x = torch.randn(2, 7, 3)
    assert L.GRU(5, return_sequences=True)(x).shape == (2, 7, 5)
    assert L.SimpleRNN(4)(x).shape == (2, 4)
    assert L.TimeDistributed(L.Dense(2))(x).shape == (2, 7, 2)
    assert L.Flatten()(x).shape == (2, 21)
    assert L.Conv1D(4, 3, padding="same", strides=2)(x).shape == (2, 4, 4)
    out, h, c = L.LSTM(5, return_state=True)(x)
    assert torch.equal(out, h) and c.shape == (2, 5)
    # Embedding(mask_zero) and Masking: padding steps do not change the final state
    tokens = torch.tensor([[3, 1, 2, 0, 0], [0, 0, 3, 1, 2]])  # right- and left-padded
    model = Sequential([L.Embedding(5, 4, mask_zero=True), L.LSTM(6)])
    out = model(tokens)
    torch.testing.assert_close(out[0], out[1], atol=1e-6, rtol=0)
    seq = torch.randn(1, 3, 2)
    padded = torch.cat([seq, torch.zeros(1, 2, 2)], 1)
    m2 = Sequential([L.Masking(0.0, input_shape=(None, 2)), L.LSTM(4)])
    torch.testing.assert_close(m2(padded), m2.layers[1](seq), atol=1e-6, rtol=0)


def test_unit_forget_bias_and_keras_initialisation():
    layer = L.LSTM(8)
    layer(torch.randn(1, 2, 3))
    b = layer.rnn.bias_ih_l0
    assert torch.equal(b[8:16], torch.ones(8)) and torch.equal(b[:8], torch.zeros(8))
    assert not layer.rnn.bias_hh_l0.requires_grad  # Keras has a single bias
    w = layer.rnn.weight_hh_l0  # orthogonal (4H, H): orthonormal columns
    torch.testing.assert_close(w.T @ w, torch.eye(8), atol=1e-5, rtol=0)


def test_save_load_and_weights(tmp_path):
    model = Sequential([L.LSTM(4, activation="relu", input_shape=(5, 2)), L.Dense(3, activation="softplus")])
    model.compile(optimizer="rmsprop", loss="mse")
    x = np.random.default_rng(1).normal(size=(6, 5, 2)).astype("float32")
    before = model.predict(x)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict(x), before, atol=1e-6)
    assert again.compiled["optimizer"] == "rmsprop"
    w = model.get_weights()
    other = Sequential([L.LSTM(4, activation="relu", input_shape=(5, 2)), L.Dense(3, activation="softplus")])
    other.set_weights(w)
    np.testing.assert_allclose(other.predict(x), before, atol=1e-6)
    with pytest.raises(
        ValueError, match=r"weights\[0\] of LSTM: expected shape \(2, 16\) \(Keras' layout\), got \(1, 1\)"
    ):
        other.set_weights([np.zeros((1, 1)), *w[1:]])
    (tmp_path / "evil.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_model(tmp_path / "evil.pkl")
    other.set_weights([2 * a for a in w])
    other.save(tmp_path / "o")  # weights from elsewhere under the saved model's name: refused
    (tmp_path / "m" / "model.safetensors").write_bytes((tmp_path / "o" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"m/model.safetensors: checksum does not match .*m/model.json"):
        load_model(tmp_path / "m")


def test_compile_and_fit_errors():
    model = Sequential([L.Dense(1, input_shape=(3,))])
    with pytest.raises(ValueError, match="loss: expected one of"):
        model.compile(loss="hinge")
    with pytest.raises(ValueError, match="metrics: expected names"):
        model.compile(loss="mse", metrics=["f1"])
    with pytest.raises(ValueError, match="fit: compile the model first"):
        model.fit(np.zeros((2, 3)), np.zeros((2, 1)), verbose=0)
    with pytest.raises(TypeError, match="unknown argument 'unit'"):
        L.Dense(3, unit=3)


def test_stateful_layer_carries_state_between_calls():
    torch.manual_seed(0)
    layer = L.LSTM(4, stateful=True)
    x = torch.randn(2, 6, 3)
    whole = L.LSTM(4)
    whole(x)  # build, then give it the same weights
    layer(x[:, :3])
    whole.rnn.load_state_dict(layer.rnn.state_dict())
    layer.reset_states()
    first = layer(x[:, :3])
    second = layer(x[:, 3:])  # continues from the state left by the first half
    torch.testing.assert_close(second, whole(x), atol=1e-6, rtol=0)
    layer.reset_states()
    torch.testing.assert_close(layer(x[:, :3]), first, atol=0, rtol=0)


def test_gates_of_a_keras_model_can_be_recorded():
    import biolstm.nn as bnn

    model = Sequential([L.LSTM(5, input_shape=(7, 2)), L.Dense(1)])
    with bnn.record_gates(model) as rec:
        model.predict(np.zeros((3, 7, 2), "float32"))
    (name,) = rec.traces
    assert rec[name][0]["f"].shape == (3, 7, 5)


def test_optimizer_objects_and_gradient_clipping():

    rng = np.random.default_rng(0)
    x = (100 * rng.normal(size=(64, 5, 2))).astype("float32")  # large inputs: large gradients
    y = rng.normal(size=(64, 1)).astype("float32") * 100
    model = Sequential([L.LSTM(4, input_shape=(5, 2)), L.Dense(1)])
    model.compile(optimizer=O.SGD(learning_rate=0.1, clipnorm=0.01), loss="mse")
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    model.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0)  # one step
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert isinstance(model.optimizer, torch.optim.SGD)
    assert 0 < float((after - before).norm()) <= 0.1 * 0.01 + 1e-7  # lr * clipnorm
    adam = Sequential([L.Dense(1, input_shape=(3,))])
    adam.compile(optimizer="adam", loss="mse")
    adam.fit(np.zeros((4, 3)), np.zeros((4, 1)), verbose=0)
    assert adam.optimizer.defaults["eps"] == 1e-7  # Keras' epsilon, not torch's 1e-8
    factory = Sequential([L.Dense(1, input_shape=(3,))])
    factory.compile(optimizer=lambda params: torch.optim.RMSprop(params, lr=0.5), loss="mae")
    factory.fit(np.ones((4, 3)), np.zeros((4, 1)), verbose=0)
    assert factory.optimizer.defaults["lr"] == 0.5


def test_input_layer_and_dropouts():
    model = Sequential([L.Input((6, 2)), L.LSTM(5, dropout=0.3, recurrent_dropout=0.3), L.Dropout(0.5), L.Dense(1)])
    assert model.built and model.output_shape_ == (1,)
    x = torch.randn(4, 6, 2)
    model.eval()
    torch.testing.assert_close(model(x), model(x))  # no dropout at inference
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x))  # input, recurrent and output dropout while training
    model.compile(loss="mse")
    hist = model.fit(x.numpy(), np.zeros((4, 1), "float32"), epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


def test_stateful_truncated_bptt_through_fit():
    """Keras' idiom for sequences longer than one batch: cut them into chunks, stack the chunks
    so that batch j holds chunk j of every sequence, fit with shuffle=False and reset between
    epochs. The target (the input 3 steps back) crosses chunk borders, so only a model that
    carries its state from one batch to the next can learn the first steps of each chunk."""
    g = torch.Generator().manual_seed(0)
    n, T, k = 16, 120, 20
    x = torch.randn(n, T, 1, generator=g)
    y = torch.zeros(n, T, 1)
    y[:, 3:] = x[:, :-3]
    chunks = lambda t: np.concatenate([t[:, c : c + k].numpy() for c in range(0, T, k)])  # noqa: E731
    X, Y = chunks(x), chunks(y)
    first = np.zeros(Y.shape, bool)
    first[:, :3] = True  # the steps whose target lies in the previous chunk
    losses = {}
    for stateful in (True, False):
        torch.manual_seed(0)
        model = Sequential([L.LSTM(16, stateful=stateful, return_sequences=True, input_shape=(k, 1)), L.Dense(1)])
        model.compile(optimizer=O.Adam(learning_rate=0.01), loss="mse")
        for _ in range(40):
            model.fit(X, Y, batch_size=n, epochs=1, shuffle=False, verbose=0)
            model.reset_states()
        pred = model.predict(X, batch_size=n)
        model.reset_states()
        losses[stateful] = float(((pred - Y) ** 2)[first].mean())
    assert losses[True] < 0.05 and losses[False] > 0.5, losses  # the target's variance is 1
    model = Sequential([L.LSTM(4, stateful=True, input_shape=(k, 1)), L.Dense(1)])
    model.predict(X[:16], batch_size=16)
    with pytest.raises(ValueError, match="every batch must have 16 samples like the previous one, got 8"):
        model.predict(X[:8], batch_size=8)
