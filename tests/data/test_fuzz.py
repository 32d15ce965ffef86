"""Property-based tests: arbitrary bytes and near-valid files either parse correctly or raise
InputError naming the file; never another exception, a hang or a silent wrong parse."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from biolstm import InputError
from biolstm.config import load_yaml
from biolstm.data.encode import one_hot
from biolstm.data.sequences import read_sequences
from biolstm.data.timeseries import read_series
from biolstm.pipeline.run import check_config

FUZZ = settings(max_examples=150, deadline=2000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_.|", min_size=1, max_size=12)
dna = st.text("ACGTNacgtn", min_size=1, max_size=80)


_ROOT = tempfile.TemporaryDirectory(prefix="biolstm-fuzz-")  # every example's file, removed with the module


@pytest.fixture(scope="module", autouse=True)
def _remove_the_examples_files():
    yield
    _ROOT.cleanup()


def _file(data: bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(dir=_ROOT.name))
    path = folder / name
    path.write_bytes(data)
    return path


def _reads_or_refuses(fn, path: Path):
    """fn(path)'s result, or None when it raised InputError naming the file."""
    try:
        return fn(path)
    except InputError as err:
        assert str(err).startswith(f"{path}"), str(err)
        return None


@FUZZ
@given(data=st.binary(max_size=400), name=st.sampled_from(["x.fa", "x.fq", "x.txt", "x.fa.gz"]))
@example(data=b">", name="x.fa")
@example(data=b"@r\nACGT\n+\n", name="x.fq")
def test_sequence_reader_on_arbitrary_bytes(data, name):
    records = _reads_or_refuses(lambda p: list(read_sequences(p)), _file(data, name))
    if records is not None:
        assert records and all(r.seq and r.id for r in records)


@FUZZ
@given(recs=st.lists(st.tuples(ids, dna), min_size=1, max_size=6), width=st.integers(5, 90), gz=st.booleans())
def test_valid_fasta_parses_back_exactly(recs, width, gz):
    wrap = lambda s: "\n".join(s[k : k + width] for k in range(0, len(s), width))  # noqa: E731
    text = "".join(f">{i} note\n{wrap(s)}\n" for i, s in recs)
    data = gzip.compress(text.encode(), mtime=0) if gz else text.encode()
    got = list(read_sequences(_file(data, "x.fa.gz" if gz else "x.fa")))
    assert [(r.id, r.seq) for r in got] == recs


@FUZZ
@given(recs=st.lists(st.tuples(ids, dna), min_size=1, max_size=4), data=st.data())
def test_fastq_with_one_byte_changed_parses_or_is_refused(recs, data):
    text = "".join(f"@{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in recs).encode()
    pos = data.draw(st.integers(0, len(text) - 1))
    new = data.draw(st.integers(0, 255))
    mutated = text[:pos] + bytes([new]) + text[pos + 1 :]
    got = _reads_or_refuses(lambda p: list(read_sequences(p)), _file(mutated, "x.fq"))
    if got is not None:  # what parses is what the bytes say: every quality matches its sequence
        assert all(r.quality is not None and len(r.quality) == len(r.seq) for r in got)


@FUZZ
@given(seqs=st.lists(st.text(max_size=30), min_size=1, max_size=5))
def test_one_hot_on_arbitrary_text(seqs):
    try:
        x, lengths = one_hot(seqs)
    except InputError as err:
        assert "expected" in str(err) and "position" in str(err)
        return
    assert x.shape[0] == len(seqs) and np.isfinite(x).all()
    assert (lengths == [len(s) for s in seqs]).all()
    for s, row in zip(seqs, x):  # unambiguous letters map to exactly their channel
        for k, ch in enumerate(s.upper()):
            if ch in "ACGT":
                assert row[k].argmax() == "ACGT".index(ch) and row[k].sum() == 1


@FUZZ
@given(data=st.binary(max_size=300))
@example(data=b"time,value\n1,nan\n2,inf\n")
@example(data=b"time,value\n1,1\n1,2\n")
def test_series_reader_on_arbitrary_bytes(data):
    s = _reads_or_refuses(read_series, _file(data, "s.csv"))
    if s is not None:  # what is read is sorted by time, with finite values or gaps (NaN)
        assert not np.isinf(s.values).any()
        assert len(set(s.time.tolist())) == len(s.time)


@FUZZ
@given(values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4)), max_size=8))
def test_series_reader_on_near_valid_tables(values):
    text = "time,value\n" + "".join(f"{t},{v}\n" for t, v in enumerate(values))
    s = _reads_or_refuses(read_series, _file(text.encode(), "s.csv"))
    if s is not None:
        expect = []
        for v in values:
            try:
                expect.append(float(v) if str(v).strip() else float("nan"))
            except ValueError:
                pytest.fail(f"{v!r} was read as a number")
        assert all(abs(v) < 3.4e38 for v in expect if v == v)  # inf and float32 overflow are refused
        np.testing.assert_allclose(s.values[:, 0], np.array(expect, dtype=np.float32), equal_nan=True)


@FUZZ
@given(text=st.text(max_size=200))
@example(text="a: [1, 2\n")
@example(text="- 1\n- 2\n")
def test_yaml_loader_on_arbitrary_text(text):
    cfg = _reads_or_refuses(load_yaml, _file(text.encode("utf-8", "surrogatepass"), "c.yaml"))
    assert cfg is None or isinstance(cfg, dict)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(-1, 2), st.text(max_size=6))
sections = st.dictionaries(st.sampled_from(["epochs", "batch_size", "lr", "optimizer", "loss", "seed", "hidden_size",
                                            "num_layers", "dropout", "kind", "epocs", "files", "split"]),
                           scalars, max_size=4)  # fmt: skip


@FUZZ
@given(
    task=st.one_of(scalars, st.sampled_from(["sequence", "forecast", "longitudinal", "expression", "text"])),
    data=sections,
    model=sections,
    train=sections,
    extra=st.dictionaries(st.text(max_size=5), scalars, max_size=2),
)
def test_config_checker_on_arbitrary_mappings(task, data, model, train, extra):
    cfg = {"task": task, "data": data, "model": model, "train": train, **extra}
    path = _file(yaml.safe_dump(cfg).encode(), "c.yaml")
    _reads_or_refuses(lambda p: check_config(p, [], None, False), path)
