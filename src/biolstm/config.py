"""Typed configuration: dataclasses whose unknown keys are an error naming the key."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any


class Config:
    """Mixin for config dataclasses: ``from_dict`` refuses unknown keys, ``merged`` overrides."""

    _what = "config"  # how errors name this kind of config

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{cls._what}: unknown key {unknown[0]!r}; expected one of {sorted(known)}")
        return cls(**d)

    def merged(self, **overrides):
        """A copy with ``overrides`` applied (checked like from_dict)."""
        return type(self).from_dict({**asdict(self), **overrides}) if overrides else self
