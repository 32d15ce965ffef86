"""How many CPUs this process may really use, and torch's thread count set from it.

``os.cpu_count()`` (and torch's default) counts the machine's cores, not those a container's
CPU quota or the process's affinity mask allow; more threads than that oversubscribe the CPUs
and every parallel region waits for threads that are not running.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup's CPU quota (v2 ``cpu.max``, v1 ``cfs_quota_us``), or None."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (at least 1)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def default_threads() -> int:
    """OMP_NUM_THREADS where the user or a launcher (torchrun sets 1) gave it; else this
    process's share of :func:`available_cpus` (divided among torchrun's local processes)."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, available_cpus() // (int(local) if local.isdigit() and int(local) > 0 else 1))


def use_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (None: :func:`default_threads`); returns it."""
    import torch

    from .validation import check_positive_int

    if threads is not None:
        check_positive_int(threads, "threads")
    n = threads or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
