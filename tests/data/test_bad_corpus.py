"""Every hand-made bad file in tests/data/bad/ raises InputError naming the file and the
expected message (tests/data/bad/expected.tsv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from biolstm import InputError
from biolstm.config import load_yaml
from biolstm.data.encode import one_hot
from biolstm.data.expression import read_expression
from biolstm.data.longitudinal import read_longitudinal
from biolstm.data.sequences import load_sequences, read_label_table, read_sequences
from biolstm.data.splits import read_bed
from biolstm.data.timeseries import read_series
from biolstm.train.checkpoint import load_checkpoint

BAD = Path(__file__).with_name("bad")


def _encode(path):
    origins: list = []
    seqs = load_sequences(files={"x": path}, origins=origins)[1]
    return one_hot(seqs, origins=origins)


READERS = {
    "sequences": lambda p: list(read_sequences(p)),
    "encode": _encode,
    "labels": read_label_table,
    "series": read_series,
    "expression": lambda p: read_expression(p, label=None, sample="sample"),
    "longitudinal": lambda p: read_longitudinal(p, "id", "time", ["a"]),
    "yaml": load_yaml,
    "bed": read_bed,
    "checkpoint": load_checkpoint,
}
CASES = [
    line.split("\t")
    for line in (BAD / "expected.tsv").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def test_every_file_in_the_corpus_has_a_case():
    listed = {name for name, _, _ in CASES}
    assert listed == {p.name for p in BAD.iterdir()} - {"expected.tsv", "README.md"}


@pytest.mark.parametrize(("name", "reader", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_gives_its_message(name, reader, message):
    path = BAD / name
    with pytest.raises(InputError) as info:
        READERS[reader](path)
    text = str(info.value)
    assert text.startswith(f"{path}: "), text  # the file first
    assert message in text, text  # repr() shows a tab as \t, as the file expected.tsv writes it
