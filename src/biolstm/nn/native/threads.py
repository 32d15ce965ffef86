"""Splitting a kernel call's lanes over threads: OpenMP inside the kernel, else Python threads."""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import torch

_pool: dict[int, ThreadPoolExecutor] = {}
if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's threads: start afresh
    os.register_at_fork(after_in_child=_pool.clear)


def run_lanes(openmp: bool, fn, lanes: int, work: int, *args) -> None:
    """Call ``fn(*args, lane0, lane1, threads)`` over ``lanes`` lanes, split over torch's thread
    count when there is enough ``work`` (elements) to pay for the threads: by OpenMP inside the
    kernel when it was built with it (``openmp``), else by one call per Python thread (ctypes
    releases the GIL)."""
    n = max(1, min(torch.get_num_threads(), lanes, work // 65536 or 1))
    if n == 1 or openmp:
        fn(*args, 0, lanes, n)
        return
    pool = _pool.get(n)
    if pool is None:
        pool = _pool[n] = ThreadPoolExecutor(n, thread_name_prefix="biolstm-kernel")
    bounds = [lanes * k // n for k in range(n + 1)]
    for f in [pool.submit(fn, *args, lo, hi, 1) for lo, hi in itertools.pairwise(bounds)]:
        f.result()
