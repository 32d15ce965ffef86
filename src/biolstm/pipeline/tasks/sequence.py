"""The sequence task."""

from __future__ import annotations

import contextlib
from collections import Counter
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
    KMER_MAX,
    SEED,
    TEST,
    VAL,
    FoldKeys,
    OutcomeTask,
    Prepared,
    absolute_path,
    check_data_keys,
    make_split,
    outcome_baselines,
    split_outcome,
    split_record,
    too_big,
)
from .outcome import KINDS, Outcome


# ---------------------------------------------------------------------------------- sequences
@dataclass
class SequenceData(Config, FoldKeys):
    """data: section of a sequence classification config (FASTA/FASTQ in)."""

    _what = "data config"

    outcome: str = "auto"  # auto (2 classes: binary, more: multiclass) | binary | multiclass | multilabel | regression
    target: str | None = None  # the older name of outcome: class (auto) | value (regression)
    files: dict | None = None  # {class: path}: one file per class
    file: str | None = None  # one file whose labels come from `labels` or `label_field`
    labels: str | None = None  # CSV/TSV with id,label columns keyed by record id
    label_field: int | None = None  # header field holding the label (0 is the id)
    label_sep: str | None = None  # header field separator (None: whitespace)
    positive: str | int | list | None = None  # the positive class, or a list of classes counted as positive (binary)
    multilabel_sep: str = ";"  # separates the labels of one record (outcome: multilabel)
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
    stream: bool = False  # encode batches on demand from `file` (indexed on disk) or the genome (larger than memory)
    workers: int = 0  # DataLoader worker processes that read and encode batches beside training (with stream)
    genome: str | None = None  # indexed reference FASTA (+ .fai; bgzip + .gzi): read `regions` from it
    regions: dict | None = None  # {experiment: BED/narrowPeak}: one output per experiment (with genome)
    width: int = 200  # window width (bases) cut from the genome around each region
    center: str = "summit"  # summit (narrowPeak column 10; the middle where absent) | interval
    background: str = "gc"  # negatives from the genome: gc (GC-matched) | flank | shuffle (dinucleotide) | none
    background_ratio: int = 1  # background windows per region
    tracks: dict | None = None  # {name: bigWig}: the window's mean coverage is the target (regression; one track)
    track_transform: str = "log1p"  # log1p | none: applied to the mean coverage
    seed: int = 0  # seeds the split (and the background draw)

    def __post_init__(self) -> None:
        if self.files is not None and (
            not isinstance(self.files, dict) or not all(isinstance(v, str) for v in self.files.values())
        ):
            raise TypeError(
                f"data.files: expected a mapping {{class: file}} (e.g. bound: bound.fa), got {self.files!r:.60} "
                f"({type(self.files).__name__}); for one file with labels use data.file"
            )
        kmer = (lambda v: 0 <= v <= KMER_MAX, f"0 (no k-mer baseline) or 1 to {KMER_MAX}")
        workers = (lambda v: 0 <= v <= 64, "an int from 0 to 64")
        check_data_keys(self, {"max_length": AT_LEAST_1, "kmer": kmer, "test": TEST, "val": VAL, "seed": SEED,
                               "workers": workers})  # fmt: skip
        if self.target is not None:
            check_choice(self.target, ("class", "value"), "data.target")
            self.outcome = {"class": self.outcome, "value": "regression"}[self.target]
            self.target = None
        check_choice(self.outcome, KINDS, "data.outcome")
        check_choice(self.format, ("auto", "fasta", "fastq"), "data.format")
        check_choice(self.alphabet, ("dna", "rna", "protein"), "data.alphabet")
        if self.outcome in ("regression", "multilabel") and self.files is not None:
            raise InputError(f"data.outcome: {self.outcome!r} reads labels from 'labels' or 'label_field', "
                             "not per-class 'files'")  # fmt: skip
        check_choice(self.split, ("random", "chromosome", "group"), "data.split")
        check_choice(self.soft_mask, ("keep", "channel"), "data.soft_mask")
        check_choice(self.ambiguity, ("probabilities", "zeros"), "data.ambiguity")
        if self.rc_augment and self.alphabet == "protein":
            raise InputError("data.rc_augment: expected alphabet dna or rna, got protein")
        if self.stream and ((self.file is None and self.genome is None) or self.rc_augment):
            raise InputError("data.stream: expected one 'file' (not 'files') or a genome, and rc_augment false")
        if self.workers and not self.stream:
            raise InputError(f"data.workers: encode batches in workers only with data.stream: true, got workers="
                             f"{self.workers} and stream false")  # fmt: skip
        if (self.genome is None) != (self.regions is None):
            raise InputError("data.genome and data.regions: give both (regions read from a genome) or neither")
        if self.genome is not None:
            if not isinstance(self.regions, dict) or not self.regions or \
                    not all(isinstance(v, str) for v in self.regions.values()):  # fmt: skip
                raise InputError(f"data.regions: expected a mapping {{experiment: BED file}}, got {self.regions!r:.60}")
            if self.files is not None or self.file is not None:
                raise InputError("data.genome: sequences come from the genome; remove data.files / data.file")
            if self.tracks is not None:
                if not isinstance(self.tracks, dict) or len(self.tracks) != 1 or \
                        not all(isinstance(v, str) for v in self.tracks.values()):  # fmt: skip
                    raise InputError(f"data.tracks: expected one {{name: bigWig file}} (one track per run), "
                                     f"got {self.tracks!r:.60}")  # fmt: skip
                check_choice(self.track_transform, ("log1p", "none"), "data.track_transform")
                if self.outcome not in ("auto", "regression"):
                    raise InputError(f"data.outcome: a track's coverage is a regression target, got {self.outcome!r}")
            elif self.outcome not in ("auto", "binary", "multilabel"):
                raise InputError(f"data.outcome: genome regions give binary (one experiment) or multilabel "
                                 f"outcomes, got {self.outcome!r}")  # fmt: skip
            check_data_keys(self, {"width": AT_LEAST_1, "background_ratio": AT_LEAST_1})
            check_choice(self.center, ("summit", "interval"), "data.center")
            check_choice(self.background, ("gc", "flank", "shuffle", "none"), "data.background")
            if self.background == "none" and len(self.regions) == 1:
                raise InputError("data.background: one experiment without background windows has no negatives; "
                                 "choose gc, flank or shuffle")  # fmt: skip



MAX_PADDED = 100_000  # the longest record padded to when data.max_length is not set


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
    _warn_novelty(state, path, _novelty_counts(d.alphabet, state, seqs))


def _novelty_counts(alphabet: str, state: dict, seqs: list) -> Counter:
    """How many of ``seqs`` lie outside training (see :func:`_novelty`): added up over batches."""
    counts = Counter(n=len(seqs))
    if "train_lengths" in state:
        lo, hi = state["train_lengths"]
        counts["short"] = sum(len(q) < lo for q in seqs)
        counts["long"] = sum(len(q) > hi for q in seqs)
        counts["cut"] = sum(len(q) > state["length"] for q in seqs)
    if "train_max_unknown" in state:
        top = state["train_max_unknown"]
        counts["unknown"] = sum(_unknown_fraction(q, alphabet) > top + 1e-9 for q in seqs)
    return counts


def _warn_novelty(state: dict, path: str, counts: Counter) -> None:
    import warnings

    from ...validation import BiolstmWarning

    notes = []
    if counts["short"]:
        notes.append(f"{counts['short']} shorter than the shortest in training ({state['train_lengths'][0]})")
    if counts["long"]:
        cut = f"; cut to {state['length']}" if counts["cut"] else ""
        notes.append(f"{counts['long']} longer than the longest in training ({state['train_lengths'][1]}{cut})")
    if counts["unknown"]:
        top = state["train_max_unknown"]
        notes.append(f"{counts['unknown']} with more unknown letters (N) than any training sequence ({top:.0%})")
    if notes:
        warnings.warn(
            f"{path}: {counts['n']} sequences, of which {'; '.join(notes)}: the model never saw input like "
            "these, so their predictions are extrapolations",
            BiolstmWarning,
            stacklevel=3,
        )


def padded_length(max_length: int | None, alphabet: str, lengths: list, origins: list, ids: list) -> int:
    """The length every sequence is padded (or truncated) to: ``max_length``, else the longest
    record, refused above MAX_PADDED (the error names the record's file and number)."""
    length = max_length
    if length is None:
        k = int(np.argmax(lengths))
        length = int(lengths[k])
        if length > MAX_PADDED:
            path, n = origins[k]
            unit = "aa" if alphabet == "protein" else "bp"
            raise InputError(
                f"{path}: record {n} ({ids[k]}) is {length:,} {unit}, longer than the {MAX_PADDED:,} {unit} that "
                f"sequences are padded to without data.max_length; set data.max_length to truncate (and pad) "
                "every sequence to one length"
            )
    return length


def check_padded_size(n: int, length: int, step_bytes: int, alphabet: str, what: str, hint: str) -> None:
    """InputError unless ``n`` sequences padded to ``length`` at ``step_bytes`` bytes per
    position fit in half of this machine's memory; ``what`` names the arrays, ``hint`` the way out."""
    need = n * length * step_bytes
    have = too_big(need)
    if have:
        unit = "aa" if alphabet == "protein" else "bp"
        raise InputError(
            f"data.max_length: {n:,} sequences padded to {length:,} {unit} take {need / 2**30:.1f} GiB "
            f"as {what}, more than half of this machine's {have}; {hint}"
        )


def encode_inputs(seqs: list[str], alphabet: str, ambiguity: str, soft_mask: str, length: int | None,
                  origins: list) -> dict:  # fmt: skip
    """One-hot inputs ``{"x": (N, T, C), "lengths": (N,)}``; a bad letter is reported with its
    file, record and position."""
    from ...data.encode import one_hot

    x, lengths = one_hot(seqs, alphabet, ambiguity, soft_mask, length=length, origins=origins)
    return {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}


def _encode_batch(options: tuple, seqs: list[str], origins: list) -> dict:
    return encode_inputs(seqs, *options, origins)


def _records_with(path: str, fmt: str, label):
    """(path, record number, record, label) of each record of an unlabelled file, with one label
    for all (or None)."""
    from ...data import read_sequences

    for n, rec in enumerate(read_sequences(path, fmt), start=1):
        yield path, n, rec, label


def record_chromosomes(d, ids: list) -> np.ndarray | None:
    """The chromosome of each record for ``data.split: chromosome`` (from ``data.bed`` or the
    chr:start-end ids), else None."""
    from ...data import chromosome_of, read_bed

    if d.split != "chromosome":
        return None
    if d.bed:
        names = read_bed(d.bed)
        lost = [i for i in ids if i not in names]
        if lost:
            raise InputError(f"{d.bed}: expected a line for record {lost[0]!r}, found none")
        return np.array([names[i] for i in ids])
    try:
        return np.array([chromosome_of(i) for i in ids])
    except ValueError as err:
        raise InputError(f"data.split: {err}; give data.bed for other headers") from None


def _padded_length(d: SequenceData, lengths: list, origins: list, ids: list) -> int:
    """The length every sequence is padded (or truncated) to (:func:`padded_length`), refused
    when the one-hot inputs (or the k-mer baseline's table) would not fit in memory."""
    length = padded_length(d.max_length, d.alphabet, lengths, origins, ids)
    if d.stream:
        return length
    channels = {"dna": 4, "rna": 4, "protein": 20}[d.alphabet] + (d.soft_mask == "channel")
    check_padded_size(len(lengths), length, channels * 4 * (2 if d.rc_augment else 1), d.alphabet,  # float32 one-hot
                      "one-hot inputs", "set a smaller data.max_length, or data.stream: true to encode batches as "
                      "they are drawn")  # fmt: skip
    k = _kmer_k(d)
    need = len(lengths) * (20 if d.alphabet == "protein" else 4) ** k * 12  # float32 counts + a float64 copy
    have = too_big(need) if k else None
    if have:
        raise InputError(
            f"data.kmer: the {k}-mer baseline's table for {len(lengths):,} sequences takes {need / 2**30:.1f} GiB, "
            f"more than half of this machine's {have}; set a smaller data.kmer (0 for no k-mer baseline)"
        )
    return length


def _kmer_k(d: SequenceData) -> int:
    """k of the k-mer baseline (protein k-mers stop at 2: 400 columns), 0 for none."""
    return min(d.kmer, 2) if d.alphabet == "protein" else d.kmer


def genome_windows(d: SequenceData, log) -> tuple[list, list, list, list, dict | None]:
    """(ids, sequences, labels, origins, chromosome split or None) of fixed-width windows cut from
    ``data.genome`` around every region of ``data.regions`` plus seeded background windows.

    One experiment: labels are its name or 'background' (binary). Several: each window's label is
    the experiments whose regions hold its centre, joined by ';' (multilabel; background windows
    have none). With ``split`` left 'random' the split is by chromosome: when no test or
    validation chromosomes are given, whole chromosomes from the end of the genome's list are
    held out until the test part (then validation part) has ``data.test`` (``data.val``) of the
    windows."""
    from ...data.genome import (
        Genome,
        GenomeWindows,
        Region,
        dinucleotide_shuffle,
        fixed_width,
        flank_background,
        gc_matched_background,
        multitask_labels,
        read_regions,
        some,
    )

    genome = Genome(d.genome)
    rng = np.random.default_rng(d.seed)
    experiments = {}
    for name, path in d.regions.items():
        regs = fixed_width(read_regions(path), d.width, d.center)
        unknown = sorted({r.chrom for r in regs} - set(genome.sizes))
        if unknown:
            raise InputError(f"{path}: chromosome {unknown[0]!r} is not in the genome {Path(d.genome).name} "
                             f"(it has {some(genome.sizes)})")  # fmt: skip
        experiments[str(name)] = regs
    seen, windows = set(), []
    for regs in experiments.values():
        for r in regs:
            key = (r.chrom, r.start, r.end)
            if key not in seen:
                seen.add(key)
                windows.append(Region(r.chrom, r.start, r.end, r.name, "+"))
    seqs = None if d.stream else genome.sequences(windows)  # streamed: cut and encoded per batch
    y = multitask_labels(windows, experiments)
    names = list(experiments)
    single = len(names) == 1
    labels = [names[0] if single else ";".join(n for n, v in zip(names, row) if v) for row in y]
    n_regions = len(windows)
    background: list = []
    if d.background == "gc":
        background = gc_matched_background(windows, genome, rng, per_region=d.background_ratio)
    elif d.background == "flank":
        for k in range(1, d.background_ratio + 1):  # 3, 6, 9, ... widths away
            background += flank_background(windows, genome, distance=3 * k * d.width)
    bg_seqs = None if d.stream else genome.sequences(background)
    if d.background == "shuffle":
        background = [r for r in windows for _ in range(d.background_ratio)]
        if not d.stream:
            bg_seqs = [dinucleotide_shuffle(seqs[i], rng) for i in range(n_regions) for _ in range(d.background_ratio)]
    ids = [f"{r.chrom}:{r.start}-{r.end}" for r in windows]
    ids += [f"{r.chrom}:{r.start}-{r.end}" + ("_shuffled" if d.background == "shuffle" else "") for r in background]
    if d.stream:  # each shuffle seeded by (data.seed, its index) instead, whatever reads it
        shuffled = [False] * n_regions + [d.background == "shuffle"] * len(background)
        seqs = GenomeWindows(d.genome, windows + background, shuffled, seed=d.seed, width=d.width,
                             workers=d.workers, ambiguity=d.ambiguity, soft_mask=d.soft_mask)  # fmt: skip
    else:
        seqs += bg_seqs
    labels += ["background" if single else ""] * len(background)
    origins = [(Path(d.genome), k + 1) for k in range(len(ids))]
    log(f"{n_regions} windows of {d.width} bases from {len(names)} region file(s), {len(background)} background "
        f"windows ({d.background}, seed {d.seed})")  # fmt: skip
    genome.close()
    split = None
    if d.split in ("random", "chromosome") and not d.test_chromosomes and not d.folds:
        chroms = [i.split(":")[0] for i in ids]
        counts = {c: chroms.count(c) for c in genome.sizes if c in set(chroms)}
        order = list(counts)[::-1]
        test, val, got = [], [], 0
        for c in order:
            if got < d.test * len(ids) or not test:
                test.append(c)
                got += counts[c]
        got = 0
        for c in order:
            if c not in test and (got < d.val * len(ids)) and len(test) + len(val) < len(counts) - 1:
                val.append(c)
                got += counts[c]
        if len(test) >= len(counts):
            raise InputError(f"data.split: the windows lie on {len(counts)} chromosome(s); a chromosome split needs "
                             "more, or give data.split: random")  # fmt: skip
        log(f"chromosome split: test {test}, validation {val}")
        split = {"test_chromosomes": test, "val_chromosomes": val}
    elif d.split == "chromosome":
        split = {}
    return ids, seqs, labels, origins, split, windows + background


def _track_targets(d: SequenceData, windows: list, log) -> list[str]:
    """Each window's mean coverage of the run's one track (log1p unless track_transform is
    none), as regression labels; a shuffled background window keeps its region's."""
    from ...data.genome import track_means

    name, path = next(iter(d.tracks.items()))
    values = track_means(path, windows)
    if d.track_transform == "log1p":
        values = np.log1p(np.clip(values, 0, None))
    log(f"targets: mean {name} coverage per window ({d.track_transform})")
    return [repr(float(v)) for v in values]


class SequenceTask(OutcomeTask):
    """Sequences (FASTA/FASTQ) to an outcome: binary, multi-class, multi-label or a value."""

    name = "sequence"
    data_class = SequenceData
    model_from_data = ("input_channels", "task", "num_outputs")  # set from the data

    def paths(self, d: SequenceData, base: Path) -> SequenceData:
        files = {str(k): absolute_path(base, v) for k, v in d.files.items()} if d.files else None
        a = absolute_path
        regions = {str(k): a(base, v) for k, v in d.regions.items()} if d.regions else None
        tracks = {str(k): a(base, v) for k, v in d.tracks.items()} if d.tracks else None
        return d.merged(files=files, file=a(base, d.file), labels=a(base, d.labels), bed=a(base, d.bed),
                        genome=a(base, d.genome), regions=regions, tracks=tracks)  # fmt: skip

    def _encode(self, d: SequenceData, seqs: list[str], length: int | None, origins: list):
        """One-hot inputs; a bad letter is reported with its file, record and position."""
        return encode_inputs(seqs, d.alphabet, d.ambiguity, d.soft_mask, length, origins)

    def _stream(self, d: SequenceData, log, origins: list) -> tuple[list, list, list]:
        """One pass over the file keeping ids, labels, lengths and origins only (not the sequences)."""
        from ...data.sequences import labeled_records

        ids, labels, lengths = [], [], []
        for path, n, rec, label in labeled_records(None, d.file, d.labels, d.label_field, d.label_sep, d.format):
            origins.append((path, n))
            ids.append(rec.id)
            labels.append(label)
            lengths.append(len(rec.seq))
        log(f"indexed {len(ids)} records of {d.file}; batches are encoded as they are drawn")
        return ids, labels, lengths

    def prepare(self, d: SequenceData, log) -> Prepared:
        from ...data import IndexedSequences, load_sequences, reverse_complement

        log("reading sequences")
        origins: list = []
        genome_split = None
        if d.genome is not None:
            ids, seqs, labels, origins, genome_split, windows = genome_windows(d, log)
            if d.tracks:
                labels = _track_targets(d, windows, log)
            if d.stream:  # seqs: the windows, cut and encoded per batch
                source, seqs = seqs, None
            lengths = [d.width] * len(ids) if seqs is None else [len(q) for q in seqs]
            if genome_split is not None:
                d = d.merged(split="chromosome", **genome_split)
        elif d.stream:
            ids, labels, lengths = self._stream(d, log, origins)
            seqs = None
        else:
            ids, seqs, labels = load_sequences(d.files, d.file, d.labels, d.label_field, d.label_sep, d.format, origins)
            lengths = [len(q) for q in seqs]
        at = (lambda k: f"{d.labels or d.file}: record {k + 1} ({ids[k]!r})") if d.files is None else None
        if d.genome is not None:
            at = lambda k: f"data.regions: window {ids[k]}"  # noqa: E731
            outcome = d.outcome if d.outcome != "auto" else ("binary" if len(d.regions) == 1 else "multilabel")
            outcome = "regression" if d.tracks else outcome
            positive = d.positive if d.positive is not None or outcome != "binary" else next(iter(d.regions))
            d = d.merged(outcome=outcome, positive=positive)
        o = Outcome(d.outcome, d.positive, d.multilabel_sep, "data", at)
        chroms = record_chromosomes(d, ids)

        def split(strata):
            return make_split(d, len(ids), strata, chroms=chroms, class_names=getattr(o, "classes_", None))


        s, y, truth = split_outcome(o, labels, split, f"data.split ({d.split})")

        length = _padded_length(d, lengths, origins, ids)
        log(f"encoding {len(ids)} sequences ({len(s.train)} train / {len(s.val)} val / {len(s.test)} test)")
        if d.stream and d.genome is None:
            source = IndexedSequences(d.file, d.alphabet, d.ambiguity, d.soft_mask, length, d.format)
            source.workers = d.workers

        def part(idx):
            if d.stream:
                return source.subset(idx), y[idx]
            return self._encode(d, [seqs[i] for i in idx], length, [origins[i] for i in idx]), y[idx]

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
        channels = {"dna": 4, "rna": 4, "protein": 20}[d.alphabet] + (d.soft_mask == "channel")
        log("fitting baselines (training split only)")
        if seqs is None:  # streamed: the sequence-content baselines would need every sequence in memory
            log("data.stream: only the majority (or mean) baseline is computed")
            fits = outcome_baselines(o, truth[s.train], [], {})
            te = [""] * len(s.test)
        else:
            tr, te = [seqs[i][:length] for i in s.train], [seqs[i][:length] for i in s.test]  # what the model sees
            fits = outcome_baselines(o, truth[s.train], tr, self._featurizers(d, o))
        return Prepared(
            train=train,
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=[ids[i] for i in s.test],
            model_overrides={"input_channels": channels, **o.head()},
            state={"outcome": o.to_json(), "classes": getattr(o, "classes_", None), "length": length,
                   **_seen(d, [lengths[i] for i in s.train], None if seqs is None else [seqs[i] for i in s.train])},
            baselines={name: fit(te) for name, fit in fits.items()},
            baseline_fits={name: lambda raw, f=fit, n=length: f([q[:n] for q in raw]) for name, fit in fits.items()},
            split=split_record(d.split, ids, s, chroms if d.split == "chromosome" else None),
        )

    def _featurizers(self, d: SequenceData, o) -> dict:
        """The content baselines' features: GC content and k-mer counts (each read by logistic
        or, for values, ridge regression)."""
        out = {}
        if d.alphabet != "protein":
            out["gc_content"] = ev.gc_content
        if d.kmer:
            alpha = "ACDEFGHIKLMNPQRSTVWY" if d.alphabet == "protein" else "ACGT"
            k = _kmer_k(d)
            out[f"{k}-mer_{o.linear_kind()}"] = lambda seqs: ev.kmer_counts(seqs, k, alpha)
        return out

    def stream_new(self, d: SequenceData, state: dict, path: str, labels: str | None = None, label: str | None = None,
                   labeled: bool = False, keep_sequences: bool = False, size: int | None = None):  # fmt: skip
        """New records of the FASTA/FASTQ ``path`` as :class:`~biolstm.pipeline.streaming.RecordBatches`
        (read, encoded and checked for novelty in batches), with labels from where
        :meth:`read_new` would take them."""
        from functools import partial

        from ...data.sequences import _check_file, detect_format, labeled_records
        from ..streaming import BATCH, RecordBatches

        checked = _check_file(path, "a FASTA/FASTQ file")  # the same message whatever reads it first
        fmt = d.format if d.format != "auto" else detect_format(checked)
        if labels is not None or (labeled and label is None and d.label_field is not None):
            records = partial(labeled_records, file=path, labels=labels, label_field=None if labels else d.label_field,
                              label_sep=d.label_sep, format=fmt)  # fmt: skip
        else:
            records = partial(_records_with, path, fmt, label)
        encode = partial(_encode_batch, (d.alphabet, d.ambiguity, d.soft_mask, state["length"]))
        novelty = partial(_novelty_counts, d.alphabet, state)
        return RecordBatches(records, encode, novelty, size or BATCH, keep_sequences), fmt

    def predict_stream(self, d: SequenceData, state: dict, path: str, model, out, device, workers: int,
                       size: int | None = None, verbose: int = 1) -> int:  # fmt: skip
        """Predictions for the records of ``path`` written to the text handle ``out`` as they come
        (a TSV, header first); returns how many."""
        from ..streaming import count_records, run_batches

        batches, fmt = self.stream_new(d, state, path, size=size)
        count, novel, total = 0, Counter(), count_records(path, fmt)
        with contextlib.closing(run_batches(batches, model, device, workers, total, "predict", verbose)) as stream:
            for batch, outputs in stream:
                header, rows = self.prediction_rows(state, batch["ids"], outputs)
                if count == 0:
                    out.write("\t".join(header) + "\n")
                out.write("".join("\t".join(str(v) for v in r) + "\n" for r in rows))
                count += len(rows)
                novel.update(batch["novel"])
        if count == 0:
            raise InputError(f"{path}: expected at least one record, found none")
        _warn_novelty(state, path, novel)
        return count

    def evaluate_stream(self, d: SequenceData, state: dict, path: str, model, device, workers: int, baselines=None,
                        labels: str | None = None, label: str | None = None, size: int | None = None,
                        verbose: int = 1) -> dict:  # fmt: skip
        """{model/baseline: metrics} on the labelled records of ``path``, streamed: per record only
        its outputs, its label and each baseline's prediction are kept."""
        from ..streaming import count_records, run_batches

        baselines = baselines or {}
        batches, fmt = self.stream_new(d, state, path, labels, label, labeled=True, keep_sequences=bool(baselines),
                                       size=size)  # fmt: skip
        o = self.outcome(state)
        o.where = labels or path if label is None else "--label"
        outs, ys, base, novel = [], [], {name: [] for name in baselines}, Counter()
        stream = run_batches(batches, model, device, workers, count_records(path, fmt), "evaluate", verbose)
        with contextlib.closing(stream):
            for batch, outputs in stream:
                if batch["labels"][0] is None:
                    raise InputError(f"{path}: expected labels to evaluate against (a label column, --labels or "
                                     "--label)")  # fmt: skip
                first, ids = batch["first"], batch["ids"]
                o.at = lambda k, f=first, i=ids: f"{path}: record {f + k + 1} ({i[k]!r})"
                ys.append(o.transform(batch["labels"]))
                outs.append(outputs)
                for name, fit in baselines.items():
                    base[name].append(np.asarray(fit(batch["sequences"])))
                novel.update(batch["novel"])
        if not outs:
            raise InputError(f"{path}: expected at least one record, found none")
        _warn_novelty(state, path, novel)
        truth = o.target_truth(torch.cat(ys))
        metrics = {"model": o.metrics(truth, o.inverse_transform(torch.cat(outs)))}
        metrics.update({name: o.metrics(truth, np.concatenate(parts)) for name, parts in base.items()})
        return metrics

    def read_new(self, d: SequenceData, state: dict, path: str | None = None, labels: str | None = None,
                 label: str | None = None, labeled: bool = False):  # fmt: skip
        """(inputs, ids, targets or None, the sequences as read) of new data: a FASTA/FASTQ
        ``path`` (labels from a ``labels`` table or one ``label`` for every record), or, with
        ``path`` None, the data section ``d`` in any form training reads (one file per class,
        labels in headers or a labels table). ``labeled``: read the labels of a ``path`` from its
        headers when the run read them from headers (data.label_field)."""
        from ...data import load_sequences, read_sequences

        origins: list = []
        if path is None:
            ids, seqs, lab = load_sequences(d.files, d.file, d.labels, d.label_field, d.label_sep, d.format, origins)
            where = d.labels or d.file or "data.files"
        elif labels is not None or (labeled and label is None and d.label_field is not None):
            ids, seqs, lab = load_sequences(file=path, labels=labels, label_field=None if labels else d.label_field,
                                            label_sep=d.label_sep, format=d.format, origins=origins)  # fmt: skip
            where = labels or path
        else:
            recs = list(read_sequences(path, d.format))
            ids, seqs = [r.id for r in recs], [r.seq for r in recs]
            origins = [(path, n + 1) for n in range(len(seqs))]
            lab, where = ([label] * len(ids) if label is not None else None), "--label"
        y = None
        if lab is not None:
            o = self.outcome(state)
            o.where, o.at = where, lambda k: f"{origins[k][0]}: record {origins[k][1]} ({ids[k]!r})"
            y = o.transform(lab)
        for source in dict.fromkeys(p for p, _ in origins):
            _novelty(d, state, source, [q for (p, _), q in zip(origins, seqs) if p == source])
        return self._encode(d, seqs, state["length"], origins), ids, y, seqs
