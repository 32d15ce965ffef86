"""Readers name what is wrong with a file in one line: not a regular file (a folder, a FIFO, a
symbolic-link loop), binary data, a non-ASCII letter (its record and position), a gzip file cut
short, duplicate record ids, labels with stray spaces, a variable never observed, and
stratified splits too small to hold every class."""

from __future__ import annotations

import gzip
import os

import pytest

from biolstm.data import load_sequences, read_bed, read_expression, read_label_table, read_sequences
from biolstm.data.longitudinal import read_longitudinal
from biolstm.data.splits import check_stratified_sizes, split_random
from biolstm.data.tables import read_table
from biolstm.errors import InputError

READERS = {
    "sequences": lambda p: list(read_sequences(p)),
    "label table": read_label_table,
    "table": read_table,
    "bed": read_bed,
    "expression": lambda p: read_expression(p, label=None),
    "longitudinal": lambda p: read_longitudinal(p, "id", "time", ["a"]),
}


def _records(n: int) -> str:
    return "".join(f">s{k}\nACGTACGT\n" for k in range(n))


@pytest.mark.parametrize("reader", list(READERS))
def test_a_folder_a_fifo_and_a_symlink_loop_are_named(tmp_path, reader):
    read = READERS[reader]
    folder = tmp_path / "in.csv"
    folder.mkdir()
    with pytest.raises(InputError, match=r"in\.csv: expected .*, got a folder$"):
        read(folder)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"pipe\.csv: expected .*, got a FIFO"):
        read(fifo)  # refused without opening it (opening a FIFO would block)
    loop = tmp_path / "loop.csv"
    os.symlink(loop, loop)
    with pytest.raises(InputError, match=r"loop\.csv: expected .*, got a loop of symbolic links"):
        read(loop)
    with pytest.raises(InputError, match=r"gone\.csv: expected .*, found no such file"):
        read(tmp_path / "gone.csv")


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    fa = tmp_path / "locked.fa"
    fa.write_text(_records(2))
    fa.chmod(0)
    real = os.access  # root reads any file: the permission check is told what a user without rights gets
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(fa) else real(p, mode, **kw))
    with pytest.raises(InputError, match=r"locked\.fa: .*cannot be read \(permission denied\)"):
        list(read_sequences(fa))


def test_a_non_ascii_letter_is_named_with_its_record_and_position(tmp_path):
    utf8 = tmp_path / "u.fa"
    utf8.write_text(_records(7) + ">s7\nACGTÄCGT\n", encoding="utf-8")
    expected = r"u\.fa: record 8 \(s7\): expected ASCII sequence letters, got 'Ä' at position 5$"
    with pytest.raises(InputError, match=expected):
        list(read_sequences(utf8))
    latin1 = tmp_path / "l.fa.gz"  # a byte that is not UTF-8, inside a gzip file
    latin1.write_bytes(gzip.compress(_records(2).encode() + b">s2\nAC\nGT\xc4A\n"))
    with pytest.raises(InputError, match=r"l\.fa\.gz: record 3 \(s2\): .*got byte 0xC4 at position 5$"):
        list(read_sequences(latin1))


def test_headers_may_be_utf8_but_not_other_bytes(tmp_path):
    ok = tmp_path / "ok.fa"
    ok.write_bytes(b"\xef\xbb\xbf" + ">Gène1 cell=Müller\nACGT\n".encode())  # a byte-order mark is skipped
    (rec,) = read_sequences(ok)
    assert rec.id == "Gène1" and rec.description == "Gène1 cell=Müller" and rec.seq == "ACGT"
    bad = tmp_path / "bad.fa"
    bad.write_bytes(b">s0\nAC\n>s\xff1\nAC\n")
    with pytest.raises(InputError, match=r"bad\.fa: record 2: expected a UTF-8 text header, got byte 0xFF at column 3"):
        list(read_sequences(bad))


def test_binary_data_is_refused_before_parsing(tmp_path):
    blob = tmp_path / "blob.fa"
    blob.write_bytes(b">s0\nACGT\x00\x01\x02")
    expected = r"blob\.fa: expected FASTA/FASTQ text, got binary data \(NUL at character 9\)"
    with pytest.raises(InputError, match=expected):
        list(read_sequences(blob))


def test_a_gzip_file_cut_short_is_named(tmp_path):
    whole = gzip.compress(_records(2000).encode())
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    expected = r"cut\.fa\.gz: expected a complete gzip file, but it ends early \(after record \d+\)"
    with pytest.raises(InputError, match=expected):
        list(read_sequences(cut))
    table = tmp_path / "cut.csv.gz"
    table.write_bytes(gzip.compress(b"time,value\n" + b"".join(b"%d,1\n" % k for k in range(5000)))[:200])
    with pytest.raises(InputError, match=r"cut\.csv\.gz: expected a complete compressed file, but it ends early"):
        read_table(table)


def test_duplicate_record_ids_name_both_records(tmp_path):
    fa = tmp_path / "d.fa"
    fa.write_text(">s0\nACGT\n>s1\nACGT\n>s0 again\nACGT\n")
    with pytest.raises(InputError, match=r"d\.fa: record 3: duplicate record id 's0' \(first at record 1\)"):
        load_sequences(files={"x": fa})
    with pytest.raises(InputError, match=r"d\.fa: record 3: duplicate record id 's0'"):
        load_sequences(file=fa, label_field=0)
    other = tmp_path / "o.fa"
    other.write_text(">t0\nACGT\n>s1\nACGT\n")
    fa.write_text(">s0\nACGT\n>s1\nACGT\n")
    with pytest.raises(InputError, match=r"o\.fa: record 2: duplicate record id 's1' \(first at .*d\.fa: record 2\)"):
        load_sequences(files={"a": fa, "b": other})
    assert len(list(read_sequences(fa))) == 2  # reading alone (e.g. to predict) still takes any ids


def test_label_table_refuses_stray_spaces(tmp_path):
    table = tmp_path / "lab.csv"
    table.write_text("id,label\nr0,a\nr1,a \nr2,b\n")
    with pytest.raises(InputError, match=r"lab\.csv: line 3: column 'label': 'a ' has leading or trailing spaces"):
        read_label_table(table)
    table.write_text("id,label\nr0,a\n r1,b\n")
    with pytest.raises(InputError, match=r"lab\.csv: line 3: column 'id': ' r1' has leading or trailing spaces"):
        read_label_table(table)
    table.write_text("id,label\nr0,a b\nr1,b\n")
    assert read_label_table(table) == {"r0": "a b", "r1": "b"}  # a space inside a label is fine


def test_a_variable_never_observed_is_named(tmp_path):
    visits = tmp_path / "visits.csv"
    visits.write_text("id,time,a,b\n1,0,1.0,\n1,5,2.0,\n2,0,3.0,\n")
    with pytest.raises(InputError, match=r"visits\.csv: column 'b': expected at least one observed value, got none"):
        read_longitudinal(visits, "id", "time", ["a", "b"])
    assert read_longitudinal(visits, "id", "time", ["a"]).lengths.tolist() == [2, 1]
    visits.write_text("id,time,a\n")
    with pytest.raises(InputError, match=r"visits\.csv: expected at least one visit row, got none"):
        read_longitudinal(visits, "id", "time", ["a"])


def test_stratified_split_too_small_for_its_classes():
    labels = ["a"] * 4 + ["b"] * 4 + ["c"] * 4  # 12 examples in 3 classes: 10% test is 2 examples
    with pytest.raises(InputError, match=r"^test, val: a stratified split of 12 examples in 3 classes gives 2 test"):
        split_random(labels, test=0.1, val=0.1)
    with pytest.raises(InputError, match=r"^data\.test, data\.val: .* gives 2 test, 10 training examples"):
        check_stratified_sizes(labels, 0.1, 0.0, "data.test, data.val")
    s = split_random(labels, test=0.25, val=0.25)
    for part in s:
        assert sorted({labels[i] for i in part}) == ["a", "b", "c"]


def test_a_compressed_tsv_is_read_as_tab_separated(tmp_path):
    import gzip

    from biolstm.data.tables import read_table

    (tmp_path / "t.tsv.gz").write_bytes(gzip.compress(b"a\tb\n1\t2\n3\t4\n"))
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert list(read_table(tmp_path / "t.tsv.gz").columns) == ["a", "b"]
    assert read_table(tmp_path / "t.tsv.gz")["b"].tolist() == [2, 4]
    assert list(read_table(tmp_path / "c.csv.gz").columns) == ["a", "b"]
