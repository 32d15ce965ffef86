"""``biolstm demo``: the main job on data bundled with the package (see demo_data/README.md).

Trains a conv + BiLSTM classifier on Oct4 vs MafK ChIP-seq peaks and LSTM forecasters of the
yearly sunspot numbers (1-step and 10-step horizons over the last 30 years), each into its
own run folder, and prints their test metrics beside the baselines.
"""

from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path

RUNS = (  # (run name, bundled config, overrides)
    ("oct4_mafk", "oct4_mafk.yaml", []),
    ("sunspots_h1", "sunspots.yaml", ["data.horizon=1"]),
    ("sunspots_h10", "sunspots.yaml", ["data.horizon=10"]),
)


def demo_config(name: str) -> Path:
    """Path of a bundled demo config (its data files lie beside it)."""
    return Path(str(files("biolstm") / "demo_data" / name))


def run_demo(out: str | Path | None = None, quick: bool = False, verbose: int = 1) -> dict[str, Path]:
    """Run the three demo trainings; ``quick`` trains 2 epochs each (a smoke test)."""
    from .pipeline import train

    out = Path(out) if out is not None else Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    done = {}
    t0 = time.perf_counter()
    for name, cfg, overrides in RUNS:
        extra = ["train.epochs=2"] if quick else []
        if verbose:
            print(f"\n=== {name}: {cfg} {' '.join(overrides + extra)}", flush=True)
        done[name] = train(demo_config(cfg), overrides + extra, out=out / name, verbose=verbose)
    if verbose:
        print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; run folders under {out}")
    return done
