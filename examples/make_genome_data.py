"""Writes examples/data/genome/: a small synthetic reference genome with two factors' motifs
planted at the summits of their own narrowPeak files, for examples/configs/genome.yaml
(reading regions of an indexed genome). Deterministic: the same bytes every time
(tests/test_examples.py checks that this script reproduces the committed files).

- genome.fa: 5 chromosomes (chr1..chr5) of 20,000 random bases (numpy seed 0), 70 per line,
  indexed in genome.fa.fai (the samtools/pyfaidx .fai format);
- gata.narrowPeak: 40 peaks per chromosome with GATA1's consensus AGATAAGA at the summit;
- ebox.narrowPeak: 40 peaks per chromosome with the E-box CACGTGAC (bHLH factors) at the summit.
The two factors' peaks alternate and never overlap.
- gata.bw, ebox.bw: coverage tracks for examples/configs/profile.yaml, a Gaussian bump (sd 6 bp,
  height 20 for GATA, 8 for the E-box) around each of the factor's sites (bigWig, pyBigWig);
- tiles.bed: 200-base tiles of every chromosome, one every 100 bases (the profile regions).

    python examples/make_genome_data.py [--out examples/data/genome]

For a real genome (hg38, mm10), index it once (samtools faidx hg38.fa) and point data.genome
at it and data.regions at your peak files; nothing is downloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MOTIFS = {"gata": "AGATAAGA", "ebox": "CACGTGAC"}
HEIGHT = {"gata": 20.0, "ebox": 8.0}  # bump heights of the coverage tracks
CHROMS, LENGTH, PEAKS, LINE = 5, 20_000, 80, 70


def derive(out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    peaks = {name: [] for name in MOTIFS}
    fasta, fai, offset = [], [], 0
    bumps = {name: [] for name in MOTIFS}  # (chromosome, site start)
    for c in range(1, CHROMS + 1):
        bases = list(rng.choice(list("ACGT"), LENGTH))
        for k in range(PEAKS):
            name = list(MOTIFS)[k % 2]
            start = 300 + k * (LENGTH - 600) // PEAKS
            bases[start : start + 8] = MOTIFS[name]
            bumps[name].append((f"chr{c}", start))
            score = int(rng.integers(100, 1000))
            peaks[name].append(f"chr{c}\t{start - 40}\t{start + 48}\t{name}_chr{c}_{k}\t{score}\t.\t{score / 100:.2f}"
                               f"\t-1\t-1\t44\n")  # fmt: skip
        seq = "".join(bases)
        head = f">chr{c}\n"
        body = "".join(seq[i : i + LINE] + "\n" for i in range(0, LENGTH, LINE))
        fai.append(f"chr{c}\t{LENGTH}\t{offset + len(head)}\t{LINE}\t{LINE + 1}\n")
        fasta.append(head + body)
        offset += len(head) + len(body)
    (out / "genome.fa").write_text("".join(fasta))
    (out / "genome.fa.fai").write_text("".join(fai))
    for name, lines in peaks.items():
        (out / f"{name}.narrowPeak").write_text("".join(lines))
    tiles = [f"chr{c}\t{s}\t{s + 200}\n" for c in range(1, CHROMS + 1) for s in range(0, LENGTH - 199, 100)]
    (out / "tiles.bed").write_text("".join(tiles))
    _tracks(out, bumps)
    return out


def _tracks(out: Path, bumps: dict) -> None:
    """One bigWig per factor: the bases within 30 of a site's centre, each with the bump's value."""
    import pyBigWig

    offsets = np.arange(-30, 30)
    shape = np.round(np.exp(-0.5 * ((offsets + 0.5) / 6) ** 2), 3)
    for name, sites in bumps.items():
        bw = pyBigWig.open(str(out / f"{name}.bw"), "w")
        bw.addHeader([(f"chr{c}", LENGTH) for c in range(1, CHROMS + 1)], maxZooms=0)
        for chrom, start in sites:  # in genome order; sites are 240 bases apart, so bumps never overlap
            first = start + 4 + int(offsets[0])
            bw.addEntries(chrom, first, values=(HEIGHT[name] * shape).tolist(), span=1, step=1)
        bw.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "genome")
    print(derive(ap.parse_args().out))
