"""Callbacks: everything the training loop does besides training, one class per feature.

The :class:`~biolstm.train.Trainer` runs the loop only (batch order, forward, loss, backward,
clipping, optimiser step, validation, the history it returns); the features hang on its
hooks, as PyTorch Lightning separates its loop from its callbacks:

====================  ========================================================  =====================
class                 what it does                                              config key
====================  ========================================================  =====================
EarlyStopping         stop after ``patience`` epochs without improvement        ``early_stopping``
RestoreBest           end with the weights of the best epoch                    ``restore_best``
CSVLogger             one row per epoch in a CSV file                           (run folder) history.csv
GradNormLogger        per epoch and layer, mean and max gradient norm           ``log_grad_norms``
Checkpointer          resumable ``ckpt-<step>`` folders, the best one kept      ``checkpoint_every``,
                                                                                ``keep_checkpoints``
ReduceLROnPlateau     lower the learning rate when a quantity stops improving   (user callback)
LambdaCallback        callbacks from plain functions                            (user callback)
====================  ========================================================  =====================

:func:`from_config` builds the callbacks a ``TrainerConfig`` asks for; the Trainer puts the
user's ``callbacks=`` after them. The Keras facade (``biolstm.keras.callbacks``) re-exports
these classes under Keras' names and arguments.

Hooks, in the order the Trainer calls them; each receives the Trainer first (``trainer.model``,
``trainer.optimizer``, ``trainer.history``, ``trainer.global_step``, ``trainer.run_dir``)::

    on_train_begin(trainer)                  after a resumed run's loop state is restored
    on_load_checkpoint(trainer, meta)        only when fit resumes: the checkpoint's meta.json
    on_epoch_begin(trainer, epoch)
      on_before_optimizer_step(trainer)      each step: after backward (unscaled), before clipping
      on_batch_end(trainer, epoch, batch, logs)   after a batch's step(s); not for skipped batches
    on_epoch_end(trainer, epoch, logs)       logs: loss, metrics, val_*, lr (already in the history)
    on_save_checkpoint(trainer, meta)        add JSON state to a checkpoint being written
    on_train_end(trainer)

Setting ``trainer.stop_training`` ends the run after the current epoch. At every hook the
Checkpointers run after all other callbacks (as Lightning orders its ModelCheckpoint last), so
the checkpoint written at an epoch's end holds what the others did in it: a lowered learning
rate, a new best epoch.

State that a later session needs lives in the checkpoint's meta.json under the keys the format
has always had: ``best`` (the Checkpointer's record of the best epoch: ``{"val_loss": value,
"epoch": e, "step": s}``, which EarlyStopping and RestoreBest read back when they follow the
same quantity), ``grad_norms`` and the ``gn_*`` entries of ``running`` (GradNormLogger). Keys
that no callback of the resumed session writes are carried forward unchanged.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..validation import check_choice, check_positive_int, check_type
from . import distributed as dd
from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, remove_partial, save_checkpoint


class Callback:
    """Base class: override the hooks you need (all do nothing here). See the module docstring
    for when each is called."""

    def on_train_begin(self, trainer) -> None:
        """Before the first epoch of ``fit``."""

    def on_load_checkpoint(self, trainer, meta: dict[str, Any]) -> None:
        """After on_train_begin, when ``fit(resume=True)`` continues from a checkpoint."""

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        """Before the first batch of ``epoch`` (0-based)."""

    def on_before_optimizer_step(self, trainer) -> None:
        """After backward (gradients unscaled under AMP), before clipping and the optimiser step."""

    def on_batch_end(self, trainer, epoch: int, batch: int, logs: dict[str, float]) -> None:
        """After batch ``batch`` (0-based) trained; ``logs['loss']`` is the epoch's running mean loss."""

    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> None:
        """After the epoch's logs (loss, metrics, val_*, lr) were added to ``trainer.history``."""

    def on_save_checkpoint(self, trainer, meta: dict[str, Any]) -> None:
        """Add this callback's state (JSON values) to the meta of a checkpoint being written."""

    def on_train_end(self, trainer) -> None:
        """After the last epoch (or the one that stopped training)."""


class Monitor(Callback):
    """Base of the callbacks that follow the best value of one logged quantity.

    ``mode='auto'`` means 'max' for accuracy, AUC, precision and recall and 'min' for anything
    else; a value improves when it beats the best by more than ``min_delta`` (NaN never does).
    ``strict=False`` lets an epoch without the quantity pass (e.g. ``val_loss`` without
    validation data) where ``strict=True`` raises ValueError naming the logged ones. The best
    so far is ``best``, with its ``best_epoch`` and ``best_step`` (optimisation steps done; None
    before the first improvement).
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0, strict: bool = True):
        check_type(monitor, str, "monitor")
        check_choice(mode, ("auto", "min", "max"), "mode")
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else "min"
        self.monitor, self.mode, self.min_delta, self.strict = monitor, mode, abs(min_delta), strict
        self.reset()

    def reset(self) -> None:
        """Forget the best value (a new training run)."""
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_step: int | None = None

    def value(self, logs: dict[str, float]) -> float | None:
        """The monitored quantity in ``logs``; None when it is missing and ``strict`` is off."""
        if self.monitor not in logs:
            if not self.strict:
                return None
            raise ValueError(
                f"monitor: expected one of the logged quantities {sorted(logs)}, got {self.monitor!r}"
                + (" (pass validation data to log val_ quantities)" if "val_" in self.monitor else "")
            )
        return logs[self.monitor]

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, trainer, epoch: int, logs: dict[str, float]) -> bool:
        """Whether this epoch is a new best; if so it is recorded (value, epoch, step)."""
        value = self.value(logs)
        if value is None or not self.improved(value):
            return False
        self.best, self.best_epoch, self.best_step = float(value), epoch, trainer.global_step
        return True

    def same_as(self, other: Monitor | None) -> bool:
        """Whether ``other`` follows the same quantity the same way (so its best is this one's)."""
        return other is not None and (self.monitor, self.mode, self.min_delta) == (
            other.monitor,
            other.mode,
            other.min_delta,
        )

    def record(self) -> dict[str, Any]:
        """The best so far as a checkpoint's ``best`` entry (-1: no best epoch yet)."""
        epoch, step = (-1 if v is None else v for v in (self.best_epoch, self.best_step))
        return {self.monitor: self.best, "epoch": epoch, "step": step}

    def load_record(self, trainer, meta: dict[str, Any]) -> bool:
        """Take the best from a checkpoint's ``best`` entry, written by the trainer's
        Checkpointer, if that follows the same quantity; whether it did."""
        rec = meta.get("best") or {}
        if self.monitor not in rec or not self.same_as(trainer.checkpoint_callback):
            return False
        self.best = float(rec[self.monitor])
        self.best_epoch = rec["epoch"] if rec["epoch"] >= 0 else None
        self.best_step = rec["step"] if rec["step"] >= 0 else None
        return True


class RestoreBest(Monitor):
    """End training with the weights of the epoch where ``monitor`` was best.

    With a :class:`Checkpointer` that follows the same quantity (the Trainer's own, with a run
    folder), the weights are read back from the best epoch's checkpoint, which it keeps beside
    the newest ones, so a run resumed in a later session restores them too; otherwise a copy of
    the weights is held in memory at each new best. Nothing is restored when no epoch improved.
    Config key ``restore_best: true`` (``RestoreBest(strict=False)``).
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0, *, strict: bool = True):
        super().__init__(monitor, mode, min_delta, strict)
        self.best_state: dict | None = None  # the best weights, when no checkpoint keeps them

    def _checkpointer(self, trainer) -> Checkpointer | None:
        ck = trainer.checkpoint_callback
        return ck if self.same_as(ck) else None

    def on_train_begin(self, trainer) -> None:
        self.reset()
        self.best_state = None

    def on_load_checkpoint(self, trainer, meta) -> None:
        self.load_record(trainer, meta)

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        if self.update(trainer, epoch, logs) and self._checkpointer(trainer) is None:
            self.best_state = {k: t.detach().clone() for k, t in trainer.model.state_dict().items()}

    def on_train_end(self, trainer) -> None:
        if self.best_step is None:
            return
        ck = self._checkpointer(trainer)
        if ck is not None:  # every process reads it: the Trainer waits for rank 0's writes first
            trainer.model.load_state_dict(load_checkpoint(ck.path_of(self.best_step))[0])
        elif self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)


class EarlyStopping(Monitor):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs (Keras' class).

    The epoch ``patience`` epochs after the best one sets ``trainer.stop_training``: with
    ``patience=3`` and the best at epoch 4, epoch 7 is the last. ``min_delta``, ``mode`` and
    ``restore_best_weights`` (a :class:`RestoreBest` inside: the weights of the best epoch at the
    end) are Keras'. Unlike Keras, a quantity that never improved (NaN from the start) never
    stops training, and ``strict=False`` (Lightning's) lets a missing quantity pass. Attributes
    as in Keras: ``best``, ``best_epoch``, ``wait`` (epochs since the best), ``stopped_epoch``.
    Config key ``early_stopping: N`` (``EarlyStopping(patience=N, mode='min', strict=False)``);
    a resumed run takes the best epoch from the checkpoint, so the count goes on where it was.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        restore_best_weights: bool = False,
        *,
        strict: bool = True,
    ) -> None:
        super().__init__(monitor, mode, min_delta, strict)
        check_positive_int(patience, "patience", minimum=0)
        self.patience, self.restore_best_weights = patience, restore_best_weights
        self.wait, self.stopped_epoch = 0, None
        self.restorer = RestoreBest(monitor, self.mode, min_delta, strict=strict) if restore_best_weights else None

    def on_train_begin(self, trainer) -> None:
        self.reset()
        self.wait, self.stopped_epoch = 0, None
        if self.restorer is not None:
            self.restorer.on_train_begin(trainer)

    def on_load_checkpoint(self, trainer, meta) -> None:
        if self.load_record(trainer, meta) and self.best_epoch is not None:
            self.wait = meta["epoch"] - 1 - self.best_epoch  # meta's epoch: the next one to train
        if self.restorer is not None:
            self.restorer.on_load_checkpoint(trainer, meta)

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        if self.restorer is not None:
            self.restorer.on_epoch_end(trainer, epoch, logs)
        if self.update(trainer, epoch, logs):
            self.wait = 0
            return
        if self.best_epoch is None:  # nothing to wait for yet
            return
        self.wait = epoch - self.best_epoch
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer) -> None:
        if self.restorer is not None:
            self.restorer.on_train_end(trainer)


class CSVLogger(Callback):
    """One row per epoch, ``epoch`` (0-based) and then every logged quantity, in ``filename``
    (Keras' class; the run folder's history.csv is one).

    The file is rewritten atomically at each epoch's end from ``trainer.history``, so it never
    holds half a row and a resumed run's earlier epochs stay in it; the columns follow the
    order of the epoch's logs. ``append=True`` keeps what the file held when training began
    and writes this run's epochs after it (the header only into an empty file). Only rank 0 of
    a distributed run writes.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        self.filename, self.separator, self.append = Path(filename), separator, append
        self._kept, self._first = "", 0  # with append: the file's earlier text, this run's first epoch

    def on_train_begin(self, trainer) -> None:
        self._kept, self._first = "", 0
        if self.append:
            self._first = trainer.history.epochs
            if self.filename.is_file():
                self._kept = self.filename.read_text(encoding="utf-8")
                if self._kept and not self._kept.endswith("\n"):
                    self._kept += "\n"

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        hist = trainer.history.history
        if not hist or dd.rank() != 0:
            return
        keys = [*(k for k in logs if k in hist), *(k for k in hist if k not in logs)]
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=self.separator)
        if not self._kept:
            w.writerow(["epoch", *keys])
        for e in range(self._first, trainer.history.epochs):
            w.writerow([e, *(hist[k][e] if e < len(hist[k]) else "" for k in keys)])
        atomic_write_text(self.filename, self._kept + buf.getvalue())


def _layer_of(name: str) -> str:
    """The layer a parameter belongs to: its module path without the parameter name."""
    return name.rsplit(".", 1)[0] if "." in name else name


class GradNormLogger(Callback):
    """Per epoch and layer, the mean and the largest gradient norm over the epoch's optimisation
    steps, measured before clipping (after AMP unscaling): rows ``[epoch, layer, mean_norm,
    max_norm]`` in ``rows`` and, with a ``filename``, a CSV file rewritten at each epoch's end
    (the run folder's grad_norms.csv). A layer is a parameter's module path (``lstm``, ``head``),
    listed in the model's order. Mid-epoch sums travel in checkpoints, so a resumed run logs the
    same numbers. Config key ``log_grad_norms: true``.
    """

    HEADER = ("epoch", "layer", "mean_norm", "max_norm")

    def __init__(self, filename: str | os.PathLike | None = None) -> None:
        self.filename = Path(filename) if filename is not None else None
        self.rows: list[list] = []
        self._sum: dict[str, float] = {}  # this epoch: sum and max of each layer's norm, steps
        self._max: dict[str, float] = {}
        self._steps = 0

    def _clear(self) -> None:
        self._sum, self._max, self._steps = {}, {}, 0

    def on_train_begin(self, trainer) -> None:
        self._clear()

    def on_before_optimizer_step(self, trainer) -> None:
        sq: dict[str, float] = {}
        for name, p in trainer.model.named_parameters():
            if p.grad is not None:
                layer = _layer_of(name)
                sq[layer] = sq.get(layer, 0.0) + float(p.grad.detach().float().pow(2).sum())
        for layer, v in sq.items():
            norm = math.sqrt(v)
            self._sum[layer] = self._sum.get(layer, 0.0) + norm
            self._max[layer] = max(self._max.get(layer, 0.0), norm)
        self._steps += 1

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        steps = max(self._steps, 1)
        order = dict.fromkeys(_layer_of(n) for n, _ in trainer.model.named_parameters())
        for layer in [*(k for k in order if k in self._sum), *(k for k in self._sum if k not in order)]:
            self.rows.append([epoch, layer, self._sum[layer] / steps, self._max[layer]])
        self._clear()
        if self.filename is not None and dd.rank() == 0:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(self.HEADER)
            w.writerows(self.rows)
            atomic_write_text(self.filename, buf.getvalue())

    def on_save_checkpoint(self, trainer, meta) -> None:
        meta["grad_norms"] = self.rows
        if self._steps:  # inside an epoch: its sums so far
            running = meta.setdefault("running", {})
            for layer, v in self._sum.items():
                running[f"gn_sum/{layer}"] = v
                running[f"gn_max/{layer}"] = self._max[layer]
            running["gn_steps"] = self._steps

    def on_load_checkpoint(self, trainer, meta) -> None:
        self.rows = [list(r) for r in meta.get("grad_norms", [])]
        running = meta.get("running") or {}
        self._sum = {k[len("gn_sum/") :]: v for k, v in running.items() if k.startswith("gn_sum/")}
        self._max = {k[len("gn_max/") :]: v for k, v in running.items() if k.startswith("gn_max/")}
        self._steps = running.get("gn_steps", 0)


class Checkpointer(Monitor):
    """Resumable checkpoints in ``dirpath`` (Lightning's ModelCheckpoint with ``save_last`` and
    ``save_top_k=1``): a ``ckpt-<step>`` folder (model.safetensors, state.safetensors,
    meta.json; :mod:`biolstm.train.checkpoint`) at every epoch's end and, with
    ``every_n_train_steps``, after every that many optimisation steps inside an epoch.

    The newest ``keep`` are kept, and the checkpoint of the epoch where ``monitor`` was best
    besides (its record is meta.json's ``best``). A checkpoint holds the Trainer's whole loop
    state (weights, optimizer, schedule, RNG states, position, history, the epoch's running
    loss and predictions) and what the callbacks add, so ``fit(resume=True)`` continues bit for
    bit; :meth:`latest` is what it resumes from. Only rank 0 writes. The Trainer adds one when
    it has a run folder (config keys ``checkpoint_every``, ``keep_checkpoints``).
    """

    def __init__(
        self,
        dirpath: str | os.PathLike,
        every_n_train_steps: int = 0,
        keep: int = 2,
        monitor: str = "val_loss",
        mode: str = "min",
    ) -> None:
        super().__init__(monitor, mode, 0.0, strict=False)
        check_positive_int(every_n_train_steps, "every_n_train_steps", minimum=0)
        check_positive_int(keep, "keep", minimum=0)
        self.dirpath, self.every_n_train_steps, self.keep = Path(dirpath), every_n_train_steps, keep

    def path_of(self, step: int) -> Path:
        """The folder of the checkpoint written after ``step`` optimisation steps."""
        return self.dirpath / f"ckpt-{step:08d}"

    @property
    def best_path(self) -> Path | None:
        """The best epoch's checkpoint (None before one improved)."""
        return None if self.best_step is None else self.path_of(self.best_step)

    def latest(self) -> tuple[Path, tuple] | None:
        """The newest checkpoint that verifies, with its contents; None when there is none, but
        checkpoints that are all damaged are an error naming each (never a silent fresh start)."""
        notes: list[str] = []
        found = latest_checkpoint(self.dirpath, notes)
        if found is None and notes:
            raise CheckpointError(f"{self.dirpath}: no checkpoint can be resumed: {'; '.join(notes)}")
        return found

    def on_train_begin(self, trainer) -> None:
        self.reset()
        if dd.rank() == 0:
            remove_partial(self.dirpath)  # what a crash mid-write left; never loaded

    def on_load_checkpoint(self, trainer, meta) -> None:
        self.load_record(trainer, meta)

    def on_batch_end(self, trainer, epoch, batch, logs) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0 and batch + 1 < trainer.num_batches:
            self.save(trainer, epoch, batch + 1)

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        self.update(trainer, epoch, logs)
        self.save(trainer, epoch + 1, 0)

    def save(self, trainer, epoch: int, next_batch: int) -> Path | None:
        """Write the checkpoint of position (epoch, next_batch) now; its path (None off rank 0)."""
        if dd.rank() != 0:
            return None
        meta, tensors = trainer.checkpoint_state(epoch, next_batch)
        meta["best"] = self.record()
        protect = (self.best_step,) if self.best_step is not None else ()
        return save_checkpoint(
            self.dirpath, trainer.global_step, trainer.model, meta, tensors, keep=self.keep, protect=protect
        )


class ReduceLROnPlateau(Monitor):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement
    (Keras' class and arguments), then wait ``cooldown`` epochs; never below ``min_lr``."""

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

    def on_epoch_end(self, trainer, epoch, logs) -> None:
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


class LambdaCallback(Callback):
    """Callbacks from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``;
    ``on_train_begin`` and ``on_train_end`` take no arguments."""

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


def from_config(config, run_dir: str | os.PathLike | None = None) -> list[Callback]:
    """The callbacks a :class:`~biolstm.train.TrainerConfig` asks for, in the Trainer's order:
    GradNormLogger (``log_grad_norms``), CSVLogger of history.csv (a run folder), EarlyStopping
    (``early_stopping``), RestoreBest (``restore_best``), Checkpointer (a run folder;
    ``checkpoint_every``, ``keep_checkpoints``). All follow ``val_loss`` and let runs without
    validation data pass."""
    run_dir = Path(run_dir) if run_dir is not None else None
    out: list[Callback] = []
    if config.log_grad_norms:
        out.append(GradNormLogger(run_dir / "grad_norms.csv" if run_dir is not None else None))
    if run_dir is not None:
        out.append(CSVLogger(run_dir / "history.csv"))
    if config.early_stopping:
        out.append(EarlyStopping(patience=config.early_stopping, mode="min", strict=False))
    if config.restore_best:
        out.append(RestoreBest(mode="min", strict=False))
    if run_dir is not None:
        out.append(Checkpointer(run_dir, every_n_train_steps=config.checkpoint_every, keep=config.keep_checkpoints))
    return out


__all__ = [
    "CSVLogger",
    "Callback",
    "Checkpointer",
    "EarlyStopping",
    "GradNormLogger",
    "LambdaCallback",
    "Monitor",
    "ReduceLROnPlateau",
    "RestoreBest",
    "from_config",
]
