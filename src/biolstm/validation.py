"""Argument checks shared by the public API: errors read "name: expected X, got Y"."""

from __future__ import annotations

import numbers
from typing import Any


class BiolstmWarning(UserWarning):
    """Warnings raised by biolstm (filter them with this class)."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_type(value: Any, types: type | tuple[type, ...], name: str) -> None:
    """Raise TypeError unless ``value`` is an instance of ``types`` (bool is not an int)."""
    ok = isinstance(value, types)
    if ok and isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        ok = False
    if not ok:
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise TypeError(f"{name}: expected {names}, got {_describe(value)}")


def check_model_config(value: Any, cls: type, shown: type | None = None) -> None:
    """TypeError unless ``value`` is None or a ``cls`` (a model's config dataclass); the message
    names ``shown`` (default ``cls``) and the keyword alternative, since ``Model(4)`` is a
    natural slip for ``Model(input_size=4)``."""
    if value is not None and not isinstance(value, cls):
        got = _describe(value) if len(repr(value)) <= 60 else f"a {type(value).__name__}"
        raise TypeError(
            f"config: expected a {(shown or cls).__name__} or None (fields go as keyword arguments, "
            f"e.g. hidden_size=32), got {got}"
        )


def check_positive_int(value: Any, name: str, minimum: int = 1) -> None:
    """Raise TypeError for a non-int, ValueError for an int below ``minimum``."""
    check_type(value, int, name)
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")


def check_probability(value: Any, name: str) -> float:
    """A float in [0, 1] (a dropout rate), else ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float in [0, 1], got {_describe(value)}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: expected a float in [0, 1], got {value}")
    return float(value)


def check_choice(value: Any, choices: tuple, name: str) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


def check_module(value: Any, name: str = "model") -> None:
    """TypeError unless ``value`` is a torch.nn.Module."""
    import torch

    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{name}: expected a torch.nn.Module, got {_describe(value)}")


def check_tensor(value: Any, name: str, dims: int | None = None) -> None:
    """TypeError unless ``value`` is a torch.Tensor; ValueError unless it has ``dims`` dimensions."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if dims is not None and value.dim() != dims:
        raise ValueError(f"{name}: expected a {dims}-D tensor, got shape {tuple(value.shape)}")


def check_real(value: Any, name: str) -> float:
    """A real number (not bool), else TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {_describe(value)}")
    return float(value)
