"""Keras' callbacks for the facade: the Trainer's own (:mod:`biolstm.train.callbacks`), under
Keras' names and arguments, plus ModelCheckpoint, which saves a Keras model.

``EarlyStopping``, ``CSVLogger``, ``ReduceLROnPlateau``, ``LambdaCallback`` and ``Callback``
are the classes the Trainer builds from its config, re-exported, so
``from biolstm.keras.callbacks import EarlyStopping`` is the same object as
``biolstm.train.callbacks.EarlyStopping``; the Trainer's other callbacks (RestoreBest,
GradNormLogger, Checkpointer) work in ``model.fit(callbacks=...)`` too.

Each hook receives the :class:`~biolstm.train.Trainer` (``trainer.model`` is the model being
trained, ``trainer.optimizer`` its optimizer); setting ``trainer.stop_training`` ends the run
after the current epoch.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..train.callbacks import Callback, CSVLogger, EarlyStopping, LambdaCallback, Monitor, ReduceLROnPlateau


class ModelCheckpoint(Monitor):
    """Save the model (``model.save``: safetensors + JSON) after epochs, or only improvements.

    ``filepath`` may contain ``{epoch}`` and logged keys, e.g. ``"ckpt/e{epoch:02d}-{val_loss:.3f}"``.
    (The Trainer's resumable checkpoints are :class:`biolstm.train.callbacks.Checkpointer`.)
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


class TensorBoard(Callback):
    """Write the epoch's logged scalars as TensorBoard event files, laid out as Keras does:
    ``log_dir/train`` gets ``epoch_loss``, ``epoch_<metric>``; ``log_dir/validation`` gets the
    ``val_`` values under the same tags (``epoch_loss``...), and the learning rate goes to
    ``train`` as ``epoch_learning_rate``. Steps are the epoch numbers from 0. Uses
    ``torch.utils.tensorboard`` (needs the ``tensorboard`` package).
    """

    def __init__(self, log_dir: str | os.PathLike = "logs") -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # pragma: no cover - tensorboard is a dev dependency
            raise ImportError("TensorBoard: needs the tensorboard package (pip install tensorboard)") from err
        self.log_dir = Path(log_dir)
        self._writer_cls = SummaryWriter
        self._writers: dict = {}

    def _writer(self, split: str):
        if split not in self._writers:
            self._writers[split] = self._writer_cls(log_dir=str(self.log_dir / split))
        return self._writers[split]

    def on_epoch_end(self, trainer, epoch, logs):
        for key, value in logs.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            name = "learning_rate" if name == "lr" else name
            self._writer(split).add_scalar(f"epoch_{name}", float(value), epoch)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, trainer):
        for w in self._writers.values():
            w.close()
        self._writers = {}


__all__ = [
    "CSVLogger", "Callback", "EarlyStopping", "LambdaCallback", "ModelCheckpoint", "ReduceLROnPlateau", "TensorBoard",
]
