"""keras.callbacks.TensorBoard: event files read back with tensorboard's EventAccumulator."""

from __future__ import annotations

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from biolstm.keras import callbacks as C
from biolstm.keras import layers as L
from biolstm.keras.models import Sequential


def _scalars(folder, tag):
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_tensorboard_writes_the_loss_per_epoch(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 1)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    torch.manual_seed(0)
    model = Sequential([L.LSTM(4, input_shape=(6, 1)), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=3, validation_data=(x, y), callbacks=[C.TensorBoard(tmp_path / "logs")], verbose=0)
    train = _scalars(tmp_path / "logs" / "train", "epoch_loss")
    assert [s for s, _ in train] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in train], hist.history["loss"], rtol=1e-6)
    val = _scalars(tmp_path / "logs" / "validation", "epoch_loss")
    np.testing.assert_allclose([v for _, v in val], hist.history["val_loss"], rtol=1e-6)
    acc = _scalars(tmp_path / "logs" / "train", "epoch_accuracy")
    np.testing.assert_allclose([v for _, v in acc], hist.history["accuracy"], rtol=1e-6)
