"""``biolstm train | evaluate | predict``: config file in, run folder out.

A run folder holds ``config.yaml`` (the resolved config: every default filled in, paths made
absolute), ``state.json`` (preprocessing fitted on the training split), the checkpoints,
``history.csv``, ``metrics.json`` (the model and its baselines on the test split),
``test_predictions.tsv`` and the plots. Everything that can be wrong with the config or the
data is found before the folder is created, so a failed start never touches an earlier run.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .._cpu import use_threads
from .._io import atomic_write_text, check_writable, read_json
from ..config import apply_overrides, load_yaml, save_yaml
from ..errors import InputError
from . import evaluation as ev
from .runfolder import check_resumable, is_run, locked, output_path, write_marker
from .tasks import TASKS
from .tasks.base import write_tsv

SECTIONS = ("task", "data", "model", "train")


class _Steps:
    """Logs each step on stderr and shows a spinner while it runs (the Trainer's progress bars
    take over during training; ``done()`` ends the spinner first)."""

    def __init__(self, verbose: int) -> None:
        self.verbose, self.status, self.console = verbose, None, None
        if verbose:
            from rich.console import Console

            self.console = Console(stderr=True)

    def __call__(self, msg: str) -> None:
        if not self.verbose:
            return
        self.done()
        self.console.log(msg)
        self.status = self.console.status(f"{msg} ...")
        self.status.start()

    def done(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def parse_config(raw: dict, source: str, base: Path):
    """(task, data config, model config, trainer config dict) from a config mapping."""
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise InputError(f"{source}: unknown section {unknown[0]!r}; expected {', '.join(SECTIONS)}")
    name = raw.get("task")
    if not isinstance(name, str) or name not in TASKS:
        raise InputError(f"{source}: task: expected one of {sorted(TASKS)}, got {name!r}")
    task = TASKS[name]()
    for sec in ("data", "model", "train"):
        if not isinstance(raw.get(sec, {}), dict):
            raise InputError(f"{source}: {sec}: expected a mapping of keys, got {type(raw[sec]).__name__}")
    try:
        data = task.paths(task.data_class.from_dict(raw.get("data", {})), base)
        model_cfg = task.model_config_class().from_dict(raw.get("model", {}))
    except (TypeError, ValueError) as err:  # unknown keys, wrong types or values: name the file
        raise InputError(f"{source}: {err}") from None
    return task, data, model_cfg, dict(raw.get("train", {}))


def _trainer_config(task, state: dict, train: dict, source: str, model_cfg=None):
    from ..train import TrainerConfig
    from ..train.trainer import resolve_device

    loss = task.loss(state, model_cfg) if hasattr(task, "outcome") else task.loss(state)
    if loss == "model" and hasattr(task, "outcome") and train.get("metrics"):
        raise InputError(f"{source}: train.metrics: not with model.members > 1 (the ensemble's training outputs are "
                         "its members'); the test metrics come at the end of the run")  # fmt: skip
    try:
        cfg = TrainerConfig.from_dict({"loss": loss, **train})
    except (TypeError, ValueError) as err:
        key = str(err).split(":", 1)[0]
        prefix = "train." if key in TrainerConfig.__dataclass_fields__ else ""
        raise InputError(f"{source}: {prefix}{err}") from None
    try:
        device = resolve_device(cfg.device)
        usable = device.type == "cpu" or (device.type == "cuda" and torch.cuda.device_count() > (device.index or 0))
    except (RuntimeError, ValueError):
        usable = False
    if not usable:
        gpus = torch.cuda.device_count()
        raise InputError(f"{source}: train.device: expected cpu" + (f" or cuda:0..{gpus - 1}" if gpus else "")
                         + f" (this machine has {gpus} GPU{'s' * (gpus != 1)}), got {cfg.device!r}")  # fmt: skip
    return cfg


def _table(metrics: dict) -> str:
    keys = ev.metric_keys(metrics)
    width = max(len(k) for k in metrics) + 2
    cols = [max(10, len(k) + 2) for k in keys]
    lines = [f"{'':<{width}}" + "".join(f"{k:>{c}}" for k, c in zip(keys, cols))]
    for name, m in metrics.items():
        lines.append(f"{name:<{width}}" + "".join(f"{m.get(k, math.nan):>{c}.4f}" for k, c in zip(keys, cols)))
    return "\n".join(lines)


_SIZE_KEYS = ("hidden_size", "num_layers", "conv_filters", "conv_kernel", "embedding_dim", "projection_size")


def _check_data_keys_unset(task, model_cfg, overrides: dict, source: str) -> None:
    """The model keys the data decides (input width, classes, the head) are not also set to
    something else in the config: one line naming the key, instead of a value silently replaced."""
    from dataclasses import MISSING, fields

    defaults = {f.name: f.default for f in fields(model_cfg) if f.default is not MISSING}
    for key, value in overrides.items():
        mine = getattr(model_cfg, key, None)
        if key in defaults and mine != defaults[key] and _plain(mine) != _plain(value):
            raise InputError(f"{source}: model.{key}: the {task.name} task sets it from the data ({_plain(value)!r}), "
                             f"got {_plain(mine)!r}; leave it out of the config")  # fmt: skip


def _check_model(task, model_cfg, prep, source: str):
    """Before any weight is allocated: the model fits the data (pooling leaves steps to read) and
    training it fits in memory (counted on the meta device, where tensors take no memory); after
    that, one forward pass on two training examples. Returns the model and its config."""
    _check_data_keys_unset(task, model_cfg, prep.model_overrides, source)
    cfg = model_cfg.merged(**prep.model_overrides)
    length, pool = prep.state.get("length"), getattr(cfg, "pool", 1)
    if getattr(cfg, "conv_filters", 0) and isinstance(length, int) and pool > length:
        raise InputError(f"{source}: model.pool: {pool} is longer than the sequences ({length} steps); "
                         f"expected at most {length}")  # fmt: skip
    with torch.device("meta"):
        n = sum(p.numel() for p in task.build_model(cfg).parameters())
    need = 16 * n  # float32 weights, gradients and Adam's two moments
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > total // 2:
        sizes = ", ".join(f"model.{k}: {getattr(cfg, k)}" for k in _SIZE_KEYS if hasattr(cfg, k))
        raise InputError(
            f"{source}: the model has {n:,} parameters ({sizes}): training needs about {need / 2**30:,.0f} GiB, "
            f"more than half of this machine's {total / 2**30:.0f} GiB; choose smaller sizes"
        )
    model = task.build_model(cfg)
    if prep.pca is not None:
        model.set_pca(*prep.pca)
    from ..train.inputs import Inputs

    x = Inputs(prep.train[0])
    args, kwargs = x.take(torch.arange(min(2, len(x))), torch.device("cpu"))
    model.eval()
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    except (RuntimeError, ValueError, IndexError) as err:
        first = " ".join(str(err).split())[:200]
        raise InputError(f"{source}: model: the model cannot read this data ({first})") from None
    finally:
        model.train()
    return model, cfg


def _paths_report(data, run_dir: Path) -> list[str]:
    """What the run reads (the config's paths, resolved) and where it writes: the run folder."""
    found: list[str] = []

    def walk(v):
        if isinstance(v, dict):
            for w in v.values():
                walk(w)
        elif isinstance(v, (list, tuple)):
            for w in v:
                walk(w)
        elif isinstance(v, str) and os.path.isabs(v):
            found.append(v)

    walk(asdict(data))
    return [f"reading {p}" for p in found] + [f"writing only into {run_dir.resolve()}"]


def check_config(config: Path | None, overrides, out: str | Path | None, resume: bool):
    """Every config key, type and file name, and the run folder, checked before any work:
    (task, data, model section, train section, the config's name for messages). A resumed run
    starts from its own resolved config; see :func:`_resume_config`."""
    if resume:
        return _resume_config(config, overrides, Path(out))
    raw = apply_overrides(load_yaml(config), list(overrides))
    task, data, model_cfg, train_raw = parse_config(raw, str(config), config.resolve().parent)
    _trainer_config(task, {"classes": [0, 1]}, train_raw, str(config), model_cfg)
    if out is not None:
        _check_run_folder(Path(out))
    return task, data, model_cfg, train_raw, str(config)


# Training settings a resumed run may change: how long and how it runs, never what it learns from.
RESUMABLE = ("epochs", "early_stopping", "keep_checkpoints", "checkpoint_every", "threads", "device", "log_grad_norms")


def _resume_config(config: Path | None, overrides, run_dir: Path):
    """The run's own resolved config, with the settings in RESUMABLE changed where CONFIG or an
    override asks for it; any other key that differs from the run's is refused (one line), so a
    resumed run keeps its model, its data and how it trains. Nothing is written here."""
    user = apply_overrides(load_yaml(config) if config is not None else {}, list(overrides))
    if config is not None:  # the config's own errors first, naming it
        utask, udata, umodel, utrain = parse_config(user, str(config), config.resolve().parent)
    check_resumable(run_dir)
    source = run_dir / "config.yaml"
    if not source.is_file():
        raise InputError(f"--out: {run_dir} is a run folder without config.yaml; it cannot be resumed")
    ran = load_yaml(source)
    rtask, rdata, rmodel, rtrain = parse_config(ran, str(source), run_dir)
    if config is None:
        utask, udata, umodel, utrain = parse_config(apply_overrides(ran, list(overrides)), "override", run_dir)
    where = str(config) if config is not None else "override"
    if utask.name != rtask.name:
        raise InputError(f"{where}: task {utask.name!r} differs from the run's {rtask.name!r} ({source})")
    state = {"classes": [0, 1]}
    run_train = _trainer_config(rtask, state, rtrain, str(source), rmodel)
    theirs = {"data": asdict(rdata), "model": asdict(rmodel), "train": asdict(run_train)}
    mine = {
        "data": asdict(udata),
        "model": asdict(umodel),
        "train": asdict(_trainer_config(utask, state, {"loss": theirs["train"]["loss"], **utrain}, where, umodel)),
    }  # fmt: skip
    merged = {**ran, "train": dict(ran.get("train", {}))}
    for sec in ("data", "model", "train"):
        for key in user.get(sec, {}) or {}:
            a, b = _plain(mine[sec][key]), _plain(theirs[sec][key])
            if a == b:
                continue
            if sec == "train" and key in RESUMABLE:
                merged["train"][key] = a
                continue
            raise InputError(
                f"{where}: {sec}.{key} is {a!r} but the run has {b!r} ({source}); a resumed run keeps its model, "
                f"data and training settings (it may change only {', '.join('train.' + k for k in RESUMABLE)}); "
                "start a new run with another --out"
            )
    task, data, model_cfg, train_raw = parse_config(merged, str(source), run_dir)
    return task, data, model_cfg, train_raw, str(source)


def _check_run_folder(out: Path) -> None:
    """A new run's folder does not exist yet or is empty, and can be written, before the data is read."""
    if out.is_dir() and any(out.iterdir()):
        if is_run(out):
            raise InputError(f"--out: {out} already holds a run; choose another folder or pass --resume")
        raise InputError(f"--out: {out} already holds files that are not a biolstm run; choose another folder")
    check_writable(out, 16 * 2**20, what="--out")


def _same(a, b, path: str = "") -> str | None:
    """Where two JSON-like values differ (numbers to 1e-9 relative), or None."""
    if isinstance(a, dict) and isinstance(b, dict):  # keys only in ``a`` are new fields, not a change
        for k in sorted(b, key=str):
            d = _same(a[k], b[k], f"{path}.{k}" if path else str(k)) if k in a else (path or str(k))
            if d:
                return d
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return path or "(top)"
        return next((d for x, y in zip(a, b) if (d := _same(x, y, path))), None)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        ok = a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return None if ok else (path or "(top)")
    return None if a == b else (path or "(top)")


def _check_resume(run_dir: Path, prep, model, epochs: int, restart: bool, log) -> None:
    """Before a resumed run writes anything: the data prepares to the same state and the same
    split as when the run began, and a checkpoint verifies, fits the model and has not trained
    past ``epochs`` (or ``restart`` says to begin again)."""
    from ..train import latest_checkpoint

    for name, now in (("state.json", prep.state), ("split.json", prep.split)):
        if now is None or (name == "split.json" and not (run_dir / name).is_file()):
            continue  # a run from before split.json
        diff = _same(_plain(now), read_json(run_dir / name, f"the run's {name}"))
        if diff is not None:
            raise InputError(
                f"--resume: the data no longer prepares to the run's {run_dir / name} (it differs at {diff!r}): "
                "the files the run read have changed since it began; start a new run with another --out"
            )
    notes: list[str] = []
    found = latest_checkpoint(run_dir, notes)
    if found is None:
        if restart:
            return
        what = f"every checkpoint is refused ({'; '.join(notes)})" if notes else "it has no checkpoint yet"
        raise InputError(f"--resume: {run_dir} cannot be resumed: {what}; --restart trains it again from epoch 1")
    for note in notes:
        log(f"note: {note}")
    if restart:
        raise InputError(
            f"--restart: {run_dir} has a checkpoint that verifies ({found[0].name}); resume it without --restart"
        )
    load_weights(model, found[1][0], found[0] / "model.safetensors")
    done = found[1][2].get("epoch", 0)
    if isinstance(done, int) and done > epochs:
        raise InputError(f"--resume: train.epochs {epochs} is fewer than the {done} epochs {run_dir} has trained")


def train(
    config: str | Path | None,
    overrides: list[str] = (),
    out: str | Path | None = None,
    resume: bool = False,
    verbose: int = 1,
    restart: bool = False,
    callbacks: list | None = None,
) -> Path:
    """Train from a config file; returns the run folder. Raises ValueError for bad input.

    ``resume`` continues the run folder ``out`` from its newest checkpoint, with its own config
    (``config`` may be None); ``restart`` (with ``resume``) trains it again from epoch 1 when no
    checkpoint can be resumed. ``callbacks`` go to the Trainer (objects with on_train_begin,
    on_epoch_end(trainer, epoch, row), on_train_end). Under torchrun (WORLD_SIZE > 1) every process prepares the data
    and trains its share of each batch; rank 0 alone writes the run folder, which ``out`` must name."""
    from contextlib import ExitStack

    from ..train import Trainer, seed_everything
    from ..train import distributed as dd
    from ..train.checkpoint import is_own_checkpoint, remove_directory

    if dd.launched() and out is None:
        raise InputError("--out: several processes must write one run folder; name it with --out")
    if resume and out is None:
        raise InputError("--resume: expected the run folder to continue, as --out RUN")
    if restart and not resume:
        raise InputError("--restart: only together with --resume (it trains a run folder again from epoch 1)")
    if config is None and not resume:
        raise InputError("CONFIG: expected a YAML config file (only --resume --out RUN goes without one)")
    config = Path(config) if config is not None else None
    run_dir = Path(out) if out is not None else Path("runs") / f"{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    lead = not dd.launched() or os.environ.get("RANK", "0") == "0"  # before the group exists: torchrun's
    with ExitStack() as stack:
        if resume and lead:  # held from before the first read of the run folder to the end
            if config is not None:
                check_config(config, overrides, None, False)  # the config's own errors come first
            check_resumable(run_dir)
            stack.enter_context(locked(run_dir))
        task, data, model_cfg, train_raw, source = check_config(config, overrides, run_dir, resume)
        log = _Steps(verbose)
        if lead:  # one report under torchrun
            for line in _paths_report(data, run_dir):
                log(line)
        try:
            prep = task.prepare(data, log)
        finally:
            log.done()
        tcfg = _trainer_config(task, prep.state, train_raw, source, model_cfg)
        threads = use_threads(tcfg.threads)  # None stays None in the config: the CPUs of the machine it runs on
        load = os.getloadavg()[0]
        if threads > 1 and load >= 1.0:
            log(f"note: other jobs keep this machine busy (load {load:.1f}); if training is slow, try --threads 1")
        seed_everything(tcfg.seed)  # the model's initial weights: the meta-device count and the dry pass draw nothing
        model, mcfg = _check_model(task, model_cfg, prep, source)
        if resume:
            _check_resume(run_dir, prep, model, tcfg.epochs, restart, log)
        else:
            _check_run_folder(run_dir)  # again: the data took time, and other processes check it too
        if lead:  # after every check that can refuse the run: a refusal stays one line
            warn_small_test(task, prep)
        dd.setup()
        dd.barrier()  # every process has checked the folder before rank 0 writes into it
        verbose = verbose if lead else 0
        log = log if lead else _Steps(0)
        resolved = _plain({"task": task.name, "data": asdict(data), "model": asdict(mcfg), "train": asdict(tcfg)})
        if lead and not resume:
            stack.enter_context(locked(run_dir))
            others = sorted(p.name for p in run_dir.iterdir() if p.name not in (".biolstm.lock", ".biolstm.owner"))
            if others:  # another process got here first
                raise InputError(f"--out: {run_dir} already holds files ({others[0]}); choose another folder")
            write_marker(run_dir)
        if lead and (not resume or resolved != load_yaml(run_dir / "config.yaml")):
            save_yaml(resolved, run_dir / "config.yaml")
        if lead and not resume:
            atomic_write_text(run_dir / "state.json", json.dumps(_plain(prep.state)))
            if prep.split is not None:  # what went where: ids (and chromosomes, groups or times) per part
                atomic_write_text(run_dir / "split.json", json.dumps(_plain(prep.split)))
        if lead and restart:
            for old in sorted(run_dir.glob("ckpt-*")):
                if is_own_checkpoint(old):
                    remove_directory(old)
        log(f"training {type(model).__name__} ({sum(p.numel() for p in model.parameters())} parameters) in {run_dir}")
        trainer = Trainer(
            model, tcfg, run_dir, model_config=_plain(asdict(mcfg)), verbose=verbose, callbacks=callbacks
        )
        log.done()  # the Trainer's progress bars from here
        hist = trainer.fit(*prep.train, validation_data=prep.val, resume=resume and not restart)
        if not lead:  # the other processes' part ends with training
            return run_dir
        _save_model(model, run_dir)
        log("evaluating on the test split")
        out_t = trainer.predict(prep.test[0])
        metrics, extra = task.finish(prep, out_t, model, run_dir, hist.history)
        log(f"wrote {', '.join(extra.pop('files'))}")
        log.done()
        result = {"task": task.name, "split": "test", "n_test": len(prep.test[1]), "metrics": metrics, **extra}
        atomic_write_text(run_dir / "metrics.json", json.dumps(_plain(result), indent=2))
    if verbose:
        print(f"\n{task.name}: test metrics with baselines ({run_dir}/metrics.json)")
        print(_table(metrics))
    return run_dir


SMALL_TEST, SMALL_CLASS = 30, 10  # test parts smaller than these give estimates too noisy to compare models


def warn_small_test(task, prep) -> None:
    """A BiolstmWarning when the test part has fewer than SMALL_TEST examples, or a class fewer
    than SMALL_CLASS: its metrics are too noisy to tell models apart (use --cv)."""
    import warnings

    import numpy as np

    from ..validation import BiolstmWarning

    if not hasattr(task, "outcome"):  # forecasts: windows of one series; backtesting reports their spread
        return
    n, notes = len(prep.test[1]), []
    if n < SMALL_TEST:
        notes.append(f"{n} examples (fewer than {SMALL_TEST})")
    o = task.outcome(prep.state)
    if o.kind_ in ("binary", "multiclass"):
        counts = np.bincount(o.target_truth(prep.test[1]).astype(int), minlength=len(o.classes_))
        few = [f"{c!r} ({int(m)})" for c, m in zip(o.classes_, counts) if m < SMALL_CLASS]
        if few:
            notes.append(f"fewer than {SMALL_CLASS} examples of class {', '.join(few)}")
    if notes:
        warnings.warn(f"the test part has {'; '.join(notes)}: its metrics are noisy estimates; "
                      "--cv K reports the mean and SD over K folds", BiolstmWarning, stacklevel=2)  # fmt: skip


def _plain(v):
    """JSON/YAML-safe copy (tuples to lists, numpy scalars to Python, NaN kept as float)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return v.item()
    return v


def _save_model(model, run_dir: Path) -> None:
    """The final model (the best epoch's with train.restore_best) as run_dir/model.safetensors,
    its SHA-256 in run_dir/model.json (checked whenever the run is loaded)."""
    import tempfile

    from ..train.checkpoint import save_tensors, sha256_file

    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".safetensors", dir=run_dir)
    os.close(fd)
    save_tensors(Path(tmp), dict(model.state_dict()))  # with the umask's permissions, not mkstemp's 0600
    digest = sha256_file(tmp)
    os.replace(tmp, run_dir / "model.safetensors")
    atomic_write_text(run_dir / "model.json", json.dumps({"file": "model.safetensors", "sha256": digest}))


# The largest padded length a run may record: a sequence model reads at most this many steps.
MAX_LENGTH = 10**7


def _check_state(state: dict, path: Path) -> None:
    """The fields of state.json that size arrays are plausible (a hand-edited or damaged file
    must not allocate terabytes)."""
    length = state.get("length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or not 0 < length <= MAX_LENGTH):
        raise InputError(f"{path}: length: expected an int in [1, {MAX_LENGTH:,}], got {length!r}")
    classes = state.get("classes")
    if classes is not None and not (isinstance(classes, list) and len(classes) >= 2):
        raise InputError(f"{path}: classes: expected a list of at least two classes, got {classes!r}")


def load_weights(model, tensors: dict, path: Path) -> None:
    """Load ``tensors`` into ``model``; InputError naming ``path`` for missing, unexpected or
    misshapen tensors, and for weights that are not finite (NaN or infinite)."""
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        lines = [w.strip() for w in str(err).splitlines() if w.strip()]
        detail = "; ".join(lines[1:3]) if len(lines) > 1 else lines[0]
        raise InputError(f"{path}: its tensors do not fit the run's model ({detail[:300]})") from None
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise InputError(f"{path}: tensor {bad[0]!r} holds NaN or infinite values; refusing to predict with it")


def load_run(run_dir: str | Path):
    """(task, data config, model, state, trainer config) of a finished run folder."""
    from ..train import TrainerConfig, latest_checkpoint

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "state.json").is_file():
        raise InputError(f"{run_dir}: expected a run folder with config.yaml and state.json, found none")
    raw = load_yaml(run_dir / "config.yaml")
    task, data, model_cfg, train_raw = parse_config(raw, str(run_dir / "config.yaml"), run_dir)
    state = read_json(run_dir / "state.json", "the run's preprocessing state")
    _check_state(state, run_dir / "state.json")
    model = task.build_model(model_cfg)
    if (run_dir / "model.safetensors").is_file():
        from ..train.checkpoint import load_verified

        record = run_dir / "model.json"
        digest = read_json(record, "the model's record").get("sha256") if record.is_file() else None
        load_weights(model, load_verified(run_dir / "model.safetensors", digest, record), run_dir / "model.safetensors")
    else:  # a run stopped before its end: its newest complete checkpoint
        notes: list[str] = []
        found = latest_checkpoint(run_dir, notes)
        if found is None and notes:
            refused = "; ".join(notes)
            raise InputError(f"{run_dir}: has no model.safetensors, and every checkpoint is refused: {refused}")
        if found is None:
            raise InputError(f"{run_dir}: expected model.safetensors or a checkpoint (ckpt-*), found neither")
        load_weights(model, found[1][0], found[0] / "model.safetensors")
    model.eval()
    try:
        tcfg = TrainerConfig.from_dict(train_raw)
    except (TypeError, ValueError) as err:
        raise InputError(f"{run_dir / 'config.yaml'}: {err}") from None
    return task, data, model, state, tcfg


def evaluate(
    run_dir: str | Path,
    data_path: str | None = None,
    labels: str | None = None,
    label: str | None = None,
    verbose: int = 1,
    threads: int | None = None,
    data_overrides: list[str] = (),
    workers: int | None = None,
    stream: bool = True,
) -> dict:
    """Metrics of a trained run on its test split again, or on new labelled data, beside the
    baselines fitted on the run's training part. New data is ``data_path`` (labels from its
    label column, ``labels`` or ``label``), or any form training reads, given as data-section
    keys (``data_overrides``: ``data.files={a: a.fa, b: b.fa}``, ``data.file=x.fa``,
    ``data.labels=l.csv``, ...) in place of the run's own. ``threads``: torch threads (None:
    the CPUs this process may use). A sequence file as ``data_path`` is streamed (read, encoded
    by ``workers`` processes and predicted in batches; None: :func:`~.streaming.default_workers`)
    unless ``stream`` is False."""
    from ..train import Trainer

    use_threads(threads)
    run_dir = Path(run_dir)
    task, data, model, state, tcfg = load_run(run_dir)
    log = _Steps(verbose)
    trainer = Trainer(model, tcfg.merged(device="cpu" if not torch.cuda.is_available() else None))
    if data_overrides:
        new_data = _new_data(run_dir, data_overrides)
        label_opts = {"labels": labels, "label": label} if task.name == "sequence" else {}
        metrics = task.evaluate_new(new_data, state, data_path, model, trainer.predict,
                                    baselines=_training_baselines(task, data, log), **label_opts)  # fmt: skip
        result = {"task": task.name, "data": data_path or _plain(data_overrides), "metrics": metrics}
    elif data_path is None:  # the same split again (seeded), with the trained preprocessing
        try:
            prep = task.prepare(data, log)
        finally:
            log.done()
        metrics = task.test_metrics(prep, trainer.predict(prep.test[0]), model)
        result = {"task": task.name, "split": "test", "metrics": metrics}
    elif _streams(task, data, stream):  # read, encoded and predicted in batches: flat memory
        from .streaming import default_workers

        metrics = task.evaluate_stream(data, state, data_path, model, trainer.device,
                                       default_workers() if workers is None else workers,
                                       baselines=_training_baselines(task, data, log), labels=labels, label=label,
                                       verbose=verbose)  # fmt: skip
        result = {"task": task.name, "data": str(data_path), "metrics": metrics}
    else:
        label_opts = {"labels": labels, "label": label} if task.name == "sequence" else {}
        metrics = task.evaluate_new(data, state, data_path, model, trainer.predict,
                                    baselines=_training_baselines(task, data, log), **label_opts)  # fmt: skip
        result = {"task": task.name, "data": str(data_path), "metrics": metrics}
    if verbose:
        print(_table(result["metrics"]))
    return result


def backtest_run(run_dir: str | Path, folds: int, data_path: str | None = None, threads: int | None = None,
                 extra: list[str] = (), verbose: int = 1) -> dict:  # fmt: skip
    """``biolstm evaluate RUN --backtest K``: rolling-origin evaluation of a panel run
    (:func:`biolstm.pipeline.tasks.panel.backtest`), the mean over origins printed as a table."""
    from .tasks.panel import backtest

    if not (Path(run_dir) / "config.yaml").is_file():
        raise InputError(f"{run_dir}: expected a run folder with config.yaml, found none")
    name = load_yaml(Path(run_dir) / "config.yaml").get("task")
    if name != "panel":
        raise InputError(f"--backtest: rolling-origin evaluation is for panel runs; {run_dir} is a {name!r} run")
    if extra:
        raise InputError("--backtest: takes DATA (a table with the run's columns), not data.* keys")
    res = backtest(run_dir, folds=folds, data=data_path, threads=threads)
    if verbose:
        print(f"rolling origin: {len(res['folds'])} origins, mean over them ({res['mase_scale']})")
        print(_table(res["mean"]))
    return res


def _new_data(run_dir: Path, overrides: list[str]):
    """The run's data section with ``overrides`` (``data.key=value``; paths relative to the
    current folder) describing new data: the same reader options, other files."""
    bad = [o for o in overrides if not o.lstrip("-").startswith("data.")]
    if bad:
        raise InputError(f"override {bad[0]!r}: evaluate takes only data.* keys (the new data), not the model's")
    raw = load_yaml(run_dir / "config.yaml")
    source = {k: v for k, v in raw.get("data", {}).items() if k not in ("files", "file", "labels")}
    raw = apply_overrides({**raw, "data": source}, list(overrides))
    return parse_config(raw, "override", Path.cwd())[1]


def _training_baselines(task, data, log) -> dict:
    """The baselines fitted on the run's training part ({name: predict(raw inputs)}), prepared
    again from the run's data (seeded: the same split); none, with a note, when the training
    files are not there any more."""
    if not hasattr(task, "outcome"):
        return {}
    try:
        prep = task.prepare(data, lambda m: None)
    except (InputError, OSError) as err:
        log(f"note: no baselines: the run's training data cannot be read again ({str(err)[:160]})")
        return {}
    finally:
        log.done()
    return prep.baseline_fits


def predict(
    run_dir: str | Path,
    data_path: str,
    output: str | Path,
    verbose: int = 1,
    overwrite: bool = False,
    threads: int | None = None,
    workers: int | None = None,
    stream: bool = True,
) -> Path:
    """Write predictions for new data as TSV (classes: probabilities; forecasts: the next steps).

    ``output`` may be a folder (the file is then ``predictions.tsv`` in it); an existing file is
    replaced only with ``overwrite``, and a run's own files never. A sequence file is streamed:
    read and encoded in batches by ``workers`` DataLoader processes (None:
    :func:`~.streaming.default_workers`), predicted under inference mode and written row by row,
    so memory stays flat however many records it holds (``stream=False``: all at once, as the
    other tasks do). The file appears complete or not at all."""

    from .._io import atomic_writer
    from ..train import Trainer

    output = output_path(output, "predictions.tsv", "--output", overwrite)
    use_threads(threads)
    task, data, model, state, tcfg = load_run(run_dir)
    trainer = Trainer(model, tcfg.merged(device="cpu" if not torch.cuda.is_available() else None))
    if _streams(task, data, stream):
        from .streaming import default_workers

        output.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(output) as fh:
            n = task.predict_stream(data, state, data_path, model, fh, trainer.device,
                                    default_workers() if workers is None else workers, verbose=verbose)  # fmt: skip
    else:
        header, rows = task.predict_new(data, state, data_path, model, trainer.predict)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_tsv(output, header, rows)
        n = len(rows)
    if verbose:
        print(f"wrote {n} predictions to {output}")
    return output


def _streams(task, data, stream: bool) -> bool:
    """Whether new data for this run is streamed: a sequence run read from sequence files (a
    genome run's new data is a BED file of regions)."""
    return stream and task.name == "sequence" and getattr(data, "genome", None) is None
