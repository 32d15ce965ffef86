"""The Trainer: learning, logging, non-finite handling, and resume after SIGKILL."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import biolstm.nn as bnn
from biolstm.train import (
    EarlyStopping,
    NonFiniteError,
    RestoreBest,
    Trainer,
    TrainerConfig,
    list_checkpoints,
    seed_everything,
)

WORKER = Path(__file__).with_name("worker.py")


class Classifier(torch.nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.lstm = bnn.LSTM(1, hidden, batch_first=True, forget_bias=1.0)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(self.lstm(x)[0][:, -1])).squeeze(-1)


def _toy(n=600, T=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, T, 1, generator=g)
    return x, (x.sum((1, 2)) > 0).float()


def test_learns_the_sign_of_a_sum_and_logs(tmp_path):
    seed_everything(0)
    x, y = _toy()
    xv, yv = _toy(200, seed=1)
    trainer = Trainer(
        Classifier(),
        TrainerConfig(epochs=12, batch_size=32, lr=0.01, loss="binary_crossentropy", metrics=("accuracy", "auc")),
        tmp_path,
    )
    hist = trainer.fit(x, y, validation_data=(xv, yv))
    assert hist.history["val_accuracy"][-1] >= 0.95
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert len(rows) == 12 and float(rows[-1]["val_accuracy"]) == pytest.approx(hist.history["val_accuracy"][-1])
    assert len(list_checkpoints(tmp_path)) == 2


def test_same_seed_same_weights():
    x, y = _toy(128)
    results = []
    for _ in range(2):
        seed_everything(0)
        model = Classifier(8)
        Trainer(model, TrainerConfig(epochs=2, batch_size=16, seed=5, loss="binary_crossentropy")).fit(x, y)
        results.append(model.state_dict())
    for k in results[0]:
        assert torch.equal(results[0][k], results[1][k])


class Overflowing(Classifier):
    """Its output is NaN for any sequence holding a value above 100 (an overflow inside the model)."""

    def forward(self, x):
        out = super().forward(x)
        return torch.where(x.abs().amax((1, 2)) > 100, torch.full_like(out, float("nan")), out)


def test_nonfinite_loss_names_epoch_and_batch_and_keeps_checkpoint(tmp_path):
    x, y = _toy(64)
    model = Overflowing(4)
    trainer = Trainer(model, TrainerConfig(epochs=1, batch_size=16, loss="binary_crossentropy"), tmp_path)
    trainer.fit(x, y)
    good = list_checkpoints(tmp_path)
    x_bad = x.clone()
    x_bad[40, 3, 0] = 1000.0
    trainer2 = Trainer(
        model, TrainerConfig(epochs=2, batch_size=16, loss="binary_crossentropy", shuffle=False), tmp_path
    )
    with pytest.raises(NonFiniteError, match=r"epoch 1, batch 2; try gradient clipping"):
        trainer2.fit(x_bad, y, resume=True)
    assert list_checkpoints(tmp_path) == good  # nothing written after the failure
    skip = Trainer(
        Overflowing(4),
        TrainerConfig(epochs=1, batch_size=16, loss="binary_crossentropy", nonfinite="skip", shuffle=False),
    )
    hist = skip.fit(x_bad, y)
    assert skip.global_step == 3 and torch.isfinite(torch.tensor(hist.history["loss"])).all()


def test_nonfinite_inputs_are_refused_before_training(tmp_path):
    x, y = _toy(64)
    x[40, 3, 0] = float("nan")
    trainer = Trainer(Classifier(4), TrainerConfig(epochs=1, batch_size=16, loss="binary_crossentropy"), tmp_path)
    with pytest.raises(ValueError, match=r"x: expected finite numbers, got nan in row 40 \(position \(40, 3, 0\)\)"):
        trainer.fit(x, y)
    assert list_checkpoints(tmp_path) == []
    x[40, 3, 0] = 0.0
    with pytest.raises(ValueError, match=r"x\['static'\]: expected finite numbers, got inf in row 2"):
        Trainer(Classifier(4)).fit({"x": x, "static": torch.tensor([[0.0]] * 2 + [[float("inf")]] * 62)}, y)
    y[5] = float("nan")
    with pytest.raises(ValueError, match=r"y: expected finite numbers, got nan in row 5"):
        Trainer(Classifier(4)).fit(x, y)


def test_config_errors():
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        TrainerConfig(optimizer="adamx")
    with pytest.raises(ValueError, match="trainer config: unknown key 'epoch'"):
        TrainerConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="y: expected 4 targets"):
        Trainer(Classifier(2)).fit(torch.randn(4, 3, 1), torch.zeros(3))


def _run_worker(run_dir, *args, kill_after_ckpts=None):
    env = dict(os.environ, PYTHONPATH=str(WORKER.parents[2]))
    proc = subprocess.Popen([sys.executable, str(WORKER), str(run_dir), *args], env=env)
    if kill_after_ckpts is None:
        assert proc.wait(timeout=300) == 0
        return
    deadline = time.time() + 120
    while time.time() < deadline:
        ckpts = list_checkpoints(run_dir)
        if ckpts and int(ckpts[-1].name[5:]) >= kill_after_ckpts:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_resume_after_sigkill_is_bit_exact(tmp_path):
    _run_worker(tmp_path / "clean")
    reference = load_file(str(tmp_path / "clean" / "final.safetensors"))
    run = tmp_path / "killed"
    _run_worker(run, "--slow", "0.02", kill_after_ckpts=4)  # mid-epoch 0 (6 steps per epoch)
    _run_worker(run, "--resume", "--slow", "0.02", kill_after_ckpts=11)  # killed again in epoch 1
    assert not (run / "final.safetensors").exists()
    _run_worker(run, "--resume")
    resumed = load_file(str(run / "final.safetensors"))
    assert reference.keys() == resumed.keys()
    for k in reference:
        assert torch.equal(reference[k], resumed[k]), k


@pytest.mark.slow  # a long run; CI runs it (.ci/run)
def test_random_kills_inside_batches_and_checkpoint_writes(tmp_path):
    """SIGKILL at random moments (the worker sleeps inside each forward and after each file of a
    checkpoint write, so kills land in both); after every kill each checkpoint on disk verifies,
    the best epoch's checkpoint is still there, and the resumed run ends bit-exact."""
    import random

    from biolstm.train import load_checkpoint

    _run_worker(tmp_path / "clean", "--val")
    reference = load_file(str(tmp_path / "clean" / "final.safetensors"))
    run, rng = tmp_path / "killed", random.Random(0)
    env = dict(os.environ, PYTHONPATH=str(WORKER.parents[2]))
    proc = subprocess.run([sys.executable, str(WORKER), str(run), "--val", "--die-in-save", "9"], env=env)
    assert proc.returncode == -signal.SIGKILL  # died with checkpoint 9 half-written
    assert [p.name for p in list_checkpoints(run)][-1] == "ckpt-00000008" and list(run.glob(".ckpt-00000009.*"))
    kills = 1
    while not (run / "final.safetensors").exists():
        args = [sys.executable, str(WORKER), str(run), "--val", "--slow", "0.02", "--slow-save", "0.03"]
        proc = subprocess.Popen([*args, "--resume"], env=env)
        if kills < 5:  # kill a random moment after the run has made progress (a new checkpoint)
            seen = len(list_checkpoints(run)) and int(list_checkpoints(run)[-1].name[5:])
            deadline = time.time() + 120
            while proc.poll() is None and time.time() < deadline:
                ckpts = list_checkpoints(run)
                if ckpts and int(ckpts[-1].name[5:]) > seen:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.15))  # a step is ~0.1 s of forward sleeps plus ~0.1 s of writes
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        proc.wait(timeout=300)
        for ckpt in list_checkpoints(run):  # never a half-written one
            meta = load_checkpoint(ckpt)[2]
        if list_checkpoints(run):
            best = meta["best"]["step"]
            assert best < 0 or (run / f"ckpt-{best:08d}").is_dir(), "the best checkpoint was lost"
    assert kills >= 3, kills  # the test really interrupted the run
    assert not list(run.glob(".ckpt-*")), "a half-written checkpoint was left behind"
    resumed = load_file(str(run / "final.safetensors"))
    for k in reference:
        assert torch.equal(reference[k], resumed[k]), k


def test_lr_schedule_is_logged_and_resumes_exactly(tmp_path):
    x, y = _toy(96)

    def run(epochs, run_dir=None, resume=False):
        seed_everything(0)
        model = Classifier(4)
        cfg = TrainerConfig(
            epochs=epochs,
            batch_size=32,
            lr=0.02,
            loss="binary_crossentropy",
            lr_schedule="exponential",
            lr_gamma=0.5,
            seed=1,
        )
        hist = Trainer(model, cfg, run_dir).fit(x, y, resume=resume)
        return model, hist

    full, hist = run(4)
    assert hist.history["lr"] == pytest.approx([0.02, 0.01, 0.005, 0.0025])
    run(2, tmp_path)  # a shorter run, then continued to 4 epochs from its checkpoint
    resumed, hist2 = run(4, tmp_path, resume=True)
    assert hist2.history["lr"] == pytest.approx(hist.history["lr"])
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    with pytest.raises(ValueError, match="lr_schedule: expected one of"):
        TrainerConfig(lr_schedule="linear")


def test_restore_best_and_early_stopping(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(64, 5, 1), torch.rand(64).round()
    xv, yv = torch.randn(32, 5, 1), torch.rand(32).round()  # noise: validation loss soon stops improving
    for run_dir in (None, tmp_path / "run"):
        torch.manual_seed(0)
        model = Classifier(hidden=8)
        cfg = TrainerConfig(
            epochs=40, batch_size=16, lr=0.05, loss="binary_crossentropy", restore_best=True, early_stopping=3,
            keep_checkpoints=1,
        )  # fmt: skip
        t = Trainer(model, cfg, run_dir)
        hist = t.fit(x, y, validation_data=(xv, yv))
        val = hist.history["val_loss"]
        best = int(torch.tensor(val).argmin())
        assert len(val) == best + 4 < 40  # stopped 3 epochs after the best one
        stopper, restorer = (next(cb for cb in t.callbacks if isinstance(cb, k)) for k in (EarlyStopping, RestoreBest))
        assert stopper.best_epoch == restorer.best_epoch == best and stopper.stopped_epoch == best + 3
        assert t.evaluate(xv, yv)["loss"] == pytest.approx(val[best], rel=1e-6)  # the best epoch's weights
        if run_dir is not None:  # the best checkpoint is kept beside the newest one
            assert len(list(run_dir.glob("ckpt-*"))) == 2


def test_clipping_tames_an_exploding_rnn_and_grad_norms_are_logged(tmp_path):
    """A relu RNN with recurrent weights scaled up explodes; clipping by norm or by value keeps
    it finite, and grad_norms.csv shows the pre-clipping norms per layer."""

    class Exploding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = bnn.RNN(1, 16, nonlinearity="relu", batch_first=True)
            self.head = torch.nn.Linear(16, 1)
            with torch.no_grad():
                self.rnn.weight_hh_l0.copy_(torch.eye(16) * 1.6)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1]).squeeze(-1)

    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 40, 1, generator=g)
    y = x.sum((1, 2))
    base = {
        "epochs": 2,
        "batch_size": 16,
        "lr": 0.001,
        "loss": "mse",
        "optimizer": "sgd",
    }  # SGD: steps scale with gradients
    torch.manual_seed(0)
    with pytest.raises(NonFiniteError, match="not finite"):
        Trainer(Exploding(), TrainerConfig(**base)).fit(x, y)
    for clip in ({"clipnorm": 1.0}, {"clipvalue": 0.01}):
        torch.manual_seed(0)
        model = Exploding()
        run = tmp_path / next(iter(clip))
        Trainer(model, TrainerConfig(**base, **clip, log_grad_norms=True), run).fit(x, y)
        assert all(torch.isfinite(p).all() for p in model.parameters())
        rows = list(csv.DictReader((run / "grad_norms.csv").open()))
        assert {r["layer"] for r in rows} == {"rnn", "head"} and {r["epoch"] for r in rows} == {"0", "1"}
        rnn_max = max(float(r["max_norm"]) for r in rows if r["layer"] == "rnn")
        assert rnn_max > 1e3  # the raw gradients explode; only the clipped step stays small


def test_full_disk_or_unwritable_run_folder_fails_before_training(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from biolstm import InputError

    x, y = _toy(32)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 * 2**20, 9 * 2**20, 2**20))
    trainer = Trainer(Classifier(4), TrainerConfig(epochs=1, batch_size=16, loss="binary_crossentropy"), tmp_path)
    with pytest.raises(InputError, match=r"run folder: .* is on a disk with 1 MiB free; training needs about \d+ MiB"):
        trainer.fit(x, y)
    assert trainer.global_step == 0 and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match=r"run folder: .*file is a file; expected a folder"):
        Trainer(Classifier(4), TrainerConfig(epochs=1), blocker).fit(x, y)
    if Path("/sys").is_dir() and os.access("/sys", os.W_OK):  # sysfs refuses new folders even to root
        with pytest.raises(InputError, match="run folder: /sys/biolstm-run is on a disk with 0 MiB free"):
            Trainer(Classifier(4), TrainerConfig(epochs=1), "/sys/biolstm-run").fit(x, y)
        monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(2**40, 0, 2**40))  # past the space check
        with pytest.raises(InputError, match=r"run folder: /sys/biolstm-run cannot be written \(Operation not"):
            Trainer(Classifier(4), TrainerConfig(epochs=1), "/sys/biolstm-run").fit(x, y)
