"""Long-range memory tasks (adding problem, copy task, two DNA motifs far apart) for RNN, GRU,
LSTM and MinLSTM under a budget: the same as ``biolstm bench longrange`` (see its --help).

    python benchmarks/longrange.py --tasks adding --lengths 100,1000 --cells rnn,lstm_chrono --out docs/longrange
"""

from __future__ import annotations

import sys

from biolstm.cli import app

if __name__ == "__main__":
    app(["bench", "longrange", *sys.argv[1:]])
