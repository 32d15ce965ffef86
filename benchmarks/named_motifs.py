"""Named motifs on the Oct4 vs MafK demo model: for each training seed, ``biolstm explain`` of
the run (its test split, at most 800 sequences) finds motifs by each method (``cluster``: input x
gradient windows clustered; ``modisco``: TF-MoDISco on integrated gradients against dinucleotide
shuffles) and names them by TOMTOM against JASPAR CORE vertebrates (the release pyjaspar
bundles). The numbers of docs/benchmarks.md ("Named motifs on the Oct4/MafK demo").

For the motifs that raise the Oct4 output it reports the best rank (among each motif's top 3
matches) of a POU-family factor (POU5F1, POU2F1, POU3F..., Pou5f1::Sox2...) with q < 0.05,
and for those that lower it, of a MAF / NFE2-family factor (MAFK, MAFF, MAFG, NFE2, NFE2L...,
BACH...). A rank of '-' means no such match.

    python benchmarks/named_motifs.py --out DIR [--seeds 0 1 2] [--methods cluster modisco]

Trains the demo config (``biolstm demo``'s oct4_mafk.yaml) once per seed into DIR/seed_S
(an existing finished run there is reused).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from biolstm.demo import demo_config
from biolstm.interpret.explain import explain_run
from biolstm.interpret.motif_db import MotifMatch, is_named
from biolstm.pipeline import train

POU = ["POU"]
MAF = ["MAF", "NFE2", "BACH"]


def best(motifs: list[dict], sign: int, names: list[str]) -> tuple[str, int, float] | None:
    """(motif, rank, q) of the best-ranked named match among the motifs of this sign."""
    found = []
    for m in motifs:
        if m["sign"] != sign:
            continue
        hits = [MotifMatch(**h) for h in m["matches"]]
        rank = is_named(hits, names)
        if rank is not None:
            found.append((m["name"], rank, hits[rank - 1].q, hits[rank - 1].name))
    return min(found, key=lambda f: (f[1], f[2])) if found else None


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=["cluster", "modisco"], choices=["cluster", "modisco"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        run = args.out / f"seed_{seed}"
        if not (run / "metrics.json").exists():
            train(demo_config("oct4_mafk.yaml"), [f"train.seed={seed}"], out=run, verbose=0)
        for method in args.methods:
            t0 = time.perf_counter()
            folder = explain_run(run, out=run / f"explain_{method}", motifs=method)
            summary = json.loads((folder / "explain.json").read_text())
            motifs = summary["motifs"]
            named = sum(1 for m in motifs if m["matches"] and m["matches"][0]["q"] < 0.05)
            rows.append({"seed": seed, "method": method, "pou": best(motifs, 1, POU), "maf": best(motifs, -1, MAF),
                         "motifs": motifs, "named": named, "seqlets": summary["motif_method"]["seqlets"],
                         "database": summary["motif_database"]["name"],
                         "seconds": time.perf_counter() - t0})  # fmt: skip
            print(f"seed {seed}, {method}: {time.perf_counter() - t0:.0f} s", flush=True)
            for m in motifs:
                hits = ", ".join(f"{h['name']} (q={h['q']:.1g})" for h in m["matches"]) or "none"
                print(f"  {m['name']} {m['consensus']} {m['sites']} sites: {hits}")
    print(f"\nJASPAR: {rows[0]['database']} CORE vertebrates\n")
    print("| seed | method | seqlets up / down | motifs (named, q < 0.05) | raises Oct4: POU-family match "
          "(motif, rank, q) | lowers Oct4: MAF/NFE2-family match (motif, rank, q) | explain (s) |")  # fmt: skip
    print("|---:|---|---:|---:|---|---|---:|")
    fmt = lambda b: "-" if b is None else f"{b[3]} ({b[0]}, rank {b[1]}, q = {b[2]:.1g})"  # noqa: E731
    for r in rows:
        s = r["seqlets"]
        print(f"| {r['seed']} | {r['method']} | {s['up']} / {s['down']} | {len(r['motifs'])} ({r['named']}) "
              f"| {fmt(r['pou'])} | {fmt(r['maf'])} | {r['seconds']:.0f} |")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
