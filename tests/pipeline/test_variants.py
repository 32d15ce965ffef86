"""`biolstm variants`: on a run trained on a synthetic genome with GATA motifs planted at its
peaks, the SNV that destroys a planted motif scores highest among random SNVs and indels."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from biolstm.cli import app

from .test_genome_task import _config, synthetic_genome

runner = CliRunner()


@pytest.fixture(scope="module")
def genome_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("variants")
    synthetic_genome(tmp)
    cfg = _config(tmp, {"gata": "gata.narrowPeak"})
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp / "run"), "-q"])
    assert res.exit_code == 0, res.output
    return tmp


def _vcf(tmp, genome_seq: dict, rows):
    lines = ["##fileformat=VCFv4.2"] + [f"##contig=<ID={c},length={len(s)}>" for c, s in genome_seq.items()]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    lines += [f"{c}\t{pos}\t{vid}\t{ref}\t{alt}\t.\t.\t." for c, pos, vid, ref, alt in rows]
    path = tmp / "calls.vcf"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_snv_that_destroys_a_planted_motif_ranks_first(genome_run):
    import pyfaidx

    tmp = genome_run
    fa = pyfaidx.Fasta(str(tmp / "genome.fa"), as_raw=True)
    seqs = {c: str(fa[c][:]) for c in fa.keys()}
    # a GATA peak on chr5 (the test chromosome): its motif AGATAAGA starts 40 bases into the peak
    peak = next(line.split("\t") for line in (tmp / "gata.narrowPeak").read_text().splitlines()
                if line.startswith("chr5\t"))  # fmt: skip
    motif = int(peak[1]) + 40
    assert seqs["chr5"][motif : motif + 8] == "AGATAAGA"
    rng = np.random.default_rng(1)
    rows = [("chr5", motif + 4, "destroy", "T", "C")]  # AGAT[A]AGA -> AGATCAGA: GATA gone (1-based pos)
    for k in range(30):  # random SNVs and small indels away from the motifs
        c = f"chr{rng.integers(1, 6)}"
        pos = int(rng.integers(200, 29_000))
        ref = seqs[c][pos - 1]
        if k % 10 == 0:
            rows.append((c, pos, f"del{k}", seqs[c][pos - 1 : pos + 2], ref))
        elif k % 10 == 1:
            rows.append((c, pos, f"ins{k}", ref, ref + "GT"))
        else:
            rows.append((c, pos, f"snv{k}", ref, "ACGT"[("ACGT".index(ref) + 1) % 4]))
    rows.append(("chr1", 300, "bad_ref", "N" if seqs["chr1"][299] != "N" else "A", "G"))  # REF differs: skipped
    rows.append(("chr1", 400, "symbolic", seqs["chr1"][399], "<DEL>"))  # skipped
    vcf = _vcf(tmp, seqs, sorted(rows, key=lambda r: (r[0], r[1])))
    res = runner.invoke(app, ["variants", str(tmp / "run"), "--vcf", str(vcf), "--genome", str(tmp / "genome.fa"),
                              "-o", str(tmp / "out.tsv"), "--vcf-out", str(tmp / "scored.vcf.gz")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "scored 31 variants (1 skipped" in res.output and "1 with a REF that differs" in res.output
    table = list(csv.DictReader((tmp / "out.tsv").open(), delimiter="\t"))
    assert len(table) == 31 and table[0]["id"] == "destroy" and table[0]["rank"] == "1"
    assert float(table[0]["change_gata"]) < -0.3  # the motif's loss lowers P(gata)
    assert float(table[0]["max_abs_change"]) > 2 * float(table[1]["max_abs_change"])
    import pysam

    scored = list(pysam.VariantFile(str(tmp / "scored.vcf.gz")))
    assert len(scored) == 31
    destroy = next(r for r in scored if r.id == "destroy")
    assert destroy.info["BIOLSTM_gata"][0] == pytest.approx(float(table[0]["change_gata"]), abs=1e-5)
    # misuse: one error line, nothing overwritten
    again = runner.invoke(app, ["variants", str(tmp / "run"), "--vcf", str(vcf), "--genome", str(tmp / "genome.fa"),
                                "-o", str(tmp / "out.tsv")])  # fmt: skip
    assert again.exit_code == 1 and again.output.startswith("error:") and len(again.output.strip().splitlines()) == 1
    missing = runner.invoke(app, ["variants", str(tmp / "run"), "--vcf", str(tmp / "none.vcf"), "--genome",
                                  str(tmp / "genome.fa"), "-o", str(tmp / "o2.tsv")])  # fmt: skip
    assert missing.exit_code == 1 and "--vcf" in missing.output and "no such file" in missing.output
