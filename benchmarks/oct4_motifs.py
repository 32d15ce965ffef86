"""Attributions and motifs of a trained Oct4 vs MafK run: the numbers of docs/benchmarks.md
("Oct4 vs MafK: attributions and motifs").

1. ``biolstm explain RUN`` (``explain_run``: the run's test split, at most 800 sequences):
   the integrated-gradients completeness error on the examples shown, and the motifs (width
   12, input x gradient windows clustered on both strands) with their sites and sign.
2. The check of tests/interpret/test_oct4_motifs.py on several random samples of 800 of all
   the bundled sequences (numpy seeds --samples): the fewest mismatches of any motif that
   raises the Oct4 output against the octamer ATGCAAAT, and of any that lowers it against the
   MARE TGCTGA(C/G)TCAGCA.

    python benchmarks/oct4_motifs.py RUN [--samples 0 1 2]

RUN is an Oct4/MafK run folder: the demo's (``biolstm demo``: DEMO/oct4_mafk) or
``python benchmarks/accuracy.py oct4 --out DIR`` (DIR/oct4/random), which train the same
config with seed 0. The explain output goes to RUN/explain.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from biolstm.data import load_labeled, one_hot
from biolstm.demo import demo_config
from biolstm.interpret import attribute, best_match, find_motifs
from biolstm.interpret.explain import explain_run
from biolstm.pipeline import load_run

OCTAMER, MARE = "ATGCAAAT", "TGCTGASTCAGCA"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="an Oct4/MafK run folder")
    ap.add_argument("--samples", type=int, nargs="+", default=[0, 1, 2], help="numpy seeds of the 800-sequence samples")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    folder = explain_run(args.run)
    summary = json.loads((folder / "explain.json").read_text())
    ig = summary["integrated_gradients_completeness"]
    print(f"biolstm explain {args.run} ({summary['n']} test sequences, {time.perf_counter() - t0:.0f} s):")
    print(f"integrated gradients: max |sum - (f(x) - f(baseline))| / |f(x) - f(baseline)| = "
          f"{100 * ig['max_relative_error']:.2f}% over {len(ig['abs_delta'])} examples\n")  # fmt: skip
    print("| motif | consensus | sites | Oct4 output | octamer mismatches | MARE mismatches |")
    print("|---|---|---:|---|---:|---:|")
    for m in summary["motifs"]:
        consensus = SimpleNamespace(consensus=m["consensus"])  # all best_match reads of a motif
        sign = "raises" if m["sign"] > 0 else "lowers"
        print(f"| {m['name']} | {m['consensus']} | {m['sites']} | {sign} | "
              f"{best_match(consensus, OCTAMER)[0]} | {best_match(consensus, MARE)[0]} |")  # fmt: skip

    _, _, model, _, _ = load_run(args.run)
    d = demo_config("oct4_mafk.yaml").parent
    _, seqs, _ = load_labeled({"oct4": d / "oct4.fa.gz", "mafk": d / "mafk.fa.gz"})
    print("\n| sample (numpy seed) | best octamer match, mismatches | best MARE match, mismatches |")
    print("|---:|---:|---:|")
    for seed in args.samples:
        pick = np.random.default_rng(seed).choice(len(seqs), 800, replace=False)
        x = torch.from_numpy(one_hot([seqs[i] for i in pick])[0])
        a = attribute(model, x, method="input_x_gradient")
        motifs = find_motifs(a.values, x.numpy(), width=12, output=a.output)
        up = [best_match(m, OCTAMER)[0] for m in motifs if m.sign > 0]
        down = [best_match(m, MARE)[0] for m in motifs if m.sign < 0]
        print(f"| {seed} | {min(up) if up else '-'} | {min(down) if down else '-'} |")


if __name__ == "__main__":
    main()
