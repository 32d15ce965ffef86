"""The one training loop: seeded, checkpointed, resumable bit for bit.

``Trainer(model, TrainerConfig(...), run_dir).fit(x, y)`` trains any ``torch.nn.Module`` on
in-memory tensors. Each epoch's batch order comes from a generator seeded by (seed, epoch)
alone, and every checkpoint holds the weights, the optimizer, all RNG states and the position
(epoch, batch), so a run killed at any moment and resumed with ``resume=True`` ends with the
same weights as one that was never interrupted (on CPU, bit for bit).

The Trainer is the loop only: batches, forward, loss, backward, clipping, the optimiser step,
validation, the learning-rate schedule and the History it returns. Everything else is a
callback (:mod:`biolstm.train.callbacks`), built from the config's keys and followed by the
user's ``callbacks=``: early stopping, restoring the best weights, history.csv, grad_norms.csv
and the checkpoints themselves (a :class:`~biolstm.train.callbacks.Checkpointer` writes them;
:meth:`Trainer.checkpoint_state` says what goes in, and ``fit(resume=True)`` reads them back).
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._cpu import use_threads
from .._io import check_writable
from ..config import Config
from ..validation import check_choice, check_module, check_positive_int, check_real, check_type
from . import distributed as dd
from .callbacks import Checkpointer, from_config
from .checkpoint import join_state_dict, rng_state, set_rng_state, split_state_dict
from .inputs import Inputs, as_tensor
from .metrics import METRICS, compute_metric

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
LOSSES = (
    "mse",
    "mae",
    "huber",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "bce_with_logits",
    "cross_entropy",
    "masked_cross_entropy",  # per-position logits (N, T) or (N, T, K), class ids (N, T); IGNORE_INDEX left out
    "model",  # the model's own loss(out, y) method (e.g. a Forecaster's pinball or Gaussian NLL)
)


MAX_EPOCHS = 1_000_000
IGNORE_INDEX = -100  # masked_cross_entropy: a target left out (padding, unlabelled), as torch's ignore_index
MAX_SEED = 2**32 - 1


class NonFiniteError(FloatingPointError):
    """The loss or a gradient became NaN or infinite."""


@dataclass
class TrainerConfig(Config):
    """How to train. Unknown keys are refused by :meth:`from_dict`."""

    _what = "trainer config"

    epochs: int = 10  # passes over the training data
    batch_size: int = 32  # sequences per optimisation step
    optimizer: str = "adam"  # adam | adamw | sgd | rmsprop
    lr: float = 1e-3  # learning rate
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    loss: str = "mse"  # one of LOSSES; Keras names expect probabilities, *_logits/cross_entropy logits
    clipnorm: float | None = None  # clip the global gradient norm to this value
    clipvalue: float | None = None  # clip every gradient element to [-clipvalue, clipvalue]
    seed: int = 0  # seeds torch, numpy, Python and the batch order
    device: str | None = None  # None: CUDA if available, else CPU
    shuffle: bool = True  # new batch order every epoch (from seed and epoch)
    nonfinite: str = "raise"  # raise | skip: what a NaN/Inf loss or gradient does
    checkpoint_every: int = 0  # also checkpoint every N optimisation steps (0: epoch ends only); Checkpointer
    keep_checkpoints: int = 2  # newest checkpoints kept in the run folder (and the best epoch's); Checkpointer
    amp: bool = False  # mixed precision (autocast around forward and loss), CUDA only
    metrics: tuple[str, ...] = ()  # reported each epoch: accuracy, auc, precision, recall, mae, mse
    lr_schedule: str | None = None  # None | cosine (to 0 over the epochs) | exponential | step, per epoch
    lr_gamma: float = 0.5  # factor of 'exponential' (every epoch) and 'step' (every lr_step epochs)
    lr_step: int = 10  # epochs between 'step' decays
    early_stopping: int = 0  # stop after this many epochs without a lower val_loss (0: never); EarlyStopping
    restore_best: bool = False  # end with the weights of the epoch with the lowest val_loss; RestoreBest
    tbptt: int = 0  # truncated BPTT: chunks of this many steps, state carried between them (0: off)
    log_grad_norms: bool = False  # grad_norms.csv: per epoch and layer, mean and max gradient norm; GradNormLogger
    threads: int | None = None  # torch intra-op threads (None: the CPUs this process may use)

    def __post_init__(self) -> None:
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_choice(self.optimizer, tuple(OPTIMIZERS), "optimizer")
        check_choice(self.loss, LOSSES, "loss")
        check_choice(self.nonfinite, ("raise", "skip"), "nonfinite")
        check_positive_int(self.checkpoint_every, "checkpoint_every", minimum=0)
        check_positive_int(self.keep_checkpoints, "keep_checkpoints", minimum=0)
        for name in ("shuffle", "amp", "restore_best", "log_grad_norms"):
            check_type(getattr(self, name), bool, name)
        if self.lr_schedule is not None:
            check_choice(self.lr_schedule, ("cosine", "exponential", "step"), "lr_schedule")
        check_positive_int(self.lr_step, "lr_step")
        check_positive_int(self.early_stopping, "early_stopping", minimum=0)
        check_positive_int(self.tbptt, "tbptt", minimum=0)
        if self.tbptt and self.amp:
            raise ValueError("tbptt: not supported together with amp; choose one")
        self.metrics = tuple(self.metrics)
        for m in self.metrics:
            check_choice(m, METRICS, "metrics")
        if self.epochs > MAX_EPOCHS:
            raise ValueError(f"epochs: expected an int in [1, {MAX_EPOCHS:,}], got {self.epochs}")
        check_positive_int(self.seed, "seed", minimum=0)
        if self.seed > MAX_SEED:
            raise ValueError(f"seed: expected an int in [0, {MAX_SEED}] (numpy's seed range), got {self.seed}")
        if self.threads is not None:
            check_positive_int(self.threads, "threads")
        for name in ("lr", "weight_decay", "lr_gamma", "clipnorm", "clipvalue"):
            value = getattr(self, name)
            if value is None and name.startswith("clip"):
                continue
            check_real(value, name)
            low = 0.0 if name == "weight_decay" else None
            if not math.isfinite(value) or (value < 0 if low is not None else value <= 0):
                what = "a finite float >= 0" if low is not None else "a finite float > 0"
                raise ValueError(f"{name}: expected {what}, got {value}")


@dataclass
class History:
    """Per-epoch metrics, Keras-style: ``history['loss'][epoch]``."""

    history: dict[str, list[float]] = field(default_factory=dict)

    def add(self, row: dict[str, float]) -> None:
        for k, v in row.items():
            self.history.setdefault(k, []).append(v)

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))


def seed_everything(seed: int) -> None:
    """One seed for torch, numpy and Python's random."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the global generator user code draws from)
    random.seed(seed)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None means CUDA if available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def per_sample_loss(name: str, out: Tensor, y: Tensor) -> Tensor:
    """Loss of each sample  # (N,): element losses averaged over all but the batch axis."""
    if name in ("mse", "mae", "huber", "binary_crossentropy", "bce_with_logits"):
        y = y.to(out.dtype).reshape(out.shape)
        if name == "mse":
            el = (out - y) ** 2
        elif name == "mae":
            el = (out - y).abs()
        elif name == "huber":
            el = F.huber_loss(out, y, reduction="none")
        elif name == "binary_crossentropy":  # Keras: probabilities clipped away from 0 and 1
            p = out.clamp(1e-7, 1 - 1e-7)  # NaN stays NaN (reported, not raised)
            el = -(y * torch.log(p) + (1 - y) * torch.log1p(-p))
        else:
            el = F.binary_cross_entropy_with_logits(out, y, reduction="none")
        return el.reshape(len(el), -1).mean(1)
    if name == "categorical_crossentropy":  # probabilities and one-hot targets
        return -(y * torch.log(out.clamp_min(1e-7))).sum(-1)
    if name == "sparse_categorical_crossentropy":  # probabilities and class indices, per sample or per step
        V = out.shape[-1]  # (B, [T,] V) and (B[, T]): a sample's loss is the mean over its steps, as Keras
        el = F.nll_loss(torch.log(out.clamp_min(1e-7)).reshape(-1, V), y.long().reshape(-1), reduction="none")
        return el.reshape(len(out), -1).mean(1)
    if name == "masked_cross_entropy":
        return _masked_cross_entropy(out, y)
    return F.cross_entropy(out, y.long().view(-1), reduction="none")  # logits and class indices


def _masked_cross_entropy(out: Tensor, y: Tensor) -> Tensor:
    """Per-position cross-entropy, averaged over each sample's positions whose target is not
    IGNORE_INDEX: ``out`` (N, T) binary logits or (N, T, K) class logits, ``y`` (N, T) class
    ids; returns (N,). A sample without such positions has loss 0. Whatever ``out`` holds at
    ignored positions (padding), even NaN, never reaches the loss or its gradient."""
    y = y.long()
    keep = y != IGNORE_INDEX  # (N, T)
    if out.dim() == y.dim():  # one logit per position
        out = out.masked_fill(~keep, 0.0)
        el = F.binary_cross_entropy_with_logits(out, keep * y.to(out.dtype), reduction="none")
    else:  # (N, T, K): cross_entropy takes the classes on axis 1
        out = out.masked_fill(~keep.unsqueeze(-1), 0.0)
        el = F.cross_entropy(out.movedim(-1, 1), y, ignore_index=IGNORE_INDEX, reduction="none")  # (N, T)
    el = el.masked_fill(~keep, 0.0)
    return el.reshape(len(el), -1).sum(1) / keep.reshape(len(el), -1).sum(1).clamp_min(1)


def compute_loss(name: str, out: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean loss over the batch; ``weights`` (N,) scale each sample as Keras' sample weights."""
    per = per_sample_loss(name, out, y)
    return (per * weights).mean() if weights is not None else per.mean()


def class_weights_for(y: Tensor, class_weight: dict | None, loss: str) -> Tensor | None:
    """Per-sample weights from a Keras ``class_weight`` dict (class id -> weight)."""
    if not class_weight:
        return None
    ids = y.argmax(-1) if loss == "categorical_crossentropy" else y.reshape(len(y), -1)[:, 0].round().long()
    table = torch.ones(int(max(max(class_weight), int(ids.max()))) + 1)
    for k, v in class_weight.items():
        table[int(k)] = float(v)
    return table[ids.cpu()].to(y.device)


# meta.json keys the loop writes itself (and save_checkpoint's); any other key belongs to a callback
_OWN_META = frozenset(
    {"epoch", "next_batch", "trainer", "model_config", "optimizer", "scheduler", "scaler", "rng", "history", "running"}
    | {"format", "step", "sha256"}
)


class _Progress:
    """A rich progress bar per epoch at verbose=1, a summary line at verbose=2, else silence."""

    def __init__(self, verbose: int, epoch: int, epochs: int, steps: int) -> None:
        self.verbose, self.bar, self.task = verbose, None, None
        self.label = f"Epoch {epoch + 1}/{epochs}"
        if verbose == 1:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                transient=False,
            )
            self.task = self.bar.add_task(self.label, total=steps, loss=float("nan"))
            self.bar.start()

    def advance(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, loss=loss)

    def close(self, row: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.stop()
        if self.verbose:
            print(f"{self.label} - " + " - ".join(f"{k}: {v:.4f}" for k, v in row.items()), flush=True)


class Trainer:
    """Trains ``model`` with ``config``; checkpoints and logs go to ``run_dir`` if given.

    ``callbacks`` (:class:`~biolstm.train.callbacks.Callback` objects, or any object with some
    of its hooks) run after the ones the config asks for (:func:`~biolstm.train.callbacks.from_config`);
    ``trainer.callbacks`` lists them all.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainerConfig | None = None,
        run_dir: str | os.PathLike | None = None,
        model_config: dict | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        callbacks: list | None = None,
        verbose: int = 0,
    ) -> None:
        check_module(model)
        self.model = model
        self.given_optimizer = optimizer  # used instead of config.optimizer when given
        self.verbose = verbose  # 0 silent, 1 progress bar, 2 one line per epoch
        self.stop_training = False  # a callback sets this to end training after the epoch
        self.config = config or TrainerConfig()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks = [*from_config(self.config, self.run_dir), *(callbacks or [])]
        self.model_config = model_config  # architecture, stored with every checkpoint
        self.device = resolve_device(self.config.device)
        self.history = History()
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler = None  # learning-rate schedule, stepped per epoch
        self.scaler = None  # float16 loss scaling under CUDA autocast
        self.global_step = 0
        self.num_batches = 0  # batches in the current epoch
        self._running: dict = {}  # the current epoch's loss sum and count, and its outputs and targets
        self._outs: list[Tensor] = []
        self._ys: list[Tensor] = []
        self._carried: dict = {}  # checkpoint meta of callbacks absent now, kept for a later session
        self._net: nn.Module = model  # what forward goes through: the model, or its DDP wrapper

    @property
    def checkpoint_callback(self) -> Checkpointer | None:
        """The first Checkpointer among the callbacks: what ``fit(resume=True)`` resumes from."""
        return next((cb for cb in self.callbacks if isinstance(cb, Checkpointer)), None)

    # ------------------------------------------------------------------ pieces
    def _make_optimizer(self) -> torch.optim.Optimizer:
        if self.given_optimizer is not None:
            return self.given_optimizer
        c = self.config
        return OPTIMIZERS[c.optimizer](self.model.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def _make_scheduler(self):
        c, opt = self.config, self.optimizer
        if c.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.epochs)
        if c.lr_schedule == "exponential":
            return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=c.lr_gamma)
        if c.lr_schedule == "step":
            return torch.optim.lr_scheduler.StepLR(opt, step_size=c.lr_step, gamma=c.lr_gamma)
        return None

    def _batches(self, n: int, epoch: int) -> list[Tensor]:
        if self.config.shuffle:
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        return list(order.split(self.config.batch_size))

    def checkpoint_state(self, epoch: int, next_batch: int) -> tuple[dict, dict[str, Tensor]]:
        """What a checkpoint at position (``epoch``, ``next_batch``) holds: meta.json's content
        and the tensors for state.safetensors. The loop's part (position, configs, optimizer,
        schedule, loss scaler, RNG states, history and, inside an epoch, its running loss and
        predictions), then what each callback adds in on_save_checkpoint."""
        opt_tensors, opt_meta = split_state_dict(self.optimizer.state_dict(), "optimizer")
        sched_tensors, sched_meta = split_state_dict(
            self.scheduler.state_dict() if self.scheduler is not None else None, "scheduler"
        )
        rng_tensors, rng_meta = rng_state()
        inside = next_batch > 0  # an epoch's end starts the next one afresh
        meta = {
            **self._carried,
            "epoch": epoch,
            "next_batch": next_batch,
            "trainer": asdict(self.config),
            "model_config": self.model_config,
            "optimizer": opt_meta,
            "scheduler": sched_meta,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_meta,
            "history": self.history.history,
            "running": dict(self._running) if inside else {},
        }
        tensors = {**opt_tensors, **sched_tensors, **rng_tensors}
        if inside and self._outs:
            tensors.update({"running/out": torch.cat(self._outs), "running/y": torch.cat(self._ys)})
        self._call("on_save_checkpoint", meta)
        return meta, tensors

    def _restore(self) -> tuple[int, int, dict, dict, dict | None]:
        """Load the loop's state from the newest checkpoint that verifies (the Checkpointer
        finds it; none at all starts at epoch 0): (epoch, next batch, running sums, running
        tensors, meta)."""
        ck = self.checkpoint_callback
        found = ck.latest() if ck is not None else None
        if found is None:
            return 0, 0, {}, {}, None
        _, (model_t, extra_t, meta) = found
        self.model.load_state_dict(model_t)
        self.optimizer.load_state_dict(join_state_dict(extra_t, meta["optimizer"]))
        if self.scheduler is not None and meta.get("scheduler") is not None:
            self.scheduler.load_state_dict(join_state_dict(extra_t, meta["scheduler"]))
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        set_rng_state(extra_t, meta["rng"])
        self.history = History(meta["history"])
        self.global_step = meta["step"]
        self._carried = {k: v for k, v in meta.items() if k not in _OWN_META}
        kept = {k: v for k, v in extra_t.items() if k.startswith("running/")}
        return meta["epoch"], meta["next_batch"], meta.get("running", {}), kept, meta

    def _call(self, hook: str, *args) -> None:
        """Run ``hook`` on every callback that has it; Checkpointers last (they save what the
        others did)."""
        for cb in sorted(self.callbacks, key=lambda cb: isinstance(cb, Checkpointer)):
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def _nonfinite(self, what: str, epoch: int, batch: int) -> bool:
        msg = (
            f"{what} is not finite at epoch {epoch}, batch {batch}; try gradient clipping "
            f"(clipnorm=1.0) or a lower learning rate (now {self.config.lr})"
        )
        if self.config.nonfinite == "raise":
            raise NonFiniteError(msg)
        return True  # skip this batch

    def _loss(self, out: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
        if self.config.loss != "model":
            return compute_loss(self.config.loss, out, y, weights)
        if not callable(getattr(self.model, "loss", None)):
            raise ValueError(f"loss: 'model' needs a model with a loss(out, y) method, got {type(self.model).__name__}")
        if weights is None:
            return self.model.loss(out, y.to(out.dtype))
        if not callable(getattr(self.model, "sample_weights", None)):
            raise ValueError("class_weight: not supported with loss='model'")
        return self.model.loss(out, y.to(out.dtype), weights)  # a model that weights samples itself

    def _disk_needed(self) -> int:
        """Bytes the run folder will need: the kept checkpoints (weights + optimizer state,
        about 3x the weights for Adam), one more being written, the best one, the final
        model, and 16 MiB for logs and plots."""
        weights = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        return (self.config.keep_checkpoints + 2) * 3 * weights + weights + 16 * 2**20

    # ------------------------------------------------------------------ public
    def evaluate(self, x, y, batch_size: int | None = None) -> dict[str, float]:
        """Mean loss and the configured metrics over ``x, y`` in eval mode."""
        y = as_tensor(y, "y")
        out = self.predict(x, batch_size)
        if len(out) != len(y):
            raise ValueError(f"y: expected {len(out)} targets (one per sample in x), got {len(y)}")
        with torch.no_grad():
            res = {"loss": float(self._loss(out, y))}
        res.update(self._metrics([out], [y]))
        return res

    def predict(self, x, batch_size: int | None = None) -> Tensor:
        """The model's outputs for every row of ``x`` (any accepted input form), in eval mode, on CPU."""
        inputs = x if isinstance(x, Inputs) else Inputs(x)
        bs = batch_size or self.config.batch_size
        self.model.to(self.device)
        was = self.model.training
        self.model.eval()
        outs = []
        with torch.no_grad():
            for args, kwargs in inputs.batches(list(torch.arange(len(inputs)).split(bs)), self.device):
                outs.append(self.model(*args, **kwargs).float().cpu())
        self.model.train(was)
        if not outs:
            raise ValueError("x: expected at least one sample, got none")
        return torch.cat(outs)

    def _metrics(self, outs: list[Tensor], ys: list[Tensor]) -> dict[str, float]:
        """The configured metrics, or the model's own (``model.packed_metrics(out, y)``: a dict,
        e.g. per output of a Keras functional model with several outputs)."""
        if not self._collects_outputs or not outs:
            return {}
        out, y = torch.cat(outs), torch.cat(ys)
        if self._model_metrics is not None:
            return self._model_metrics(out, y)
        return {m: compute_metric(m, out, y, self.config.loss) for m in self.config.metrics}

    @property
    def _model_metrics(self):
        return getattr(self.model, "packed_metrics", None) if self.config.loss == "model" else None

    @property
    def _collects_outputs(self) -> bool:
        return bool(self.config.metrics) or self._model_metrics is not None

    def fit(
        self, x, y, validation_data: tuple | None = None, resume: bool = False, class_weight: dict | None = None
    ) -> History:
        """Train; with ``resume=True`` continue from the newest valid checkpoint in run_dir
        (the Checkpointer's folder), callbacks included (on_load_checkpoint).

        ``class_weight`` (class id -> weight) scales each sample's loss, as in Keras.
        """
        c = self.config
        x, y = Inputs(x), as_tensor(y, "y")
        if len(x) != len(y):
            raise ValueError(f"y: expected {len(x)} targets (one per sequence in x), got {len(y)}")
        if len(x) == 0:
            raise ValueError("x: expected at least one training sequence, got none")
        x.check_finite("x")
        Inputs(y).check_finite("y")
        if self.run_dir is not None and dd.rank() == 0:
            check_writable(self.run_dir, self._disk_needed(), probe=True)  # now, not hours later
        if c.loss == "model" and callable(getattr(self.model, "sample_weights", None)):
            weights = self.model.sample_weights(y, class_weight)
        else:
            weights = class_weights_for(y, class_weight, c.loss)
        dd.setup()  # a process group from torchrun's environment, if launched by it
        world = dd.world_size()
        if world > 1 and c.device is None:
            self.device = dd.local_device()
        self.model.to(self.device)
        if c.threads is not None:
            use_threads(c.threads)
        seed_everything(c.seed)
        if world == 1:
            self._net = self.model
        elif self._net is self.model:  # wrapped once: a second fit() reuses the wrapper and its hooks
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        use_amp = c.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_amp else None  # float16 needs loss scaling
        self._carried = {}
        start_epoch, start_batch, running, kept, meta = self._restore() if resume else (0, 0, {}, {}, None)
        if dd.rank() > 0:  # its own dropout masks: the same seed would repeat rank 0's on other rows
            torch.manual_seed(c.seed * 1_000_003 + 7_919 * dd.rank() + self.global_step)
        self.stop_training = False
        self._call("on_train_begin")
        if meta is not None:
            self._call("on_load_checkpoint", meta)
        params = [p for p in self.model.parameters() if p.requires_grad]
        for epoch in range(start_epoch, c.epochs):
            self.model.train()
            batches = self._batches(len(x), epoch)
            self.num_batches = len(batches)
            first = start_batch if epoch == start_epoch else 0
            # this epoch's running loss and predictions (restored mid-epoch, so the logged
            # numbers match an uninterrupted run; checkpoints inside the epoch hold them)
            resumed = epoch == start_epoch and bool(running)
            run = self._running = dict(running) if resumed else {"loss": 0.0, "n": 0}
            outs = self._outs = [kept["running/out"]] if resumed and "running/out" in kept else []
            ys = self._ys = [kept["running/y"]] if resumed and "running/y" in kept else []
            self._call("on_epoch_begin", epoch)
            progress = _Progress(self.verbose if dd.rank() == 0 else 0, epoch, c.epochs, len(batches) - first)
            shards = [dd.shard(idx) for idx in batches]  # this process's rows of each global batch (all, alone)
            loaded = x.batches([part for part, _ in shards[first:]], self.device)
            for b in range(first, len(batches)):
                idx = batches[b]
                part, share = shards[b]
                args, kwargs = next(loaded)
                yb = y[part].to(self.device)
                wb = weights[part].to(self.device) if weights is not None else None
                if c.tbptt:
                    out, loss = self._tbptt_batch(args, kwargs, yb, params, epoch, b, share)
                    if out is None:
                        continue
                else:
                    self.optimizer.zero_grad(set_to_none=True)
                    with torch.autocast(self.device.type, enabled=use_amp):
                        out = self._net(*args, **kwargs)
                        loss = self._loss(out, yb, wb)
                    if not self._optimise(loss, params, epoch, b, share):
                        continue
                rows = len(part) if share else 0
                total, count = dd.sum_floats([float(loss.detach()) * rows, rows], self.device)
                run["loss"] += total
                run["n"] += int(count)
                if self._collects_outputs:
                    outs.append(dd.gather_rows(out.detach().float(), rows).cpu())
                    ys.append(y[idx])
                progress.advance(run["loss"] / run["n"])
                self._call("on_batch_end", epoch, b, {"loss": run["loss"] / run["n"]})
            row = {"loss": run["loss"] / max(run["n"], 1), **self._metrics(outs, ys)}
            if validation_data is not None:
                row.update({f"val_{k}": v for k, v in self.evaluate(*validation_data).items()})
            if self.scheduler is not None:
                row["lr"] = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
                self.scheduler.step()
            progress.close(row)
            self.history.add(row)
            self._call("on_epoch_end", epoch, row)  # logs, best epoch, early stopping, checkpoint
            if self.stop_training:
                break
        dd.barrier()  # rank 0's last checkpoint is written before anyone reads it (RestoreBest)
        self._call("on_train_end")
        return self.history

    def _optimise(self, loss: Tensor, params: list, epoch: int, b: int, share: float = 1.0) -> bool:
        """Backward, clip, step; False (batch skipped) when the loss or the gradient is not finite.
        ``share`` weights this process's loss by its part of the global batch (data-parallel)."""
        c = self.config
        if not dd.all_true(bool(torch.isfinite(loss)), self.device):  # every process takes the same branch
            self._nonfinite(f"loss ({float(loss.detach())})", epoch, b)
            return False
        if share != 1.0:
            loss = loss * share
        if self.scaler is not None:  # backward outside autocast, on the scaled loss
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        self._call("on_before_optimizer_step")  # gradients as backward left them (e.g. GradNormLogger)
        if c.clipvalue is not None:
            torch.nn.utils.clip_grad_value_(params, c.clipvalue)
        norm = torch.nn.utils.clip_grad_norm_(params, c.clipnorm if c.clipnorm is not None else math.inf)
        if self.scaler is not None:  # an overflow only lowers the scale; the scaler skips the step
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif not torch.isfinite(norm):
            self._nonfinite(f"gradient norm ({float(norm)})", epoch, b)
            return False
        else:
            self.optimizer.step()
        self.global_step += 1
        return True

    def _tbptt_batch(self, args: tuple, kwargs: dict, yb: Tensor, params: list, epoch: int, b: int, share: float = 1.0):
        """Truncated BPTT on one batch: chunks of ``tbptt`` steps, the recurrent state carried
        (detached) from chunk to chunk, one optimiser step per chunk that has a loss. Per-step
        targets ``(B, T, ...)`` give every chunk a loss; one target per sequence is scored on the
        last chunk only, the earlier ones just build the state (without a graph)."""
        from ..nn import carry_state

        if kwargs or len(args) != 1 or args[0].dim() != 3:
            raise ValueError("tbptt: expected one input tensor (batch, time, features) per batch, without lengths")
        x, k = args[0], self.config.tbptt
        T = x.shape[1]
        per_step = yb.dim() >= 2 and yb.shape[1] == T
        outs, losses = [], []
        with carry_state(self.model):
            for lo in range(0, T, k):
                chunk = x[:, lo : lo + k]
                if not per_step and lo + k < T:
                    with torch.no_grad():
                        self.model(chunk)
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                out = self._net(chunk)
                loss = self._loss(out, yb[:, lo : lo + k] if per_step else yb)
                if not self._optimise(loss, params, epoch, b, share):
                    return None, None
                outs.append(out.detach())
                losses.append(loss.detach())
        out = torch.cat(outs, 1) if per_step else outs[-1]
        return out, torch.stack(losses).mean()
