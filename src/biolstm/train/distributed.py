"""Data-parallel training on torch.distributed (DDP): gloo on CPU, NCCL on GPU.

Start one process per device with ``torchrun --nproc_per_node N ...`` (or ``biolstm train
--nproc N``, which calls torchrun). The Trainer notices the process group (it creates it
from torchrun's environment when nobody has) and then:

* cuts every global batch of ``batch_size`` rows into equal consecutive shards, one per
  process (the batch order still comes from the seed and the epoch alone), and weights each
  shard's loss by its share of the batch, so that DDP's averaged gradient is the gradient of
  the whole batch: the same optimiser steps as one process with the same ``batch_size``;
* sums the running loss over the processes and gathers outputs for the epoch's metrics, so
  every process logs the same numbers;
* writes checkpoints, history.csv and grad_norms.csv from rank 0 only; every rank reads the
  same checkpoint on resume, and the checkpoint counts global batches, so a run can resume
  with a different number of processes.

A process group that ``setup()`` created is destroyed when the process exits (``teardown``,
registered with atexit): left to interpreter shutdown, gloo's worker threads can be destroyed
while still joinable, and the process aborts ("terminate called without an active exception")
after its work is done. A group the caller created is the caller's to destroy.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch import Tensor


def launched() -> bool:
    """True in a process started by torchrun (or any launcher setting WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup() -> None:
    """Create the process group from torchrun's environment if there is one and none exists:
    NCCL when CUDA is available, else gloo."""
    global _created
    if launched() and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
        _created = True
        atexit.register(teardown)  # runs before the exit handlers registered earlier


_created = False  # setup() made the default group, so teardown() may destroy it


def teardown() -> None:
    """Destroy the process group that ``setup()`` created, if it still exists (run at exit; may
    also be called earlier). Groups created by the caller are left alone."""
    global _created
    if _created and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _created = False


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_device() -> torch.device:
    """This process's device: its own GPU (LOCAL_RANK) under NCCL, else the CPU."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def barrier() -> None:
    if active():
        dist.barrier()


def shard(idx: Tensor) -> tuple[Tensor, float]:
    """This rank's consecutive part of a global batch and the factor (its rows x world / batch
    rows) that makes DDP's mean of shard gradients the gradient of the batch's mean loss. A rank
    left without rows (a batch smaller than the world) gets one row with factor 0."""
    world = world_size()
    if world == 1:
        return idx, 1.0
    part = idx.tensor_split(world)[rank()]
    if len(part) == 0:
        return idx[:1], 0.0
    return part, len(part) * world / len(idx)


def sum_floats(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64)."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_true(flag: bool, device: torch.device) -> bool:
    """True only if ``flag`` is true in every process (so all take the same branch)."""
    if not active():
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def gather_rows(t: Tensor, rows: int) -> Tensor:
    """Concatenate every rank's first ``rows`` rows of ``t`` in rank order (shards may differ
    in length by one, so they are padded for all_gather and cut back)."""
    if not active():
        return t[:rows]
    device = t.device
    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(counts, torch.tensor([rows], device=device))
    longest = int(max(c.item() for c in counts))
    padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=device)
    padded[:rows] = t[:rows]
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(c.item())] for p, c in zip(parts, counts)])
