"""The config reference, generated from the code: every key of every section of every task.

For each task in :data:`~biolstm.pipeline.tasks.TASKS` and each section (``data``, ``model``,
``train``) the reference lists the keys of the section's dataclass: name, type (the
annotation), default, and meaning (the field's trailing ``# comment`` in the source, read with
:mod:`tokenize`; a comment-only line right below it continues it), with the class docstring
describing the section. Nothing here names a task: a new task, or a new field, appears by
itself. What the reference tells about keys, it asks the code:

- *required*: building the section from its defaults fails with an error naming the key
  (``data.file: expected ...``);
- *path*: the task's ``paths()`` makes the key's value absolute (relative to the config file);
- *set from the data*: a model key the task lists in ``model_from_data`` (what its
  ``prepare`` returns in ``model_overrides``; the run replaces a configured value with it);
- ``train.loss``: the runner asks the task for the loss when the config names none.

``python -m biolstm.pipeline.reference --write docs/config.md`` (``make config-docs``)
regenerates the Markdown reference; ``biolstm config TASK`` prints one task's reference and
``biolstm init TASK`` writes a commented starter config.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import sys
import textwrap
import tokenize
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputError

SECTIONS = ("data", "model", "train")
TASK_CHOSEN = {"train": ("loss",)}  # keys the runner fills from the task when a config names none (run._trainer_config)
_PROBE_BASE = Path("/config-folder")  # a folder no probe touches: paths() only joins strings to it
_PROBE = "probe-file.txt"


@dataclass(frozen=True)
class Key:
    """One key of a config section."""

    name: str
    type: str  # the annotation as written, e.g. 'str | None'
    default: Any  # the dataclass default (a tuple as a list, as YAML writes it)
    meaning: str  # the field's trailing comment; '' when the source has none
    required: bool = False  # the section cannot be built without it
    path: bool = False  # a file path, resolved relative to the config file's folder
    from_data: bool = False  # a model key the task sets from the data (a configured value is replaced)
    task_chosen: bool = False  # filled by the task when the config does not name it


@dataclass(frozen=True)
class Section:
    """The reference of one section (``data``, ``model`` or ``train``) of one task."""

    name: str
    cls: type  # the section's dataclass
    doc: str  # the class docstring, as plain text
    keys: tuple[Key, ...]

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)


@dataclass(frozen=True)
class TaskReference:
    """The reference of one task: its description and its three sections."""

    name: str
    doc: str
    sections: tuple[Section, ...]

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)


# ------------------------------------------------------------------------ reading the source
def _plain(doc: str | None) -> str:
    """A docstring as plain text: Sphinx roles and double backticks become Markdown code."""
    text = inspect.cleandoc(doc or "")
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def class_doc(cls: type) -> str:
    """The class's own docstring (not the signature a dataclass writes when it has none)."""
    doc = cls.__dict__.get("__doc__")
    if not doc or doc.startswith(f"{cls.__name__}("):
        return ""
    return _plain(doc)


def own_comments(cls: type) -> dict[str, str]:
    """{field: its trailing comment} for the fields annotated in ``cls``'s own body."""
    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a class built at run time)
        return {}
    comments: dict[int, tuple[bool, str]] = {}  # line -> (alone on its line?, text)
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            alone = not tok.line[: tok.start[1]].strip()
            comments[tok.start[0]] = (alone, tok.string.lstrip("#").strip())
    body = ast.parse(src).body[0].body
    out: dict[str, str] = {}
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        trailing = [n for n in range(node.lineno, node.end_lineno + 1) if n in comments and not comments[n][0]]
        if not trailing:
            continue
        parts = [comments[trailing[0]][1]]
        stop = body[i + 1].lineno if i + 1 < len(body) else len(src.splitlines()) + 1
        line = node.end_lineno + 1
        while line < stop and comments.get(line, (False, ""))[0]:  # comment-only lines right below continue it
            parts.append(comments[line][1])
            line += 1
        out[node.target.id] = " ".join(parts)
    return out


def meanings(cls: type) -> dict[str, str]:
    """{field: meaning} for every field of ``cls``: the comment where the field is annotated,
    or, for a field a subclass redeclares without one, the nearest base class's comment."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        found.update({k: v for k, v in own_comments(klass).items() if v})
    return {f.name: found.get(f.name, "") for f in fields(cls)}


def _default(f) -> Any:
    if f.default is not MISSING:
        value = f.default
    elif f.default_factory is not MISSING:
        value = f.default_factory()
    else:
        return None
    return list(value) if isinstance(value, tuple) else value


def _kinds(type_text: str) -> set[str]:
    return {k.strip().split("[")[0] for k in type_text.split("|")}


def _placeholder(type_text: str, path: bool = False) -> Any:
    """A value of the key's type that reads as 'replace me' in YAML."""
    word = "<path>" if path else "<value>"
    kinds = _kinds(type_text)
    if "dict" in kinds:
        return {"<name>": word}
    if kinds & {"list", "tuple"}:
        return [word]
    if "int" in kinds:
        return 1
    if "float" in kinds:
        return 1.0
    return word


def _type_text(f) -> str:
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def required_keys(cls: type, section: str) -> dict[str, Any]:
    """{key: placeholder} for the keys without which ``cls`` cannot be built: those its own
    check names (``data.file: expected ...``) when built from its defaults, added until it builds."""
    by_name = {f.name: f for f in fields(cls)}
    filled = {n: _placeholder(_type_text(f)) for n, f in by_name.items() if f.default is f.default_factory is MISSING}
    for _ in range(len(by_name) + 1):
        try:
            cls.from_dict(filled)
            return filled
        except (TypeError, ValueError) as err:
            named = {n for n in by_name if re.search(rf"(?<![\w.]){section}\.{n}\b", str(err))} - set(filled)
            if not named:
                raise RuntimeError(
                    f"{cls.__name__}: built from its defaults it fails without naming a {section}.<key> ({err}); "
                    "the reference cannot tell which keys are required"
                ) from None
            filled.update({n: _placeholder(_type_text(by_name[n])) for n in sorted(named)})
    raise RuntimeError(f"{cls.__name__}: cannot be built from its defaults")  # pragma: no cover


def path_keys(task, cls: type, filled: dict[str, Any]) -> set[str]:
    """The data keys the task's ``paths()`` resolves against the config file's folder: each
    key that takes a string, list or mapping is set alone to a relative name and looked at."""
    found = set()
    for f in fields(cls):
        kinds = _kinds(_type_text(f))
        if not kinds & {"str", "dict", "list"}:
            continue
        probe = {"<name>": _PROBE} if "dict" in kinds else [_PROBE] if "list" in kinds else _PROBE
        try:
            value = getattr(task.paths(cls.from_dict({**filled, f.name: probe}), _PROBE_BASE), f.name)
        except (TypeError, ValueError, KeyError, AttributeError):  # the key refuses a file name
            continue
        if str(_PROBE_BASE / _PROBE) in str(value):
            found.add(f.name)
    return found


def task_reference(name: str) -> TaskReference:
    """The reference of the task called ``name``; an unknown name is an InputError listing the tasks."""
    from ..train import TrainerConfig
    from .tasks import TASKS

    if name not in TASKS:
        raise InputError(f"task: expected one of {', '.join(TASKS)}, got {name!r}")
    task_cls = TASKS[name]
    task = task_cls()
    classes = {"data": task_cls.data_class, "model": task.model_config_class(), "train": TrainerConfig}
    from_data = set(getattr(task_cls, "model_from_data", ()))
    sections = []
    for sec in SECTIONS:
        cls = classes[sec]
        required = required_keys(cls, sec)
        paths = path_keys(task, cls, required) if sec == "data" else set()
        notes = meanings(cls)
        keys = tuple(
            Key(
                name=f.name,
                type=_type_text(f),
                default=_default(f),
                meaning=notes[f.name],
                required=f.name in required,
                path=f.name in paths,
                from_data=sec == "model" and f.name in from_data,
                task_chosen=f.name in TASK_CHOSEN.get(sec, ()),
            )
            for f in fields(cls)
        )
        sections.append(Section(sec, cls, class_doc(cls), keys))
    return TaskReference(name, class_doc(task_cls), tuple(sections))


def reference() -> list[TaskReference]:
    """The reference of every task, in the order of TASKS."""
    from .tasks import TASKS

    return [task_reference(name) for name in TASKS]


# ------------------------------------------------------------------------ rendering
def yaml_value(value: Any) -> str:
    """``value`` as it is written in a YAML config (flow style, one line)."""
    import yaml

    text = yaml.safe_dump(list(value) if isinstance(value, tuple) else value, default_flow_style=True, width=10**6)
    return text.removesuffix("\n...\n").strip()


def _notes(key: Key, where: str = "the config file") -> list[str]:
    notes = []
    if key.required:
        notes.append("required")
    if key.path:
        notes.append(f"path, relative to {where}")
    if key.from_data:
        notes.append("set from the data")
    if key.task_chosen:
        notes.append("chosen by the task when not given")
    return notes


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split())


INTRO = """\
# Config reference

<!-- Generated from the code by `make config-docs`: edit the config dataclasses (a trailing
comment on each field, the class docstring for the section), not this file. -->

A config is one YAML file with four top-level keys: `task`, the name of one of the tasks below,
and the sections `data` (what to read and how to split it), `model` (the architecture) and
`train` (how to train). Every key of a section has a default except the ones marked
*required*, so a config names only what it changes. An unknown section or key is an error
naming it; so is a value of the wrong type.

```yaml
task: sequence
data:
  files: {bound: bound.fa, unbound: unbound.fa}
model:
  hidden_size: 64
train:
  epochs: 20
```

`biolstm init TASK` writes a starter config for a task with every key in it (the required ones
as placeholders, the others commented out with their defaults and meanings), and
`biolstm config TASK` prints the tables below in a terminal:

```bash
biolstm init sequence -o my_config.yaml
biolstm config sequence --section data
```

**Overrides.** Any key can be set on the command line without editing the file, as
`--section.key value` (or `section.key=value`); dashes in a key read as underscores, and the
value is read as YAML, so lists and `null` work too:

```bash
biolstm train examples/configs/oct4_mafk.yaml --model.hidden-size 64 --train.epochs 5
biolstm train examples/configs/oct4_mafk.yaml --data.split chromosome --data.test-chromosomes '[chr8, chr9]'
```

**Paths.** Keys marked *path* name files relative to the folder of the config file, not to
the folder the command runs in (`~` is expanded), so a config and its data can move together.
The run folder's `config.yaml` holds the resolved config: every default filled in and every
path absolute.

**Keys the task decides.** Model keys marked *set from the data* (the number of input
channels, classes or outputs, ...) are set by the task from the data it reads; a value given in
the config is replaced. `train.loss` is chosen by the task (from its outcome and model) unless
the config names one.
"""


def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes, asterisks and angle brackets read as themselves."""
    return re.sub(r"([|*<])", r"\\\1", text)


def _markdown_task(t: TaskReference, sections) -> list[str]:
    lines = [f"## {t.name}", ""] + ([_first_paragraph(t.doc), ""] if t.doc else [])
    for sec in sections:
        lines += [f"### {sec.name}", ""] + ([_first_paragraph(sec.doc), ""] if sec.doc else [])
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for k in sec.keys:
            meaning = "; ".join([f"*{n}*" for n in _notes(k)] + ([_cell(k.meaning)] if k.meaning else []))
            code = [f"`{v.replace('|', chr(92) + '|')}`" for v in (k.name, k.type, yaml_value(k.default))]
            lines.append("| " + " | ".join([*code, meaning]) + " |")
        lines.append("")
    return lines


def markdown(tasks: list[TaskReference] | None = None) -> str:
    """The whole reference as Markdown (docs/config.md): the intro, then per task a table per section."""
    tasks = reference() if tasks is None else tasks
    lines = [INTRO, "## Tasks", ""]
    lines += [f"- [`{t.name}`](#{t.name})" + (f": {_first_paragraph(t.doc)}" if t.doc else "") for t in tasks]
    lines.append("")
    for t in tasks:
        lines += _markdown_task(t, t.sections)
    return "\n".join(lines).rstrip("\n") + "\n"


def reference_text(name: str, section: str | None = None, as_markdown: bool = False) -> str:
    """One task's reference for a terminal (or as Markdown), all sections or only ``section``."""
    if section is not None and section not in SECTIONS:
        raise InputError(f"--section: expected one of {', '.join(SECTIONS)}, got {section!r}")
    t = task_reference(name)
    chosen = [s for s in t.sections if section in (None, s.name)]
    if as_markdown:
        return "\n".join(_markdown_task(t, chosen)).rstrip("\n")
    lines = [f"task: {t.name}" + (f"  ({_first_paragraph(t.doc)})" if t.doc else "")]
    for sec in chosen:
        lines += ["", f"[{sec.name}]" + (f"  {_first_paragraph(sec.doc)}" if sec.doc else "")]
        for k in sec.keys:
            lines.append(f"  {k.name}: {yaml_value(k.default)}")
            about = f"{k.type}" + "".join(f"; {n}" for n in _notes(k)) + (f". {k.meaning}" if k.meaning else "")
            lines += textwrap.wrap(about, 88, initial_indent=" " * 6, subsequent_indent=" " * 6)
    lines += ["", f"Set a key with --section.key value on the command line; start a config with: biolstm init {name}"]
    return "\n".join(lines)


def starter_yaml(name: str) -> str:
    """A commented starter config for task ``name``: the required keys with placeholders, every
    other key commented out (``# `` at the start of the line) with its default and meaning.

    A data section with no required key but with path keys gets a placeholder on its first
    path key: a task needs data to read, and this is where the reference can tell it goes."""
    t = task_reference(name)
    lines = [
        f"# biolstm config for the `{t.name}` task" + (f": {_first_paragraph(t.doc)}" if t.doc else ""),
        f"# Written by `biolstm init {t.name}`. Replace each <placeholder>. Every other key is commented out",
        '# with its default and meaning: remove the "# " at the start of a line to set it (and of its',
        "# section's line, e.g. `# model:`, if that is still commented). Relative paths are read from",
        f"# this file's folder. All keys: `biolstm config {t.name}`; override one when training, e.g.",
        "#   biolstm train <this file> --train.epochs 5",
        "",
        f"task: {t.name}",
    ]
    for sec in t.sections:
        live = {k.name: _placeholder(k.type, k.path) for k in sec.keys if k.required}
        paths = [k for k in sec.keys if k.path]
        if sec.name == "data" and not live and paths:
            live = {paths[0].name: _placeholder(paths[0].type, True)}
        lines.append("")
        lines += [f"# {line}" for line in textwrap.wrap(_first_paragraph(sec.doc), 94)]
        lines.append(f"{sec.name}:" if live else f"# {sec.name}:")
        for k in sec.keys:
            notes, meaning = _notes(k, "this file"), [k.meaning] if k.meaning else []
            if k.name in live:
                why = "replace the placeholder" if k.required else "the data to read (the keys below give other ways)"
                notes = [f"REQUIRED: {why}", *(n for n in notes if n != "required")]
                lines.append(f"  {k.name}: {yaml_value(live[k.name])}  # " + "; ".join(notes + meaning))
            else:
                comment = "; ".join(notes + meaning)
                lines.append(f"#   {k.name}: {yaml_value(k.default)}" + (f"  # {comment}" if comment else ""))
    return "\n".join(lines) + "\n"


def write_starter(name: str, out: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write :func:`starter_yaml` to ``out`` (default ``NAME.yaml`` here; a folder gets
    ``NAME.yaml`` inside). An existing file is refused unless ``overwrite``; without it the file
    is created only if it still does not exist at that moment, so a file that appears after the
    check is not replaced either."""
    import os

    from .._io import atomic_write_text
    from .runfolder import output_path

    content = starter_yaml(name)  # an unknown task fails before any file is looked at
    p = output_path(Path(f"{name}.yaml") if out is None else out, f"{name}.yaml", "--output", overwrite)
    p.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:
        atomic_write_text(p, content)
        return p
    taken = InputError(f"--output: {p} already exists; pass --overwrite to replace it, or choose another name")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.new")
    atomic_write_text(tmp, content)
    try:
        os.link(tmp, p)  # the complete file appears under its name, or the name was taken
    except FileExistsError:
        raise taken from None
    except OSError:  # a file system without hard links: create exclusively, then write
        try:
            with open(p, "x", encoding="utf-8") as fh:
                fh.write(content)
        except FileExistsError:
            raise taken from None
    finally:
        tmp.unlink(missing_ok=True)
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m biolstm.pipeline.reference [--write FILE]``: the Markdown reference on
    stdout, or written to FILE (atomically: a failure leaves the old file)."""
    import argparse

    from .._io import atomic_write_text

    parser = argparse.ArgumentParser(prog="python -m biolstm.pipeline.reference", description=main.__doc__)
    parser.add_argument("--write", metavar="FILE", help="write the reference to FILE (e.g. docs/config.md)")
    args = parser.parse_args(argv)
    doc = markdown()
    if args.write:
        atomic_write_text(args.write, doc)
    else:
        sys.stdout.write(doc)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
