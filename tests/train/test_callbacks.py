"""The Trainer's callbacks, each on its own with a tiny model; the callbacks the config keys
build; the hooks and their order; state carried across resumed sessions."""

from __future__ import annotations

import csv
import json
import math
from types import SimpleNamespace

import pytest
import torch

import biolstm.nn as bnn
from biolstm.train import (
    Callback,
    Checkpointer,
    CSVLogger,
    EarlyStopping,
    GradNormLogger,
    LambdaCallback,
    ReduceLROnPlateau,
    RestoreBest,
    Trainer,
    TrainerConfig,
    list_checkpoints,
    load_checkpoint,
    seed_everything,
)
from biolstm.train.callbacks import from_config
from biolstm.train.checkpoint import join_state_dict


class Tiny(torch.nn.Module):
    def __init__(self, hidden=4):
        super().__init__()
        self.lstm = bnn.LSTM(1, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(self.lstm(x)[0][:, -1])).squeeze(-1)


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, 1, generator=g)
    return x, (x.sum((1, 2)) > 0).float()


def _noise(n=32, seed=1):  # labels unrelated to x: the validation loss soon stops improving
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, 1, generator=g), torch.rand(n, generator=g).round()


CFG = {"batch_size": 16, "lr": 0.05, "loss": "binary_crossentropy", "seed": 1}


def _fit(callbacks=(), run_dir=None, val=True, resume=False, **cfg):
    seed_everything(0)
    model = Tiny()
    trainer = Trainer(model, TrainerConfig(**{**CFG, **cfg}), run_dir, callbacks=list(callbacks))
    hist = trainer.fit(*_data(), validation_data=_noise() if val else None, resume=resume)
    return trainer, hist


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _fake_trainer():
    return SimpleNamespace(stop_training=False, global_step=0, model=torch.nn.Linear(1, 1), checkpoint_callback=None)


def _feed(cb, values, key="val_loss"):
    """Run ``cb`` over epochs whose logs hold ``values``; the fake trainer it saw."""
    t = _fake_trainer()
    cb.on_train_begin(t)
    for epoch, v in enumerate(values):
        t.global_step += 2
        cb.on_epoch_end(t, epoch, {key: v})
        if t.stop_training:
            break
    cb.on_train_end(t)
    return t


# ---------------------------------------------------------------------------- EarlyStopping
def test_early_stopping_counts_epochs_since_the_best_as_keras():
    es = EarlyStopping(patience=3)
    t = _feed(es, [1.0, 0.5, 0.6, 0.7, 0.4, 0.5, 0.55, 0.6, 0.1])
    assert (es.best, es.best_epoch, es.best_step) == (0.4, 4, 10)
    assert t.stop_training and es.stopped_epoch == 7 and es.wait == 3  # 3 epochs after the best
    es = EarlyStopping(patience=3, min_delta=0.15)  # 0.4 is not 0.15 below 0.5: no improvement
    _feed(es, [1.0, 0.5, 0.6, 0.7, 0.4, 0.5])
    assert es.best_epoch == 1 and es.stopped_epoch == 4
    es = EarlyStopping(monitor="val_accuracy", patience=1)  # auto: accuracy is maximised
    _feed(es, [0.5, 0.7, 0.6, 0.9], key="val_accuracy")
    assert es.mode == "max" and es.best == 0.7 and es.stopped_epoch == 2
    es = EarlyStopping(patience=0)  # Keras: the first epoch without improvement stops
    _feed(es, [1.0, 0.9, 0.95])
    assert es.stopped_epoch == 2
    es = EarlyStopping(patience=1)  # never improved (NaN): nothing to wait for, never stops
    t = _feed(es, [math.nan] * 5)
    assert not t.stop_training and es.best_epoch is None and es.stopped_epoch is None


def test_early_stopping_missing_quantity_and_argument_errors():
    with pytest.raises(ValueError, match=r"monitor: expected one of the logged quantities \['loss'\], got 'val_loss'"):
        EarlyStopping().on_epoch_end(_fake_trainer(), 0, {"loss": 1.0})
    lenient = EarlyStopping(patience=1, strict=False)
    t = _feed(lenient, [None] * 4, key="val_loss_missing")
    assert not t.stop_training and lenient.best_epoch is None
    with pytest.raises(ValueError, match="mode: expected one of"):
        EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


def test_early_stopping_in_training_and_restore_best_weights():
    es = EarlyStopping(patience=2, restore_best_weights=True)
    trainer, hist = _fit([es], epochs=40)
    val = hist.history["val_loss"]
    best = min(range(len(val)), key=val.__getitem__)
    assert es.best_epoch == best and len(val) == best + 3 < 40 and es.stopped_epoch == best + 2
    assert trainer.evaluate(*_noise())["loss"] == pytest.approx(val[best], rel=1e-6)


# ---------------------------------------------------------------------------- RestoreBest
def test_restore_best_from_memory_and_from_the_checkpoint(tmp_path):
    restorer = RestoreBest()
    trainer, hist = _fit([restorer], epochs=6)
    val = hist.history["val_loss"]
    best = min(range(6), key=val.__getitem__)
    assert restorer.best_epoch == best and restorer.best == val[best] and restorer.best_state is not None
    assert trainer.evaluate(*_noise())["loss"] == pytest.approx(val[best], rel=1e-6)
    # with a Checkpointer following val_loss, no copy in memory: the best checkpoint is kept and read back
    restorer2, ck = RestoreBest(), Checkpointer(tmp_path, keep=1)
    trainer2, _ = _fit([restorer2, ck], epochs=6)
    assert restorer2.best_state is None and ck.best_path == tmp_path / f"ckpt-{restorer2.best_step:08d}"
    assert {p.name for p in list_checkpoints(tmp_path)} == {ck.best_path.name, "ckpt-00000024"}
    assert _same_weights(_weights(trainer2.model), _weights(trainer.model))
    # a quantity never logged: nothing restored, the last weights stay
    last = RestoreBest(monitor="val_auc", strict=False)
    trainer3, _ = _fit([last], epochs=2)
    seed_everything(0)
    plain = Trainer(Tiny(), TrainerConfig(**CFG, epochs=2))
    plain.fit(*_data(), validation_data=_noise())
    assert last.best_epoch is None and _same_weights(_weights(trainer3.model), _weights(plain.model))


# ---------------------------------------------------------------------------- CSVLogger
def test_csv_logger_rows_append_and_separator(tmp_path):
    log = CSVLogger(tmp_path / "log.tsv", separator="\t")
    _, hist = _fit([log], epochs=3, metrics=("accuracy",))
    rows = list(csv.reader((tmp_path / "log.tsv").open(), delimiter="\t"))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert [float(r[3]) for r in rows[1:]] == hist.history["val_loss"]  # the values, unrounded
    again = CSVLogger(tmp_path / "log.tsv", separator="\t", append=True)
    _fit([again], epochs=2, metrics=("accuracy",))
    rows2 = list(csv.reader((tmp_path / "log.tsv").open(), delimiter="\t"))
    assert rows2[:4] == rows and [r[0] for r in rows2[4:]] == ["0", "1"]  # one header, rows appended
    _fit([CSVLogger(tmp_path / "log.tsv", separator="\t")], epochs=1, metrics=("accuracy",))
    assert len((tmp_path / "log.tsv").read_text().splitlines()) == 2  # append=False: a new file


# ---------------------------------------------------------------------------- GradNormLogger
class Two(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(2, 3)
        self.b = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x))).squeeze(-1)


def test_grad_norm_logger_values_are_the_norms_before_clipping(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 2, generator=g), torch.randn(32, generator=g)
    torch.manual_seed(0)
    model = Two()
    ref = Two()
    ref.load_state_dict(model.state_dict())
    gn = GradNormLogger(tmp_path / "gn.csv")
    cfg = TrainerConfig(epochs=2, batch_size=8, optimizer="sgd", lr=0.1, loss="mse", shuffle=False, clipnorm=0.05)
    Trainer(model, cfg, callbacks=[gn]).fit(x, y)
    # the same steps by hand: per layer, the norm of its gradients, then clip and step
    norms = {"a": [], "b": []}
    for _ in range(2):
        for lo in range(0, 32, 8):
            ref.zero_grad()
            ((ref(x[lo : lo + 8]) - y[lo : lo + 8]) ** 2).mean().backward()
            for layer in norms:
                sq = sum(float(p.grad.pow(2).sum()) for p in getattr(ref, layer).parameters())
                norms[layer].append(math.sqrt(sq))
            torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.05)
            with torch.no_grad():
                for p in ref.parameters():
                    p -= 0.1 * p.grad
    expected = [
        [e, layer, sum(norms[layer][4 * e : 4 * e + 4]) / 4, max(norms[layer][4 * e : 4 * e + 4])]
        for e in range(2)
        for layer in ("a", "b")
    ]
    assert [r[:2] for r in gn.rows] == [r[:2] for r in expected]
    for got, want in zip(gn.rows, expected):
        assert got[2:] == pytest.approx(want[2:], rel=1e-6)
    assert max(r[3] for r in gn.rows) > 0.05  # measured before clipping
    rows = list(csv.reader((tmp_path / "gn.csv").open()))
    assert rows[0] == ["epoch", "layer", "mean_norm", "max_norm"] and len(rows) == 5
    assert [float(v) for v in rows[1][2:]] == gn.rows[0][2:]


def test_grad_norms_resume_mid_epoch_gives_the_same_file(tmp_path):
    import shutil

    _fit(run_dir=tmp_path / "clean", epochs=2, log_grad_norms=True, checkpoint_every=3)
    run = tmp_path / "cut"
    shutil.copytree(tmp_path / "clean", run)
    for name in ("ckpt-00000008", "grad_norms.csv", "history.csv"):  # back to step 6, inside epoch 1
        p = run / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert json.loads((run / "ckpt-00000006" / "meta.json").read_text())["running"]["gn_steps"] == 2
    _fit(run_dir=run, epochs=2, log_grad_norms=True, checkpoint_every=3, resume=True)
    for name in ("grad_norms.csv", "history.csv"):
        assert (run / name).read_text() == (tmp_path / "clean" / name).read_text(), name
    resumed, clean = (load_checkpoint(r / "ckpt-00000008")[0] for r in (run, tmp_path / "clean"))
    assert _same_weights(resumed, clean)


# ---------------------------------------------------------------------------- Checkpointer
def test_checkpointer_positions_retention_and_resume(tmp_path):
    ck = Checkpointer(tmp_path / "all", every_n_train_steps=2, keep=10)
    _fit([ck], epochs=2, val=False)  # 4 batches an epoch: steps 2 and 6 inside, 4 and 8 at the ends
    metas = [load_checkpoint(p)[2] for p in list_checkpoints(tmp_path / "all")]
    assert [(m["step"], m["epoch"], m["next_batch"]) for m in metas] == [(2, 0, 2), (4, 1, 0), (6, 1, 2), (8, 2, 0)]
    assert metas[0]["running"]["n"] == 32 and metas[1]["running"] == {}
    assert metas[-1]["best"] == {"val_loss": math.inf, "epoch": -1, "step": -1}  # no validation data
    assert ck.best_path is None
    # keep=1 keeps the newest and the best epoch's
    ck1 = Checkpointer(tmp_path / "best", keep=1)
    trainer, hist = _fit([ck1], epochs=5)
    best = min(range(5), key=hist.history["val_loss"].__getitem__)
    assert ck1.best_epoch == best and ck1.best_step == 4 * (best + 1)
    assert {p.name for p in list_checkpoints(tmp_path / "best")} == {ck1.best_path.name, "ckpt-00000020"}
    assert load_checkpoint(list_checkpoints(tmp_path / "best")[-1])[2]["best"] == {
        "val_loss": hist.history["val_loss"][best],
        "epoch": best,
        "step": 4 * (best + 1),
    }
    # a run of 3 epochs continued to 5 from its checkpoint equals the 5 epochs at once
    _fit([Checkpointer(tmp_path / "cont", keep=1)], epochs=3)
    t2, hist2 = _fit([Checkpointer(tmp_path / "cont", keep=1)], epochs=5, resume=True)
    assert hist2.history == hist.history and _same_weights(_weights(t2.model), _weights(trainer.model))
    with pytest.raises(ValueError, match="keep"):
        Checkpointer(tmp_path, keep=-1)


# ---------------------------------------------------------------------------- ReduceLROnPlateau, LambdaCallback
def test_reduce_lr_on_plateau_and_lambda_callback():
    lrs, begun, ended = [], [], []
    reduce = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=10.0, min_lr=0.02)
    spy = LambdaCallback(
        on_epoch_end=lambda e, logs: lrs.append(trainer.optimizer.param_groups[0]["lr"]),
        on_train_begin=lambda: begun.append(1),
        on_train_end=lambda: ended.append(1),
    )
    seed_everything(0)
    trainer = Trainer(Tiny(), TrainerConfig(**{**CFG, "epochs": 6}), callbacks=[reduce, spy])
    trainer.fit(*_data())
    # epoch 0 sets the best; every second epoch after it fails twice and halves the rate, down to min_lr
    assert lrs == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.02, 0.02]) and begun == ended == [1]


# ---------------------------------------------------------------------------- the Trainer and its callbacks
def test_config_keys_build_the_callbacks(tmp_path):
    cfg = TrainerConfig(
        early_stopping=3, restore_best=True, log_grad_norms=True, checkpoint_every=5, keep_checkpoints=1
    )
    user = Callback()
    t = Trainer(Tiny(), cfg, tmp_path, callbacks=[user])
    kinds = [type(cb) for cb in t.callbacks]
    assert kinds == [GradNormLogger, CSVLogger, EarlyStopping, RestoreBest, Checkpointer, Callback]
    gn, log, es, rb, ck, last = t.callbacks
    assert last is user and t.checkpoint_callback is ck
    assert gn.filename == tmp_path / "grad_norms.csv" and log.filename == tmp_path / "history.csv"
    assert (es.monitor, es.mode, es.patience, es.strict, es.restorer) == ("val_loss", "min", 3, False, None)
    assert (rb.monitor, rb.mode, rb.strict) == ("val_loss", "min", False)
    assert (ck.dirpath, ck.every_n_train_steps, ck.keep, ck.monitor, ck.mode) == (tmp_path, 5, 1, "val_loss", "min")
    assert [type(cb) for cb in Trainer(Tiny()).callbacks] == []  # defaults, no run folder: none
    no_dir = from_config(cfg)
    assert [type(cb) for cb in no_dir] == [GradNormLogger, EarlyStopping, RestoreBest] and no_dir[0].filename is None


def test_config_keys_equal_the_same_callbacks_passed_by_hand(tmp_path):
    keys = {"early_stopping": 2, "restore_best": True, "log_grad_norms": True, "checkpoint_every": 3}
    a, ha = _fit(run_dir=tmp_path / "a", epochs=30, keep_checkpoints=1, **keys)
    b_dir = tmp_path / "b"
    b_dir.mkdir()  # the Trainer makes its run folder; the loggers write into an existing one
    by_hand = [
        GradNormLogger(b_dir / "grad_norms.csv"),
        CSVLogger(b_dir / "history.csv"),
        EarlyStopping(patience=2, mode="min", strict=False),
        RestoreBest(mode="min", strict=False),
        Checkpointer(b_dir, every_n_train_steps=3, keep=1),
    ]
    b, hb = _fit(by_hand, epochs=30)
    assert ha.history == hb.history and len(ha.history["loss"]) < 30
    assert _same_weights(_weights(a.model), _weights(b.model))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    assert files == sorted(p.relative_to(b_dir) for p in b_dir.rglob("*"))
    for name in ("history.csv", "grad_norms.csv"):
        assert (tmp_path / "a" / name).read_text() == (b_dir / name).read_text()
    for ckpt in list_checkpoints(b_dir):
        twin = tmp_path / "a" / ckpt.name / "model.safetensors"
        assert (ckpt / "model.safetensors").read_bytes() == twin.read_bytes()


class Recorder(Callback):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_train_begin(self, trainer):
        self.log.append((self.name, "train_begin"))

    def on_load_checkpoint(self, trainer, meta):
        self.log.append((self.name, "load", meta["epoch"], meta["next_batch"], meta.get("recorded")))

    def on_epoch_begin(self, trainer, epoch):
        self.log.append((self.name, "epoch_begin", epoch))

    def on_before_optimizer_step(self, trainer):
        assert all(p.grad is not None for p in trainer.model.parameters())
        self.log.append((self.name, "before_step", trainer.global_step))

    def on_batch_end(self, trainer, epoch, batch, logs):
        self.log.append((self.name, "batch_end", epoch, batch, trainer.global_step, sorted(logs)))

    def on_epoch_end(self, trainer, epoch, logs):
        self.log.append((self.name, "epoch_end", epoch, sorted(logs)))

    def on_save_checkpoint(self, trainer, meta):
        meta["recorded"] = self.name
        self.log.append((self.name, "save", meta["epoch"], meta["next_batch"]))

    def on_train_end(self, trainer):
        self.log.append((self.name, "train_end"))


def test_user_callbacks_receive_the_hooks_in_order():
    log = []
    _fit([Recorder("r1", log), Recorder("r2", log)], epochs=2, val=False, metrics=("accuracy",))
    names = [e[0] for e in log]
    assert names == ["r1", "r2"] * (len(log) // 2)  # each hook: the callbacks in the order given
    events = [e[1:] for e in log[::2]]
    expected = [("train_begin",)]
    for epoch in range(2):
        expected.append(("epoch_begin", epoch))
        for b in range(4):
            s = 4 * epoch + b
            expected += [("before_step", s), ("batch_end", epoch, b, s + 1, ["loss"])]
        expected.append(("epoch_end", epoch, ["accuracy", "loss"]))
    expected.append(("train_end",))
    assert events == expected


def test_checkpointer_runs_after_the_user_callbacks_and_resume_calls_them_back(tmp_path):
    log = []

    def halve(epoch, logs):
        for group in trainer.optimizer.param_groups:
            group["lr"] /= 2

    seed_everything(0)
    trainer = Trainer(
        Tiny(), TrainerConfig(**CFG, epochs=2, checkpoint_every=2), tmp_path, callbacks=[Recorder("u", log)]
    )
    trainer.callbacks.append(LambdaCallback(on_epoch_end=halve))  # added after construction: still before saving
    trainer.fit(*_data())
    assert [e[2:] for e in log if e[1] == "save"] == [(0, 2), (1, 0), (1, 2), (2, 0)]
    # inside an epoch: the user's batch end, then the save; at its end: the user's epoch end, then the save
    assert log[log.index(("u", "batch_end", 0, 1, 2, ["loss"])) + 1] == ("u", "save", 0, 2)
    assert log[next(i for i, e in enumerate(log) if e[1] == "epoch_end") + 1] == ("u", "save", 1, 0)
    _, extra, meta = load_checkpoint(list_checkpoints(tmp_path)[-1])
    assert meta["recorded"] == "u"  # a callback's own key in meta.json
    assert join_state_dict(extra, meta["optimizer"])["param_groups"][0]["lr"] == pytest.approx(0.05 / 4)
    log.clear()
    seed_everything(0)
    again = Trainer(Tiny(), TrainerConfig(**CFG, epochs=3), tmp_path, callbacks=[Recorder("u", log)])
    again.fit(*_data(), resume=True)
    assert log[:3] == [("u", "train_begin"), ("u", "load", 2, 0, "u"), ("u", "epoch_begin", 2)]
    assert again.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 / 4)


def test_early_stopping_and_best_epoch_survive_a_later_session(tmp_path):
    """Two sessions (the first without early stopping, ending before it would stop) end as one."""
    keys = {"restore_best": True, "keep_checkpoints": 1}
    whole, hist = _fit(run_dir=tmp_path / "whole", epochs=40, early_stopping=2, **keys)
    val = hist.history["val_loss"]
    best = min(range(len(val)), key=val.__getitem__)
    assert len(val) == best + 3 < 40
    _fit(run_dir=tmp_path / "two", epochs=best + 2, **keys)
    meta = load_checkpoint(list_checkpoints(tmp_path / "two")[-1])[2]
    assert meta["best"]["epoch"] == best
    resumed, hist2 = _fit(run_dir=tmp_path / "two", epochs=40, early_stopping=2, resume=True, **keys)
    es = next(cb for cb in resumed.callbacks if isinstance(cb, EarlyStopping))
    assert hist2.history == hist.history and es.best_epoch == best and es.stopped_epoch == best + 2
    assert _same_weights(_weights(resumed.model), _weights(whole.model))


def test_a_callback_absent_in_one_session_keeps_its_state_for_the_next(tmp_path):
    _fit(run_dir=tmp_path, epochs=1, log_grad_norms=True)
    _fit(run_dir=tmp_path, epochs=2, resume=True)  # a session without grad norms
    assert [r[0] for r in load_checkpoint(list_checkpoints(tmp_path)[-1])[2]["grad_norms"]] == [0, 0]
    _fit(run_dir=tmp_path, epochs=3, log_grad_norms=True, resume=True)
    rows = list(csv.DictReader((tmp_path / "grad_norms.csv").open()))
    assert [(r["epoch"], r["layer"]) for r in rows] == [("0", "lstm"), ("0", "head"), ("2", "lstm"), ("2", "head")]
