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


# Bounds on what a config may expand to: a config is a few dozen keys, so these only stop
# malicious or broken files (an alias bomb, a 10,000-deep nesting) before they cost memory.
MAX_ALIASES = 100
MAX_DEPTH = 50
MAX_NODES = 100_000


def _loader(source: str):
    """A yaml.SafeLoader (never builds Python objects) that also refuses duplicate keys and
    bounds aliases, nesting depth and the size the document expands to."""
    import yaml
    from yaml.nodes import MappingNode, SequenceNode

    class Loader(yaml.SafeLoader):
        aliases = 0
        depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > MAX_ALIASES:
                    mark = self.peek_event().start_mark
                    raise InputError(f"{source}: line {mark.line + 1}: more than {MAX_ALIASES} YAML aliases (*name)")
            Loader.depth += 1
            try:
                if Loader.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise InputError(f"{source}: line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                Loader.depth -= 1

        def construct_document(self, node):
            sizes: dict[int, int] = {}

            def size(n) -> int:  # nodes after expanding every alias (shared nodes counted each time)
                if id(n) not in sizes:
                    sizes[id(n)] = 1
                    if isinstance(n, SequenceNode):
                        sizes[id(n)] += sum(size(c) for c in n.value)
                    elif isinstance(n, MappingNode):
                        sizes[id(n)] += sum(size(k) + size(v) for k, v in n.value)
                return sizes[id(n)]

            if size(node) > MAX_NODES:
                raise InputError(f"{source}: expands to more than {MAX_NODES:,} values (YAML aliases); refusing it")
            return super().construct_document(node)

        def construct_mapping(self, node, deep=False):
            seen: dict = {}
            for key_node, _ in node.value:  # the mapping's own keys (merged ones, <<: *x, may be overridden)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise InputError(f"{source}: line {line}: expected a plain key (a name), got a list or mapping")
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise InputError(
                        f"{source}: line {key_node.start_mark.line + 1}: duplicate key {key!r} "
                        f"(first on line {seen[key] + 1}); each key may appear once"
                    )
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    return Loader


def load_yaml(path) -> dict[str, Any]:
    """A YAML mapping from ``path``; InputError names the file and line of a syntax error, a
    duplicate key, or a document nested or aliased beyond the bounds above."""
    import yaml

    from ._io import check_input_file

    p = check_input_file(path, "a YAML config file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        byte = err.object[err.start]
        raise InputError(f"{p}: expected UTF-8 text (YAML), got byte {byte:#04x} at offset {err.start}") from None
    try:
        data = yaml.load(text, Loader=_loader(str(p)))  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise InputError(f"{p}:{where} expected valid YAML, got an error ({problem})") from None
    except RecursionError:
        raise InputError(f"{p}: nested deeper than {MAX_DEPTH} levels") from None
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
