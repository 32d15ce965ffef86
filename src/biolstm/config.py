"""Typed configuration: dataclasses whose unknown keys are an error naming the key."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from .errors import InputError


class Config:
    """Mixin for config dataclasses: ``from_dict`` refuses unknown keys, ``merged`` overrides."""

    _what = "config"  # how errors name this kind of config

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"{cls._what}: unknown key {unknown[0]!r}; expected one of {sorted(known)}")
        return cls(**d)

    def merged(self, **overrides):
        """A copy with ``overrides`` applied (checked like from_dict)."""
        return type(self).from_dict({**asdict(self), **overrides}) if overrides else self


def load_yaml(path) -> dict[str, Any]:
    """A YAML mapping from ``path``; ValueError names the file and line of a syntax error."""
    from pathlib import Path

    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: expected a YAML config file, found no such file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))  # safe_load: no Python objects from YAML
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{p}:{where}: expected valid YAML, got an error ({getattr(err, 'problem', err)})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a mapping of sections (model:, train:, ...), got {type(data).__name__}")
    return data


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML scalars) to a nested dict copy.

    Dashes in keys are read as underscores, so ``model.hidden-size=64`` sets
    ``config["model"]["hidden_size"]``.
    """
    import copy

    import yaml

    out = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override: expected 'section.key=value', got {item!r}")
        dotted, raw = item.split("=", 1)
        keys = [k.replace("-", "_") for k in dotted.strip().lstrip("-").split(".")]
        if not all(keys):
            raise InputError(f"override: expected 'section.key=value', got {item!r}")
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise InputError(f"override {item!r}: {k!r} is a value, not a section")
        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, str):
            try:  # YAML 1.1 reads 3e-3 as a string; a command line means the number
                value = float(value) if value.strip().lower() not in ("nan", "inf", "-inf", "infinity") else value
            except ValueError:
                pass
        node[keys[-1]] = value
    return out


def save_yaml(config: dict[str, Any], path) -> None:
    """Write ``config`` as YAML, atomically."""
    import yaml

    from ._io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))
