"""The ``data:`` sections of run configs (pipeline/tasks/) refuse bad keys with one message
naming ``data.<key>``, and the tasks refuse data they cannot train on before encoding it: a
record too long to pad, inputs larger than memory, a gap in a series, one class only, a class
missing from training, labels with stray spaces."""

from __future__ import annotations

import numpy as np
import pytest

from biolstm.errors import InputError
from biolstm.pipeline.tasks import (
    ExpressionData,
    ForecastTask,
    LongitudinalData,
    LongitudinalTask,
    MultivariateData,
    Outcome,
    SequenceData,
    SequenceTask,
    SeriesData,
    TextData,
)
from biolstm.pipeline.tasks import sequence as seqtask

FILES = {"files": {"a": "a.fa", "b": "b.fa"}}
SECTIONS = {  # class, the keys it needs
    "sequence": (SequenceData, FILES),
    "series": (SeriesData, {"file": "s.csv"}),
    "longitudinal": (LongitudinalData, {"file": "v.csv", "variables": ["a"]}),
    "multivariate": (MultivariateData, {"file": "v.csv", "target": "y"}),
    "expression": (ExpressionData, {"file": "e.csv"}),
    "text": (TextData, {"file": "t.csv"}),
}
BAD = [  # (section, key, value, the message must contain)
    ("sequence", "kmer", 40, "data.kmer: expected 0 (no k-mer baseline) or 1 to 8, got 40"),
    ("sequence", "kmer", -2, "data.kmer: expected 0 (no k-mer baseline) or 1 to 8, got -2"),
    ("sequence", "kmer", 2.5, "data.kmer: expected an int, got 2.5 (float)"),
    ("sequence", "max_length", 0, "data.max_length: expected an int >= 1, got 0"),
    ("sequence", "max_length", True, "data.max_length: expected an int or null, got True (bool)"),
    ("sequence", "seed", 10**23, "data.seed: expected an int from 0 to 4,294,967,295"),
    ("sequence", "seed", -1, "data.seed: expected an int from 0 to"),
    ("sequence", "test", float("nan"), "data.test: expected a finite number, got nan"),
    ("sequence", "val", 1.0, "data.val: expected a fraction in [0, 1), got 1.0"),
    ("sequence", "test", 0.6, "data.test, data.val: expected fractions summing below 1, got 0.6 + 0.5"),
    ("sequence", "files", "bound.fa", "data.files: expected a mapping {class: file}"),
    ("sequence", "files", {"a": None}, "data.files: expected a mapping {class: file}"),
    ("sequence", "test_chromosomes", "chr1", "data.test_chromosomes: expected a list, got 'chr1' (str)"),
    ("sequence", "rc_augment", "yes please", "data.rc_augment: expected true or false"),
    ("sequence", "format", "genbank", "data.format: expected one of 'auto', 'fasta', 'fastq', got 'genbank'"),
    ("series", "lookback", 0, "data.lookback: expected an int >= 1, got 0"),
    ("series", "horizon", 1.5, "data.horizon: expected an int, got 1.5"),
    ("series", "test", -1, "data.test: expected a fraction in [0, 1) or a count of steps (>= 1), got -1"),
    ("series", "val", float("inf"), "data.val: expected a finite number, got inf"),
    ("series", "seed", 2**32, "data.seed: expected an int from 0 to 4,294,967,295"),
    ("longitudinal", "time_scale", 0, "data.time_scale: expected a number > 0"),
    ("longitudinal", "positive", {"a": 1}, "data.positive: expected a string or an int or a list or null, got {'a'"),
    ("multivariate", "outcome", "ordinal", "data.outcome: expected one of"),
    ("longitudinal", "test", 0, "data.test: expected a fraction in (0, 1), got 0"),
    ("expression", "components", 0, "data.components: expected an int >= 1, got 0"),
    ("text", "max_vocab", 2, "data.max_vocab: expected an int >= 3"),
    ("text", "min_count", 0, "data.min_count: expected an int >= 1, got 0"),
    ("text", "max_length", -5, "data.max_length: expected an int >= 1, got -5"),
]


@pytest.mark.parametrize(("section", "key", "value", "message"), BAD, ids=[f"{b[0]}-{b[1]}-{b[2]!r}" for b in BAD])
def test_bad_data_keys_name_the_key(section, key, value, message):
    cls, needed = SECTIONS[section]
    raw = {**needed, key: value}
    if key == "test" and section == "sequence" and value == 0.6:
        raw["val"] = 0.5
    with pytest.raises((TypeError, ValueError)) as info:
        cls.from_dict(raw)
    assert message in str(info.value)


@pytest.mark.parametrize("section", list(SECTIONS))
def test_the_defaults_and_plain_values_pass(section):
    cls, needed = SECTIONS[section]
    cls.from_dict(needed)
    cls.from_dict({**needed, "seed": 2**32 - 1, "val": 0})  # an int where a number goes


def test_positive_may_be_a_string_or_an_int():
    assert SequenceData.from_dict({**FILES, "positive": 1}).positive == 1
    with pytest.raises(TypeError, match=r"data\.positive: expected a string or an int or a list or null, got 1\.5"):
        SequenceData.from_dict({**FILES, "positive": 1.5})


def _fasta(path, n, length=8, first=None):
    recs = ([first] if first else []) + [f">{path.stem}{k}\n" + "ACGT" * (length // 4) + "\n" for k in range(n)]
    path.write_text("".join(recs))
    return str(path)


def test_a_record_too_long_to_pad_is_refused_before_encoding(tmp_path, monkeypatch):
    monkeypatch.setattr(seqtask, "MAX_PADDED", 100)
    a = _fasta(tmp_path / "a.fa", 10, first=">big\n" + "ACGT" * 50 + "\n")
    b = _fasta(tmp_path / "b.fa", 10)
    d = SequenceData.from_dict({"files": {"a": a, "b": b}})
    expected = r"a\.fa: record 1 \(big\) is 200 bp, longer than the 100 bp .*data\.max_length"
    with pytest.raises(InputError, match=expected):
        SequenceTask().prepare(d, lambda m: None)
    prep = SequenceTask().prepare(d.merged(max_length=12), lambda m: None)  # truncated when max_length is set
    assert prep.state["length"] == 12 and prep.train[0]["x"].shape[1] == 12


def test_inputs_larger_than_memory_are_refused(tmp_path):
    d = SequenceData.from_dict({"files": {"a": "a.fa", "b": "b.fa"}, "max_length": 10**9})
    with pytest.raises(InputError, match=r"data\.max_length: 1,000 sequences padded to 1,000,000,000 bp take .* GiB"):
        seqtask._padded_length(d, [10] * 1000, [("a.fa", k + 1) for k in range(1000)], [f"s{k}" for k in range(1000)])
    n = 10**6  # a million 10-bp reads: 160 MB one-hot, but 8-mer counts of 786 GB
    d = SequenceData.from_dict({"files": {"a": "a.fa", "b": "b.fa"}, "kmer": 8})
    with pytest.raises(InputError, match=r"data\.kmer: the 8-mer baseline's table for 1,000,000 sequences takes"):
        seqtask._padded_length(d, [10] * n, [], [])
    assert seqtask._padded_length(d.merged(kmer=3), [10] * n, [], []) == 10


def test_a_class_missing_from_training_is_refused(tmp_path):
    a = tmp_path / "a.fa"
    a.write_text("".join(f">chr2:{k * 10}-{k * 10 + 8}\nACGTACGT\n" for k in range(5)))  # every 'a' on chr2
    b = tmp_path / "b.fa"
    b.write_text("".join(f">chr{1 + k % 2}:{k * 10 + 1000}-{k * 10 + 1008}\nACGTTTGT\n" for k in range(6)))
    files = {"a": str(a), "b": str(b)}
    d = SequenceData.from_dict({"files": files, "split": "chromosome", "test_chromosomes": ["chr2"]})
    with pytest.raises(InputError, match=r"data\.split \(chromosome\): the training split has no example of class 'a'"):
        SequenceTask().prepare(d, lambda m: None)


def test_a_gap_in_a_series_names_column_and_time(tmp_path):
    f = tmp_path / "gap.csv"
    f.write_text("time,x,value\n" + "".join(f"{1700 + k},1,{'' if k == 30 else k}\n" for k in range(40)))
    d = SeriesData.from_dict({"file": str(f), "target": "value"})
    with pytest.raises(InputError, match=r"gap\.csv: column 'value': missing value at time 1730; expected a value"):
        ForecastTask()._read(d, str(f))


def test_longitudinal_target_with_one_class_is_refused(tmp_path):
    f = tmp_path / "v.csv"
    f.write_text("id,day,a,status\n" + "".join(f"{i},{10 * k},{k},{i % 2}\n" for i in range(12) for k in range(2)))
    d = LongitudinalData.from_dict({"file": str(f), "id_col": "id", "time_col": "day", "variables": ["a"],
                                    "positive": [0, 1]})  # fmt: skip
    expected = r"v\.csv: column 'status': with data\.positive \[0, 1\] every example is in one class"
    with pytest.raises(InputError, match=expected):
        LongitudinalTask().prepare(d, lambda m: None)
    prep = LongitudinalTask().prepare(d.merged(positive=[1]), lambda m: None)
    assert sorted(np.unique(prep.train[1].numpy())) == [0, 1]


def test_labels_with_stray_spaces_are_refused():
    with pytest.raises(InputError, match=r"x\.csv: column 'y': label 'a ' has leading or trailing spaces"):
        Outcome(where="x.csv: column 'y'").fit(["a", "a ", "b"])
    o = Outcome(where="x.csv: column 'y'").fit(["a", "b", "a"])
    assert o.classes_ == ["a", "b"] and o.truth(["a", "b", "a"]).tolist() == [0, 1, 0]
