"""biolstm: the LSTM from its equations, put to work on biological sequences and time series.

Submodules are imported on first use, so ``import biolstm`` (and the CLI) stays fast::

    import biolstm.nn
    lstm = biolstm.nn.LSTM(4, 64, batch_first=True)
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .errors import InputError
from .validation import BiolstmWarning

__all__ = ["BiolstmWarning", "InputError", "__version__", "data", "keras", "models", "nn", "train"]

_SUBMODULES = {"data", "keras", "models", "nn", "train"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'biolstm' has no attribute {name!r}")
