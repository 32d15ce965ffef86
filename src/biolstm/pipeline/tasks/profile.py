"""The profile task: coverage tracks along each region, binned (BPNet- or Basenji-style).

Windows of ``data.width`` bases are cut from an indexed genome around the regions of
``data.regions`` (as the sequence task cuts them; background windows optional), and each
bigWig of ``data.tracks`` gives the target: its mean coverage in each bin of ``data.bin``
bases, one output per track. A :class:`~biolstm.models.ProfileModel` is trained with the Poisson
loss (``model.loss: poisson``) or MSE on log1p coverage (``mse``).

Metrics per track, with their mean over tracks (:func:`~biolstm.pipeline.evaluation.profile_metrics`):
Pearson along each region's bins averaged over regions (the shape), Pearson of the regions' log1p
mean coverage across regions (the amount), Poisson NLL and MSE of log1p coverage per bin. The
baselines, fitted on the training part only: the mean training profile for every region, and the
mean profile's shape scaled by a ridge regression of each region's log1p mean coverage on its
k-mer counts (``data.kmer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

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
    FoldKeys,
    Prepared,
    absolute_path,
    check_data_keys,
    make_split,
    split_record,
    write_tsv,
)
from .sequence import encode_inputs, genome_windows, record_chromosomes

KMER_MAX = 6


@dataclass
class ProfileData(Config, FoldKeys):
    """data: section of a profile config: regions of an indexed genome, and bigWig tracks whose
    binned coverage along each window is the target."""

    _what = "data config"

    genome: str | None = None  # indexed reference FASTA (+ .fai; bgzip + .gzi)
    regions: dict | None = None  # {name: BED/narrowPeak}: the windows' centres (every file's regions pooled)
    tracks: dict | None = None  # {name: bigWig}: one output per track, its mean coverage per bin
    width: int = 400  # window width in bases (a multiple of bin)
    bin: int = 10  # bases per bin of the predicted profile
    center: str = "summit"  # summit (narrowPeak column 10; the middle where absent) | interval
    background: str = "none"  # also windows from the genome, with their own coverage: none | gc | flank
    background_ratio: int = 1  # background windows per region
    kmer: int = 3  # k of the k-mer ridge baseline (0: none)
    split: str = "chromosome"  # chromosome: whole chromosomes held out (the only split for genome windows)
    test_chromosomes: list = field(default_factory=list)  # chromosome split: held out for testing (default: the last)
    val_chromosomes: list = field(default_factory=list)  # chromosome split: for validation (default: the next)
    test: float = 0.2  # held-out chromosomes are taken from the end of the genome's list until this fraction
    val: float = 0.1  # validation fraction
    seed: int = 0  # seeds the split and the background draw
    stream: ClassVar[bool] = False  # not a key: genome_windows holds the windows in memory
    bed: ClassVar[None] = None  # not a key: record_chromosomes reads the chr:start-end ids

    def __post_init__(self) -> None:
        for key in ("genome", "regions", "tracks"):
            if getattr(self, key) is None:
                raise InputError(f"data.{key}: expected {'an indexed genome FASTA' if key == 'genome' else 'a mapping'}"
                                 f", got none")  # fmt: skip
        for key in ("regions", "tracks"):
            value = getattr(self, key)
            if not isinstance(value, dict) or not value or not all(isinstance(v, str) for v in value.values()):
                raise InputError(f"data.{key}: expected a mapping {{name: file}}, got {value!r:.60}")
        kmer = (lambda v: 0 <= v <= KMER_MAX, f"0 (no k-mer baseline) or 1 to {KMER_MAX}")
        check_data_keys(self, {"width": AT_LEAST_1, "bin": AT_LEAST_1, "background_ratio": AT_LEAST_1,
                               "kmer": kmer, "test": TEST, "val": VAL, "seed": SEED})  # fmt: skip
        if self.width % self.bin:
            raise InputError(f"data.width: expected a multiple of data.bin ({self.bin}), got {self.width}")
        check_choice(self.center, ("summit", "interval"), "data.center")
        check_choice(self.background, ("none", "gc", "flank"), "data.background")
        check_choice(self.split, ("chromosome",), "data.split")


class ProfileTask:
    """Genome windows to binned coverage profiles of one or several bigWig tracks."""

    name = "profile"
    data_class = ProfileData
    model_from_data = ("input_channels", "num_outputs", "bin")  # set from the data

    def model_config_class(self) -> type:
        from ...models.profile import ProfileModelConfig

        return ProfileModelConfig

    def build_model(self, model_cfg):
        from ...models.profile import ProfileModel

        return ProfileModel(model_cfg)

    def loss(self, state: dict, model_cfg=None) -> str:
        return "model"  # ProfileModel.loss: Poisson NLL or MSE of log1p coverage

    def paths(self, d: ProfileData, base: Path) -> ProfileData:
        regions = {str(k): absolute_path(base, v) for k, v in d.regions.items()}
        tracks = {str(k): absolute_path(base, v) for k, v in d.tracks.items()}
        return d.merged(genome=absolute_path(base, d.genome), regions=regions, tracks=tracks)

    # ------------------------------------------------------------------ data
    def _windows(self, d: ProfileData, log):
        """(ids, sequences, windows, chromosome split or None) of the run's regions (+ background)."""
        ids, seqs, _, _, split, windows = genome_windows(d, log)
        return ids, seqs, windows, split

    @staticmethod
    def profiles(d: ProfileData, windows: list, log=None) -> np.ndarray:
        """The targets ``(N, width / bin, tracks)``: each track's mean coverage per bin."""
        from ...data.genome import track_profiles

        out = np.stack([track_profiles(path, windows, d.bin) for path in d.tracks.values()], -1)
        if log is not None:
            log(f"targets: {', '.join(d.tracks)} coverage in {d.width // d.bin} bins of {d.bin} bases per window")
        return out.astype(np.float32)

    def prepare(self, d: ProfileData, log) -> Prepared:
        log("reading regions of the genome")
        ids, seqs, windows, genome_split = self._windows(d, log)
        y = self.profiles(d, windows, log)
        if genome_split is not None:
            d = d.merged(**genome_split)
        chroms = record_chromosomes(d, ids)
        s = make_split(d, len(ids), None, chroms=chroms)
        origins = [(Path(d.genome), k + 1) for k in range(len(ids))]
        log(f"encoding {len(ids)} windows ({len(s.train)} train / {len(s.val)} val / {len(s.test)} test)")

        def part(idx):
            x = encode_inputs([seqs[i] for i in idx], "dna", "probabilities", "keep", d.width,
                              [origins[i] for i in idx])  # fmt: skip
            return x, torch.from_numpy(y[idx])

        log("fitting baselines (training part only)")
        tracks = list(d.tracks)
        mean = y[s.train].mean(0)  # (bins, K)
        fits = {"mean_profile": lambda raw, m=mean: np.repeat(m[None], len(raw), 0)}
        if d.kmer:
            shape = mean / np.maximum(mean.mean(0, keepdims=True), 1e-12)
            feats = lambda q: ev.kmer_counts(q, d.kmer, "ACGT")  # noqa: E731
            ridge = ev.fit_ridge(feats([seqs[i] for i in s.train]), np.log1p(y[s.train].mean(1)))

            def kmer_fit(raw, r=ridge, sh=shape):
                level = np.expm1(np.atleast_2d(r(feats(raw))).reshape(len(raw), -1)).clip(0)  # (N, K)
                return level[:, None, :] * sh[None]

            fits[f"{d.kmer}-mer_ridge"] = kmer_fit
        test_seqs = [seqs[i] for i in s.test]
        return Prepared(
            train=part(s.train),
            val=part(s.val) if len(s.val) else None,
            test=part(s.test),
            test_ids=[ids[i] for i in s.test],
            model_overrides={"input_channels": 4, "num_outputs": len(tracks), "bin": d.bin},
            state={"tracks": tracks, "bin": d.bin, "length": d.width},
            baselines={name: fit(test_seqs) for name, fit in fits.items()},
            baseline_fits=fits,
            split=split_record(d.split, ids, s, chroms),
        )

    # ------------------------------------------------------------------ outputs
    @staticmethod
    def coverage(model, out: torch.Tensor) -> np.ndarray:
        return model.coverage(out.detach().float().cpu()).numpy()

    def test_metrics(self, prep: Prepared, out: torch.Tensor, model=None) -> dict:
        truth, tracks = prep.test[1].numpy(), prep.state["tracks"]
        metrics = {"model": ev.profile_metrics(truth, self.coverage(model, out), tracks)[0]}
        metrics.update({name: ev.profile_metrics(truth, p, tracks)[0] for name, p in prep.baselines.items()})
        return metrics

    def finish(self, prep: Prepared, out: torch.Tensor, model, run_dir: Path, history: dict) -> tuple[dict, dict]:
        """Metrics (with each track's in extra['tracks']), loss and profile plots, and
        test_predictions.tsv (one row per region, track and bin)."""
        truth, tracks, b = prep.test[1].numpy(), prep.state["tracks"], prep.state["bin"]
        pred = self.coverage(model, out)
        metrics = self.test_metrics(prep, out, model)
        extra = {"tracks": ev.profile_metrics(truth, pred, tracks)[1]}
        plots = ev.save_plots(run_dir, history or {})
        plots.append(_plot_profiles(run_dir, prep.test_ids, truth, pred, tracks, b))
        header, rows = self.rows(prep.state, prep.test_ids, pred)
        write_tsv(run_dir / "test_predictions.tsv", [*header, "true"],
                  [[*r, f"{t:.6g}"] for r, t in zip(rows, truth.transpose(0, 2, 1).ravel())])  # fmt: skip
        extra["files"] = [*plots, "test_predictions.tsv"]
        return metrics, extra

    @staticmethod
    def rows(state: dict, ids: list, pred: np.ndarray) -> tuple[list[str], list[list]]:
        """One row per region, track and bin: id, track, the bin's first and last base (1-based,
        within the window) and the predicted mean coverage per base."""
        b = state["bin"]
        header = ["id", "track", "bin_start", "bin_end", "predicted"]
        out = []
        for rid, p in zip(ids, pred):
            for k, name in enumerate(state["tracks"]):
                out.extend([rid, name, j * b + 1, (j + 1) * b, f"{v:.6g}"] for j, v in enumerate(p[:, k]))
        return header, out

    # ------------------------------------------------------------------ new data
    def read_new(self, d: ProfileData, state: dict, path: str | None):
        """(inputs, ids, sequences, windows) of new regions: a BED/narrowPeak ``path`` cut from
        the run's genome, or, with ``path`` None, the data section's regions (+ background)."""
        from ...data.genome import Genome, fixed_width, read_regions

        if path is None:
            ids, seqs, windows, _ = self._windows(d, lambda msg: None)
        else:
            genome = Genome(d.genome)
            try:
                windows = fixed_width(read_regions(path), state["length"], d.center)
                seqs = genome.sequences(windows)
            finally:
                genome.close()
            ids = [f"{w.chrom}:{w.start}-{w.end}" for w in windows]
        origins = [(Path(d.genome), k + 1) for k in range(len(ids))]
        return encode_inputs(seqs, "dna", "probabilities", "keep", state["length"], origins), ids, seqs, windows

    def evaluate_new(self, d, state: dict, path: str | None, model, predict, baselines=None, **labels) -> dict:
        """{model/baseline: metrics} on new regions (``path``, a BED file, or the data section),
        against the coverage of the run's tracks there."""
        x, _, seqs, windows = self.read_new(d, state, path)
        if not windows:
            raise InputError(f"{path or 'data.regions'}: expected regions to evaluate, found none")
        truth = self.profiles(d, windows)
        tracks = state["tracks"]
        metrics = {"model": ev.profile_metrics(truth, self.coverage(model, predict(x)), tracks)[0]}
        metrics.update({n: ev.profile_metrics(truth, f(seqs), tracks)[0] for n, f in (baselines or {}).items()})
        return metrics

    def predict_new(self, d, state: dict, path: str, model, predict) -> tuple[list, list]:
        x, ids, _, _ = self.read_new(d, state, path)
        return self.rows(state, ids, self.coverage(model, predict(x)))


def _plot_profiles(run_dir: Path, ids: list, truth: np.ndarray, pred: np.ndarray, tracks: list, b: int) -> str:
    """profiles.png: observed and predicted coverage of each track's 2 test regions with the most
    of its coverage, one row per region and one column per track (one y scale per track)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = list(dict.fromkeys(int(i) for k in range(len(tracks)) for i in np.argsort(-truth[..., k].sum(1))[:2]))
    fig, axes = plt.subplots(len(top), len(tracks), figsize=(5 * len(tracks), 2.2 * len(top)), squeeze=False,
                             sharey="col")  # fmt: skip
    pos = (np.arange(truth.shape[1]) + 0.5) * b
    for r, i in enumerate(top):
        for k, name in enumerate(tracks):
            ax = axes[r][k]
            ax.fill_between(pos, truth[i, :, k], step="mid", alpha=0.4, label="observed")
            ax.plot(pos, pred[i, :, k], color="C3", label="predicted")
            ax.set_title(f"{ids[i]}, {name}", fontsize=10)
            ax.set_ylabel("coverage per base")
            if r == len(top) - 1:
                ax.set_xlabel(f"position in the window (bp; bins of {b})")
    axes[0][0].legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(run_dir / "profiles.png", dpi=110)
    plt.close(fig)
    return "profiles.png"
