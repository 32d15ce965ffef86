"""EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CSVLogger and LambdaCallback; all but
ModelCheckpoint are the Trainer's own classes, re-exported."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from biolstm.keras import callbacks as C
from biolstm.keras import layers as L
from biolstm.keras.models import Sequential, load_model


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 1)).astype("float32")
    return x, (x.sum(axis=(1, 2)) > 0).astype("float32")[:, None]


def _model(lr_opt="adam"):
    torch.manual_seed(0)
    m = Sequential([L.LSTM(8, input_shape=(8, 1)), L.Dense(1, activation="sigmoid")])
    m.compile(optimizer=lr_opt, loss="binary_crossentropy", metrics=["accuracy"])
    return m


def test_early_stopping_stops_and_restores_best_weights():
    x, y = _data()
    model = _model()
    # train against a validation set with flipped labels: val_loss rises once learning starts
    stopper = C.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    hist = model.fit(x, y, epochs=30, validation_data=(x, 1 - y), callbacks=[stopper], verbose=0)
    assert hist.epochs < 30 and stopper.stopped_epoch == hist.epochs - 1
    best = int(np.argmin(hist.history["val_loss"]))
    assert stopper.best_epoch == best and hist.epochs == best + 2  # Keras: patience=1 epoch without improvement
    restored_val_loss = model.evaluate(x, 1 - y)[0]
    assert restored_val_loss == pytest.approx(hist.history["val_loss"][best], rel=1e-5)


def test_model_checkpoint_save_best_only(tmp_path):
    x, y = _data()
    model = _model()
    ck = C.ModelCheckpoint(tmp_path / "best-e{epoch:02d}", monitor="val_accuracy", save_best_only=True)
    hist = model.fit(x, y, epochs=5, validation_data=(x, y), callbacks=[ck], verbose=0)
    accs = hist.history["val_accuracy"]
    improvements = sum(1 for k, a in enumerate(accs) if a > max(accs[:k], default=-1))
    assert len(ck.saved) == improvements and ck.saved[0].name == "best-e01"
    again = load_model(ck.saved[-1])
    assert again.predict(x).shape == (200, 1)


def test_reduce_lr_on_plateau_and_csv_logger(tmp_path):
    x, y = _data()
    model = _model()
    lrs = []
    reduce = C.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)  # never "improves"
    log = C.CSVLogger(tmp_path / "log.csv")
    spy = C.LambdaCallback(on_epoch_end=lambda e, logs: lrs.append(model.optimizer.param_groups[0]["lr"]))
    model.fit(x, y, epochs=4, callbacks=[reduce, log, spy], verbose=0)
    # epoch 0 sets the first best value; each later epoch fails to improve by min_delta and halves the rate
    assert lrs == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4])
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"] and "accuracy" in rows[0]


def test_monitor_errors():
    x, y = _data(40)
    model = _model()
    with pytest.raises(ValueError, match=r"monitor: expected one of the logged quantities .*pass validation data"):
        model.fit(x, y, epochs=1, callbacks=[C.EarlyStopping(monitor="val_loss")], verbose=0)
    with pytest.raises(ValueError, match="factor"):
        C.ReduceLROnPlateau(factor=2.0)


def test_the_trainers_callbacks_are_re_exported():
    from biolstm.train import callbacks as T

    for name in ("Callback", "EarlyStopping", "CSVLogger", "ReduceLROnPlateau", "LambdaCallback"):
        assert getattr(C, name) is getattr(T, name), name
    assert issubclass(C.ModelCheckpoint, T.Monitor)
    assert set(C.__all__) == {"Callback", "EarlyStopping", "CSVLogger", "ReduceLROnPlateau", "LambdaCallback",
                              "ModelCheckpoint", "TensorBoard"}  # fmt: skip


def test_keras_arguments_keep_working(tmp_path):
    x, y = _data(64)
    model = _model()
    stopper = C.EarlyStopping("loss", 0.0, 2, "min", False)  # Keras' positional order
    log = C.CSVLogger(str(tmp_path / "log.csv"), separator=";", append=True)
    (tmp_path / "log.csv").write_text("epoch;loss;accuracy\n9;0.5;0.5\n")
    hist = model.fit(x, y, epochs=3, callbacks=[stopper, log], verbose=0)
    rows = list(csv.reader(open(tmp_path / "log.csv"), delimiter=";"))
    assert rows[:2] == [["epoch", "loss", "accuracy"], ["9", "0.5", "0.5"]]  # kept, no second header
    assert [r[0] for r in rows[2:]] == ["0", "1", "2"]
    assert [float(r[1]) for r in rows[2:]] == hist.history["loss"]
    assert (stopper.monitor, stopper.min_delta, stopper.patience, stopper.mode) == ("loss", 0.0, 2, "min")
    assert C.EarlyStopping(monitor="val_accuracy").mode == "max"
