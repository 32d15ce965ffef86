"""Handing freed heap memory back to the operating system; the process's peak resident memory.

glibc keeps memory that tensors of a few MiB freed inside the process's heap (it grows its
mmap threshold to 32 MiB after the first large free), so a loop that allocates and frees
workspaces, as checkpointing through time does once per segment, holds on to a growing
amount of freed memory: resident memory ends far above what live tensors need.
``malloc_trim(0)`` returns those free pages. Elsewhere (no glibc) this is a no-op.
"""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; True where glibc's malloc_trim ran."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def reset_peak_resident() -> None:
    """Set the process's peak resident memory (VmHWM, Linux) to its current resident memory, so
    that a later :func:`peak_resident_mib` measures from here (the peak is inherited across exec)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def peak_resident_mib() -> float:
    """The process's peak resident memory (VmHWM, Linux) in MiB."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024
