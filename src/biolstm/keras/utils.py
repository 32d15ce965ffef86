"""``keras.utils`` helpers with Keras' semantics: ``set_random_seed``, ``to_categorical``,
``pad_sequences``. Arrays in and out are NumPy, as in Keras."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA) at once, as
    ``keras.utils.set_random_seed`` does: the same seed gives the same weights and batches."""
    from ..train import seed_everything

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed: expected an int in [0, 2**32), got {seed!r}")
    seed_everything(int(seed))


def to_categorical(y, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """Class ids -> one-hot rows, shape ``y.shape + (num_classes,)`` (a trailing axis of
    length 1 is dropped first, as Keras does); ``num_classes`` defaults to ``max(y) + 1``."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError("y: expected integer class ids, got non-integer values")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise TypeError(f"y: expected integer class ids, got dtype {y.dtype}")
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.size and y.min() < 0:
        raise ValueError(f"y: expected class ids >= 0, got {int(y.min())}")
    n = int(y.max()) + 1 if num_classes is None and y.size else int(num_classes or 0)
    if y.size and int(y.max()) >= n:
        raise ValueError(f"num_classes: expected more than the largest class id {int(y.max())}, got {n}")
    out = np.zeros((*y.shape, n), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


def pad_sequences(
    sequences: Sequence,
    maxlen: int | None = None,
    dtype: str = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: float = 0.0,
) -> np.ndarray:
    """A list of sequences (of ids, or of feature vectors) -> one array ``(N, maxlen, ...)``.

    ``padding`` and ``truncating`` ('pre' or 'post') say where values are added or cut, as in
    Keras (both 'pre' by default); ``maxlen`` defaults to the longest sequence."""
    for name, v in (("padding", padding), ("truncating", truncating)):
        if v not in ("pre", "post"):
            raise ValueError(f"{name}: expected 'pre' or 'post', got {v!r}")
    seqs = [np.asarray(s) for s in sequences]
    if maxlen is not None and (isinstance(maxlen, bool) or int(maxlen) < 0):
        raise ValueError(f"maxlen: expected an int >= 0 or None, got {maxlen!r}")
    longest = max((len(s) for s in seqs), default=0)
    maxlen = longest if maxlen is None else int(maxlen)
    tail = next((s.shape[1:] for s in seqs if len(s)), ())
    out = np.full((len(seqs), maxlen, *tail), value, dtype=dtype)
    for i, s in enumerate(seqs):
        if not len(s) or not maxlen:
            continue
        if s.shape[1:] != tail:
            raise ValueError(f"sequences: sequence {i} has steps of shape {s.shape[1:]}, expected {tail}")
        s = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if padding == "post":
            out[i, : len(s)] = s
        else:
            out[i, maxlen - len(s) :] = s
    return out
