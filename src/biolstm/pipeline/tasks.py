"""The tasks a config file can name: what data they read, how they split it, which model and loss
they use, which baselines stand beside the model, and how they write predictions.

Every task reads its data and checks it before a run folder is touched, fits every
preprocessing step (label classes, scalers, vocabularies, PCA, fill values) on the training
split only, and keeps that state as JSON in the run folder so ``evaluate`` and ``predict``
apply exactly the same steps to new data.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..errors import InputError
from ..validation import check_choice
from . import evaluation as ev


@dataclass
class Prepared:
    """A task's data after splitting and preprocessing."""

    train: tuple  # (inputs, y)
    val: tuple | None
    test: tuple
    test_ids: list
    model_overrides: dict  # architecture facts the data decides (channels, classes, ...)
    state: dict  # JSON preprocessing state for evaluate/predict
    baselines: dict = field(default_factory=dict)  # name -> test outputs (probabilities / forecasts)
    pca: tuple | None = None  # (components, mean) for a model with projection='pca'
    split: dict | None = None  # what went where: written to the run folder as split.json


def split_record(by: str, ids, s, units=None) -> dict:
    """The run's split as JSON: ``by`` (random, chromosome, group), and per part the record ids
    and, for chromosome and group splits, the chromosomes or groups it holds."""
    def plain(v):
        return v.item() if hasattr(v, "item") else v

    rec: dict = {"by": by}
    for part in ("train", "val", "test"):
        idx = getattr(s, part)
        rec[part] = {"ids": [plain(ids[i]) for i in idx]}
        if units is not None:
            rec[part][by + "s"] = sorted({str(units[i]) for i in idx})
    return rec


SEED_MAX = 2**32 - 1  # numpy's (and scikit-learn's random_state) seed range is [0, 2**32 - 1]
KMER_MAX = 8  # the k-mer baseline holds N x 4^k floats: k = 8 is 65,536 columns per sequence
_TYPES = {  # annotation -> (check, words)
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an int"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "dict": (lambda v: isinstance(v, dict), "a mapping"),
}
# the numeric keys every data section shares: (test, value) -> (allowed?, what is expected)
SEED = (lambda v: 0 <= v <= SEED_MAX, f"an int from 0 to {SEED_MAX:,} (numpy's seed range)")
TEST = (lambda v: 0 < v < 1, "a fraction in (0, 1)")
VAL = (lambda v: 0 <= v < 1, "a fraction in [0, 1)")
AT_LEAST_1 = (lambda v: v >= 1, "an int >= 1")


def check_data_keys(cfg, limits: dict) -> None:
    """Check a data section: each key's type from its annotation (ints are not bools, numbers
    are finite) and each numeric key of ``limits`` ({key: (allowed, words)}); errors name
    ``data.<key>``. Fractions ``test`` and ``val`` must also sum below 1 where both are listed."""
    for f in fields(cfg):
        value, name = getattr(cfg, f.name), f"data.{f.name}"
        kinds = [k.strip() for k in str(f.type).split("|")]
        if value is None and "None" in kinds:
            continue
        known = [k for k in kinds if k in _TYPES]
        if known and not any(_TYPES[k][0](value) for k in known):
            words = " or ".join([_TYPES[k][1] for k in known] + (["null"] if "None" in kinds else []))
            raise TypeError(f"{name}: expected {words}, got {value!r:.60} ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite number, got {value}")
        if f.name in limits and not limits[f.name][0](value):
            raise ValueError(f"{name}: expected {limits[f.name][1]}, got {value!r}")
    if limits.get("test") is TEST and limits.get("val") is VAL and cfg.test + cfg.val >= 1:
        raise ValueError(f"data.test, data.val: expected fractions summing below 1, got {cfg.test} + {cfg.val}")


def _abs(base: Path, p) -> str | None:
    if p is None:
        return None
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q).resolve())


def _split(cfg, labels: np.ndarray, groups=None, chroms=None, class_names: list | None = None, stratify=True):
    from ..data.splits import check_stratified_sizes, split_by_group, split_chromosomes, split_random

    if cfg.split == "random" and not stratify:
        return split_random(labels, test=cfg.test, val=cfg.val, seed=cfg.seed, stratify=False)
    if cfg.split == "random":
        counts = np.bincount(labels)
        if counts.min() < 3:
            k = int(np.argmin(counts))
            name = class_names[k] if class_names else k
            raise InputError(
                f"data.split: class {name!r} has {counts[k]} example{'' if counts[k] == 1 else 's'}; a stratified "
                "train/val/test split needs at least 3 per class"
            )
        check_stratified_sizes(labels, cfg.test, cfg.val, "data.test, data.val")
        return split_random(labels, test=cfg.test, val=cfg.val, seed=cfg.seed, stratify=True)
    if cfg.split == "group":
        if groups is None:
            raise InputError("data.split: 'group' needs data.group (a column naming the patient/donor)")
        return split_by_group(groups, test=cfg.test, val=cfg.val, seed=cfg.seed, labels=labels if stratify else None)
    if chroms is None:
        raise InputError("data.split: 'chromosome' needs chr:start-end headers or data.bed")
    keys = ("data.test_chromosomes", "data.val_chromosomes")
    return split_chromosomes(chroms, cfg.test_chromosomes, cfg.val_chromosomes, keys)


def _classes(labels: list, positive: Any | None, what: str) -> tuple[list[str], np.ndarray]:
    """Sorted class names (the positive class last for two classes) and class ids."""
    names = sorted({str(v) for v in labels})
    stray = [n for n in names if n != n.strip()]
    if stray:
        raise InputError(
            f"{what}: label {stray[0]!r} has leading or trailing spaces; expected none ({stray[0]!r} and "
            f"{stray[0].strip()!r} would be two classes); remove them"
        )
    if len(names) < 2:
        raise InputError(f"{what}: expected at least two classes, got {names}")
    if positive is not None:
        if str(positive) not in names:
            raise InputError(f"data.positive: expected one of {names}, got {positive!r}")
        if len(names) == 2:
            names = [n for n in names if n != str(positive)] + [str(positive)]
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index[str(v)] for v in labels], dtype=np.int64)


def _class_ids(labels, classes: list[str], where: str) -> torch.Tensor:
    """Class ids of new labels under a trained run's classes; unknown classes are an error."""
    unknown = sorted({str(v) for v in labels} - set(classes))
    if unknown:
        raise InputError(f"{where}: expected classes {classes}, got {unknown}")
    return torch.tensor([classes.index(str(v)) for v in labels])


def _head(n_classes: int) -> dict:
    if n_classes == 2:
        return {"task": "binary", "num_outputs": 1}
    return {"task": "multiclass", "num_outputs": n_classes}


def probabilities(out: torch.Tensor, n_classes: int) -> np.ndarray:
    out = out.float()
    return (torch.sigmoid(out) if n_classes == 2 else torch.softmax(out, -1)).numpy()


class FileTask:
    """A task whose data is one file (``data.file``), relative to the config file's folder."""

    def paths(self, d, base: Path):
        return d.merged(file=_abs(base, d.file))


class ClassifierTask(FileTask):
    """Shared by the classification tasks: loss, metrics with baselines, curves, predictions."""

    model_config_class = None  # set below (SequenceClassifierConfig)

    def loss(self, state: dict) -> str:
        return "bce_with_logits" if len(state["classes"]) == 2 else "cross_entropy"

    def build_model(self, model_cfg):
        from ..models import SequenceClassifier

        return SequenceClassifier(model_cfg)

    def report(self, prep: Prepared, out: torch.Tensor) -> tuple[dict, dict]:
        """(metrics {model/baseline: {...}}, curves for the plots)."""
        n = len(prep.state["classes"])
        y = prep.test[1].numpy()
        prob = probabilities(out, n)
        metrics = {"model": ev.classification_metrics(y, prob)}
        curves = {"model": (y, prob)}
        for name, p in prep.baselines.items():
            metrics[name] = ev.classification_metrics(y, p)
            curves[name] = (y, p)
        return metrics, curves

    def prediction_rows(self, state: dict, ids: list, out: torch.Tensor) -> tuple[list[str], list[list]]:
        classes = state["classes"]
        prob = probabilities(out, len(classes))
        if prob.ndim == 1:
            prob = np.stack([1 - prob, prob], 1)
        header = ["id", "predicted", *[f"p_{c}" for c in classes]]
        rows = [[i, classes[int(np.argmax(p))], *(f"{v:.6g}" for v in p)] for i, p in zip(ids, prob)]
        return header, rows


# ---------------------------------------------------------------------------------- sequences
@dataclass
class SequenceData(Config):
    """data: section of a sequence classification config (FASTA/FASTQ in)."""

    _what = "data config"

    target: str = "class"  # class (classification) | value (regression on a numeric label)
    files: dict | None = None  # {class: path}: one file per class
    file: str | None = None  # one file whose labels come from `labels` or `label_field`
    labels: str | None = None  # CSV/TSV with id,label columns keyed by record id
    label_field: int | None = None  # header field holding the label (0 is the id)
    label_sep: str | None = None  # header field separator (None: whitespace)
    positive: str | int | None = None  # the positive class of a two-class task
    format: str = "auto"  # auto | fasta | fastq
    alphabet: str = "dna"  # dna | rna | protein
    ambiguity: str = "probabilities"  # probabilities (N -> 0.25 each) | zeros
    soft_mask: str = "keep"  # keep | channel (lowercase as an extra channel)
    max_length: int | None = None  # pad/truncate to this length (None: the longest, at most MAX_PADDED)
    split: str = "random"  # random (stratified) | chromosome | group
    test: float = 0.1  # test fraction (random/group splits)
    val: float = 0.1  # validation fraction (random/group splits)
    test_chromosomes: list = field(default_factory=list)  # split='chromosome'
    val_chromosomes: list = field(default_factory=list)
    bed: str | None = None  # BED whose name column maps record ids to chromosomes
    rc_augment: bool = False  # add the reverse complement of every training sequence
    kmer: int = 5  # k of the k-mer logistic-regression baseline (0: no k-mer baseline; at most KMER_MAX)
    stream: bool = False  # index `file` on disk and encode batches on demand (files larger than memory)
    seed: int = 0  # seeds the split

    def __post_init__(self) -> None:
        if self.files is not None and (
            not isinstance(self.files, dict) or not all(isinstance(v, str) for v in self.files.values())
        ):
            raise TypeError(
                f"data.files: expected a mapping {{class: file}} (e.g. bound: bound.fa), got {self.files!r:.60} "
                f"({type(self.files).__name__}); for one file with labels use data.file"
            )
        kmer = (lambda v: 0 <= v <= KMER_MAX, f"0 (no k-mer baseline) or 1 to {KMER_MAX}")
        check_data_keys(self, {"max_length": AT_LEAST_1, "kmer": kmer, "test": TEST, "val": VAL, "seed": SEED})
        check_choice(self.target, ("class", "value"), "data.target")
        check_choice(self.format, ("auto", "fasta", "fastq"), "data.format")
        check_choice(self.alphabet, ("dna", "rna", "protein"), "data.alphabet")
        if self.target == "value" and (self.files is not None or self.positive is not None):
            raise InputError("data.target: 'value' reads numbers from 'labels' or 'label_field', not per-class 'files'")
        check_choice(self.split, ("random", "chromosome", "group"), "data.split")
        check_choice(self.soft_mask, ("keep", "channel"), "data.soft_mask")
        check_choice(self.ambiguity, ("probabilities", "zeros"), "data.ambiguity")
        if self.rc_augment and self.alphabet == "protein":
            raise InputError("data.rc_augment: expected alphabet dna or rna, got protein")
        if self.stream and (self.file is None or self.rc_augment):
            raise InputError("data.stream: expected one 'file' (not 'files') and rc_augment false")


def _values(labels: list, where) -> np.ndarray:
    """Numeric labels of a regression task; the first non-number is an error naming it."""
    out = np.empty(len(labels), dtype=np.float32)
    for k, v in enumerate(labels):
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise InputError(f"{where(k)}: expected a number for data.target='value', got {v!r}") from None
    if not np.isfinite(out).all():
        k = int(np.argmax(~np.isfinite(out)))
        raise InputError(f"{where(k)}: expected a finite number, got {labels[k]!r}")
    return out


MAX_PADDED = 100_000  # the longest record padded to when data.max_length is not set


def _too_big(need: int) -> str | None:
    """None if ``need`` bytes fit in half of this machine's memory, else how much it has ('64 GiB')."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform: nothing to compare with
        return None
    return f"{total / 2**30:.0f} GiB" if need > total / 2 else None


def _unknown_fraction(seq: str, alphabet: str) -> float:
    """Share of letters that are not a plain base (N and other ambiguity codes; X for protein)."""
    plain = "ACDEFGHIKLMNPQRSTVWY" if alphabet == "protein" else ("ACGU" if alphabet == "rna" else "ACGT")
    return 1.0 - sum(seq.upper().count(c) for c in plain) / max(len(seq), 1)


def _seen(d: SequenceData, lengths: list, seqs: list | None) -> dict:
    """What the training sequences looked like, kept in state.json so that predict can say
    when new input lies outside it: their length range and largest share of unknown letters."""
    seen = {"train_lengths": [int(min(lengths)), int(max(lengths))]}
    if seqs is not None:
        seen["train_max_unknown"] = round(max(_unknown_fraction(q, d.alphabet) for q in seqs), 6)
    return seen


def _novelty(d: SequenceData, state: dict, path: str, seqs: list) -> None:
    """A BiolstmWarning, with counts, when new sequences are shorter or longer than any in
    training, or hold more unknown letters (N) than any did: their predictions extrapolate."""
    import warnings

    from ..validation import BiolstmWarning

    notes = []
    if "train_lengths" in state:
        lo, hi = state["train_lengths"]
        short = sum(len(q) < lo for q in seqs)
        long = sum(len(q) > hi for q in seqs)
        if short:
            notes.append(f"{short} shorter than the shortest in training ({lo})")
        if long:
            cut = f"; cut to {state['length']}" if any(len(q) > state["length"] for q in seqs) else ""
            notes.append(f"{long} longer than the longest in training ({hi}{cut})")
    if "train_max_unknown" in state:
        top = state["train_max_unknown"]
        more = sum(_unknown_fraction(q, d.alphabet) > top + 1e-9 for q in seqs)
        if more:
            notes.append(f"{more} with more unknown letters (N) than any training sequence ({top:.0%})")
    if notes:
        warnings.warn(
            f"{path}: {len(seqs)} sequences, of which {'; '.join(notes)}: the model never saw input like "
            "these, so their predictions are extrapolations",
            BiolstmWarning,
            stacklevel=2,
        )


def _padded_length(d: SequenceData, lengths: list, origins: list, ids: list) -> int:
    """The length every sequence is padded (or truncated) to: data.max_length, else the longest
    record, refused above MAX_PADDED or when the one-hot inputs (or the k-mer baseline's table)
    would not fit in memory."""
    unit = "aa" if d.alphabet == "protein" else "bp"
    length = d.max_length
    if length is None:
        k = int(np.argmax(lengths))
        length = int(lengths[k])
        if length > MAX_PADDED:
            path, n = origins[k]
            raise InputError(
                f"{path}: record {n} ({ids[k]}) is {length:,} {unit}, longer than the {MAX_PADDED:,} {unit} that "
                f"sequences are padded to without data.max_length; set data.max_length to truncate (and pad) "
                "every sequence to one length"
            )
    if d.stream:
        return length
    channels = {"dna": 4, "rna": 4, "protein": 20}[d.alphabet] + (d.soft_mask == "channel")
    need = len(lengths) * length * channels * 4 * (2 if d.rc_augment else 1)  # float32 one-hot
    have = _too_big(need)
    if have:
        raise InputError(
            f"data.max_length: {len(lengths):,} sequences padded to {length:,} {unit} take {need / 2**30:.1f} GiB "
            f"as one-hot inputs, more than half of this machine's {have}; set a smaller data.max_length, or "
            "data.stream: true to encode batches as they are drawn"
        )
    k = _kmer_k(d)
    need = len(lengths) * (20 if d.alphabet == "protein" else 4) ** k * 12  # float32 counts + a float64 copy
    have = _too_big(need) if k else None
    if have:
        raise InputError(
            f"data.kmer: the {k}-mer baseline's table for {len(lengths):,} sequences takes {need / 2**30:.1f} GiB, "
            f"more than half of this machine's {have}; set a smaller data.kmer (0 for no k-mer baseline)"
        )
    return length


def _kmer_k(d: SequenceData) -> int:
    """k of the k-mer baseline (protein k-mers stop at 2: 400 columns), 0 for none."""
    return min(d.kmer, 2) if d.alphabet == "protein" else d.kmer


def _check_train_classes(y_train: np.ndarray, classes: list, where: str) -> None:
    """InputError naming ``where`` unless every class has a training example (a classifier, and
    its baselines, cannot learn a class it never sees)."""
    counts = np.bincount(y_train, minlength=len(classes))
    if (counts == 0).any():
        k = int(np.argmin(counts))
        shown = ", ".join(f"{c!r}: {int(m)}" for c, m in zip(classes, counts))
        raise InputError(
            f"{where}: the training split has no example of class {classes[k]!r} (training class counts {shown}); "
            "expected every class in training"
        )


class SequenceTask(ClassifierTask):
    """Classification (``data.target: class``) or regression (``value``) of sequences."""

    name = "sequence"
    data_class = SequenceData

    def loss(self, state: dict) -> str:
        return "mse" if state.get("target") == "value" else super().loss(state)

    def build_model(self, model_cfg):
        from ..models import SequenceRegressor

        return SequenceRegressor(model_cfg) if model_cfg.task == "regression" else super().build_model(model_cfg)

    def report(self, prep: Prepared, out: torch.Tensor) -> tuple[dict, dict]:
        if prep.state.get("target") != "value":
            return super().report(prep, out)
        y = prep.test[1].numpy()
        metrics = {"model": ev.regression_metrics(y, out.numpy())}
        metrics.update({name: ev.regression_metrics(y, p) for name, p in prep.baselines.items()})
        return metrics, {}

    def prediction_rows(self, state: dict, ids: list, out: torch.Tensor) -> tuple[list[str], list[list]]:
        if state.get("target") != "value":
            return super().prediction_rows(state, ids, out)
        return ["id", "predicted"], [[i, f"{float(v):.6g}"] for i, v in zip(ids, out.reshape(-1))]

    def paths(self, d: SequenceData, base: Path) -> SequenceData:
        files = {str(k): _abs(base, v) for k, v in d.files.items()} if d.files else None
        return d.merged(files=files, file=_abs(base, d.file), labels=_abs(base, d.labels), bed=_abs(base, d.bed))

    def _encode(self, d: SequenceData, seqs: list[str], length: int | None, origins: list):
        """One-hot inputs; a bad letter is reported with its file, record and position."""
        from ..data.encode import one_hot

        x, lengths = one_hot(seqs, d.alphabet, d.ambiguity, d.soft_mask, length=length, origins=origins)
        return {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}

    def _stream(self, d: SequenceData, log, origins: list) -> tuple[list, list, list]:
        """One pass over the file keeping ids, labels, lengths and origins only (not the sequences)."""
        from ..data.sequences import labeled_records

        ids, labels, lengths = [], [], []
        for path, n, rec, label in labeled_records(None, d.file, d.labels, d.label_field, d.label_sep, d.format):
            origins.append((path, n))
            ids.append(rec.id)
            labels.append(label)
            lengths.append(len(rec.seq))
        log(f"indexed {len(ids)} records of {d.file}; batches are encoded as they are drawn")
        return ids, labels, lengths

    def prepare(self, d: SequenceData, log) -> Prepared:
        from ..data import IndexedSequences, chromosome_of, load_sequences, read_bed, reverse_complement

        log("reading sequences")
        origins: list = []
        if d.stream:
            ids, labels, lengths = self._stream(d, log, origins)
            seqs = None
        else:
            ids, seqs, labels = load_sequences(d.files, d.file, d.labels, d.label_field, d.label_sep, d.format, origins)
            lengths = [len(q) for q in seqs]
        regression = d.target == "value"
        if regression:
            y = _values(labels, lambda k: f"{d.labels or d.file}: record {k + 1} ({ids[k]!r})")
            classes = None
        else:
            classes, y = _classes(labels, d.positive, "data")
        chroms = None
        if d.split == "chromosome":
            if d.bed:
                names = read_bed(d.bed)
                lost = [i for i in ids if i not in names]
                if lost:
                    raise InputError(f"{d.bed}: expected a line for record {lost[0]!r}, found none")
                chroms = np.array([names[i] for i in ids])
            else:
                try:
                    chroms = np.array([chromosome_of(i) for i in ids])
                except ValueError as err:
                    raise InputError(f"data.split: {err}; give data.bed for other headers") from None
        s = _split(d, y, chroms=chroms, class_names=classes, stratify=not regression)
        if not regression:
            _check_train_classes(y[s.train], classes, f"data.split ({d.split})")
        length = _padded_length(d, lengths, origins, ids)
        log(f"encoding {len(ids)} sequences ({len(s.train)} train / {len(s.val)} val / {len(s.test)} test)")
        if d.stream:
            source = IndexedSequences(d.file, d.alphabet, d.ambiguity, d.soft_mask, length, d.format)

        def part(idx):
            if d.stream:
                return source.subset(idx), torch.from_numpy(y[idx])
            return self._encode(d, [seqs[i] for i in idx], length, [origins[i] for i in idx]), torch.from_numpy(y[idx])

        train = part(s.train)
        if d.rc_augment:
            x, n = train[0]["x"].numpy(), train[0]["lengths"].numpy()
            train = (
                {
                    "x": torch.cat([train[0]["x"], torch.from_numpy(reverse_complement(x, n))]),
                    "lengths": torch.cat([train[0]["lengths"]] * 2),
                },
                torch.cat([train[1]] * 2),
            )
        n_cls = 0 if regression else len(classes)
        channels = {"dna": 4, "rna": 4, "protein": 20}[d.alphabet] + (d.soft_mask == "channel")
        log("fitting baselines (training split only)")
        if regression:
            baselines = {"train_mean": np.full(len(s.test), float(y[s.train].mean()))}
        else:
            baselines = {"majority": ev.majority_baseline(y[s.train], len(s.test), n_cls)}
        if seqs is None:  # streamed: the sequence-content baselines would need every sequence in memory
            log("data.stream: only the majority (or mean) baseline is computed")
        else:
            tr, te = [seqs[i][:length] for i in s.train], [seqs[i][:length] for i in s.test]  # what the model sees
            baselines.update(self._content_baselines(d, tr, te, y[s.train], n_cls))
        head = {"task": "regression", "num_outputs": 1} if regression else _head(n_cls)
        return Prepared(
            train=train,
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=[ids[i] for i in s.test],
            model_overrides={"input_channels": channels, **head},
            state={"target": d.target, "classes": classes, "length": length,
                   **_seen(d, [lengths[i] for i in s.train], None if seqs is None else [seqs[i] for i in s.train])},
            baselines=baselines,
            split=split_record(d.split, ids, s, chroms if d.split == "chromosome" else None),
        )

    def _content_baselines(self, d: SequenceData, tr: list, te: list, y_train, n_cls: int) -> dict:
        """GC content and k-mer counts with logistic (or, for values, ridge) regression, fitted
        on the training split."""

        def fit(f_train, f_test):
            if n_cls == 0:
                return ev.linear_baseline(f_train, y_train, f_test)
            return ev.logistic_baseline(f_train, y_train, f_test, n_cls)

        kind = "ridge" if n_cls == 0 else "logistic"
        baselines = {}
        if d.alphabet != "protein":
            baselines["gc_content"] = fit(ev.gc_content(tr), ev.gc_content(te))
        if d.kmer:
            alpha = "ACDEFGHIKLMNPQRSTVWY" if d.alphabet == "protein" else "ACGT"
            k = _kmer_k(d)
            baselines[f"{k}-mer_{kind}"] = fit(ev.kmer_counts(tr, k, alpha), ev.kmer_counts(te, k, alpha))
        return baselines

    def read_new(self, d: SequenceData, state: dict, path: str, labels: str | None = None, label: str | None = None):
        """Inputs, ids and (if labels are given) class ids for a new FASTA/FASTQ file."""
        from ..data import load_sequences, read_sequences

        if labels is not None:
            ids, seqs, lab = load_sequences(file=path, labels=labels, format=d.format)
        else:
            recs = list(read_sequences(path, d.format))
            ids, seqs = [r.id for r in recs], [r.seq for r in recs]
            lab = [label] * len(ids) if label is not None else None
        y = None
        if lab is not None and state.get("target") == "value":
            y = torch.from_numpy(_values(lab, lambda k: f"{labels or '--label'}: record {k + 1} ({ids[k]!r})"))
        elif lab is not None:
            y = _class_ids(lab, state["classes"], labels or "--label")
        _novelty(d, state, path, seqs)
        return self._encode(d, seqs, state["length"], [(path, n + 1) for n in range(len(seqs))]), ids, y


# ---------------------------------------------------------------------------------- forecasting
@dataclass
class SeriesData(Config):
    """data: section of a forecasting config (a wide time-series table in)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV/Parquet with a time column and value columns
    time_col: str = "time"
    value_cols: list | None = None  # input series (None: every other column)
    target: str | None = None  # the series to forecast (None: the first value column)
    lookback: int = 24  # steps the model sees
    horizon: int = 1  # steps forecast at once
    stride: int = 1  # steps between training windows
    test: float = 0.1  # last steps held out (a fraction, or a count when >= 1)
    val: float = 0.1  # steps before the test part used for validation
    season: int = 1  # season length for the seasonal-naive baseline and MASE scaling
    seed: int = 0

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected a time-series table, got none")
        steps = (lambda v: v >= 0, "a fraction in [0, 1) or a count of steps (>= 1)")
        check_data_keys(self, {
            "lookback": AT_LEAST_1, "horizon": AT_LEAST_1, "stride": AT_LEAST_1, "season": AT_LEAST_1,
            "test": steps, "val": steps, "seed": SEED,
        })  # fmt: skip


def _steps(v, n: int) -> int:
    return int(v) if v >= 1 else round(v * n)


class ForecastTask(FileTask):
    name = "forecast"
    data_class = SeriesData

    def loss(self, state: dict) -> str:
        return "model"

    def build_model(self, model_cfg):
        from ..models import Forecaster

        return Forecaster(model_cfg)

    def _read(self, d: SeriesData, path: str):
        from ..data.timeseries import read_series

        s = read_series(path, d.time_col, d.value_cols)
        target = d.target or s.columns[0]
        if target not in s.columns:
            raise InputError(f"data.target: expected one of {s.columns}, got {target!r}")
        order = [target] + [c for c in s.columns if c != target]  # the target first
        values = s.values[:, [s.columns.index(c) for c in order]]
        if not np.isfinite(values).all():
            r, c = (int(v) for v in np.argwhere(~np.isfinite(values))[0])
            t = s.time[r].item() if hasattr(s.time[r], "item") else s.time[r]
            raise InputError(
                f"{path}: column {order[c]!r}: missing value at time {t}; expected a value at every time step "
                "(fill or interpolate the gap)"
            )
        return s.time, values, order

    def prepare(self, d: SeriesData, log) -> Prepared:
        from ..data.timeseries import Scaler, make_windows

        log("reading the series")
        time, values, cols = self._read(d, d.file)
        n = len(values)
        n_test, n_val = _steps(d.test, n), _steps(d.val, n)
        if n_test < 1 or n - n_test - n_val <= d.lookback + d.horizon:
            raise InputError(
                f"data.test/val/lookback: a {n}-step series leaves no training windows with test={n_test}, "
                f"val={n_val}, lookback={d.lookback}, horizon={d.horizon}"
            )
        a, b = n - n_test - n_val, n - n_test
        scaler = Scaler().fit(values[:a])
        z = scaler.transform(values)

        def windows(lo, hi, stride):
            X, Y = make_windows(z[lo:hi], d.lookback, d.horizon, stride, context=z[:lo] if lo else None)
            return torch.from_numpy(X), torch.from_numpy(Y[:, :, :1])

        train = windows(0, a, d.stride)
        val = windows(a, b, 1) if n_val >= d.horizon else None
        test = windows(b, n, 1)
        state = {
            "columns": cols,
            "mean": scaler.mean_.tolist(),
            "std": scaler.std_.tolist(),
            "train_values": values[:a, 0].tolist(),
            "season": d.season,
            "time": [t.item() if hasattr(t, "item") else t for t in time[b:]],
        }
        return Prepared(
            train=train,
            val=val,
            test=test,
            test_ids=state["time"][: len(test[0])],
            model_overrides={"input_size": values.shape[1], "targets": 1, "horizon": d.horizon},
            state=state,
            baselines=self._baselines(d, state, test[0]),
            split=self._split_record(d, time, a, b),
        )

    @staticmethod
    def _split_record(d: SeriesData, time, a: int, b: int) -> dict:
        """The time split as JSON: each part's first and last target time. Windows are cut after
        the split, so a validation or test window may read earlier values as its inputs, but no
        target time is in two parts."""
        t = [v.item() if hasattr(v, "item") else v for v in time]
        spans = {"train": (d.lookback, a), "val": (a, b), "test": (b, len(t))}
        return {"by": "time", **{k: {"target_times": [t[lo], t[hi - 1]] if hi > lo else []}
                                 for k, (lo, hi) in spans.items()}}  # fmt: skip

    def _baselines(self, d: SeriesData, state: dict, x: torch.Tensor) -> dict:
        from ..data.timeseries import naive_forecast, seasonal_naive_forecast

        raw_x = self._unscale(state, x.numpy()[..., :1])
        base = {"naive": naive_forecast(raw_x, d.horizon)}
        if d.season > 1 and d.lookback >= d.season:
            base[f"seasonal_naive_{d.season}"] = seasonal_naive_forecast(raw_x, d.horizon, d.season)
        return base

    def prepare_new(self, d: SeriesData, state: dict, path: str) -> Prepared:
        """Every window of a new series (scaled as in training) as a test set."""
        from ..data.timeseries import make_windows

        time, z = self.read_new(d, state, path)
        X, Y = make_windows(z, d.lookback, d.horizon, 1)
        test = (torch.from_numpy(X), torch.from_numpy(Y[:, :, :1]))
        st = {**state, "time": [t.item() if hasattr(t, "item") else t for t in time[d.lookback :]]}
        return Prepared(None, None, test, st["time"][: len(X)], {}, st, self._baselines(d, st, test[0]))

    def _unscale(self, state: dict, v: np.ndarray) -> np.ndarray:
        return (v * state["std"][0] + state["mean"][0]).astype(np.float64)

    def report(self, prep: Prepared, out: torch.Tensor, model=None) -> tuple[dict, dict]:
        from ..data.timeseries import forecast_metrics

        st, d_season = prep.state, prep.state["season"]
        point = model.point(out) if model is not None else out
        pred = self._unscale(st, point.numpy()[..., 0])  # (W, horizon)
        y = self._unscale(st, prep.test[1].numpy()[..., 0])
        train = np.array(st["train_values"])
        metrics = {"model": forecast_metrics(y, pred, train, d_season)}
        for name, p in prep.baselines.items():
            metrics[name] = forecast_metrics(y, p[..., 0], train, d_season)
        for h in sorted({0, pred.shape[1] - 1}):  # 1-step and last-step errors
            metrics["model"][f"mae_step{h + 1}"] = float(np.mean(np.abs(pred[:, h] - y[:, h])))
        hz = pred.shape[1]
        # each window's last-step forecast against the truth at that time
        curve = {"time": np.array(st["time"][hz - 1 : hz - 1 + len(y)]), "truth": y[:, -1], "model": pred[:, -1]}
        for name, p in prep.baselines.items():
            curve[name] = p[:, -1, 0]
        if model is not None and model.config.output != "point":
            lo, hi = self._interval(model, out)
            curve["lower"], curve["upper"] = self._unscale(st, lo[:, -1]), self._unscale(st, hi[:, -1])
        return metrics, {"forecast": curve}

    def _interval(self, model, out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        cfg = model.config
        if cfg.output == "gaussian":
            m, s = out[..., 0, 0].numpy(), out[..., 0, 1].numpy()
            return m - 1.2816 * s, m + 1.2816 * s  # 80% interval
        q = out[..., 0, :].numpy()
        return q[..., 0], q[..., -1]

    def read_new(self, d: SeriesData, state: dict, path: str):
        """The last lookback window of a new series (in the trained columns) and its end time."""
        time, values, cols = self._read(d, path)
        if cols != state["columns"]:
            raise InputError(f"{path}: expected columns {state['columns']}, got {cols}")
        if len(values) < d.lookback:
            raise InputError(f"{path}: expected at least lookback={d.lookback} steps, got {len(values)}")
        z = ((values - np.array(state["mean"])) / np.array(state["std"])).astype(np.float32)
        return time, z


# ---------------------------------------------------------------------------------- longitudinal
@dataclass
class LongitudinalData(Config):
    """data: section of a longitudinal outcome config (one row per visit in)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV/Parquet in long format
    id_col: str = "id"  # subject column
    time_col: str = "time"  # visit time column
    variables: list = field(default_factory=list)  # time-varying measurements (may be missing)
    static: list = field(default_factory=list)  # per-subject covariates joined before the head
    target: str = "status"  # per-subject outcome column
    positive: list = field(default_factory=lambda: [1])  # target values that count as the event
    inputs: str = "masked"  # masked (values + masks + time since observed + gaps) | mean_imputed
    layout: str = "long"  # long (one row per visit) | wide (one row per subject, columns time_1, var_1, ...)
    sep: str = "_"  # separator before the visit number in wide column names
    time_scale: float = 365.25  # time units per model unit (days -> years)
    test: float = 0.2
    val: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.file is None or not self.variables:
            raise InputError("data.file, data.variables: expected a table and at least one variable")
        check_data_keys(self, {
            "time_scale": (lambda v: v > 0, "a number > 0 (time units per model unit)"),
            "test": TEST, "val": VAL, "seed": SEED,
        })  # fmt: skip
        check_choice(self.inputs, ("masked", "mean_imputed"), "data.inputs")
        check_choice(self.layout, ("long", "wide"), "data.layout")


class LongitudinalTask(ClassifierTask):
    name = "longitudinal"
    data_class = LongitudinalData

    def _table(self, d, path, fill: list | None = None):
        """Per-subject sequences (values before a first observation filled with ``fill``) and the
        visit table in long form (for targets and training statistics)."""
        from ..data.longitudinal import read_longitudinal, wide_to_long
        from ..data.tables import read_table

        lon = read_longitudinal(
            path, d.id_col, d.time_col, list(d.variables), list(d.static),
            fill=dict(zip(d.variables, fill)) if fill is not None else None, layout=d.layout, sep=d.sep,
        )  # fmt: skip
        df = read_table(Path(path))
        if d.layout == "wide":
            df = wide_to_long(df, Path(path), d.id_col, [d.time_col, *d.variables], d.sep)
        return lon, df

    def _features(self, d, lon, state: dict) -> dict:
        V = len(d.variables)
        x = lon.x.copy()
        mean, std = np.array(state["mean"]), np.array(state["std"])
        vals, masks = x[..., :V], x[..., V : 2 * V]
        if d.inputs == "mean_imputed":  # observed values, training means elsewhere; no masks
            vals = np.where(masks > 0, vals, mean)
            feats = np.concatenate([(vals - mean) / std, x[..., 3 * V :] / d.time_scale], -1)
        else:
            feats = np.concatenate([(vals - mean) / std, masks, x[..., 2 * V :] / d.time_scale], -1)
        alive = np.arange(x.shape[1]) < lon.lengths[:, None]
        feats = np.where(alive[..., None], feats, 0.0).astype(np.float32)
        out = {"x": torch.from_numpy(feats), "lengths": torch.from_numpy(lon.lengths)}
        if d.static:
            s = (lon.static - np.array(state["static_mean"])) / np.array(state["static_std"])
            out["static"] = torch.from_numpy(s.astype(np.float32))
        return out

    def _targets(self, d, lon, df) -> np.ndarray:
        if d.target not in df.columns:
            raise InputError(f"{d.file}: expected a target column {d.target!r}, got {list(df.columns)}")
        first = df.groupby(d.id_col, sort=False)[d.target].first()
        return np.array([1 if first[i] in list(d.positive) else 0 for i in lon.ids], dtype=np.int64)

    def _check_classes(self, d, y: np.ndarray) -> None:
        """Both classes (event and no event) among the subjects, or an error naming the target."""
        counts = np.bincount(y, minlength=2)
        if counts.min() == 0:
            raise InputError(
                f"{d.file}: column {d.target!r}: with data.positive {list(d.positive)} every subject is in one "
                f"class ({int(counts[1])} with the event, {int(counts[0])} without); expected both classes "
                "(check data.positive against the column's values)"
            )

    def prepare(self, d, log) -> Prepared:
        log("reading visits")
        lon, df = self._table(d, d.file)
        y = self._targets(d, lon, df)
        self._check_classes(d, y)
        from ..data.splits import split_by_group

        s = split_by_group(lon.ids, test=d.test, val=d.val, seed=d.seed, labels=y)  # whole patients
        _check_train_classes(y[s.train], ["no event", "event"], f"{d.file}: column {d.target!r}")
        train_ids = set(lon.ids[s.train].tolist())
        rows = df[df[d.id_col].isin(train_ids)]
        V = len(d.variables)
        mean = rows[list(d.variables)].mean().to_numpy(dtype=np.float64)
        if np.isnan(mean).any():
            v = d.variables[int(np.argmax(np.isnan(mean)))]
            raise InputError(
                f"{d.file}: column {v!r}: expected an observed value in the training split, got none in its "
                f"{len(s.train)} subjects (another data.seed, or leave it out of data.variables)"
            )
        std = rows[list(d.variables)].std().to_numpy(dtype=np.float64)
        st_mean = lon.static[s.train].mean(0) if d.static else np.zeros(0)
        st_std = lon.static[s.train].std(0) if d.static else np.zeros(0)
        state = {
            "classes": ["no event", "event"],
            "mean": mean.tolist(),
            "std": np.where(std > 0, std, 1.0).tolist(),
            "static_mean": st_mean.tolist(),
            "static_std": np.where(st_std > 0, st_std, 1.0).tolist(),
        }
        lon, _ = self._table(d, d.file, fill=list(mean))  # before a first observation: the training mean
        feats = self._features(d, lon, state)

        def part(idx):
            return {k: v[idx] for k, v in feats.items()}, torch.from_numpy(y[idx])

        # baseline: logistic regression on the last visit (mean-imputed) and the static covariates
        last = feats["x"][torch.arange(len(y)), feats["lengths"] - 1][:, :V].numpy()
        flat = np.concatenate([last, feats["static"].numpy()], 1) if d.static else last
        width = feats["x"].shape[-1]
        return Prepared(
            train=part(s.train),
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=lon.ids[s.test].tolist(),
            model_overrides={
                "input_channels": width,
                "static_size": len(d.static),
                "decay_variables": V if d.inputs == "masked" else 0,  # GRU-D decay of carried-forward values
                **_head(2),
            },
            state=state,
            baselines={
                "majority": ev.majority_baseline(y[s.train], len(s.test), 2),
                "last_visit_logistic": ev.logistic_baseline(flat[s.train], y[s.train], flat[s.test], 2),
            },
            split=split_record("group", lon.ids, s, lon.ids),  # a group is one subject
        )

    def read_new(self, d, state: dict, path: str):
        lon, df = self._table(d, path, fill=state["mean"])
        y = torch.from_numpy(self._targets(d, lon, df)) if d.target in df.columns else None
        return self._features(d, lon, state), lon.ids.tolist(), y


# ---------------------------------------------------------------------------------- expression
@dataclass
class ExpressionData(Config):
    """data: section of an expression-profile classification config."""

    _what = "data config"

    file: str | None = None  # CSV/TSV/Parquet (one row per sample) or .h5ad
    label: str = "y"  # label column (obs column for h5ad)
    group: str | None = None  # donor/patient column for split='group'
    sample: str | None = None  # sample-name column (tables)
    layer: str | None = None  # h5ad layer instead of X
    projection: str = "pca"  # pca (fitted on the training split) | linear (learned) | none
    components: int = 32  # projection width
    split: str = "random"  # random (stratified) | group
    test: float = 0.2
    val: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected an expression matrix, got none")
        check_data_keys(self, {"components": AT_LEAST_1, "test": TEST, "val": VAL, "seed": SEED})
        check_choice(self.projection, ("pca", "linear", "none"), "data.projection")
        check_choice(self.split, ("random", "group"), "data.split")


class ExpressionTask(ClassifierTask):
    """Each profile is one step of a sequence (a series of profiles for time courses) read by the
    recurrent layer after the projection; genes are standardised with training statistics."""

    name = "expression"
    data_class = ExpressionData

    def _x(self, state, x: np.ndarray) -> torch.Tensor:
        z = (x - np.array(state["mean"], dtype=np.float32)) / np.array(state["std"], dtype=np.float32)
        return torch.from_numpy(z.astype(np.float32)).unsqueeze(1)  # (N, 1 step, G)

    def prepare(self, d, log) -> Prepared:
        from ..data import read_expression

        log("reading the expression matrix")
        e = read_expression(d.file, label=d.label, group=d.group, sample=d.sample, layer=d.layer)
        classes, y = _classes(list(e.labels), None, f"{d.file}: column {d.label!r}")
        s = _split(d, y, groups=e.groups, class_names=classes)
        _check_train_classes(y[s.train], classes, f"data.split ({d.split})")
        mean, std = e.x[s.train].mean(0), e.x[s.train].std(0)
        state = {"classes": classes, "genes": e.genes, "mean": mean.tolist(), "std": np.where(std > 0, std, 1).tolist()}
        x = self._x(state, e.x)
        k = min(d.components, len(s.train) - 1, x.shape[-1])
        pca = None
        if d.projection == "pca":
            from sklearn.decomposition import PCA

            p = PCA(n_components=k, random_state=d.seed).fit(x[s.train, 0].numpy())
            pca = (torch.from_numpy(p.components_.astype(np.float32)), torch.from_numpy(p.mean_.astype(np.float32)))
        over = {
            "input_channels": x.shape[-1],
            "projection_size": 0 if d.projection == "none" else k,
            **_head(len(classes)),
        }
        if d.projection != "none":
            over["projection"] = d.projection
        feats = x[:, 0].numpy() if pca is None else (x[:, 0] - pca[1]).numpy() @ pca[0].numpy().T
        return Prepared(
            train=(x[s.train], torch.from_numpy(y[s.train])),
            val=(x[s.val], torch.from_numpy(y[s.val])) if len(s.val) else None,
            test=(x[s.test], torch.from_numpy(y[s.test])),
            test_ids=[e.samples[i] for i in s.test],
            model_overrides=over,
            state=state,
            baselines={
                "majority": ev.majority_baseline(y[s.train], len(s.test), len(classes)),
                "logistic" + ("_pca" if pca is not None else ""): ev.logistic_baseline(
                    feats[s.train], y[s.train], feats[s.test], len(classes)
                ),
            },
            pca=pca,
            split=split_record(d.split, e.samples, s, e.groups if d.split == "group" else None),
        )

    def read_new(self, d, state: dict, path: str):
        from ..data import read_expression

        e = read_expression(
            path, label=d.label if d.label else None, sample=d.sample, genes=state["genes"], layer=d.layer
        )
        y = None
        if e.labels is not None:
            y = _class_ids(e.labels, state["classes"], f"{path}: column {d.label!r}")
        return self._x(state, e.x), e.samples, y


# ---------------------------------------------------------------------------------- text
@dataclass
class TextData(Config):
    """data: section of a text classification config (e.g. biomedical abstracts)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV with a text and a label column
    text_col: str = "text"
    label_col: str = "label"
    level: str = "word"  # word | char
    max_vocab: int = 20000
    min_count: int = 2
    max_length: int = 400  # tokens kept per text
    positive: str | int | None = None
    split: str = "random"
    test: float = 0.2
    val: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected a CSV/TSV of texts, got none")
        check_data_keys(self, {
            "max_vocab": (lambda v: v >= 3, "an int >= 3 (padding and out-of-vocabulary take 2)"),
            "min_count": AT_LEAST_1, "max_length": AT_LEAST_1, "test": TEST, "val": VAL, "seed": SEED,
        })  # fmt: skip
        check_choice(self.level, ("word", "char"), "data.level")
        check_choice(self.split, ("random",), "data.split")


class TextTask(ClassifierTask):
    name = "text"
    data_class = TextData

    def _read(self, d, path):
        """Texts and, when the table has the label column, labels (None otherwise)."""
        from ..data.tables import read_table

        df = read_table(path, dtype=str, keep_default_na=False)
        if d.text_col not in df.columns:
            raise InputError(f"{path}: expected a column {d.text_col!r}, got {list(df.columns)}")
        labels = df[d.label_col].tolist() if d.label_col in df.columns else None
        return df[d.text_col].tolist(), labels

    def prepare(self, d, log) -> Prepared:
        from ..data import Tokenizer

        log("reading texts")
        texts, labels = self._read(d, d.file)
        if labels is None:
            raise InputError(f"{d.file}: expected a column {d.label_col!r}, found none")
        classes, y = _classes(labels, d.positive, f"{d.file}: column {d.label_col!r}")
        s = _split(d, y, class_names=classes)
        tok = Tokenizer(d.level, max_vocab=d.max_vocab, min_count=d.min_count).fit([texts[i] for i in s.train])
        state = {"classes": classes, "tokenizer": tok.to_json()}

        def part(idx):
            ids, n = tok.encode([texts[i] for i in idx], d.max_length)
            return {"x": torch.from_numpy(ids), "lengths": torch.from_numpy(n)}, torch.from_numpy(y[idx])

        from sklearn.feature_extraction.text import CountVectorizer

        bow = CountVectorizer(
            vocabulary={k: v - 2 for k, v in tok.vocab.items() if v > 1},
            tokenizer=tok.split,
            lowercase=False,
            token_pattern=None,
        )
        f = bow.transform(texts).toarray().astype(np.float32)
        return Prepared(
            train=part(s.train),
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=[int(i) for i in s.test],
            model_overrides={"vocab_size": tok.vocab_size, "conv_filters": 0, **_head(len(classes))},
            state=state,
            baselines={
                "majority": ev.majority_baseline(y[s.train], len(s.test), len(classes)),
                "bag_of_words_logistic": ev.logistic_baseline(f[s.train], y[s.train], f[s.test], len(classes)),
            },
            split=split_record("random", [f"row {i + 2}" for i in range(len(y))], s),  # table rows (header: 1)
        )

    def read_new(self, d, state: dict, path: str):
        from ..data import Tokenizer

        texts, labels = self._read(d, path)
        tok = Tokenizer.from_json(state["tokenizer"])
        ids, n = tok.encode(texts, d.max_length)
        y = None
        if labels is not None:
            y = _class_ids(labels, state["classes"], f"{path}: column {d.label_col!r}")
        return {"x": torch.from_numpy(ids), "lengths": torch.from_numpy(n)}, list(range(len(texts))), y


TASKS = {t.name: t for t in (SequenceTask, ForecastTask, LongitudinalTask, ExpressionTask, TextTask)}
