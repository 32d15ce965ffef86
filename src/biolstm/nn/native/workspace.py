"""Reusable float32 buffers for the kernels' largest temporaries, each owned by a lease.

glibc gives buffers above 32 MiB back to the system when they are freed, so each fresh one is
faulted in again page by page (about 20 ms for 50 MB on the benchmark machine, as long as the
matrix product that fills it). A :class:`Workspace` keeps such buffers for the next call of the
same size. Ownership is explicit: :meth:`Workspace.lease` hands out a buffer wrapped in a
:class:`Lease`, and the buffer goes back to the pool only when the lease is released, by
:meth:`Lease.release` or when its holder drops it (the MinRNN layer keeps its lease on the
autograd node that saved the buffer for backward, so the buffer is reused only once that node,
and every tensor it saved, is gone). Nothing is inferred from reference counts.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

WORKSPACE_MAX_BYTES = 256 * 2**20  # kept scratch buffers are at most this large (here and in the engine)


class Lease:
    """A buffer of a :class:`Workspace` in use: ``tensor`` is valid until :meth:`release`."""

    __slots__ = ("_buf", "_pool", "tensor")

    def __init__(self, pool: Workspace | None, buf: bytearray | None, tensor: Tensor) -> None:
        self._pool, self._buf, self.tensor = pool, buf, tensor

    def release(self) -> None:
        """Give the buffer back (idempotent). The tensor must not be used afterwards."""
        pool, buf = self._pool, self._buf
        self._pool = self._buf = self.tensor = None
        if pool is not None and buf is not None:
            pool._give_back(buf)

    def __del__(self) -> None:
        self.release()


class Workspace:
    """Up to ``keep`` free buffers of MIN_BYTES..WORKSPACE_MAX_BYTES (a 100,000-step sequence
    would otherwise keep 1.2 GB after its step); smaller or larger requests get a plain tensor."""

    MIN_BYTES = 8 << 20  # smaller buffers glibc recycles itself

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def lease(self, shape: tuple[int, ...]) -> Lease:
        """An uninitialised float32 tensor of ``shape`` under a lease, on a free kept buffer of
        the same size where there is one."""
        nbytes = 4 * torch.Size(shape).numel()
        if not self.MIN_BYTES <= nbytes <= WORKSPACE_MAX_BYTES:
            return Lease(None, None, torch.empty(shape))
        with self._lock:
            buf = next((b for b in self._free if len(b) == nbytes), None)
            if buf is not None:
                self._free.remove(buf)
        if buf is None:
            buf = bytearray(nbytes)
        return Lease(self, buf, torch.frombuffer(buf, dtype=torch.float32).view(shape))

    def _give_back(self, buf: bytearray) -> None:
        with self._lock:
            self._free.append(buf)
            del self._free[: max(0, len(self._free) - self.keep)]  # the oldest go

    def clear(self) -> None:
        """Drop the free buffers (those leased live on with their leases)."""
        with self._lock:
            self._free.clear()


workspace = Workspace()
