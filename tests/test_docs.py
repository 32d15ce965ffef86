"""The code in README.md and docs/*.md works: every Python block runs on its own (in a fresh
namespace, in a temporary folder), and every command in a bash block names a real `make`
target or a real `biolstm` command with options it has (a `biolstm train` line's config and
overrides are checked as the command would check them, without training).

A Python block that cannot run here (it needs a GPU or several nodes) starts with the line
``# not run: <why>``; keep them rare."""

from __future__ import annotations

import re
import shlex

import pytest
import typer

from biolstm.cli import _overrides, app
from biolstm.pipeline.run import check_config

from .datafiles import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```", re.M | re.S)
NOT_RUN = "# not run:"


def _blocks(lang: str) -> list:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1) == lang:
                where = f"{doc.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
                found.append(pytest.param(m.group(2), id=where))
    return found


@pytest.mark.parametrize("code", [b for b in _blocks("python") if not b.values[0].startswith(NOT_RUN)])
def test_python_block_runs(code, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)  # run folders the block writes land here
    exec(compile(code, request.node.callspec.id, "exec"), {"__name__": "__doc_block__"})


def _commands(code: str) -> list[list[str]]:
    """The argv of each command line: continuation lines joined, comments dropped."""
    return [argv for line in code.replace("\\\n", " ").splitlines() if (argv := shlex.split(line, comments=True))]


def _check_biolstm(argv: list[str]) -> None:
    group = typer.main.get_command(app)
    assert argv and argv[0] in group.commands, f"biolstm has no command {argv[:1]}"
    cmd = group.commands[argv[0]]
    options = {o: p for p in cmd.params if p.param_type_name == "option" for o in p.opts}
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    positional, extra, i = [], [], 1
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        if a.startswith("-") and name in options:
            i += 0 if options[name].is_flag or "=" in a else 1  # skip the option's value
        elif a.startswith("-"):
            extra.append(a)
            if "=" not in a and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                extra.append(argv[i + 1])
                i += 1
        else:
            positional.append(a)
        i += 1
    assert len(positional) <= len(arguments), f"biolstm {argv[0]}: too many arguments {positional}"
    if argv[0] == "evaluate":  # new data as data.* keys, the only extra options evaluate takes
        assert all(k.startswith("data.") for k in (o.split("=", 1)[0] for o in _overrides(extra))), extra
        return
    if argv[0] != "train":
        assert not extra, f"biolstm {argv[0]}: no options {extra}"
        return
    overrides = _overrides(extra)  # as the command reads them: --section.key value
    if not positional:  # --resume -o RUN: the run's own config, with the overrides
        assert "--resume" in argv, f"biolstm train: expected CONFIG or --resume, got {argv}"
        return
    config = ROOT / positional[0]
    if config.is_file():  # an example config: keys, types and files checked as the command would
        check_config(config, overrides, None, False)


@pytest.mark.parametrize("code", _blocks("bash"))
def test_bash_block_commands_exist(code):
    makefile = (ROOT / "Makefile").read_text()
    commands = _commands(code)
    assert commands
    for argv in commands:
        if argv[0] == "make":
            assert all(re.search(rf"^{re.escape(t)}:", makefile, re.M) for t in argv[1:]), argv
        elif argv[0] == "biolstm":
            _check_biolstm(argv[1:])
        elif argv[0] == "torchrun" and "-m" in argv:
            at = argv.index("-m")
            assert argv[at + 1] == "biolstm", argv
            _check_biolstm(argv[at + 2 :])
        else:
            pytest.fail(f"a command this test does not know how to check: {shlex.join(argv)}")


def test_the_checks_catch_a_wrong_command():
    with pytest.raises(AssertionError, match="no command"):
        _check_biolstm(["trian", "x.yaml"])
    with pytest.raises(AssertionError, match="no options"):
        _check_biolstm(["report", "runs/x", "--html"])
    with pytest.raises(ValueError, match="hidden_sise"):
        _check_biolstm(["train", "examples/configs/sunspots.yaml", "--model.hidden_sise", "64"])
