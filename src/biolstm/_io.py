"""Small file helpers shared across the package."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def check_input_file(path: str | os.PathLike, expected: str) -> Path:
    """``path`` as a Path if it is a regular file that can be read; else InputError saying what
    it is instead: missing, a folder, a FIFO or other special file, a symbolic-link loop, or
    unreadable. ``expected`` names the kind of file (``"a FASTA/FASTQ file"``)."""
    import errno
    import stat

    from .errors import InputError

    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputError(f"{p}: expected {expected}, got a loop of symbolic links") from None
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputError(f"{p}: expected {expected}, found no such file") from None
        raise InputError(f"{p}: expected {expected}, but it cannot be read ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{p}: expected {expected}, got a folder")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket or device"
        raise InputError(f"{p}: expected {expected}, got {kind}")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: expected {expected}, but it cannot be read (permission denied)")
    return p


def read_json(path: str | os.PathLike, what: str, kind: type = dict, error: type | None = None):
    """The JSON in ``path`` (a run's or checkpoint's record), checked to be a ``kind``; else
    ``error`` (InputError by default) naming the file and what was expected."""
    import json

    from .errors import InputError

    error = error or InputError
    p = Path(path)
    try:
        check_input_file(p, what)
    except InputError as err:
        raise error(str(err)) from None
    try:
        value = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"{p}: expected {what} (JSON), got a damaged file ({err})") from None
    if not isinstance(value, kind):
        raise error(f"{p}: expected {what} (a JSON {kind.__name__}), got a {type(value).__name__}")
    return value


def follow_umask(path: str | os.PathLike, folder: bool = False) -> None:
    """Give ``path`` the permissions a plain ``open``/``mkdir`` would (0666/0777 less the umask):
    temporary files and folders start as 0600/0700, but labs share run folders."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if folder else 0o666) & ~umask)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike):
    """A text handle whose content replaces ``path`` atomically when the block ends: a temp file
    in the same folder, fsync, rename; an error in the block removes the temp file and leaves
    ``path`` as it was.

    A crash at any moment leaves either the old file or the new one, never a torn one. The
    file gets the permissions a plain ``open`` would give (0666 less the umask).
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # owns fd from here, closed whatever happens
            follow_umask(tmp)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(
    folder: str | os.PathLike, need_bytes: int = 0, what: str = "run folder", probe: bool = False
) -> None:
    """InputError, before any work, if ``folder`` cannot take ``need_bytes``: its nearest
    existing parent is not a writable folder, its disk is read-only, or has less free space.
    With ``probe`` the folder is created and a small file written, synced and removed in it
    (catching what permission bits do not show: a full disk, a read-only mount)."""
    import shutil

    from .errors import InputError

    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise InputError(f"{what}: {p} is a file; expected a folder")
    base = p
    while not base.exists():
        base = base.parent
    if not base.is_dir() or not os.access(base, os.W_OK) or os.statvfs(base).f_flag & os.ST_RDONLY:
        raise InputError(f"{what}: {p} cannot be written ({base} is read-only or not writable); choose another folder")
    free = shutil.disk_usage(base).free
    if free < need_bytes:
        raise InputError(
            f"{what}: {p} is on a disk with {free / 2**20:.0f} MiB free; training needs about "
            f"{need_bytes / 2**20:.0f} MiB for checkpoints and outputs; free space or choose another folder"
        )
    if probe:
        try:
            p.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".write-probe.", dir=p)
            try:
                os.write(fd, b"\0" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
                Path(tmp).unlink(missing_ok=True)
        except OSError as err:
            raise InputError(f"{what}: {p} cannot be written ({err.strerror or err}); choose another folder") from err
