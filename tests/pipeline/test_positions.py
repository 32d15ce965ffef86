"""The positions task (one label per position): the three label sources and their errors, the
masked loss and metrics, the window k-mer baseline, the tagger, and `biolstm train` on the
soft-masked bases of the Oct4/MafK peaks."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from biolstm.cli import app
from biolstm.errors import InputError
from biolstm.models import SequenceTagger, SequenceTaggerConfig
from biolstm.pipeline import evaluation as ev
from biolstm.pipeline.tasks import TASKS, PositionsData, PositionsTask
from biolstm.pipeline.tasks.base import Prepared
from biolstm.pipeline.tasks.positions import IGNORE, read_records, targets
from biolstm.train.trainer import IGNORE_INDEX, TrainerConfig, per_sample_loss

from ..datafiles import MAFK, OCT4

runner = CliRunner()


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _fasta(path, records: dict) -> str:
    return _write(path, "".join(f">{k}\n{v}\n" for k, v in records.items()))


def _data(**keys) -> PositionsData:
    return PositionsData.from_dict(keys)


SEQS = {"r1": "ACGTAC", "r2": "GGGA", "r3": "TTACGTA"}


# ------------------------------------------------------------------------ label sources
def test_label_strings_give_one_class_per_position(tmp_path):
    inp = _fasta(tmp_path / "in.fa", SEQS)
    lab = _fasta(tmp_path / "labels.fa", {"r1": "HHHEE-", "r2": "--.H", "r3": "EEE--HH"})
    d = _data(file=inp, labels=lab, unlabelled=".")
    assert d.label_source == "strings"  # auto: a FASTA of labels
    recs = read_records(d)
    assert recs.classes == ["-", "E", "H"] and recs.ids == ["r1", "r2", "r3"]
    assert recs.labels[0].tolist() == [2, 2, 2, 1, 1, 0]
    assert recs.labels[1].tolist() == [0, 0, IGNORE, 2]  # '.' is unlabelled
    assert recs.seqs == list(SEQS.values())  # case and letters as read
    assert targets(recs.labels, 5).tolist()[1] == [0, 0, IGNORE, 2, IGNORE]  # cut to 5, padded with IGNORE


def test_label_strings_errors_name_the_file_and_record(tmp_path):
    inp = _fasta(tmp_path / "in.fa", SEQS)
    short = _fasta(tmp_path / "short.fa", {"r1": "000111", "r2": "011", "r3": "0000000"})
    with pytest.raises(InputError, match=r"short\.fa: record 2 \('r2'\): expected 4 labels \(one per position of "
                                         r"record 2 of .*in\.fa\), got 3"):  # fmt: skip
        read_records(_data(file=inp, labels=short))
    odd = _fasta(tmp_path / "odd.fa", {"r1": "000111", "r2": "0110", "r3": "00x0000"})
    with pytest.raises(InputError, match=r"odd\.fa: record 3 \('r3'\): expected labels among \['0', '1'\], got 'x' at "
                                         r"position 3"):  # fmt: skip
        read_records(_data(file=inp, labels=odd, classes=[0, 1]))
    swapped = _fasta(tmp_path / "swapped.fa", {"r2": "0110", "r1": "000111", "r3": "0000000"})
    with pytest.raises(InputError, match=r"swapped\.fa: record 1: expected id 'r1' \(record 1 of .*in\.fa\), got 'r2'"):
        read_records(_data(file=inp, labels=swapped))
    fewer = _fasta(tmp_path / "fewer.fa", {"r1": "000111", "r2": "0110"})
    with pytest.raises(InputError, match=r"fewer\.fa: expected 3 records \(one per record of .*in\.fa\), found 2"):
        read_records(_data(file=inp, labels=fewer))


def test_a_label_table_fills_positions_with_the_default_or_leaves_them_unlabelled(tmp_path):
    inp = _fasta(tmp_path / "in.fa", SEQS)
    table = _write(tmp_path / "sites.tsv", "id\tposition\tlabel\nr1\t2\tsite\nr3\t7\tsite\nr3\t1\tother\n")
    d = _data(file=inp, labels=table)
    assert d.label_source == "table"  # auto: a .tsv
    recs = read_records(d)
    assert recs.classes == ["other", "site"]
    assert recs.labels[0].tolist() == [IGNORE, 1, IGNORE, IGNORE, IGNORE, IGNORE]
    assert recs.labels[1].tolist() == [IGNORE] * 4
    assert recs.labels[2].tolist() == [0] + [IGNORE] * 5 + [1]
    recs = read_records(_data(file=inp, labels=table, default="none"))
    assert recs.classes == ["none", "other", "site"]
    assert recs.labels[0].tolist() == [0, 2, 0, 0, 0, 0] and recs.labels[1].tolist() == [0] * 4


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ("r2\t5\tsite\n", r"sites\.tsv: line 2: position 5 is past the end of record 'r2' \(4 positions; .*in\.fa: "
                          r"record 2\)"),
        ("r9\t1\tsite\n", r"sites\.tsv: line 2: record id 'r9' is not in .*in\.fa"),
        ("r1\t0\tsite\n", r"sites\.tsv: line 2: position: expected a whole number from 1, got '0'"),
        ("r1\tx\tsite\n", r"sites\.tsv: line 2: position: expected a whole number from 1, got 'x'"),
        ("r1\t1\tsite\nr1\t1\tother\n", r"sites\.tsv: line 3: record 'r1' position 1 has a label already"),
        ("r1\t1\t\n", r"sites\.tsv: line 2: expected a label, got none"),
    ],
)  # fmt: skip
def test_label_table_errors_name_the_line(tmp_path, rows, error):
    inp = _fasta(tmp_path / "in.fa", SEQS)
    table = _write(tmp_path / "sites.tsv", "id\tposition\tlabel\n" + rows)
    with pytest.raises(InputError, match=error):
        read_records(_data(file=inp, labels=table))


def test_the_soft_mask_labels_lowercase_bases_and_the_input_hides_it(tmp_path):
    inp = _fasta(tmp_path / "in.fa", {"a": "ACgtaC", "b": "ggGA"})
    d = _data(file=inp)
    assert d.label_source == "soft_mask"  # auto: no labels file
    recs = read_records(d)
    assert recs.classes == ["0", "1"]
    assert [r.tolist() for r in recs.labels] == [[0, 0, 1, 1, 1, 0], [1, 1, 0, 0]]
    assert recs.seqs == ["ACGTAC", "GGGA"]
    plain = read_records(_data(file=_fasta(tmp_path / "upper.fa", {"a": "ACGTAC", "b": "GGGA"})))
    task = PositionsTask()
    x = task._encode(d, recs, [0, 1], 6)[0]["x"]
    assert torch.equal(x, task._encode(d, plain, [0, 1], 6)[0]["x"])  # the case never reaches the model


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ({"source": "soft_mask", "labels": "l.fa"}, r"data\.labels: source 'soft_mask' reads its labels"),
        ({"source": "strings"}, r"data\.labels: source 'strings' expected a labels file"),
        ({"labels": "l.fa", "default": "0"}, r"data\.default: only for source 'table'"),
        ({"labels": "l.tsv", "unlabelled": "."}, r"data\.unlabelled: only for source 'strings'"),
        ({"labels": "l.fa", "classes": ["helix", "sheet"]}, r"data\.classes: source 'strings' has one ASCII character"),
        ({"kmer": 4, "window": 3}, r"data\.window: expected at least data\.kmer \(4\), got 3"),
        ({"kmer": 6}, r"data\.kmer: expected 0 \(no window k-mer baseline\) or 1 to 5, got 6"),
        ({"file": None}, r"data\.file: expected a FASTA/FASTQ file"),
        ({"split": "group"}, r"data\.groups: split 'group' expected a CSV/TSV"),
    ],
)
def test_config_errors_name_the_key(keys, error):
    with pytest.raises((ValueError, TypeError), match=error):
        _data(**{"file": "in.fa", **keys})


# ------------------------------------------------------------------------ masking
def test_the_masked_loss_ignores_padding_binary_and_multiclass():
    y = torch.tensor([[1, 0, IGNORE_INDEX], [0, IGNORE_INDEX, IGNORE_INDEX]])
    out = torch.tensor([[2.0, -1.0, 5.0], [0.5, -3.0, 7.0]])
    per = per_sample_loss("masked_cross_entropy", out, y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    first = (bce(out[0, 0], torch.tensor(1.0)) + bce(out[0, 1], torch.tensor(0.0))) / 2
    assert per[0].item() == pytest.approx(first.item())
    assert per[1].item() == pytest.approx(bce(out[1, 0], torch.tensor(0.0)).item())
    for shape in ((2, 3), (2, 3, 4)):
        a = torch.randn(*shape, requires_grad=True)
        b = a.detach().clone()
        b[0, 2], b[1, 1:] = float("nan"), 1e6  # padding holds anything
        b.requires_grad_(True)
        la, lb = (per_sample_loss("masked_cross_entropy", t, y if len(shape) == 2 else y.clamp(max=3)) for t in (a, b))
        assert torch.equal(la, lb)
        la.sum().backward()
        lb.sum().backward()
        assert torch.equal(a.grad, b.grad) and a.grad[0, 2].abs().sum() == 0
    assert TrainerConfig(loss="masked_cross_entropy").loss == "masked_cross_entropy"


def test_the_tagger_keeps_positions_aligned_and_padding_changes_no_real_output():
    torch.manual_seed(0)
    model = SequenceTagger(SequenceTaggerConfig(conv_filters=4, conv_kernel=5, hidden_size=3, dropout=0.0)).eval()
    x = torch.randn(3, 7, 4)
    lengths = torch.tensor([7, 4, 2])
    out = model(x, lengths)
    assert out.shape == (3, 7)
    longer = torch.cat([x, torch.randn(3, 5, 4)], 1)  # more padding, holding noise
    noisy = longer.clone()
    noisy[1, 4:], noisy[2, 2:] = 9.0, -9.0
    again = model(noisy, lengths)
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(out[i, :n], again[i, :n], atol=1e-6)
        alone = model(x[i : i + 1, :n], torch.tensor([n]))  # the record alone, unpadded
        assert torch.allclose(out[i, :n], alone[0], atol=1e-6)
    model.train()  # batch normalisation takes its statistics over the real positions only
    assert torch.allclose(model(x, lengths), model(noisy, lengths)[:, :7], atol=1e-6)
    multi = SequenceTagger(conv_filters=0, hidden_size=3, task="multiclass", num_outputs=5)
    assert multi(x, lengths).shape == (3, 7, 5)
    with pytest.raises(ValueError, match=r"num_outputs: expected 1 for task='binary', got 3"):
        SequenceTaggerConfig(num_outputs=3)


def _prepared(y: np.ndarray, baselines: dict | None = None, kind: str = "binary") -> Prepared:
    y = torch.from_numpy(y)
    lengths = (y != IGNORE).sum(1)
    test = ({"x": torch.zeros(len(y), y.shape[1], 4), "lengths": lengths}, y)
    classes = ["0", "1"] if kind == "binary" else ["a", "b", "c"]
    state = {"classes": classes, "kind": kind, "length": y.shape[1]}
    ids = [f"r{i}" for i in range(len(y))]
    return Prepared(train=test, val=None, test=test, test_ids=ids, model_overrides={}, state=state,
                    baselines=baselines or {})  # fmt: skip


def test_metrics_pool_the_labelled_positions_and_padding_never_counts():
    y = np.array([[1, 0, 1, 0], [0, 1, IGNORE, IGNORE], [1, 1, 1, IGNORE]])
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5], [-1.0, 3.0, 0.0, 0.0], [0.2, 0.1, -0.3, 0.0]])
    prep = _prepared(y)
    m = PositionsTask().test_metrics(prep, logits)["model"]
    real = y != IGNORE
    p = torch.sigmoid(logits).numpy()[real]
    expected = ev.classification_metrics(y[real], p)
    for key in ("auroc", "auprc", "accuracy", "log_loss", "n"):
        assert m[key] == pytest.approx(expected[key])
    assert m["n"] == 9 and m["n_records"] == 3
    assert m["record_accuracy"] == pytest.approx(np.mean([3 / 4, 1.0, 2 / 3]))
    assert m["record_auroc"] == pytest.approx(np.mean([1.0, 1.0]))  # record 3 holds one class: no auROC
    noisy = logits.clone()
    noisy[~torch.from_numpy(real)] = torch.tensor([-50.0, 50.0, 7.0])
    assert PositionsTask().test_metrics(prep, noisy)["model"] == m
    # multi-class: macro one-vs-rest, softmax over the last axis
    y3 = np.array([[0, 1, 2, IGNORE], [2, 2, 1, 0]])
    out3 = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
    m3 = PositionsTask().test_metrics(_prepared(y3, kind="multiclass"), out3)["model"]
    real3 = y3 != IGNORE
    expected3 = ev.classification_metrics(y3[real3], torch.softmax(out3, -1).numpy()[real3])
    assert m3["auroc"] == pytest.approx(expected3["auroc"]) and m3["accuracy"] == pytest.approx(expected3["accuracy"])


# ------------------------------------------------------------------------ the window baseline
def test_window_kmer_counts_count_the_kmers_inside_each_window():
    # ACGTNA with k=2, window=3: position p counts the 2-mers wholly in p-1..p+1
    f = ev.window_kmer_counts("ACGTNA", k=2, window=3)
    names = [a + b for a in "ACGT" for b in "ACGT"]
    got = [{names[j]: int(v) for j, v in enumerate(row) if v} for row in f]
    assert got == [{"AC": 1}, {"AC": 1, "CG": 1}, {"CG": 1, "GT": 1}, {"GT": 1}, {}, {}]  # no k-mer holds N
    assert f.shape == (6, 16) and f.dtype == np.float32
    assert np.array_equal(ev.window_kmer_counts("acgtna", 2, 3, positions=np.array([3, 1])), f[[3, 1]])
    even = ev.window_kmer_counts("AAAAAA", k=1, window=4)  # p-1..p+2
    assert even[:, 0].tolist() == [3, 4, 4, 4, 3, 2]
    with pytest.raises(ValueError, match=r"k: expected 1 <= k <= window \(2\), got 3"):
        ev.window_kmer_counts("ACGT", 3, 2)


def test_the_window_baseline_learns_a_local_signal_from_training_records_only(tmp_path):
    """Label 1 where a position lies in a GGGG run: the window 2-mer baseline finds it, the majority does not."""
    rng = np.random.default_rng(0)
    seqs, labels = {}, {}
    for k in range(60):
        s = list(rng.choice(list("ACT"), 40))
        p = int(rng.integers(0, 36))
        s[p : p + 4] = "GGGG"
        seqs[f"s{k}"] = "".join(s)
        labels[f"s{k}"] = "".join("1" if p <= i < p + 4 else "0" for i in range(40))
    d = _data(file=_fasta(tmp_path / "in.fa", seqs), labels=_fasta(tmp_path / "l.fa", labels), kmer=2, window=3,
              test=0.25)  # fmt: skip
    prep = PositionsTask().prepare(d, lambda m: None)
    assert set(prep.baselines) == {"majority", "2-mer_window3_logistic"}
    y = prep.test[1].numpy()
    truth = y[y != IGNORE]
    assert len(prep.baselines["2-mer_window3_logistic"]) == len(truth) == len(prep.test_ids) * 40
    assert ev.classification_metrics(truth, prep.baselines["2-mer_window3_logistic"])["auroc"] > 0.95
    majority = prep.baselines["majority"]
    train_y = prep.train[1].numpy()
    assert np.allclose(majority, (train_y == 1).sum() / (train_y != IGNORE).sum())  # the training rate only


# ------------------------------------------------------------------------ splits
def test_chromosome_splits_and_folds_keep_whole_records(tmp_path):
    recs = {f"chr{1 + k % 4}:{100 * k}-{100 * k + 12}": "ACGTACgtacgt" for k in range(24)}
    inp = _fasta(tmp_path / "in.fa", recs)
    task = PositionsTask()
    d = _data(file=inp, split="chromosome", test_chromosomes=["chr2"], val_chromosomes=["chr3"], kmer=0)
    prep = task.prepare(d, lambda m: None)
    assert prep.split["test"]["chromosomes"] == ["chr2"] and prep.split["val"]["chromosomes"] == ["chr3"]
    assert all(i.startswith("chr2:") for i in prep.test_ids) and len(prep.test_ids) == 6
    assert set(prep.baselines) == {"majority"}  # kmer 0: no window baseline
    tests = [task.prepare(d.merged(split="random", folds=3, fold=k), lambda m: None).test_ids for k in (1, 2, 3)]
    assert sorted(i for t in tests for i in t) == sorted(recs)  # --cv: every record is test data once


# ------------------------------------------------------------------------ train, evaluate, predict
def _subset(src, dst, n: int) -> str:
    """The first ``n`` records of a bundled gzipped FASTA."""
    lines = gzip.open(src, "rt").read().splitlines()
    dst.write_text("\n".join(lines[: 2 * n]) + "\n")
    return str(dst)


def test_multiclass_label_strings_train_and_predict(tmp_path):
    rng = np.random.default_rng(1)
    seqs = {f"r{k}": "".join(rng.choice(list("ACGT"), 24 + k % 5)) for k in range(40)}
    lab = {k: "".join({"A": "H", "C": "E", "G": "-", "T": "-"}[b] for b in s) for k, s in seqs.items()}
    cfg = {
        "task": "positions",
        "data": {
            "file": _fasta(tmp_path / "in.fa", seqs),
            "labels": _fasta(tmp_path / "ss.fa", lab),
            "kmer": 1,
            "window": 1,
            "test": 0.25,
        },
        "model": {"conv_filters": 8, "conv_kernel": 3, "hidden_size": 4},
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.01},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(tmp_path / "c.yaml"), "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    result = json.loads((run / "metrics.json").read_text())
    assert result["task"] == "positions" and set(result["metrics"]) == {"model", "majority", "1-mer_window1_logistic"}
    assert result["metrics"]["1-mer_window1_logistic"]["accuracy"] == 1.0  # the label is the base itself
    assert set(result["classes"]["per_class"]) == {"-", "E", "H"}
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["num_outputs"] == 3
    rows = list(csv.reader((run / "test_predictions.tsv").open(), delimiter="\t"))
    assert rows[0] == ["id", "position", "predicted", "p_-", "p_E", "p_H", "true"]
    assert len(rows) - 1 == sum(len(seqs[i]) for i in json.loads((run / "split.json").read_text())["test"]["ids"])
    assert rows[1][1] == "1" and rows[1][6] == lab[rows[1][0]][0]
    res = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "in.fa")])
    assert res.exit_code == 1 and "expected labels to evaluate against" in res.output


def test_soft_masked_bases_of_the_oct4_and_mafk_peaks(tmp_path):
    """The repeats (lowercase) of 800 + 800 real 200-bp peaks from the upper-cased sequence."""
    oct4, mafk = _subset(OCT4, tmp_path / "oct4.fa", 800), _subset(MAFK, tmp_path / "mafk.fa", 800)
    cfg = {
        "task": "positions",
        "data": {"file": [oct4, mafk], "test": 0.2, "val": 0.05, "seed": 0},
        "model": {"conv_filters": 32, "conv_kernel": 15, "hidden_size": 32},
        "train": {"epochs": 6, "batch_size": 32, "lr": 0.01, "seed": 0},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", str(tmp_path / "c.yaml"), "-o", str(run), "-q"])
    assert res.exit_code == 0, res.output
    result = json.loads((run / "metrics.json").read_text())
    metrics = result["metrics"]
    assert set(metrics) == {"model", "majority", "3-mer_window15_logistic"}
    assert result["n_test"] == 320 and metrics["model"]["n"] == 320 * 200 and metrics["model"]["n_records"] == 320
    assert metrics["majority"]["auroc"] == 0.5 and 0.2 < metrics["majority"]["auprc"] < 0.5  # about a third masked
    assert metrics["model"]["auroc"] > 0.57, metrics  # 0.608 here; seeds 1 and 2 gave 0.578 and 0.639
    for name in ("model", "3-mer_window15_logistic"):
        assert {"auroc", "auprc", "accuracy", "log_loss", "record_auroc", "record_accuracy"} <= set(metrics[name])
    rows = list(csv.reader((run / "test_predictions.tsv").open(), delimiter="\t"))
    assert rows[0] == ["id", "position", "predicted", "p_0", "p_1", "true"] and len(rows) == 1 + 320 * 200
    res = runner.invoke(app, ["evaluate", str(run), "--json", str(tmp_path / "again.json")])  # the same test split
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "again.json").read_text())["metrics"]
    assert again["model"]["auroc"] == pytest.approx(metrics["model"]["auroc"], abs=1e-9)
    # new data: one row per position, and evaluation against the file's own soft mask
    new = _subset(MAFK, tmp_path / "new.fa", 3)
    res = runner.invoke(app, ["predict", str(run), new, "-o", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0, res.output
    pred = list(csv.reader((tmp_path / "p.tsv").open(), delimiter="\t"))
    assert pred[0] == ["id", "position", "predicted", "p_0", "p_1"] and len(pred) == 1 + 3 * 200
    assert [r[1] for r in pred[1:201]] == [str(p) for p in range(1, 201)]
    res = runner.invoke(app, ["evaluate", str(run), new, "--json", str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "e.json").read_text())["metrics"]["model"]["n"] == 600


def test_the_task_is_registered():
    assert TASKS["positions"] is PositionsTask
    assert PositionsTask().loss({}) == "masked_cross_entropy"
