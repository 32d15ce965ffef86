"""Time the seed's Keras example and a bigger epoch on biolstm and, if given, on Keras + TensorFlow.

Usage:
    python benchmarks/seed_example.py [--keras-python PATH] [--repeats N]

Cases (float32, CPU, 2 threads):
  seed     the seed article's example: 100 sequences of length 10, LSTM(50, relu) + Dense(1,
           sigmoid), adam, binary cross-entropy, 10 epochs, batch 32 (build+fit, and fit alone)
  big-relu 2,000 sequences of length 200 with 4 features, LSTM(128, activation='relu') +
           Dense(1), one epoch, batch 32 (the default), mse
  big-tanh the same with LSTM(128) (tanh)

``--keras-python`` names a Python that has keras 3 and tensorflow installed (for example a
separate virtual environment); the same script then runs there with KERAS_BACKEND=tensorflow
and its timings are compared with biolstm's, measured in this process. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

import numpy as np


def _data(n: int, T: int, D: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, T, D), dtype=np.float32)
    y = rng.random((n, 1), dtype=np.float32)
    return x, y


def run_cases(api: str, repeats: int) -> dict[str, float]:
    """Seconds per case (median over repeats), with ``api`` 'biolstm' or 'keras'."""
    if api == "biolstm":
        import torch

        torch.set_num_threads(2)
        from biolstm.keras.layers import LSTM, Dense
        from biolstm.keras.models import Sequential
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(2)
        from keras.layers import LSTM, Dense
        from keras.models import Sequential

    def seed_example():
        X, y = _data(100, 10, 1)
        t0 = time.perf_counter()
        model = Sequential()
        model.add(LSTM(50, activation="relu", input_shape=(10, 1)))
        model.add(Dense(1, activation="sigmoid"))
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        t1 = time.perf_counter()
        model.fit(X, y, epochs=10, batch_size=32, verbose=0)
        return time.perf_counter() - t0, time.perf_counter() - t1

    def big(activation: str) -> float:
        X, y = _data(2000, 200, 4)
        model = Sequential()
        model.add(LSTM(128, activation=activation, input_shape=(200, 4)))
        model.add(Dense(1))
        model.compile(optimizer="adam", loss="mse")
        model.fit(X[:64], y[:64], epochs=1, batch_size=32, verbose=0)  # warm-up (graph building, allocation)
        t0 = time.perf_counter()
        model.fit(X, y, epochs=1, batch_size=32, verbose=0)
        return time.perf_counter() - t0

    out: dict[str, list[float]] = {
        "seed: build+fit, first in the process": [],
        "seed: build+fit": [],
        "seed: fit": [],
        "big-relu: epoch": [],
        "big-tanh: epoch": [],
    }
    for k in range(repeats):
        total, fit = seed_example()
        if k == 0:  # includes one-time costs (torch imports its compiler stack at the first optimizer step)
            out["seed: build+fit, first in the process"].append(total)
        out["seed: build+fit"].append(total)
        out["seed: fit"].append(fit)
        out["big-relu: epoch"].append(big("relu"))
        out["big-tanh: epoch"].append(big("tanh"))
    return {k: statistics.median(v) for k, v in out.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keras-python", help="a Python with keras 3 + tensorflow, for the comparison")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median reported)")
    parser.add_argument("--child", choices=["keras"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_cases("keras", args.repeats)))
        return
    mine = run_cases("biolstm", args.repeats)
    theirs = None
    if args.keras_python:
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        res = subprocess.run(
            [args.keras_python, __file__, "--child", "keras", "--repeats", str(args.repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        theirs = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"# seed example and LSTM(128) epochs, median of {args.repeats} runs, 2 threads\n")
    if theirs:
        print("| case | biolstm s | Keras + TensorFlow s | Keras / biolstm |")
        print("|---|---:|---:|---:|")
        for k, v in mine.items():
            print(f"| {k} | {v:.2f} | {theirs[k]:.2f} | {theirs[k] / v:.2f} |")
    else:
        print("| case | biolstm s |")
        print("|---|---:|")
        for k, v in mine.items():
            print(f"| {k} | {v:.2f} |")
        print("\n(Keras + TensorFlow not measured: pass --keras-python)")


if __name__ == "__main__":
    main()
