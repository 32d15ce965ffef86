"""Checkpoints: safetensors weights plus JSON metadata, written atomically, never pickled.

A checkpoint is a directory::

    ckpt-00000042/
        model.safetensors   the model's state_dict
        state.safetensors   optimizer tensors and RNG states
        meta.json           format, step, epoch, config, metrics, optimizer/scheduler
                            settings, numpy/Python RNG, SHA-256 of both .safetensors files

It is written under a temporary name, every file is fsynced, and the directory is renamed
into place, so a crash (even SIGKILL) at any moment leaves either the complete checkpoint or
none. Loading verifies the checksums; a damaged checkpoint is refused, never half-loaded.
Pickle files (``torch.save`` output, ``.pt``/``.pkl``) are refused: unpickling can run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .._io import follow_umask, read_json
from ..errors import InputError

FORMAT = "biolstm-checkpoint/1"
_NAME = re.compile(r"^ckpt-(\d{8})$")
CHECKPOINT_FILES = frozenset({"model.safetensors", "state.safetensors", "meta.json"})
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib"}


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded: missing, damaged, foreign or a pickle."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, as meta.json and model.json record it."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))
    follow_umask(path)  # safetensors writes 0600
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def refuse_pickle(path: str | os.PathLike) -> None:
    """Raise CheckpointError if ``path`` is, or looks like, a pickle or torch.save file."""
    p = Path(path)
    if p.is_file():
        with open(p, "rb") as fh:
            head = fh.read(9)
        # a safetensors file starts with its JSON header's length (8 bytes, little-endian; its low
        # byte may be 0x80, a pickle's first byte) and then the header itself, "{"
        safetensors = head[8:9] == b"{"
        pickled = head[:1] == b"\x80" and not safetensors
        if p.suffix.lower() in _PICKLE_SUFFIXES or pickled or head[:4] == b"PK\x03\x04":
            raise CheckpointError(
                f"{p}: expected a biolstm checkpoint directory (safetensors + JSON), got a pickle or "
                f"torch.save file; biolstm never unpickles, because loading a pickle can run arbitrary code"
            )


# ---------------------------------------------------------------------------- state
def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch (CPU and CUDA), numpy and Python RNG states: tensors and JSON parts."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for k, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{k}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the global state users rely on)
    py_version, py_state, py_gauss = random.getstate()
    meta = {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [py_version, list(py_state), py_gauss],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng/cuda/"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][: torch.cuda.device_count()])
    kind, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))  # noqa: NPY002
    version, state, gauss_next = meta["python"]
    random.setstate((version, tuple(state), gauss_next))


def split_state_dict(state: Any, prefix: str) -> tuple[dict[str, torch.Tensor], Any]:
    """Move every tensor of a nested state (optimizer, scheduler) into a flat tensor dict;
    the rest stays as JSON with ``{"__tensor__": key}`` markers."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj, path):
        if isinstance(obj, torch.Tensor):
            tensors[path] = obj
            return {"__tensor__": path}
        if isinstance(obj, dict):
            return {
                "__dict__": [[walk(k, f"{path}/k{i}"), walk(v, f"{path}/{i}")] for i, (k, v) in enumerate(obj.items())]
            }
        if isinstance(obj, (list, tuple)):
            return {
                "__list__" if isinstance(obj, list) else "__tuple__": [
                    walk(v, f"{path}/{i}") for i, v in enumerate(obj)
                ]
            }
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"{prefix}: cannot store a value of type {type(obj).__name__} in a checkpoint")

    return tensors, walk(state, prefix)


def join_state_dict(tensors: dict[str, torch.Tensor], obj: Any) -> Any:
    """Inverse of :func:`split_state_dict`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {join_state_dict(tensors, k): join_state_dict(tensors, v) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            return [join_state_dict(tensors, v) for v in obj["__list__"]]
        if "__tuple__" in obj:
            return tuple(join_state_dict(tensors, v) for v in obj["__tuple__"])
    return obj


# ---------------------------------------------------------------------------- save / load
def remove_directory(path: Path) -> None:
    """Delete directory ``path`` atomically as far as readers can tell: it is first renamed to a
    hidden ``.trash-*`` sibling (one rename: a kill leaves the whole directory under either name),
    then removed; :func:`remove_partial` finishes a removal that a kill interrupted."""
    path = Path(path)
    trash = Path(tempfile.mkdtemp(prefix=f".trash-{path.name}.", dir=path.parent))
    os.rename(path, trash / path.name)  # the final name is gone in one step
    _fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def write_directory_atomically(final: Path, write) -> Path:
    """Build directory ``final`` as a whole: ``write(tmp)`` fills a temporary sibling, which is
    fsynced and renamed into place; an older ``final`` is first renamed out of the way and
    removed afterwards, so every moment leaves a complete directory under the final name or
    none. On any error the temporary is removed. Permissions follow the user's umask."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        follow_umask(tmp, folder=True)  # mkdtemp makes it 0700
        write(tmp)
        _fsync_dir(tmp)
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".trash-{final.name}.", dir=final.parent))
            os.rename(final, old / final.name)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    model: torch.nn.Module,
    meta: dict[str, Any],
    extra_tensors: dict[str, torch.Tensor] | None = None,
    keep: int = 2,
    protect: tuple[int, ...] = (),
) -> Path:
    """Write checkpoint ``ckpt-<step>`` into ``run_dir`` atomically; keep the newest ``keep``
    (and any step in ``protect``, e.g. the best one). Returns its path."""
    run_dir = Path(run_dir)
    final = run_dir / f"ckpt-{step:08d}"
    if final.exists() and not is_own_checkpoint(final):
        raise CheckpointError(
            f"{final}: holds files biolstm did not write, where this checkpoint goes; move that folder away and resume"
        )

    def write(tmp: Path) -> None:
        save_tensors(tmp / "model.safetensors", dict(model.state_dict()))
        save_tensors(tmp / "state.safetensors", extra_tensors or {})
        digests = {name: sha256_file(tmp / name) for name in ("model.safetensors", "state.safetensors")}
        write_json(tmp / "meta.json", dict(meta, format=FORMAT, step=step, sha256=digests))

    write_directory_atomically(final, write)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        if int(_NAME.match(old.name).group(1)) not in protect and is_own_checkpoint(old):
            remove_directory(old)
    return final


def is_own_checkpoint(path: Path) -> bool:
    """Whether directory ``path`` holds only the files biolstm writes into a checkpoint: only
    then may biolstm delete it (a folder a user put files into is left alone)."""
    try:
        return all(p.name in CHECKPOINT_FILES and p.is_file() for p in Path(path).iterdir())
    except OSError:
        return False


def list_checkpoints(run_dir: str | os.PathLike, notes: list[str] | None = None) -> list[Path]:
    """Complete checkpoint directories in ``run_dir`` (named ``ckpt-<step>``, holding meta.json),
    oldest first. A ``ckpt-*`` directory without meta.json is skipped, with a line in ``notes``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for p in sorted(p for p in run_dir.iterdir() if p.is_dir() and _NAME.match(p.name)):
        if (p / "meta.json").is_file():
            found.append(p)
        elif notes is not None:
            notes.append(f"{p.name}: skipped, incomplete (no meta.json)")
    return found


def load_verified(path: str | os.PathLike, digest: str | None, record: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of the safetensors file ``path`` after checking it against ``digest`` (from
    ``record``, the JSON that lists it); a pickle, a missing digest or a mismatch is refused."""
    path = Path(path)
    refuse_pickle(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: expected a safetensors file, found no such file")
    if not digest:
        raise CheckpointError(f"{record}: expected the SHA-256 of {path.name}, found none; refusing an unverified file")
    if sha256_file(path) != digest:
        raise CheckpointError(f"{path}: checksum does not match {record}; the file is damaged or was replaced")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors' own error type: a header or offsets that do not fit the file
        detail = " ".join(str(err).split())[:200]
        raise CheckpointError(f"{path}: expected a safetensors file, got a damaged one ({detail})") from None


def remove_partial(run_dir: str | os.PathLike) -> list[str]:
    """Delete the temporaries that a process killed while writing (``.ckpt-*``) or deleting
    (``.trash-*``) a checkpoint left in ``run_dir``; neither was ever read under a checkpoint's
    name. Returns their names."""
    run_dir = Path(run_dir)
    gone = []
    if run_dir.is_dir():
        gone = sorted(p.name for p in run_dir.iterdir() if p.is_dir() and p.name.startswith((".ckpt-", ".trash-ckpt-")))
    for name in gone:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    return gone


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """Verify and read one checkpoint directory: (model tensors, extra tensors, meta)."""
    path = Path(path)
    refuse_pickle(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise CheckpointError(f"{path}: expected a checkpoint directory with meta.json, found none")
    meta = read_json(meta_path, "a checkpoint's metadata", error=CheckpointError)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: expected format {FORMAT!r}, got {meta.get('format')!r}")
    digests = meta.get("sha256", {})
    files = ("model.safetensors", "state.safetensors")
    model, state = (load_verified(path / f, digests.get(f), meta_path) for f in files)
    return model, state, meta


def latest_checkpoint(run_dir: str | os.PathLike, notes: list[str] | None = None) -> tuple[Path, tuple] | None:
    """The newest checkpoint in ``run_dir`` that verifies, with its contents, or None. Each
    newer one that was refused is named in ``notes``, with the reason."""
    for path in reversed(list_checkpoints(run_dir, notes)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:  # damaged: fall back to the one before
            if notes is not None:
                notes.append(f"{path.name}: refused, {str(err).removeprefix(str(path) + '/').removeprefix(str(path))}")
    return None
