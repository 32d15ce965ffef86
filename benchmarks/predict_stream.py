"""Memory and speed of `biolstm predict` on a large sequence file: streamed against all at once.

Usage: python benchmarks/predict_stream.py [--records 490000] [--length 200] [--run RUN] [--workers N]
       [--rounds 3] [--before-src DIR]

Writes a FASTA of random DNA (seeded) into a temporary folder, trains the demo's model for one
epoch on the bundled Oct4/MafK data when no --run is given (the model's speed does not depend on
how well it is trained), then predicts the file in each mode, each run in its own process:

- before: the package as it was before streaming, from the source tree --before-src (e.g. a
  `git worktree add /tmp/before 9603ca2`), imported through PYTHONPATH;
- all at once: this package with ``stream=False`` (every record read, encoded and predicted in
  one piece, as the other tasks still do);
- streamed: this package's default.

The modes run in turn, --rounds times (this machine's speed drifts over minutes; interleaving
spreads the drift over every mode), and the median wall time is reported, with records per
second and the peak memory of the process with its workers: the largest sum of proportional
set sizes (PSS: shared pages divided among the processes sharing them) over the process tree,
sampled every 0.1 s. Prints a Markdown table; docs/benchmarks.md records it with the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from biolstm.bench import cpu_name

ROOT = Path(__file__).resolve().parent.parent


def write_fasta(path: Path, records: int, length: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "w") as fh:
        for start in range(0, records, 10000):
            n = min(10000, records - start)
            seqs = letters[rng.integers(0, 4, size=(n, length))]
            fh.write("".join(f">r{start + k}\n{seqs[k].tobytes().decode()}\n" for k in range(n)))


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _tree_pss_mib(pid: int) -> float:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
        todo += _children(p)
    return total / 1024


def measure(run: Path, fasta: Path, out: Path, mode: str, workers: int | None, threads: int, before: Path | None
            ) -> dict:  # fmt: skip
    extra = "" if mode == "before" else f", workers={workers!r}, stream={mode == 'streamed'}"
    code = ("from biolstm.pipeline.run import predict; "
            f"predict({str(run)!r}, {str(fasta)!r}, {str(out)!r}, verbose=1, overwrite=True, threads={threads}{extra})")
    env = dict(os.environ, PYTHONPATH=str(before / "src")) if mode == "before" else None
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)  # fmt: skip
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_pss_mib(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    log = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"predict ({mode}) failed:\n{log}")
    return {"wall": wall, "peak": peak, "log": log.strip().splitlines()[-1]}


def train_run(folder: Path) -> Path:
    cfg = ROOT / "src" / "biolstm" / "demo_data" / "oct4_mafk.yaml"
    run = folder / "run"
    subprocess.run([sys.executable, "-m", "biolstm.cli", "train", str(cfg), "--out", str(run), "--train.epochs=1"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return run


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=490_000)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--run", type=Path, help="a trained sequence run (default: the demo model, one epoch)")
    parser.add_argument("--workers", type=int, default=None, help="encoding processes (default: biolstm's choice)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode, interleaved (median reported)")
    parser.add_argument("--before-src", type=Path, help="source tree of the package before streaming (its src/)")
    args = parser.parse_args()
    modes = (["before"] if args.before_src else []) + ["all at once", "streamed"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = args.run or train_run(tmp)
        fasta = tmp / "records.fa"
        write_fasta(fasta, args.records, args.length)
        runs = {m: [] for m in modes}
        for _ in range(args.rounds):
            for m in modes:
                runs[m].append(measure(run, fasta, tmp / f"{m}.tsv", m, args.workers, args.threads, args.before_src))
        preds = {m: np.loadtxt(tmp / f"{m}.tsv", delimiter="\t", skiprows=1, usecols=(2, 3)) for m in modes}
    cpu = cpu_name()
    print(f"# predict: {args.records:,} records of {args.length} bp, {cpu}, {os.cpu_count()} CPUs, "
          f"{args.threads} torch threads, median of {args.rounds} interleaved runs\n")  # fmt: skip
    print("| mode | wall s (each run) | records/s | peak memory (PSS of the process tree), MiB |")
    print("|---|---:|---:|---:|")
    med = {m: float(np.median([r["wall"] for r in runs[m]])) for m in modes}
    peak = {m: max(r["peak"] for r in runs[m]) for m in modes}
    for m in modes:
        each = ", ".join(f"{r['wall']:.1f}" for r in runs[m])
        print(f"| {m} | {med[m]:.1f} ({each}) | {args.records / med[m]:,.0f} | {peak[m]:,.0f} |")
    ref = modes[0]
    print(f"\nstreamed against {ref}: {med[ref] / med['streamed']:.2f}x the throughput, "
          f"{peak['streamed'] / peak[ref]:.2f} of the peak memory; largest difference between the modes' "
          f"probabilities: {max(np.abs(preds[m] - preds['streamed']).max() for m in modes):.1e}")  # fmt: skip
