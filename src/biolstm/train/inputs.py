"""What a model's forward takes, one batch of rows at a time.

The Trainer accepts inputs as a tensor (``model(x)``), a tuple of tensors (``model(*x)``; a
list is read as one array), a dict of tensors (``model(**x)``, e.g. ``{"x": X, "lengths": L,
"static": S}``), or any object with ``__len__`` and ``take(indices) -> tensor | tuple | dict``
that loads rows on demand (a sequence file indexed on disk, so a file larger than memory can
be trained on). Every tensor has one row per sample; ``None`` entries are passed as ``None``.

A source that loads rows on demand and has a ``workers`` attribute above 0 is read by that many
DataLoader worker processes, each batch prepared while the model works on the one before. The
batches, and their order, are the same whatever the number of workers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.utils.data
from torch import Tensor


def as_tensor(a, name: str) -> Tensor:
    if isinstance(a, Tensor):
        return a
    try:
        return torch.as_tensor(np.asarray(a))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected an array or tensor, got {type(a).__name__}") from err


def _move(batch, device: torch.device) -> tuple[tuple, dict]:
    if isinstance(batch, dict):
        return (), {k: None if v is None else v.to(device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return tuple(None if v is None else v.to(device) for v in batch), {}
    return (batch.to(device),), {}


class Inputs:
    """Uniform row access to the accepted input forms (see the module docstring)."""

    def __init__(self, x, name: str = "x") -> None:
        self.source = None
        if hasattr(x, "take") and hasattr(x, "__len__") and not isinstance(x, (Tensor, np.ndarray)):
            self.source, self.data, self.n = x, None, len(x)
            return
        if isinstance(x, dict):
            self.data = {k: None if v is None else as_tensor(v, f"{name}[{k!r}]") for k, v in x.items()}
            rows = {k: len(v) for k, v in self.data.items() if v is not None}
        elif isinstance(x, tuple):
            self.data = tuple(None if v is None else as_tensor(v, f"{name}[{i}]") for i, v in enumerate(x))
            rows = {i: len(v) for i, v in enumerate(self.data) if v is not None}
        else:
            self.data = as_tensor(x, name)
            rows = {name: len(self.data)}
        if len(set(rows.values())) > 1:
            raise ValueError(f"{name}: expected the same number of rows in every input, got {rows}")
        self.n = next(iter(rows.values()), 0)

    def __len__(self) -> int:
        return self.n

    def check_finite(self, name: str = "x") -> None:
        """ValueError naming the input, row and position of the first NaN or Inf in a floating
        tensor (rows loaded on demand are not read here)."""
        d = self.data
        items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, tuple) else [(None, d)]
        for key, t in items:
            if t is None or not t.is_floating_point():
                continue
            bad = ~torch.isfinite(t)
            if bad.any():
                pos = tuple(int(i) for i in bad.nonzero()[0])
                where = name if key is None else f"{name}[{key!r}]"
                raise ValueError(
                    f"{where}: expected finite numbers, got {t[pos].item()} in row {pos[0]} (position {pos}); "
                    "fill or mask missing values before training"
                )

    def batches(self, parts: list[Tensor], device: torch.device):
        """``take`` of each part in order, as (args, kwargs): from DataLoader workers when the
        source asks for them (its ``workers``), else here, one after another."""
        workers = int(getattr(self.source, "workers", 0) or 0)
        if self.source is None or workers == 0 or len(parts) < 2:
            for idx in parts:
                yield self.take(idx, device)
            return
        from torch.utils.data import DataLoader

        # its own generator: the workers' seeds must not come from (and advance) the global RNG
        # that dropout draws from, or training would depend on the number of workers
        loader = DataLoader(_Parts(self.source, parts), batch_size=None, shuffle=False, num_workers=workers,
                            prefetch_factor=2, generator=torch.Generator().manual_seed(0))  # fmt: skip
        for batch in loader:
            yield _move(batch, device)

    def take(self, idx: Tensor, device: torch.device) -> tuple[tuple, dict]:
        """Positional and keyword arguments of the model for rows ``idx``, on ``device``."""
        if self.source is not None:
            return _move(self.source.take(idx), device)
        d = self.data
        if isinstance(d, dict):
            return _move({k: None if v is None else v[idx] for k, v in d.items()}, device)
        if isinstance(d, tuple):
            return _move(tuple(None if v is None else v[idx] for v in d), device)
        return _move(d[idx], device)


class _Parts(torch.utils.data.Dataset):
    """A source's batches as a map-style dataset: item k is ``source.take(parts[k])``."""

    def __init__(self, source, parts: list[Tensor]) -> None:
        self.source, self.parts = source, parts

    def __len__(self) -> int:
        return len(self.parts)

    def __getitem__(self, k: int):
        return self.source.take(self.parts[k])
