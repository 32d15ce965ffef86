"""Keras-style callbacks, called by the Trainer after every epoch with that epoch's logs.

Each hook receives the :class:`~biolstm.train.Trainer` (``trainer.model`` is the model being
trained, ``trainer.optimizer`` its optimizer); setting ``trainer.stop_training`` ends the run
after the current epoch.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from ..validation import check_choice


class Callback:
    """Base class: override any of the hooks."""

    def on_train_begin(self, trainer) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, trainer) -> None:
        pass


class _Monitor(Callback):
    """Tracks the best value of one logged quantity."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        check_choice(mode, ("auto", "min", "max"), "mode")
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, logs: dict[str, float]) -> float:
        if self.monitor not in logs:
            raise ValueError(
                f"monitor: expected one of the logged quantities {sorted(logs)}, got {self.monitor!r}"
                + (" (pass validation data to log val_ quantities)" if "val_" in self.monitor else "")
            )
        return logs[self.monitor]

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience, self.restore_best_weights = patience, restore_best_weights
        self.wait, self.best_state, self.stopped_epoch, self.best_epoch = 0, None, None, None

    def on_train_begin(self, trainer) -> None:
        self.wait, self.best_state = 0, None
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, trainer, epoch, logs):
        value = self.value(logs)
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer) -> None:
        if self.restore_best_weights and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)


class ModelCheckpoint(_Monitor):
    """Save the model (``model.save``: safetensors + JSON) after epochs, or only improvements.

    ``filepath`` may contain ``{epoch}`` and logged keys, e.g. ``"ckpt/e{epoch:02d}-{val_loss:.3f}"``.
    """

    def __init__(
        self, filepath: str | os.PathLike, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.filepath, self.save_best_only = str(filepath), save_best_only
        self.saved: list[Path] = []

    def on_epoch_end(self, trainer, epoch, logs):
        if self.save_best_only:
            value = self.value(logs)
            if not self.improved(value):
                return
            self.best = value
        path = Path(self.filepath.format(epoch=epoch + 1, **logs))
        trainer.model.save(path)
        self.saved.append(path)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor: expected a float in (0, 1), got {factor}")
        self.factor, self.patience, self.cooldown, self.min_lr = factor, patience, cooldown, min_lr
        self.wait = self.cooldown_left = 0

    def on_epoch_end(self, trainer, epoch, logs):
        value = self.value(logs)
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience and self.cooldown_left == 0:
            for group in trainer.optimizer.param_groups:
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)
            self.cooldown_left, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Append one row per epoch (epoch and every logged quantity) to ``filename``."""

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        self.filename, self.separator, self.append = Path(filename), separator, append
        self.keys: list[str] | None = None

    def on_train_begin(self, trainer) -> None:
        if not self.append and self.filename.exists():
            self.filename.unlink()
        self.keys = None

    def on_epoch_end(self, trainer, epoch, logs):
        new = not self.filename.exists() or self.filename.stat().st_size == 0
        if self.keys is None:
            self.keys = list(logs)
        with open(self.filename, "a", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter=self.separator)
            if new:
                w.writerow(["epoch", *self.keys])
            w.writerow([epoch, *(logs.get(k, "") for k in self.keys)])


class LambdaCallback(Callback):
    """Callbacks from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_end=None, on_train_begin=None, on_train_end=None) -> None:
        self._epoch_end, self._begin, self._end = on_epoch_end, on_train_begin, on_train_end

    def on_train_begin(self, trainer) -> None:
        if self._begin:
            self._begin()

    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, Any]) -> None:
        if self._epoch_end:
            self._epoch_end(epoch, logs)

    def on_train_end(self, trainer) -> None:
        if self._end:
            self._end()


__all__ = ["CSVLogger", "Callback", "EarlyStopping", "LambdaCallback", "ModelCheckpoint", "ReduceLROnPlateau"]
