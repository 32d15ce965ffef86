"""Variant effects: ``biolstm variants RUN --vcf FILE --genome FASTA``.

Every SNV and short indel of a VCF (read with pysam) is scored by the change it makes to each of
the run's outputs: a window of the run's input length centred on the variant is cut from the
genome, the reference allele checked against it, the alternative allele put in its place (an
indel keeps the window's length: a deletion pulls in the bases that follow, an insertion pushes
the window's end out), and both are predicted. A run trained with ``rc_average`` averages both
strands in its model, so the scores do too. The TSV lists the variants by the largest absolute
change, first; ``--vcf-out`` also writes the VCF with the changes as INFO fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

MAX_INDEL = 50  # longer alleles (and symbolic ones such as <DEL>) are skipped, and counted


def _read_vcf(path: Path):
    import pysam

    if not path.is_file():
        raise InputError(f"--vcf {path}: no such file")
    try:
        vf = pysam.VariantFile(str(path))
    except (ValueError, OSError) as err:
        raise InputError(f"--vcf {path}: not a readable VCF ({err})") from None
    return vf


def variant_windows(genome, chrom: str, pos: int, ref: str, alt: str, width: int) -> tuple[str, str] | None:
    """(reference window, alternative window) of ``width`` bases centred on the variant at
    1-based ``pos``, or None when the genome's bases differ from ``ref``."""
    start0 = pos - 1
    left = start0 - width // 2
    ref_seq = genome.fetch(chrom, left, left + width + len(ref) + MAX_INDEL)
    off = start0 - left
    if ref_seq[off : off + len(ref)].upper() != ref.upper():
        return None
    alt_seq = ref_seq[:off] + alt + ref_seq[off + len(ref) :]
    return ref_seq[:width], alt_seq[:width]


def score_variants(run_dir, vcf, genome_path, output, vcf_out=None, overwrite: bool = False, verbose: int = 1,
                   batch_size: int = 256) -> Path:  # fmt: skip
    """Score every variant of ``vcf`` with the run in ``run_dir``; write the TSV ``output`` (and the
    annotated VCF ``vcf_out``). Returns the TSV's path."""
    from ..data.genome import Genome
    from ..train import Trainer
    from .run import load_run
    from .runfolder import output_path
    from .tasks.base import write_tsv
    from .tasks.sequence import encode_inputs

    output = output_path(output, "variants.tsv", "--output", overwrite)
    if vcf_out is not None:
        vcf_out = output_path(vcf_out, "variants.vcf.gz", "--vcf-out", overwrite)
    task, data, model, state, tcfg = load_run(run_dir)
    if task.name != "sequence" or getattr(data, "alphabet", "dna") not in ("dna", "rna"):
        raise InputError(f"{run_dir}: variants need a run of the sequence task on DNA, got task {task.name!r}")
    width = int(data.width) if getattr(data, "genome", None) else int(state["length"])
    genome = Genome(genome_path)
    vf = _read_vcf(Path(vcf))
    o = task.outcome(state)
    if o.kind_ == "binary":  # the outputs' names: the positive class, the value, or every class
        names = [str(o.classes_[-1])]
    else:
        names = ["value"] if o.kind_ == "regression" else [str(c) for c in o.classes_]
    rows, refs, alts, records, skipped, mismatched = [], [], [], [], 0, 0
    for rec in vf:
        if rec.chrom not in genome.sizes:
            raise InputError(f"--vcf {vcf}: chromosome {rec.chrom!r} (line of {rec.id or rec.pos}) is not in the "
                             f"genome {Path(genome_path).name}")  # fmt: skip
        for alt in rec.alts or ():
            if alt.startswith("<") or "[" in alt or "]" in alt or max(len(rec.ref), len(alt)) > MAX_INDEL or \
                    not set(alt.upper()) <= set("ACGTN"):  # fmt: skip
                skipped += 1
                continue
            pair = variant_windows(genome, rec.chrom, rec.pos, rec.ref, alt, width)
            if pair is None:
                mismatched += 1
                continue
            refs.append(pair[0])
            alts.append(pair[1])
            rows.append([rec.chrom, rec.pos, rec.id or ".", rec.ref, alt])
            records.append((rec, alt))
    genome.close()
    if not rows:
        raise InputError(f"--vcf {vcf}: no SNV or short indel to score ({skipped} skipped as symbolic or longer than "
                         f"{MAX_INDEL} bases, {mismatched} whose REF differs from the genome)")  # fmt: skip
    if mismatched > len(rows):
        raise InputError(f"--vcf {vcf}: the REF allele of {mismatched} variants differs from the genome "
                         f"{Path(genome_path).name} ({len(rows)} match); is it the genome of the VCF?")  # fmt: skip
    trainer = Trainer(model, tcfg.merged(device="cpu" if not torch.cuda.is_available() else None))
    origins = [(Path(vcf), k + 1) for k in range(len(rows))]

    def predict(seqs):
        inputs = encode_inputs(seqs, data.alphabet, data.ambiguity, data.soft_mask, width, origins)
        p = np.asarray(o.inverse_transform(trainer.predict(inputs, batch_size)), dtype=np.float64)
        return p.reshape(len(seqs), -1)

    p_ref, p_alt = predict(refs), predict(alts)
    diff = p_alt - p_ref
    order = np.argsort(-np.abs(diff).max(1), kind="stable")
    header = ["rank", "chrom", "pos", "id", "ref", "alt", "max_abs_change"]
    for n in names:
        header += [f"ref_{n}", f"alt_{n}", f"change_{n}"]
    out_rows = []
    for rank, i in enumerate(order, 1):
        vals = []
        for j in range(len(names)):
            vals += [f"{p_ref[i, j]:.6g}", f"{p_alt[i, j]:.6g}", f"{diff[i, j]:.6g}"]
        out_rows.append([rank, *rows[i], f"{np.abs(diff[i]).max():.6g}", *vals])
    output.parent.mkdir(parents=True, exist_ok=True)
    write_tsv(output, header, out_rows)
    if vcf_out is not None:
        _write_vcf(Path(vcf), vcf_out, records, names, diff)
    if verbose:
        print(f"scored {len(rows)} variants ({skipped} skipped: symbolic or longer than {MAX_INDEL} bases; "
              f"{mismatched} with a REF that differs from the genome); wrote {output}")  # fmt: skip
    return output


def _write_vcf(src: Path, dest: Path, records: list, names: list[str], diff: np.ndarray) -> None:
    """The input VCF's records that were scored, with INFO ``BIOLSTM_<output>`` = the change."""
    import os
    import tempfile

    import pysam

    vf = pysam.VariantFile(str(src))
    keys = ["BIOLSTM_" + "".join(c if c.isalnum() else "_" for c in n) for n in names]
    for k, n in zip(keys, names):
        vf.header.info.add(k, "A", "Float", f"biolstm: change of P({n}) (alternative minus reference)")
    changes: dict = {}
    for (rec, alt), d in zip(records, diff):
        changes.setdefault((rec.chrom, rec.pos, rec.ref, rec.alts), {})[alt] = d
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)  # written whole, then renamed
    os.close(fd)
    try:
        with pysam.VariantFile(tmp, "wz" if str(dest).endswith(".gz") else "w", header=vf.header) as out:
            for rec in vf:
                got = changes.get((rec.chrom, rec.pos, rec.ref, rec.alts))
                if not got:
                    continue
                rec.translate(out.header)
                for j, k in enumerate(keys):
                    rec.info[k] = tuple(float(got[a][j]) if a in got else float("nan") for a in rec.alts)
                out.write(rec)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
