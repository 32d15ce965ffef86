"""Prediction and evaluation that stream: memory stays flat however large the input.

A sequence file is read, encoded and predicted batch by batch. :class:`RecordBatches` reads the
records in file order and one-hot encodes them in DataLoader worker processes (batch k in
worker k mod W, so the batches arrive in file order), while the main process runs the model
under ``torch.inference_mode`` and hands each batch's outputs on (predict writes them as rows of
the TSV at once; evaluate keeps one number per record for the metrics). Nothing of size
"all sequences" is ever held: not the sequences, not their encoding. A progress bar on stderr
shows records done, of how many, and records per second.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .._cpu import available_cpus
from ..data.sequences import SequenceFileError
from ..errors import InputError

BATCH = 256  # records per batch: large enough for the model's products, small enough to stay in cache


def default_workers() -> int:
    """Encoding processes beside the model: one on up to 4 CPUs, two above."""
    return 1 if available_cpus() <= 4 else 2


class RecordBatches(IterableDataset):
    """The records of one FASTA/FASTQ file as encoded batches of ``size``, in file order.

    ``records()`` is a function returning an iterator of ``(path, record number, record,
    label or None)``; ``encode(seqs, origins)`` one-hot encodes a batch; ``novelty(seqs)`` counts
    what lies outside training. Each batch is a dict: ``x``, ``lengths``, ``ids``, ``first``
    (its first record's index), ``labels``, ``novel`` (counts), and with ``keep_sequences`` the
    ``sequences`` (for the baselines of evaluate). A bad record does not kill the worker: the
    batch comes back as ``{"error": message}`` for the main process to raise.
    """

    def __init__(self, records, encode, novelty, size: int = BATCH, keep_sequences: bool = False) -> None:
        super().__init__()
        self.records, self.encode, self.novelty = records, encode, novelty
        self.size, self.keep_sequences = size, keep_sequences

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        it = self.records()
        for k in itertools.count():
            try:
                chunk = list(itertools.islice(it, self.size))
            except (SequenceFileError, InputError, ValueError, OSError) as err:
                yield {"error": str(err)}
                return
            if not chunk:
                return
            if k % workers == worker:
                yield self._batch(k * self.size, chunk)

    def _batch(self, first: int, chunk: list) -> dict:
        seqs = [rec.seq for _, _, rec, _ in chunk]
        try:
            enc = self.encode(seqs, [(path, n) for path, n, _, _ in chunk])
        except (SequenceFileError, InputError, ValueError) as err:
            return {"error": str(err)}
        batch = {"x": enc["x"], "lengths": enc["lengths"], "ids": [rec.id for _, _, rec, _ in chunk], "first": first,
                 "labels": [label for *_, label in chunk], "novel": self.novelty(seqs)}  # fmt: skip
        if self.keep_sequences:
            batch["sequences"] = seqs
        return batch


def count_records(path: str | Path, fmt: str) -> int | None:
    """Records in a FASTA file, counted from its '>' line starts in one fast pass (plain or
    gzipped); None for FASTQ, where '@' may also start a quality line."""
    from ..data.sequences import _open

    if fmt != "fasta":
        return None
    n, last = 0, b"\n"
    with _open(Path(path)) as fh:
        raw = getattr(fh, "buffer", fh)
        while block := raw.read(1 << 20):
            if isinstance(block, str):
                block = block.encode()
            n += block.count(b"\n>") + (last == b"\n" and block[:1] == b">")
            last = block[-1:]
    return n


class _Progress:
    """Records done, of how many, and records per second, on stderr (a rich progress bar; on a
    terminal it updates in place, elsewhere it prints its last state when done)."""

    def __init__(self, total: int | None, what: str, verbose: int) -> None:
        self.total, self.what, self.verbose = total, what, verbose
        self.done, self.start = 0, time.perf_counter()
        self.bar = None

    def __enter__(self):
        if self.verbose:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            columns = [TextColumn(self.what), BarColumn(), TextColumn("{task.completed:,} of {task.fields[of]}"),
                       TextColumn("{task.fields[rate]} records/s"), TimeElapsedColumn()]  # fmt: skip
            self.bar = Progress(*columns, console=Console(stderr=True))
            self.task = self.bar.add_task(self.what, total=self.total, of=f"{self.total:,}" if self.total else "?",
                                          rate="-")  # fmt: skip
            self.bar.__enter__()
        return self

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            rate = self.done / max(time.perf_counter() - self.start, 1e-9)
            self.bar.update(self.task, advance=n, rate=f"{rate:,.0f}")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


def _as_is(batch: dict) -> dict:
    """The batch as the dataset made it (the default would walk every id and label)."""
    return batch


def run_batches(batches: RecordBatches, model, device: torch.device, workers: int, total: int | None, what: str,
                verbose: int = 1):  # fmt: skip
    """Yield ``(batch, outputs)`` for each batch of ``batches`` in order: encoded in ``workers``
    DataLoader processes (0: here), the model run under inference mode on ``device``, outputs
    as float32 on the CPU. A bad record raises SequenceFileError with the worker's message.
    Callers close it (``contextlib.closing``) so that an error of theirs restores the model's
    mode and stops the workers at once."""
    from ..train.inputs import Inputs

    loader = DataLoader(batches, batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None,
                        collate_fn=_as_is, generator=torch.Generator().manual_seed(0))  # fmt: skip
    model.to(device)
    was = model.training
    model.eval()
    try:
        with _Progress(total, what, verbose) as progress:
            for batch in loader:
                if "error" in batch:
                    raise SequenceFileError(batch["error"])
                n = len(batch["ids"])
                with torch.inference_mode():  # closed before the batch is handed on
                    args, kwargs = Inputs({"x": batch["x"], "lengths": batch["lengths"]}).take(torch.arange(n), device)
                    out = model(*args, **kwargs).float().cpu()
                yield batch, out
                progress.advance(n)
    finally:
        model.train(was)
