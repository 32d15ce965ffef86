"""The repository stands alone: every example config trains from a copy of the repository's
files, one config per task, the text example's data is what its script derives, and no file
points outside the repository."""

from __future__ import annotations

import json
import re
import runpy
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.pipeline.run import check_config
from biolstm.pipeline.tasks import TASKS

from .datafiles import EXAMPLES, ROOT

CONFIGS = sorted((EXAMPLES / "configs").glob("*.yaml"))
SCANNED = ("src", "tests", "examples", "docs", "benchmarks", "README.md", "Makefile", "pyproject.toml")
CLIMB = re.compile(r"(?:\.\./)+[\w.-]+")  # a relative path that starts by climbing out of its folder
PARENTS = re.compile(r"__file__.*\.parents\[(\d+)\]")


def _paths(value) -> list[Path]:
    """The absolute paths among the strings of a nested config (lists, mappings, dataclasses)."""
    if hasattr(value, "__dataclass_fields__"):
        value = vars(value)
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths(v)]
    return [Path(value)] if isinstance(value, str) and Path(value).is_absolute() else []


def _text_files():
    for name in SCANNED:
        p = ROOT / name
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
        for f in files:
            try:
                yield f, f.read_text(encoding="utf-8")
            except UnicodeDecodeError:  # gzip, PNG, safetensors: no paths to read
                continue


def test_no_file_points_outside_the_repository():
    found = []
    for f, text in _text_files():
        for n, line in enumerate(text.splitlines(), 1):
            where = f"{f.relative_to(ROOT)}:{n}: {line.strip()}"
            for m in CLIMB.finditer(line):  # resolved from the file's folder, it must stay in the repository
                if not (f.parent / m.group(0)).resolve().is_relative_to(ROOT):
                    found.append(where)
            for m in PARENTS.finditer(line):  # Path(__file__).parents[k] must stay inside the repository
                if not f.resolve().parents[int(m.group(1))].is_relative_to(ROOT):
                    found.append(where)
    assert not found, "\n".join(found)


def test_one_example_config_per_task_and_each_checks():
    tasks = {yaml.safe_load(c.read_text())["task"]: c for c in CONFIGS}
    assert set(tasks) == set(TASKS)  # the README promises an example for every task
    for config in CONFIGS:  # keys, types and data files (which must exist) are checked, nothing trained
        data = check_config(config, [], None, False)[1]
        paths = _paths(data)  # resolved against the config's folder
        assert paths and all(p.is_file() and p.resolve().is_relative_to(ROOT) for p in paths), config


def test_the_text_example_data_is_what_its_script_derives(tmp_path):
    derive = runpy.run_path(str(EXAMPLES / "make_text_data.py"))["derive"]
    out = derive(tmp_path / "text.csv.gz")
    assert out.read_bytes() == (EXAMPLES / "data" / "oct4_mafk_5mers.csv.gz").read_bytes()


def test_the_genome_example_data_is_what_its_script_derives(tmp_path):
    derive = runpy.run_path(str(EXAMPLES / "make_genome_data.py"))["derive"]
    out = derive(tmp_path / "genome")
    for name in ("genome.fa", "genome.fa.fai", "gata.narrowPeak", "ebox.narrowPeak", "gata.bw", "ebox.bw", "tiles.bed"):
        assert (out / name).read_bytes() == (EXAMPLES / "data" / "genome" / name).read_bytes(), name


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    """The files the examples read, copied with the repository's layout to a folder that has no
    data beside it: a user's clone."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "src" / "biolstm" / "demo_data", root / "src" / "biolstm" / "demo_data")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_example_config_trains_from_a_copy_of_the_repository(config, repo_copy, tmp_path):
    copy = repo_copy / "examples" / "configs" / config.name
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", str(copy), "-o", str(out), "-q", "--train.epochs", "1"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == yaml.safe_load(config.read_text())["task"]
    assert "model" in metrics["metrics"] and len(metrics["metrics"]) >= 2  # the model and its baselines
    read = _paths(yaml.safe_load((out / "config.yaml").read_text())["data"])
    assert read and all(p.resolve().is_relative_to(repo_copy.resolve()) for p in read)  # the copy's data only
