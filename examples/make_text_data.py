"""Derive examples/data/oct4_mafk_5mers.csv.gz, the data of examples/configs/text.yaml.

There is no natural-language corpus among the project's data, so the `text` example reads DNA
as text: 1,000 Oct4 and 1,000 MafK ChIP-seq peaks, drawn at random (seed 0) from the copies
bundled with the package (src/biolstm/demo_data, provenance in its README.md), each upper-cased
and written as its 196 overlapping 5-mers separated by spaces, a "sentence" of DNA "words"
(the k-mer tokens of DNABERT and dna2vec). The text task's word tokenizer, embedding and LSTM
then read a peak like a sentence, and its bag-of-words baseline is a logistic regression on
5-mer counts, the 5-mer baseline of the sequence example.

Columns: id (the peak's coordinates, from the FASTA header), label (oct4 or mafk), text.
The gzip header carries no name or time, so the same input gives the same bytes.

    python examples/make_text_data.py [OUT]      # default: examples/data/oct4_mafk_5mers.csv.gz
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

import numpy as np

from biolstm.data import read_sequences
from biolstm.demo import demo_config

K = 5  # k-mer length: one word per position, 196 words per 200-bp peak
PER_FACTOR = 1000  # peaks drawn from each file (of 3,897 and 3,900)
SEED = 0
OUT = Path(__file__).resolve().parent / "data" / "oct4_mafk_5mers.csv.gz"


def kmer_sentence(seq: str, k: int = K) -> str:
    """``'ACGTAC'`` -> ``'ACGTA CGTAC'`` for k = 5: the overlapping k-mers, upper case."""
    s = seq.upper()
    return " ".join(s[i : i + k] for i in range(len(s) - k + 1))


def derive(out: str | Path = OUT) -> Path:
    """Write the table to ``out`` (gzip, deterministic bytes) and return its path."""
    rng = np.random.default_rng(SEED)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "label", "text"])
    for label in ("oct4", "mafk"):
        records = list(read_sequences(demo_config(f"{label}.fa.gz")))
        for i in np.sort(rng.choice(len(records), PER_FACTOR, replace=False)):  # file order
            w.writerow([records[i].id, label, kmer_sentence(records[i].seq)])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue().encode())
    return out


if __name__ == "__main__":
    print(f"wrote {derive(sys.argv[1] if len(sys.argv) > 1 else OUT)}")
