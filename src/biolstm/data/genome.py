"""Regions of a reference genome: intervals from BED / narrowPeak files, their sequences read
from an indexed FASTA (plain or bgzip, through ``pyfaidx``), background regions (GC-matched
random windows, flanks, dinucleotide shuffles) and multi-task labels from several region files
(one output per experiment, as DeepSEA and DanQ).

Coordinates are BED's: 0-based, end exclusive. A region on the ``-`` strand reads as the reverse
complement. The genome must be indexed already (``samtools faidx genome.fa``, which also writes
the ``.gzi`` of a bgzip file): biolstm reads the index and never writes next to a user's genome.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from .sequences import _is_gzip, _open

BIGWIG_MAGIC = (0x888FFC26).to_bytes(4, "little")
_COMPLEMENT = str.maketrans("ACGTNacgtnRYKMSWBDHVrykmswbdhv", "TGCANtgcanYRMKSWVHDByrmkswvhdb")


def reverse_complement(seq: str) -> str:
    """The reverse complement (IUPAC codes and soft-masked lower case kept)."""
    return seq.translate(_COMPLEMENT)[::-1]


@dataclass(frozen=True)
class Region:
    chrom: str
    start: int  # 0-based
    end: int  # exclusive
    name: str = "."
    strand: str = "."  # + | - | . (read as +)
    summit: int | None = None  # offset of the peak's summit from start (narrowPeak column 10)

    @property
    def id(self) -> str:
        """``chrom:start-end(strand)``, the record id of the region's sequence."""
        return f"{self.chrom}:{self.start}-{self.end}" + (f"({self.strand})" if self.strand in "+-" else "")


def some(names) -> str:
    """The first 5 of ``names``, for an error line ('chr1, chr2, ...')."""
    names = list(names)
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def read_regions(path: str | Path) -> list[Region]:
    """Regions of a BED (3 or more columns) or narrowPeak file (10 columns: the summit is column
    10), plain or gzip. ``track``, ``browser`` and ``#`` lines are skipped. A bad line raises
    InputError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such region file (expected BED or narrowPeak)")
    out = []
    with _open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n").split("\t")
            where = f"{path}:{n}"
            if len(f) < 3:
                raise InputError(f"{where}: expected tab-separated chrom, start, end (BED), got {line.strip()[:60]!r}")
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError:
                raise InputError(f"{where}: expected integer start and end, got {f[1]!r} and {f[2]!r}") from None
            if start < 0 or end <= start:
                raise InputError(f"{where}: expected 0 <= start < end, got start {start}, end {end}")
            strand = f[5] if len(f) > 5 else "."
            if strand not in ("+", "-", "."):
                raise InputError(f"{where}: expected strand +, - or . in column 6, got {strand!r}")
            summit = None
            if len(f) >= 10 and f[9] not in ("", "-1", "."):
                try:
                    summit = int(f[9])
                except ValueError:
                    raise InputError(f"{where}: expected an integer summit offset in column 10, got {f[9]!r}") from None
                if not 0 <= summit < end - start:
                    raise InputError(f"{where}: summit offset {summit} lies outside the peak (length {end - start})")
            out.append(Region(f[0], start, end, f[3] if len(f) > 3 else ".", strand, summit))
    if not out:
        raise InputError(f"{path}: no regions found (expected BED or narrowPeak lines)")
    return out


def fixed_width(regions: list[Region], width: int, center: str = "summit") -> list[Region]:
    """Windows of ``width`` bases centred on each region's summit (``center='summit'``; the
    interval's middle where a region has none) or on the interval's middle (``'interval'``)."""
    if width < 1:
        raise InputError(f"width: expected a positive number of bases, got {width}")
    if center not in ("summit", "interval"):
        raise InputError(f"center: expected 'summit' or 'interval', got {center!r}")
    out = []
    for r in regions:
        mid = r.start + r.summit if center == "summit" and r.summit is not None else (r.start + r.end) // 2
        start = mid - width // 2
        out.append(replace(r, start=start, end=start + width, summit=width // 2))
    return out


class Genome:
    """An indexed reference genome (FASTA + ``.fai``; bgzip also needs ``.gzi``), read with
    pyfaidx. ``fetch`` pads with N past a chromosome's ends."""

    def __init__(self, path: str | Path) -> None:
        from pyfaidx import Fasta

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such genome FASTA")
        fai = Path(f"{self.path}.fai")
        if not fai.is_file():
            raise InputError(f"{self.path}: no index {fai.name} beside it; index the genome first "
                             f"(samtools faidx {self.path.name})")  # fmt: skip
        if _is_gzip(self.path) and not Path(f"{self.path}.gzi").is_file():
            raise InputError(f"{self.path}: a gzip genome must be bgzip-compressed and indexed "
                             f"(bgzip + samtools faidx, which writes {self.path.name}.gzi); no .gzi found")  # fmt: skip
        try:
            self._fa = Fasta(str(self.path), as_raw=True, rebuild=False, build_index=False)
        except Exception as err:  # pyfaidx's own errors: a plain gzip file, a stale index
            raise InputError(f"{self.path}: cannot read this genome with its index: {err}") from None
        self.sizes = {name: len(rec) for name, rec in self._fa.records.items()}

    def fetch(self, chrom: str, start: int, end: int, strand: str = "+") -> str:
        """Bases [start, end) of ``chrom`` (N where the window runs past either end), reverse
        complemented on the ``-`` strand. An unknown chromosome raises InputError."""
        size = self.sizes.get(chrom)
        if size is None:
            raise InputError(f"{self.path}: no chromosome {chrom!r} (it has {some(self.sizes)})")
        lo, hi = max(start, 0), min(end, size)
        seq = self._fa[chrom][lo:hi] if hi > lo else ""
        seq = "N" * (lo - start) + str(seq) + "N" * (end - max(hi, start) if end > size else 0)
        return reverse_complement(seq) if strand == "-" else seq

    def sequences(self, regions: list[Region]) -> list[str]:
        return [self.fetch(r.chrom, r.start, r.end, r.strand) for r in regions]

    def close(self) -> None:
        self._fa.close()


class GenomeWindows:
    """Windows of an indexed genome, cut and one-hot encoded on demand, so that a genome and a
    window set larger than memory can be trained on (pass it, or a :meth:`subset`, as ``x``):
    only the windows' coordinates are held. Each process opens the genome itself, so
    DataLoader workers (``workers``) read it in parallel. A window marked ``shuffled`` is its
    region's dinucleotide shuffle, seeded by (``seed``, its index): the same sequence whatever
    the batch, the worker or the order it is read in."""

    def __init__(self, genome: str | Path, windows: list[Region], shuffled=None, seed: int = 0,
                 width: int | None = None, workers: int = 0, **encode) -> None:  # fmt: skip
        self.path, self.windows, self.seed, self.workers = Path(genome), list(windows), seed, workers
        self.shuffled = np.zeros(len(self.windows), bool) if shuffled is None else np.asarray(shuffled, bool)
        self.options = {"alphabet": "dna", "length": width, **encode}
        self._genome: Genome | None = None

    def __len__(self) -> int:
        return len(self.windows)

    def __getstate__(self) -> dict:  # a worker process opens its own handle
        return {**self.__dict__, "_genome": None}

    def sequence(self, i: int) -> str:
        if self._genome is None:
            self._genome = Genome(self.path)
        w = self.windows[i]
        seq = self._genome.fetch(w.chrom, w.start, w.end, w.strand)
        if self.shuffled[i]:
            seq = dinucleotide_shuffle(seq, np.random.default_rng([self.seed, i]))
        return seq

    def subset(self, rows):
        from .sequences import _Rows

        return _Rows(self, np.asarray(rows, dtype=np.int64))

    def take(self, idx) -> dict:
        import torch

        from .encode import one_hot

        x, lengths = one_hot([self.sequence(int(i)) for i in idx], **self.options)
        return {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}


def gc_content(seq: str, empty: float = 0.5) -> float:
    """The G+C fraction of the unambiguous bases (``empty`` for a sequence without any)."""
    s = seq.upper()
    acgt = sum(s.count(b) for b in "ACGT")
    return (s.count("G") + s.count("C")) / acgt if acgt else empty


def overlaps(a: Region, b: Region) -> bool:
    return a.chrom == b.chrom and a.start < b.end and b.start < a.end


class _Index:
    """Intervals per chromosome, for overlap tests (sorted starts, binary search)."""

    def __init__(self, regions: list[Region]) -> None:
        self.by_chrom: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        chroms: dict[str, list[tuple[int, int]]] = {}
        for r in regions:
            chroms.setdefault(r.chrom, []).append((r.start, r.end))
        for c, iv in chroms.items():
            iv.sort()
            starts = np.array([s for s, _ in iv])
            ends = np.maximum.accumulate(np.array([e for _, e in iv]))  # the furthest end so far
            self.by_chrom[c] = (starts, ends)

    def hits(self, chrom: str, start: int, end: int) -> bool:
        """True if [start, end) overlaps an interval."""
        if chrom not in self.by_chrom:
            return False
        starts, ends = self.by_chrom[chrom]
        k = int(np.searchsorted(starts, end)) - 1  # the last interval starting before end
        return k >= 0 and ends[k] > start

    def covers(self, chrom: str, pos: int) -> bool:
        return self.hits(chrom, pos, pos + 1)


def multitask_labels(windows: list[Region], experiments: dict[str, list[Region]]) -> np.ndarray:
    """(N, K) 0/1 labels: window n is positive for experiment k when its centre lies in one of
    that experiment's regions (one output per experiment, as DeepSEA)."""
    idx = [_Index(regs) for regs in experiments.values()]
    y = np.zeros((len(windows), len(idx)), dtype=np.float32)
    for n, w in enumerate(windows):
        mid = (w.start + w.end) // 2
        for k, ix in enumerate(idx):
            y[n, k] = ix.covers(w.chrom, mid)
    return y


def flank_background(regions: list[Region], genome: Genome, distance: int | None = None) -> list[Region]:
    """For each region, a window of its width ``distance`` bases (default: 3 widths) to its left
    or right (alternating), kept when it lies inside the chromosome and overlaps no region."""
    ix = _Index(regions)
    out = []
    for k, r in enumerate(regions):
        w = r.end - r.start
        d = distance if distance is not None else 3 * w
        for sign in (-1, 1) if k % 2 == 0 else (1, -1):
            start = r.start + sign * d
            if 0 <= start and start + w <= genome.sizes.get(r.chrom, 0) and not ix.hits(r.chrom, start, start + w):
                out.append(Region(r.chrom, start, start + w, f"flank_{r.name}", "+"))
                break
    return out


def gc_matched_background(
    regions: list[Region], genome: Genome, rng: np.random.Generator, per_region: int = 1, bins: int = 20,
    tries: int = 200, max_n: float = 0.1,
) -> list[Region]:  # fmt: skip
    """Random windows of the regions' width from the same chromosomes, matched to the regions'
    G+C distribution (``bins`` equal bins of GC fraction, ``per_region`` windows per region),
    overlapping no region and with at most ``max_n`` N bases. Seeded by ``rng``; a region whose
    GC bin cannot be filled in ``tries`` draws is skipped (the count comes back shorter)."""
    ix = _Index(regions)
    out = []
    for r in regions:
        w = r.end - r.start
        size = genome.sizes.get(r.chrom, 0)
        if size <= w:
            continue
        want = min(int(gc_content(genome.fetch(r.chrom, r.start, r.end)) * bins), bins - 1)
        got = 0
        for _ in range(tries):
            start = int(rng.integers(0, size - w))
            if ix.hits(r.chrom, start, start + w):
                continue
            seq = genome.fetch(r.chrom, start, start + w)
            if seq.upper().count("N") > max_n * w:
                continue
            if min(int(gc_content(seq) * bins), bins - 1) == want:
                out.append(Region(r.chrom, start, start + w, f"gc_{r.name}", "+"))
                got += 1
                if got == per_region:
                    break
    return out


def _track_values(path: str | Path, windows: list[Region]):
    """Yields ``(k, lo, hi, values)`` for each window: its part inside the chromosome
    ``[lo, hi)`` and the bigWig's values there (pyBigWig; bases without data as 0). A missing or
    unreadable file, or a chromosome the track lacks, raises InputError."""
    import pyBigWig

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such bigWig file")
    with path.open("rb") as handle:  # the magic number first: libBigWig prints to stderr on other files
        magic = handle.read(4)
    if magic not in (BIGWIG_MAGIC, BIGWIG_MAGIC[::-1]):
        raise InputError(f"{path}: not a bigWig file")
    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError:
        bw = None
    if bw is None or not bw.isBigWig():
        raise InputError(f"{path}: not a bigWig file")
    sizes = bw.chroms()
    try:
        for k, w in enumerate(windows):
            if w.chrom not in sizes:
                raise InputError(f"{path}: no chromosome {w.chrom!r} in this track (it has {some(sizes)})")
            lo, hi = max(w.start, 0), min(w.end, sizes[w.chrom])
            v = np.asarray(bw.values(w.chrom, lo, hi, numpy=True), dtype=np.float64) if hi > lo else np.zeros(0)
            yield k, lo, hi, np.nan_to_num(v, nan=0.0)
    finally:
        bw.close()


def track_profiles(path: str | Path, windows: list[Region], bin: int = 1) -> np.ndarray:
    """A bigWig track over each window, ``(N, width // bin)``: the mean coverage of each bin of
    ``bin`` bases, in the window's reading direction (reversed on the ``-`` strand). Bases without
    data, and those past a chromosome's end, count as 0. The windows share one width, a multiple
    of ``bin``."""
    widths = {w.end - w.start for w in windows}
    if len(widths) > 1 or any(v % bin for v in widths):
        raise ValueError(f"windows: expected one width, a multiple of bin={bin}, got widths {sorted(widths)[:5]}")
    width = widths.pop() if widths else bin
    out = np.zeros((len(windows), width))
    for k, lo, hi, v in _track_values(path, windows):
        out[k, lo - windows[k].start : hi - windows[k].start] = v
        if windows[k].strand == "-":
            out[k] = out[k, ::-1]
    return out.reshape(len(windows), width // bin, bin).mean(-1)


def track_means(path: str | Path, windows: list[Region]) -> np.ndarray:
    """The mean of a bigWig track (read with pyBigWig) over each window: bases without data
    count as 0, and a window running past a chromosome's end is averaged over its part inside.
    A chromosome the track lacks raises InputError."""
    out = np.zeros(len(windows))
    for k, _, _, v in _track_values(path, windows):
        out[k] = float(v.mean()) if len(v) else 0.0
    return out


def dinucleotide_shuffle(seq: str, rng: np.random.Generator) -> str:
    """A random sequence with exactly the dinucleotide counts of ``seq`` (Altschul & Erickson
    1985: a random Eulerian path through the graph of its dinucleotides, the last edge out of
    each letter fixed by a random spanning arborescence towards the last letter)."""
    if len(seq) < 3:
        return seq
    letters = sorted(set(seq))
    last = seq[-1]
    edges: dict[str, list[str]] = {a: [] for a in letters}
    for a, b in itertools.pairwise(seq):
        edges[a].append(b)
    while True:  # a random arborescence: for every letter but the last, its last exit edge
        last_exit = {}
        for a in letters:
            if a == last or not edges[a]:
                continue
            last_exit[a] = edges[a][rng.integers(len(edges[a]))]
        # every letter must reach `last` through last exits (no cycles)
        ok = True
        for a in last_exit:
            seen, v = set(), a
            while v != last:
                if v in seen or v not in last_exit:
                    ok = False
                    break
                seen.add(v)
                v = last_exit[v]
            if not ok:
                break
        if ok:
            break
    order: dict[str, list[str]] = {}
    for a in letters:
        rest = list(edges[a])
        if a in last_exit:
            rest.remove(last_exit[a])
        rng.shuffle(rest)
        order[a] = rest + ([last_exit[a]] if a in last_exit else [])
    out, v = [seq[0]], seq[0]
    pos = dict.fromkeys(letters, 0)
    for _ in range(len(seq) - 1):
        nxt = order[v][pos[v]]
        pos[v] += 1
        out.append(nxt)
        v = nxt
    return "".join(out)


__all__ = [
    "Genome", "GenomeWindows", "Region", "dinucleotide_shuffle", "fixed_width", "flank_background", "gc_content",
    "gc_matched_background", "multitask_labels", "overlaps", "read_regions", "reverse_complement", "track_means",
    "track_profiles",
]  # fmt: skip
