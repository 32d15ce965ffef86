"""Run folders: recognisable, locked while written, and never a place to lose a user's files.

A folder that ``biolstm train`` created holds a marker file, ``.biolstm-run``, written before
anything else. Only a marked folder can be resumed. While a process writes a run folder it
holds an exclusive lock on ``.biolstm.lock`` (``filelock``: an OS-level lock, released when
the process ends, even by SIGKILL), and ``.biolstm.owner`` names that process so that a second
one is refused with a line saying who holds the folder.

Commands that write next to a run (``predict -o``, ``evaluate --json``) go through
:func:`output_path`: a run's own files are never a destination, an existing file is replaced
only when the user asks for it, and a folder gets a default file name.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._io import atomic_write_text
from .._version import __version__
from ..errors import InputError

MARKER = ".biolstm-run"
LOCK = ".biolstm.lock"
OWNER = ".biolstm.owner"
FORMAT = "biolstm-run/1"
# Files a run writes into its folder; together with ckpt-* and explain/ they are the run's own.
RUN_FILES = frozenset(
    {MARKER, LOCK, OWNER, "config.yaml", "state.json", "split.json", "model.safetensors", "model.json",
     "history.csv", "grad_norms.csv", "metrics.json", "test_predictions.tsv", "report.html"}
)  # fmt: skip


def is_run(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` was created by ``biolstm train`` (it holds the marker)."""
    return (Path(folder) / MARKER).is_file()


def write_marker(folder: Path) -> None:
    info = {"format": FORMAT, "biolstm": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_text(folder / MARKER, json.dumps(info) + "\n")


def check_resumable(folder: Path) -> None:
    """InputError unless ``folder`` is a run folder that ``biolstm train`` created."""
    if not folder.exists():
        raise InputError(f"--out: {folder} does not exist; --resume continues a run folder that biolstm train created")
    if not folder.is_dir():
        raise InputError(f"--out: {folder} is a file; --resume expects a run folder")
    if not is_run(folder) and looks_like_run(folder):
        raise InputError(
            f"--out: {folder} has config.yaml and state.json but no {MARKER} marker (a run from an earlier biolstm, "
            f"or copied without hidden files); if biolstm train wrote it, create an empty {folder / MARKER} and resume"
        )
    if not is_run(folder):
        raise InputError(
            f"--out: {folder} is not a biolstm run folder (it has no {MARKER} marker); --resume only continues "
            "runs that biolstm train created, and never writes into other folders"
        )


def _owner(folder: Path) -> str:
    try:
        info = json.loads((folder / OWNER).read_text(encoding="utf-8"))
        return f"process {int(info['pid'])} on {info['host']} ({info['command']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def locked(folder: Path, what: str = "--out") -> Iterator[None]:
    """Hold the run folder's exclusive lock; InputError naming the holder if another process has it."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(
            f"{what}: {folder} is in use by {_owner(folder)}; wait for it to end or choose another folder"
        ) from None
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(["biolstm", *sys.argv[1:2]]) if sys.argv else "biolstm",
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        atomic_write_text(folder / OWNER, json.dumps(info) + "\n")
        yield
    finally:
        try:
            (folder / OWNER).unlink(missing_ok=True)
        finally:
            lock.release()


def looks_like_run(folder: Path) -> bool:
    """A marked run, or one from before the marker (config.yaml and state.json, as load_run reads)."""
    return is_run(folder) or ((folder / "config.yaml").is_file() and (folder / "state.json").is_file())


def _run_of(path: Path) -> Path | None:
    """The run folder that ``path`` lies in (at any depth), or None."""
    for parent in path.parents:
        if looks_like_run(parent):
            return parent
    return None


def output_path(path: str | os.PathLike, default_name: str, what: str, overwrite: bool = False) -> Path:
    """Where a command's output file goes, checked before any work.

    A folder (existing, or named with a trailing slash) gets ``default_name`` inside it. A run's
    own files are refused always; any other existing file only with ``overwrite``."""
    raw = str(path)
    p = Path(path)
    if p.is_dir() or raw.endswith(("/", os.sep)):
        p = p / default_name
    if p.is_dir():
        raise InputError(f"{what}: {p} is a folder; expected a file name")
    resolved = p.resolve()
    run = _run_of(resolved)
    if run is not None:
        inside = resolved.relative_to(run.resolve()).parts
        own = inside[0] in RUN_FILES or inside[0].startswith(("ckpt-", ".")) or inside[0] == "explain"
        if own or p.exists():  # an existing file in a run folder is the run's (plots, tables) or kept there
            raise InputError(f"{what}: {p} is a file of the run {run}; biolstm never overwrites a run's own files")
    if p.exists() and not p.is_file():
        raise InputError(f"{what}: {p} is not a regular file; expected a file name")
    if p.exists() and not overwrite:
        raise InputError(f"{what}: {p} already exists; pass --overwrite to replace it, or choose another name")
    base = p.parent
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        raise InputError(f"{what}: {p} cannot be created ({base} is a file, not a folder)")
    if not os.access(base, os.W_OK):
        raise InputError(f"{what}: {p} cannot be written ({base} is not writable); choose another folder")
    return p
