"""The config reference generated from the code (pipeline/reference.py), docs/config.md, and
the commands `biolstm config TASK` and `biolstm init TASK`."""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.config import Config, load_yaml
from biolstm.pipeline import reference as ref
from biolstm.pipeline.run import parse_config
from biolstm.pipeline.tasks import TASKS
from biolstm.train import TrainerConfig

from ..datafiles import MAFK, OCT4, ROOT

runner = CliRunner()

# Fields that had no trailing comment when the reference was written, in files this change
# could not edit. Give such a field its comment and remove it here; any other field without a
# comment fails test_every_field_has_a_comment.
KNOWN_UNCOMMENTED = {"SequenceData.val_chromosomes", "SeriesData.time_col", "SeriesData.seed"}


def _classes(name: str) -> dict[str, type]:
    """The section dataclasses of a task, found the way the runner finds them (not through the reference)."""
    return {"data": TASKS[name].data_class, "model": TASKS[name]().model_config_class(), "train": TrainerConfig}


def _default(f):
    value = f.default if f.default is not MISSING else f.default_factory()
    return list(value) if isinstance(value, tuple) else value


def _err(res) -> list[str]:
    return res.stderr.strip().splitlines()


# ------------------------------------------------------------------------ reading the source
@dataclass
class _Base(Config):
    """A section for the tests.

    More text that the first paragraph leaves out."""

    alpha: int = 1  # the first key
    beta: str = "b"  # a long meaning that
    # goes on below
    gamma: float = 0.5

    # a heading comment, not gamma's
    delta: list = None  # type: the last key


@dataclass
class _Child(_Base):
    # alpha, redeclared without a comment, keeps the base's meaning
    alpha: int = 2


def test_meanings_are_the_trailing_comments():
    assert ref.meanings(_Base) == {
        "alpha": "the first key",
        "beta": "a long meaning that goes on below",
        "gamma": "",
        "delta": "type: the last key",
    }
    assert ref.meanings(_Child)["alpha"] == "the first key"
    assert ref.class_doc(_Base).startswith("A section for the tests.")
    assert ref.class_doc(_Child) == ""  # not the signature dataclass writes as its __doc__


def test_every_field_has_a_comment():
    sections = [s for t in ref.reference() for s in t.sections]
    missing = {f"{s.cls.__name__}.{k.name}" for s in sections for k in s.keys if not k.meaning}
    new = sorted(missing - KNOWN_UNCOMMENTED)
    assert not new, f"config fields without a trailing `# comment` (their meaning in docs/config.md): {new}"
    for s in sections:
        assert s.doc, f"{s.cls.__name__}: the section's class needs a docstring"


# ------------------------------------------------------------------------ the reference
@pytest.mark.parametrize("name", list(TASKS))
def test_every_key_of_every_section_with_its_default(name):
    t = ref.task_reference(name)
    assert [s.name for s in t.sections] == ["data", "model", "train"]
    for sec, cls in _classes(name).items():
        s = t.section(sec)
        assert s.cls is cls
        assert [k.name for k in s.keys] == [f.name for f in fields(cls)]
        for f in fields(cls):
            key = s.key(f.name)
            assert key.default == _default(f), (sec, f.name)
            assert key.type == str(f.type)


def _tables(doc: str) -> dict[tuple[str, str], dict[str, list[str]]]:
    """{(task, section): {key: [type, default, meaning]}} read back from the Markdown."""
    out: dict = {}
    task = sec = None
    for line in doc.splitlines():
        if line.startswith("## "):
            task, sec = line[3:], None
        elif line.startswith("### "):
            sec = line[4:]
            out[task, sec] = {}
        elif sec and line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            key, typ, default = (c.strip("`").replace("\\|", "|") for c in cells[:3])
            out[task, sec][key] = [typ, default, cells[3]]
    return out


def test_markdown_shows_every_key_with_the_dataclass_default():
    tables = _tables(ref.markdown())
    assert set(tables) == {(n, s) for n in TASKS for s in ("data", "model", "train")}
    for name in TASKS:
        for sec, cls in _classes(name).items():
            rows = tables[name, sec]
            assert list(rows) == [f.name for f in fields(cls)], (name, sec)
            for f in fields(cls):
                shown = yaml.safe_load(rows[f.name][1])
                assert shown == _default(f), (name, sec, f.name, rows[f.name][1])
                assert rows[f.name][0] == str(f.type)


def test_markdown_marks_required_path_and_data_keys():
    tables = _tables(ref.markdown())
    seq = tables["sequence", "data"]
    assert "*path, relative to the config file*" in seq["files"][2]
    assert "*path, relative to the config file*" in seq["file"][2]
    assert "path" not in seq["alphabet"][2]
    assert seq["alphabet"][2] == r"dna \| rna \| protein"  # the comment, with its pipes escaped
    assert tables["sequence", "model"]["input_channels"][2].startswith("*set from the data*")
    assert tables["sequence", "model"]["hidden_size"][2] == "recurrent units per direction"
    assert tables["forecast", "data"]["file"][2].startswith("*required*; *path")
    assert tables["sequence", "train"]["loss"][2].startswith("*chosen by the task when not given*")


def test_docs_config_md_is_up_to_date():
    doc = ROOT / "docs" / "config.md"
    assert doc.is_file(), "docs/config.md is missing: run `make config-docs`"
    assert doc.read_text(encoding="utf-8") == ref.markdown(), (
        "docs/config.md differs from what the code generates: run `make config-docs`"
    )


def test_module_writes_the_markdown(tmp_path, capsys):
    assert ref.main(["--write", str(tmp_path / "config.md")]) == 0
    assert (tmp_path / "config.md").read_text(encoding="utf-8") == ref.markdown()
    assert ref.main([]) == 0
    assert capsys.readouterr().out == ref.markdown()


@pytest.mark.parametrize("name", list(TASKS))
def test_required_and_path_keys_are_what_the_code_does(name):
    """Each required key is one the section cannot be built without (its error names it), and
    each path key is one the task resolves against the config file's folder."""
    t, cls = ref.task_reference(name), TASKS[name].data_class
    data = t.section("data")
    required = {k.name: ref._placeholder(k.type) for k in data.keys if k.required}
    cls.from_dict(required)  # builds with them
    for key in required:
        with pytest.raises((TypeError, ValueError), match=rf"data\.{key}\b"):
            cls.from_dict({k: v for k, v in required.items() if k != key})
    base = Path("/some/folder")
    for k in data.keys:
        if k.path:
            value = {"a": "x.txt"} if "dict" in k.type else "x.txt"
            resolved = getattr(TASKS[name]().paths(cls.from_dict({**required, k.name: value}), base), k.name)
            assert str(base / "x.txt") in str(resolved), (name, k.name, resolved)


@pytest.mark.parametrize("name", list(TASKS))
def test_keys_set_from_the_data_are_model_keys(name):
    declared = getattr(TASKS[name], "model_from_data", ())
    model_keys = {f.name for f in fields(TASKS[name]().model_config_class())}
    assert set(declared) <= model_keys, (name, sorted(set(declared) - model_keys))
    marked = {k.name for k in ref.task_reference(name).section("model").keys if k.from_data}
    assert marked == set(declared)


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted((ROOT / "examples" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_keys_set_from_the_data_are_declared(config):
    """What a task's prepare sets in the model (model_overrides) is what the task declares in
    model_from_data, so the reference marks it (checked on the example configs' data)."""
    task, data, _, _ = parse_config(load_yaml(config), str(config), config.parent)
    prep = task.prepare(data, lambda message: None)
    assert prep.model_overrides
    assert set(prep.model_overrides) <= set(getattr(type(task), "model_from_data", ())), task.name


# ------------------------------------------------------------------------ biolstm config
def test_config_command_prints_every_key():
    res = runner.invoke(app, ["config", "forecast"])
    assert res.exit_code == 0, res.output
    for sec, cls in _classes("forecast").items():
        assert f"[{sec}]" in res.output
        for f in fields(cls):
            assert f"\n  {f.name}: {ref.yaml_value(_default(f))}\n" in res.output, f.name
    assert "last steps held out (a fraction, or a count when >= 1)" in res.output


def test_config_command_one_section_and_markdown():
    res = runner.invoke(app, ["config", "sequence", "--section", "data"])
    assert res.exit_code == 0
    assert "[data]" in res.output and "[model]" not in res.output and "[train]" not in res.output
    assert "\n  alphabet: dna\n" in res.output and "hidden_size" not in res.output
    res = runner.invoke(app, ["config", "sequence", "--section", "model", "--markdown"])
    assert res.exit_code == 0
    assert "### model" in res.output
    assert "| `hidden_size` | `int` | `32` | recurrent units per direction |" in res.output
    res = runner.invoke(app, ["config", "sequence", "--section", "optimizer"])
    assert res.exit_code == 1
    assert _err(res) == ["error: --section: expected one of data, model, train, got 'optimizer'"]


def test_unknown_task_is_one_error_line_listing_the_tasks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (["config", "sequense"], ["init", "sequense"]):
        res = runner.invoke(app, argv)
        assert res.exit_code == 1
        assert _err(res) == [f"error: task: expected one of {', '.join(TASKS)}, got 'sequense'"]
    assert list(tmp_path.iterdir()) == []  # init wrote nothing


def test_help_lists_the_commands():
    res = runner.invoke(app, ["--help"])
    assert "config" in res.output and "init" in res.output


# ------------------------------------------------------------------------ biolstm init
def _uncomment(text: str) -> str:
    """Every commented key and section line set, as a user removing '# ' would."""
    return re.sub(r"^# (\w+:$|  \w+: )", r"\1", text, flags=re.M)


@pytest.mark.parametrize("name", list(TASKS))
def test_init_writes_a_starter_config(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["init", name])
    assert res.exit_code == 0, res.output
    path = tmp_path / f"{name}.yaml"  # the default name, here
    assert res.output.strip() == f"wrote {name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert text == ref.starter_yaml(name)
    raw = yaml.safe_load(text)
    t = ref.task_reference(name)
    data = t.section("data")
    live = {k.name for k in data.keys if k.required}
    if not live:  # no required key: the first path key stands for the data to read
        live = {next(k.name for k in data.keys if k.path)}
    assert raw == {"task": name, "data": {k: ref._placeholder(data.key(k).type, data.key(k).path) for k in live}}
    for sec in t.sections:  # every other key is there, commented out, with its default
        for k in sec.keys:
            if k.name not in live or sec.name != "data":
                assert re.search(rf"^#   {k.name}: {re.escape(ref.yaml_value(k.default))}(  # |$)", text, re.M), k.name

    # uncommented as a whole (placeholders kept), it is a valid config of all the defaults
    full = yaml.safe_load(_uncomment(text))
    assert set(full) == {"task", "data", "model", "train"}
    task, data, model, train = parse_config(full, str(path), tmp_path)
    assert task.name == name
    classes = _classes(name)
    assert model == classes["model"]()
    assert TrainerConfig.from_dict(train) == TrainerConfig()
    for f in fields(classes["data"]):
        if f.name not in full["data"] or f.name in live:
            continue
        assert getattr(data, f.name) == _default(f), f.name


def test_init_sequence_with_the_bundled_files_parses(tmp_path):
    out = tmp_path / "configs" / "peaks.yaml"  # a folder that does not exist yet
    res = runner.invoke(app, ["init", "sequence", "-o", str(out)])
    assert res.exit_code == 0, res.output
    raw = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert raw["data"] == {"files": {"<name>": "<path>"}}  # the placeholder
    raw["data"]["files"] = {"oct4": str(OCT4), "mafk": str(MAFK)}
    task, data, model, train = parse_config(raw, str(out), out.parent)
    assert task.name == "sequence"
    assert data.files == {"oct4": str(OCT4), "mafk": str(MAFK)}
    assert data == TASKS["sequence"].data_class(files=data.files)
    assert model == TASKS["sequence"]().model_config_class()()
    assert train == {}
    # relative to the config file's folder, as the header says
    raw["data"]["files"] = {"oct4": "../oct4.fa.gz"}
    _, data, _, _ = parse_config(raw, str(out), out.parent)
    assert data.files == {"oct4": str(tmp_path / "oct4.fa.gz")}


def test_init_into_a_folder(tmp_path):
    res = runner.invoke(app, ["init", "forecast", "-o", f"{tmp_path}/new/"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "new" / "forecast.yaml").read_text(encoding="utf-8") == ref.starter_yaml("forecast")


def test_init_never_overwrites_without_overwrite(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("task: sequence  # my own config\n", encoding="utf-8")
    res = runner.invoke(app, ["init", "sequence", "-o", str(path)])
    assert res.exit_code == 1
    assert _err(res) == [
        f"error: --output: {path} already exists; pass --overwrite to replace it, or choose another name"
    ]
    assert path.read_text(encoding="utf-8") == "task: sequence  # my own config\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]  # no temporary file left
    res = runner.invoke(app, ["init", "sequence", "-o", str(path), "--overwrite"])
    assert res.exit_code == 0
    assert path.read_text(encoding="utf-8") == ref.starter_yaml("sequence")


def test_init_refuses_a_file_that_appears_while_it_writes(tmp_path, monkeypatch):
    """The check before writing and the write are one step: a file created in between is kept."""
    path = tmp_path / "race.yaml"
    from biolstm.pipeline import runfolder

    checked = runfolder.output_path

    def check_then_someone_writes(p, *args, **kwargs):
        out = checked(p, *args, **kwargs)
        path.write_text("theirs\n", encoding="utf-8")
        return out

    monkeypatch.setattr(runfolder, "output_path", check_then_someone_writes)
    with pytest.raises(ValueError, match="already exists"):
        ref.write_starter("sequence", path)
    assert path.read_text(encoding="utf-8") == "theirs\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.yaml"]
