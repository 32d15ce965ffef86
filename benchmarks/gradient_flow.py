"""Gradient flow through time in freshly initialised cells: the table of docs/benchmarks.md
("Gradient flow through time").

``biolstm.interpret.gradient_flow`` for each cell (RNN with tanh, GRU, LSTM with forget bias 1;
hidden 32, float64, seed 0) on 64 sequences of standard normal inputs whose target is the sign
of the first input, the loss read at the last step: mean ||dLoss/dh_t|| at the first and last
step. Deterministic (float64, fixed seed); a few seconds.

    python benchmarks/gradient_flow.py [--steps 50 200] [--hidden 32] [--seed 0]
"""

from __future__ import annotations

import argparse

from biolstm.interpret import gradient_flow

NAMES = {"rnn": "RNN (tanh)", "gru": "GRU", "lstm": "LSTM"}


def sci(v: float) -> str:
    """1.2e-3 rather than 1.2e-03."""
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print("| steps | cell | first step | last step | first / last |")
    print("|---:|---|---:|---:|---:|")
    for steps in args.steps:
        for cell in ("rnn", "gru", "lstm"):
            flow = gradient_flow(cell, steps=steps, hidden_size=args.hidden, seed=args.seed)
            first, last = flow.norms[0], flow.norms[-1]
            print(f"| {steps} | {NAMES[cell]} | {sci(first)} | {sci(last)} | {sci(flow.ratio)} |")


if __name__ == "__main__":
    main()
