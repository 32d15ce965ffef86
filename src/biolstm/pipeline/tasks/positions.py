"""The positions task: one label per base, residue or step (many-to-many).

Labels come from one of three sources (``data.source``):

- ``strings``: a second FASTA (``data.labels``) whose record i has the id of input record i and
  one label character per position (``HHHEEE--`` for secondary structure, ``0011100``);
- ``table``: a CSV/TSV/Parquet table (``data.labels``) of (id, position, label) rows, positions
  1-based; a position without a row takes ``data.default`` or, without one, is unlabelled;
- ``soft_mask``: the input's own case, lowercase = 1 and uppercase = 0; the input is then read in
  upper case, so the model cannot see the mask.

The targets are class ids per position with IGNORE_INDEX (-100) at padding and unlabelled
positions, trained with the ``masked_cross_entropy`` loss on a
:class:`~biolstm.models.SequenceTagger`, so neither ever enters the loss or the metrics. Whole
records go to one part of the split (random, chromosome or group, from :func:`.base.make_split`).

Metrics (:func:`~biolstm.pipeline.evaluation.position_metrics`) are pooled over every labelled
position of the test records, with the mean over records beside them. The baselines are fitted on
the training part only: the majority label, and logistic regression on the counts of k-mers
(``data.kmer``) in a window of ``data.window`` positions centred on each position, fitted on a
random sample of at most WINDOW_SAMPLE training positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...config import Config
from ...errors import InputError
from ...validation import check_choice
from .. import evaluation as ev
from .base import (
    AT_LEAST_1,
    SEED,
    TEST,
    VAL,
    FileTask,
    FoldKeys,
    Prepared,
    absolute_path,
    check_data_keys,
    make_split,
    split_record,
    write_tsv,
)
from .sequence import _novelty, _seen, check_padded_size, encode_inputs, padded_length, record_chromosomes

IGNORE = -100  # the target of a padding or unlabelled position (train.trainer.IGNORE_INDEX)
WINDOW_SAMPLE = 50_000  # the window k-mer baseline is fitted on at most this many training positions
KMER_MAX = 5  # 4^5 = 1,024 k-mer counts per position
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".parquet", ".pq")  # source auto: a labels file read as a table


@dataclass
class PositionsData(Config, FoldKeys):
    """data: section of a per-position labelling config: FASTA/FASTQ in, one label per position
    out (per base, residue or step)."""

    _what = "data config"

    source: str = "auto"  # soft_mask | strings | table; auto: soft_mask without labels, table for a .csv/.tsv
    # labels file, else strings
    file: str | list | None = None  # FASTA/FASTQ input, or a list of them (records in file order)
    labels: str | list | None = None  # strings: FASTA of label strings (one per input file); table: CSV/TSV with
    # id, position (1-based) and label columns; none for soft_mask
    default: str | int | None = None  # table: the label of positions without a row (null: unlabelled, not scored)
    unlabelled: str = ""  # strings: characters that mark a position unlabelled (e.g. '.'), not scored
    classes: list | None = None  # the labels in class order (null: the sorted labels found); binary: the last is
    # the positive class
    outcome: str = "auto"  # auto (2 classes: binary, more: multiclass) | binary | multiclass
    format: str = "auto"  # auto | fasta | fastq (the input files)
    alphabet: str = "dna"  # dna | rna | protein
    ambiguity: str = "probabilities"  # probabilities (N -> 0.25 each) | zeros
    max_length: int | None = None  # pad/truncate inputs and labels to this length (None: the longest record)
    split: str = "random"  # random | chromosome | group: whole records go to one part
    test: float = 0.1  # test fraction of the records (random/group splits)
    val: float = 0.1  # validation fraction of the records (random/group splits)
    test_chromosomes: list = field(default_factory=list)  # split 'chromosome': the test part's chromosomes
    val_chromosomes: list = field(default_factory=list)  # split 'chromosome': the validation part's chromosomes
    bed: str | None = None  # BED whose name column maps record ids to chromosomes (headers not chr:start-end)
    groups: str | None = None  # split 'group': CSV/TSV with id and group columns (e.g. the protein family)
    kmer: int = 3  # k of the window k-mer logistic baseline (0: none; at most 5, protein at most 2)
    window: int = 15  # width in positions of the window, centred on each position, whose k-mers it counts
    seed: int = 0  # seeds the split and the baseline's sample of training positions

    def __post_init__(self) -> None:
        kmer = (lambda v: 0 <= v <= KMER_MAX, f"0 (no window k-mer baseline) or 1 to {KMER_MAX}")
        check_data_keys(self, {"max_length": AT_LEAST_1, "kmer": kmer, "window": AT_LEAST_1, "test": TEST,
                               "val": VAL, "seed": SEED})  # fmt: skip
        for key in ("file", "labels"):
            value = getattr(self, key)
            if isinstance(value, list) and (not value or not all(isinstance(v, str) for v in value)):
                raise TypeError(f"data.{key}: expected a path or a non-empty list of paths, got {value!r:.60}")
        if self.file is None:
            raise InputError("data.file: expected a FASTA/FASTQ file (or a list of them), got none")
        check_choice(self.source, ("auto", "soft_mask", "strings", "table"), "data.source")
        src = self.label_source
        check_choice(self.outcome, ("auto", "binary", "multiclass"), "data.outcome")
        check_choice(self.format, ("auto", "fasta", "fastq"), "data.format")
        check_choice(self.alphabet, ("dna", "rna", "protein"), "data.alphabet")
        check_choice(self.ambiguity, ("probabilities", "zeros"), "data.ambiguity")
        check_choice(self.split, ("random", "chromosome", "group"), "data.split")
        if self.default is not None:
            self.default = str(self.default)
        if self.classes is not None:
            self.classes = [str(c) for c in self.classes]
            if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
                raise InputError(f"data.classes: expected at least two different labels, got {self.classes}")
        if src == "soft_mask" and (self.labels is not None or self.classes is not None):
            key = "labels" if self.labels is not None else "classes"
            raise InputError(f"data.{key}: source 'soft_mask' reads its labels from the input's case (lowercase = "
                             "1, uppercase = 0); expected no data.labels or data.classes")  # fmt: skip
        if src in ("strings", "table") and self.labels is None:
            raise InputError(f"data.labels: source {src!r} expected a labels file, got none")
        if src == "table" and isinstance(self.labels, list):
            raise InputError(f"data.labels: source 'table' reads one table, got a list of {len(self.labels)}")
        if self.default is not None and src != "table":
            raise InputError(f"data.default: only for source 'table' (positions without a row), got source "
                             f"{src!r}")  # fmt: skip
        if self.unlabelled and src != "strings":
            raise InputError(f"data.unlabelled: only for source 'strings', got source {src!r}")
        if src == "strings" and self.classes is not None and any(len(c) != 1 or not c.isascii()
                                                                         for c in self.classes):  # fmt: skip
            raise InputError(f"data.classes: source 'strings' has one ASCII character per label, got {self.classes}")
        if not self.unlabelled.isascii():
            raise InputError(f"data.unlabelled: expected ASCII characters, got {self.unlabelled!r}")
        if self.split == "group" and self.groups is None:
            raise InputError("data.groups: split 'group' expected a CSV/TSV with id and group columns, got none")
        if self.kmer and _kmer_k(self) > self.window:
            raise InputError(f"data.window: expected at least data.kmer ({self.kmer}), got {self.window}")

    @property
    def label_source(self) -> str:
        """``source`` with 'auto' resolved (soft_mask, strings or table)."""
        return _auto_source(self.labels) if self.source == "auto" else self.source


def _auto_source(labels) -> str:
    """What data.source 'auto' stands for: soft_mask without labels, table for a table file,
    else strings."""
    if labels is None:
        return "soft_mask"
    if isinstance(labels, str):
        name = Path(labels).name.lower()
        for packed in (".gz", ".bz2", ".xz", ".zst", ".zip"):
            name = name.removesuffix(packed)
        if name.endswith(TABLE_SUFFIXES):
            return "table"
    return "strings"


def _kmer_k(d: PositionsData) -> int:
    """k of the window baseline (protein k-mers stop at 2: 400 columns), 0 for none."""
    return min(d.kmer, 2) if d.alphabet == "protein" else d.kmer


def _paths(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@dataclass
class Records:
    """Input records with one label array each: class ids, IGNORE where unlabelled."""

    ids: list
    seqs: list  # what the model reads (upper case for source soft_mask)
    origins: list  # (file, record number) of each
    labels: list  # np.int64 arrays, one per record, as long as its sequence
    classes: list


def _class_ids(values: np.ndarray, classes: list, where) -> np.ndarray:
    """Labels (strings) to class ids; ``where(k)`` names the place of the k-th label in an error."""
    index = {c: j for j, c in enumerate(classes)}
    out = np.array([index.get(v, -1) for v in values], dtype=np.int64)
    if (out < 0).any():
        k = int(np.argmax(out < 0))
        raise InputError(f"{where(k)}: expected labels among {classes}, got {values[k]!r}")
    return out


def _input_records(d: PositionsData) -> tuple[list, list, list]:
    """(ids, sequences, origins) of every input file; ids must be unique across files."""
    from ...data import load_sequences

    origins: list = []
    files = _paths(d.file)
    ids, seqs, _ = load_sequences(files={p: p for p in files}, format=d.format, origins=origins)
    return ids, seqs, origins


def _string_labels(d: PositionsData, ids: list, seqs: list, origins: list, classes: list | None) -> tuple[list, list]:
    """Label strings from the FASTA file(s) ``data.labels``, record i for input record i."""
    from ...data import read_sequences

    inputs, label_files = _paths(d.file), _paths(d.labels)
    if len(label_files) != len(inputs):
        raise InputError(f"data.labels: expected one label file per input file ({len(inputs)}), got "
                         f"{len(label_files)}")  # fmt: skip
    strings, where = [], []
    for inp, lab in zip(inputs, label_files):
        rows = [i for i, (p, _) in enumerate(origins) if p == inp]
        n = 0
        for n, rec in enumerate(read_sequences(lab, "fasta"), start=1):
            if n > len(rows):
                raise InputError(f"{lab}: record {n} ({rec.id!r}): {inp} has {len(rows)} records; expected one label "
                                 "record per input record")  # fmt: skip
            i = rows[n - 1]
            if rec.id != ids[i]:
                raise InputError(f"{lab}: record {n}: expected id {ids[i]!r} (record {n} of {inp}), got {rec.id!r}")
            if len(rec.seq) != len(seqs[i]):
                raise InputError(
                    f"{lab}: record {n} ({rec.id!r}): expected {len(seqs[i])} labels (one per position of record {n} "
                    f"of {inp}), got {len(rec.seq)}"
                )
            strings.append(rec.seq)
            where.append((lab, n, rec.id))
        if n < len(rows):
            raise InputError(f"{lab}: expected {len(rows)} records (one per record of {inp}), found {n}")
    skip = set(d.unlabelled)
    if classes is None:
        classes = sorted(set().union(*map(set, strings)) - skip)
    table = np.full(128, -1, dtype=np.int64)  # read_sequences lets only ASCII through
    table[[ord(c) for c in classes]] = np.arange(len(classes))
    table[[ord(c) for c in skip]] = IGNORE
    out = []
    for s, (lab, n, rid) in zip(strings, where):
        ids_ = table[np.frombuffer(s.encode("ascii"), dtype=np.uint8)]
        if (ids_ == -1).any():
            k = int(np.argmax(ids_ == -1))
            also = f" or unlabelled {d.unlabelled!r}" if d.unlabelled else ""
            raise InputError(f"{lab}: record {n} ({rid!r}): expected labels among {classes}{also}, got {s[k]!r} at "
                             f"position {k + 1}")  # fmt: skip
        out.append(ids_)
    return out, classes


def _table_labels(d: PositionsData, ids: list, seqs: list, origins: list, classes: list | None) -> tuple[list, list]:
    """Labels from the (id, position, label) rows of the table ``data.labels``."""
    from ...data.tables import read_table

    path = d.labels
    df = read_table(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("id", "position", "label") if c not in df.columns]
    if missing:
        raise InputError(f"{path}: expected columns id, position and label, got {list(df.columns)}")
    df = df.astype({c: str for c in ("id", "position", "label")})  # a Parquet table keeps its own types
    line = lambda k: f"{path}: line {k + 2}"  # noqa: E731 (the header is line 1)
    rec_of = {r: i for i, r in enumerate(ids)}
    rec = np.array([rec_of.get(r, -1) for r in df["id"]], dtype=np.int64)
    if (rec < 0).any():
        k = int(np.argmax(rec < 0))
        raise InputError(f"{line(k)}: record id {df['id'].iloc[k]!r} is not in {', '.join(_paths(d.file))}")
    pos = np.array([int(p) if p.strip().isdigit() else 0 for p in df["position"]], dtype=np.int64)
    if (pos < 1).any():
        k = int(np.argmax(pos < 1))
        raise InputError(f"{line(k)}: position: expected a whole number from 1, got {df['position'].iloc[k]!r}")
    size = np.array([len(s) for s in seqs], dtype=np.int64)
    past = pos > size[rec]
    if past.any():
        k = int(np.argmax(past))
        i = rec[k]
        raise InputError(f"{line(k)}: position {pos[k]} is past the end of record {ids[i]!r} ({size[i]} positions; "
                         f"{origins[i][0]}: record {origins[i][1]})")  # fmt: skip
    dup = df.assign(p=pos).duplicated(["id", "p"]).to_numpy()
    if dup.any():
        k = int(np.argmax(dup))
        raise InputError(f"{line(k)}: record {df['id'].iloc[k]!r} position {pos[k]} has a label already; "
                         "expected one row per position")  # fmt: skip
    values = df["label"].str.strip().to_numpy()
    if (values == "").any():
        k = int(np.argmax(values == ""))
        raise InputError(f"{line(k)}: expected a label, got none")
    if classes is None:
        classes = sorted(set(values) | ({d.default} if d.default is not None else set()))
    cls = _class_ids(values, classes, line)
    fill = IGNORE if d.default is None else _class_ids(np.array([d.default]), classes, lambda k: "data.default")[0]
    out = [np.full(n, fill, dtype=np.int64) for n in size]
    for i, p, c in zip(rec, pos, cls):
        out[i][p - 1] = c
    return out, classes


def read_records(d: PositionsData, classes: list | None = None) -> Records:
    """The inputs of ``d`` and their per-position labels from ``d.label_source``; ``classes`` (a run's
    classes) fixes the label set, else ``d.classes`` or the sorted labels found."""
    ids, seqs, origins = _input_records(d)
    classes = classes if classes is not None else d.classes
    if d.label_source == "soft_mask":
        labels = [np.frombuffer(s.encode("ascii"), dtype=np.uint8) >= ord("a") for s in seqs]  # a-z: soft-masked
        return Records(ids, [s.upper() for s in seqs], origins, [m.astype(np.int64) for m in labels], ["0", "1"])
    read = _string_labels if d.label_source == "strings" else _table_labels
    labels, classes = read(d, ids, seqs, origins, classes)
    return Records(ids, seqs, origins, labels, list(classes))


def targets(labels: list, length: int) -> torch.Tensor:
    """Class ids ``(N, length)``: each record's labels cut to ``length``, IGNORE past its end."""
    y = np.full((len(labels), length), IGNORE, dtype=np.int64)
    for i, lab in enumerate(labels):
        y[i, : min(len(lab), length)] = lab[:length]
    return torch.from_numpy(y)


def _kind(d: PositionsData, classes: list) -> str:
    if len(classes) < 2:
        raise InputError(f"data: expected at least two label classes, got {classes}")
    if d.outcome == "binary" and len(classes) > 2:
        raise InputError(f"data.outcome: 'binary' needs two classes, got {len(classes)} ({', '.join(classes[:10])})")
    return "binary" if len(classes) == 2 and d.outcome != "multiclass" else "multiclass"


def _alphabet_letters(d: PositionsData) -> str:
    return "ACDEFGHIKLMNPQRSTVWY" if d.alphabet == "protein" else "ACGT"


def window_baseline(d: PositionsData, seqs: list, y: np.ndarray, test_seqs: list, test_y: np.ndarray,
                    n_classes: int) -> np.ndarray:  # fmt: skip
    """Logistic regression on the window k-mer counts of each position, fitted on at most
    WINDOW_SAMPLE labelled positions (a seeded random sample) of the training records ``seqs``
    (targets ``y`` (N, T)), applied to every labelled position of ``test_seqs`` in the order of
    ``np.nonzero(test_y != IGNORE)``, a few records at a time (the counts of every test position
    are never held at once)."""
    k, alpha = _kmer_k(d), _alphabet_letters(d)

    def features(sequences, r, t):
        out = np.zeros((len(r), len(alpha) ** k), dtype=np.float32)  # (P, |alphabet|^k)
        for i in np.unique(r):
            at = r == i
            out[at] = ev.window_kmer_counts(sequences[i], k, d.window, alpha, t[at])
        return out

    tr_r, tr_t = np.nonzero(y != IGNORE)
    if len(tr_r) > WINDOW_SAMPLE:
        keep = np.sort(np.random.default_rng(d.seed).choice(len(tr_r), WINDOW_SAMPLE, replace=False))
        tr_r, tr_t = tr_r[keep], tr_t[keep]
    predict = ev.fit_logistic(features(seqs, tr_r, tr_t), y[tr_r, tr_t], n_classes)
    te_r, te_t = np.nonzero(test_y != IGNORE)
    chunks = np.array_split(np.arange(len(te_r)), max(1, len(te_r) // WINDOW_SAMPLE))
    return np.concatenate([predict(features(test_seqs, te_r[c], te_t[c])) for c in chunks])


class PositionsTask(FileTask):
    """Sequences (FASTA/FASTQ) to one label per position: binary or multi-class."""

    name = "positions"
    data_class = PositionsData
    model_from_data = ("input_channels", "task", "num_outputs")  # set from the data

    def model_config_class(self) -> type:
        from ...models import SequenceTaggerConfig

        return SequenceTaggerConfig

    def build_model(self, model_cfg):
        from ...models import SequenceTagger

        return SequenceTagger(model_cfg)

    def loss(self, state: dict) -> str:
        return "masked_cross_entropy"

    def paths(self, d: PositionsData, base: Path) -> PositionsData:
        def a(v):
            return [absolute_path(base, p) for p in v] if isinstance(v, list) else absolute_path(base, v)

        return d.merged(file=a(d.file), labels=a(d.labels), bed=a(d.bed), groups=a(d.groups))

    def _encode(self, d: PositionsData, recs: Records, idx, length: int) -> tuple[dict, torch.Tensor]:
        seqs, origins = [recs.seqs[i] for i in idx], [recs.origins[i] for i in idx]
        return encode_inputs(seqs, d.alphabet, d.ambiguity, "keep", length, origins), targets(
            [recs.labels[i] for i in idx], length
        )

    def prepare(self, d: PositionsData, log) -> Prepared:
        from ...data import read_label_table

        log("reading sequences and their per-position labels")
        recs = read_records(d)
        kind, K = _kind(d, recs.classes), len(recs.classes)
        ids, n = recs.ids, len(recs.ids)
        chroms, groups = record_chromosomes(d, ids), None
        if d.split == "group":
            table = read_label_table(d.groups, "id", "group")
            lost = [i for i in ids if i not in table]
            if lost:
                raise InputError(f"{d.groups}: expected a group for record {lost[0]!r}, found none")
            groups = np.array([table[i] for i in ids])
        s = make_split(d, n, None, groups=groups, chroms=chroms)
        lengths = [len(q) for q in recs.seqs]
        length = padded_length(d.max_length, d.alphabet, lengths, recs.origins, ids)
        channels = 20 if d.alphabet == "protein" else 4
        check_padded_size(n, length, channels * 4 + 8, d.alphabet, "one-hot inputs and per-position labels",
                          "set a smaller data.max_length")  # fmt: skip
        log(f"encoding {n} sequences ({len(s.train)} train / {len(s.val)} val / {len(s.test)} test)")
        train, test = self._encode(d, recs, s.train, length), self._encode(d, recs, s.test, length)
        y_tr, y_te = train[1].numpy(), test[1].numpy()
        counts = np.bincount(y_tr[y_tr != IGNORE], minlength=K)
        if (counts == 0).any():
            shown = ", ".join(f"{c!r}: {int(m)}" for c, m in zip(recs.classes, counts))
            raise InputError(f"data.split ({d.split}): the training records have no position labelled "
                             f"{recs.classes[int(np.argmin(counts))]!r} (training counts {shown}); expected every "
                             "class in training")  # fmt: skip
        if not (y_te != IGNORE).any():
            raise InputError(f"data.split ({d.split}): the {len(s.test)} test records have no labelled position")
        log("fitting baselines (training part only)")
        n_test = int((y_te != IGNORE).sum())
        baselines = {"majority": ev.majority_baseline(y_tr[y_tr != IGNORE], n_test, K)}
        if d.kmer:
            cut = lambda idx: [recs.seqs[i][:length] for i in idx]  # noqa: E731 (what the model sees)
            name = f"{_kmer_k(d)}-mer_window{d.window}_logistic"
            baselines[name] = window_baseline(d, cut(s.train), y_tr, cut(s.test), y_te, K)
        train_seqs = [recs.seqs[i] for i in s.train]
        units = {"chromosome": chroms, "group": groups}.get(d.split)
        return Prepared(
            train=train,
            val=self._encode(d, recs, s.val, length) if len(s.val) else None,
            test=test,
            test_ids=[ids[i] for i in s.test],
            model_overrides={"input_channels": channels, "task": kind, "num_outputs": 1 if kind == "binary" else K},
            state={
                "classes": recs.classes,
                "kind": kind,
                "source": d.label_source,
                "length": length,
                **_seen(d, [lengths[i] for i in s.train], train_seqs),
            },
            baselines=baselines,
            split=split_record(d.split, ids, s, units),
        )

    # ------------------------------------------------------------------ outputs
    @staticmethod
    def probabilities(state: dict, out: torch.Tensor) -> np.ndarray:
        """Model outputs -> probabilities: (N, T) of the positive class, or (N, T, K)."""
        out = out.detach().float().cpu()
        return (torch.sigmoid(out) if state["kind"] == "binary" else torch.softmax(out, -1)).numpy()

    def _scored(self, prep: Prepared, out: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """(truth, record index, model probabilities, {baseline: probabilities}) at every labelled
        test position, in the order of ``np.nonzero(y != IGNORE)``."""
        y = prep.test[1].numpy()
        rows, cols = np.nonzero(y != IGNORE)
        prob = self.probabilities(prep.state, out)[rows, cols]
        return y[rows, cols], rows, prob, prep.baselines

    def test_metrics(self, prep: Prepared, out: torch.Tensor, model=None) -> dict:
        """{model/baseline: metrics} pooled over the labelled test positions, with record means."""
        truth, rows, prob, baselines = self._scored(prep, out)
        metrics = {"model": ev.position_metrics(truth, prob, rows)}
        metrics.update({name: ev.position_metrics(truth, p, rows) for name, p in baselines.items()})
        return metrics

    def finish(self, prep: Prepared, out: torch.Tensor, model, run_dir: Path, history: dict) -> tuple[dict, dict]:
        """Metrics, plots and test_predictions.tsv (one row per position of each test record)."""
        metrics = self.test_metrics(prep, out, model)
        truth, _, prob, baselines = self._scored(prep, out)
        classes, extra = prep.state["classes"], {}
        table = ev.per_class(truth, prob, classes) if prep.state["kind"] == "multiclass" else None
        if table is not None:
            extra["classes"] = table
        curves = {"model": (truth, prob), **{k: (truth, p) for k, p in baselines.items()}}
        plots = ev.save_plots(run_dir, history or {}, curves=curves, confusion=table)
        lengths = prep.test[0]["lengths"].numpy()
        header, body = self.rows(prep.state, prep.test_ids, lengths, self.probabilities(prep.state, out))
        y = prep.test[1].numpy()
        true = [classes[c] if c != IGNORE else "" for i, n in enumerate(lengths) for c in y[i, :n]]
        write_tsv(run_dir / "test_predictions.tsv", [*header, "true"], [[*r, t] for r, t in zip(body, true)])
        extra["files"] = [*plots, "test_predictions.tsv"]
        return metrics, extra

    @staticmethod
    def rows(state: dict, ids: list, lengths, prob: np.ndarray) -> tuple[list[str], list[list]]:
        """One row per position (1-based) of each record: id, position, predicted label and the
        probability of every class."""
        classes = state["classes"]
        header = ["id", "position", "predicted", *[f"p_{c}" for c in classes]]
        out = []
        for rid, n, p in zip(ids, lengths, prob):
            p = np.stack([1 - p, p], -1) if p.ndim == 1 else p  # (T, K)
            out.extend([rid, t + 1, classes[int(np.argmax(q))], *(f"{v:.6g}" for v in q)] for t, q in
                       enumerate(p[: int(n)]))  # fmt: skip
        return header, out

    # ------------------------------------------------------------------ new data
    def read_new(self, d: PositionsData, state: dict, path: str | None, labelled: bool):
        """(inputs, ids, targets or None) of new data: a FASTA/FASTQ ``path`` (its soft
        mask as the labels when the run learnt those, if ``labelled``), or, with ``path`` None,
        the data section ``d`` read as training reads it (its labels in the run's classes)."""
        from ...data import read_sequences

        if path is None:
            recs = read_records(d, state["classes"])
            src = d.file if isinstance(d.file, str) else ", ".join(d.file)
        else:
            recs_ = list(read_sequences(path, d.format))
            seqs = [r.seq for r in recs_]
            labels = None
            if labelled:
                if state["source"] != "soft_mask":
                    raise InputError(
                        f"{path}: expected labels to evaluate against; this run learnt labels from data.source "
                        f"{state['source']!r}, so new data needs its labels file (the data section's file and labels), "
                        "and only a soft-mask run reads them from a FASTA alone"
                    )
                labels = [(np.frombuffer(s.encode("ascii"), dtype=np.uint8) >= ord("a")).astype(np.int64) for s in seqs]
            if state["source"] == "soft_mask":
                seqs = [s.upper() for s in seqs]
            origins = [(path, n + 1) for n in range(len(seqs))]
            recs = Records([r.id for r in recs_], seqs, origins, labels, state["classes"])
            src = path
        _novelty(d, state, src, recs.seqs)
        x = encode_inputs(recs.seqs, d.alphabet, d.ambiguity, "keep", state["length"], recs.origins)
        y = targets(recs.labels, state["length"]) if recs.labels is not None else None
        return x, recs.ids, y

    def evaluate_new(self, d, state: dict, path: str | None, model, predict, baselines=None, **labels) -> dict:
        """{model: metrics} on new labelled data: a FASTA ``path`` of a soft-mask run, or, with
        ``path`` None, the data section ``d`` (file and labels) read as training reads it."""
        x, _, y = self.read_new(d, state, path, labelled=True)
        y = y.numpy()
        rows, cols = np.nonzero(y != IGNORE)
        if not len(rows):
            raise InputError(f"{path or 'data'}: expected labelled positions to evaluate against, found none")
        prob = self.probabilities(state, predict(x))[rows, cols]
        return {"model": ev.position_metrics(y[rows, cols], prob, rows)}

    def predict_new(self, d, state: dict, path: str, model, predict) -> tuple[list, list]:
        x, ids, _ = self.read_new(d, state, path, labelled=False)
        return self.rows(state, ids, x["lengths"].numpy(), self.probabilities(state, predict(x)))
