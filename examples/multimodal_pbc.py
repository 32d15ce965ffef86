"""Multimodal input with the Keras functional API: a sequence branch and a tabular branch.

The PBC visits (examples/data/pbcseq.csv.gz, provenance in examples/data/README.md): death by
the end of follow-up from each patient's visit sequence (7 lab values with missing values,
carried forward with masks and times since observation, as the `multivariate` task prepares
them) and from static covariates (age, sex, treatment). Two models on the same patient split
(biolstm's task layer makes it: patients whole, stratified by outcome; scalers fitted on the
training patients):

- sequence branch alone:  Input(visits) -> Masking -> LSTM(16) -> Dense(1, sigmoid)
- sequence + tabular:     the same branch, Input(static) -> Dense(8, relu), Concatenate -> Dense(1)

Both train with Adam and binary cross-entropy, 60 epochs at most with early stopping on the
validation patients (the best epoch's weights kept). The test auROC of each is printed per seed
and on average.

    python examples/multimodal_pbc.py                 # seeds 0, 1, 2
    python examples/multimodal_pbc.py --epochs 2 --seeds 0   # a quick look
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from biolstm.keras import Input, Model
from biolstm.keras.callbacks import EarlyStopping
from biolstm.keras.layers import LSTM, Concatenate, Dense, Masking
from biolstm.keras.utils import set_random_seed
from biolstm.pipeline.tasks import MultivariateData, MultivariateTask

DATA = Path(__file__).resolve().parent / "data" / "pbcseq.csv.gz"
VARIABLES = ["bili", "chol", "albumin", "alk.phos", "ast", "platelet", "protime"]


def prepare(seed: int = 0):
    """Train / validation / test arrays of the visits, the static covariates and the outcome."""
    d = MultivariateData.from_dict({
        "file": str(DATA), "id_col": "id", "time_col": "day", "target": "status", "positive": [2],
        "variables": VARIABLES, "static": ["age", "sex", "trt"], "time_scale": 365.25,
        "test": 0.25, "val": 0.15, "seed": seed,
    })  # fmt: skip
    prep = MultivariateTask().prepare(d, lambda message: None)

    def arrays(part):
        inputs, y = part
        return inputs["x"].numpy(), inputs["static"].numpy(), y.numpy().astype("float32")[:, None]

    return arrays(prep.train), arrays(prep.val), arrays(prep.test)


def sequence_branch(steps: int, channels: int):
    visits = Input(shape=(steps, channels), name="visits")
    return visits, LSTM(16)(Masking(mask_value=0.0)(visits))  # padded visits are all zeros


def build(steps: int, channels: int, with_static: bool) -> Model:
    visits, h = sequence_branch(steps, channels)
    if not with_static:
        return Model(inputs=visits, outputs=Dense(1, activation="sigmoid")(h))
    static = Input(shape=(3,), name="static")
    s = Dense(8, activation="relu")(static)
    out = Dense(1, activation="sigmoid")(Concatenate()([h, s]))
    return Model(inputs=[visits, static], outputs=out)


def run(seed: int, epochs: int) -> dict[str, float]:
    (xt, st, yt), (xv, sv, yv), (xs, ss, ys) = prepare()
    out = {}
    for name, with_static in (("sequence alone", False), ("sequence + static", True)):
        set_random_seed(seed)
        model = build(xt.shape[1], xt.shape[2], with_static)
        model.compile(optimizer="adam", loss="binary_crossentropy")
        inputs = (lambda x, s: [x, s]) if with_static else (lambda x, s: x)
        stop = EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
        model.fit(inputs(xt, st), yt, epochs=epochs, batch_size=16, validation_data=(inputs(xv, sv), yv),
                  callbacks=[stop], verbose=0)  # fmt: skip
        out[name] = float(roc_auc_score(ys[:, 0], model.predict(inputs(xs, ss))[:, 0]))
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=60)
    args = p.parse_args(argv)
    results = {s: run(s, args.epochs) for s in args.seeds}
    names = list(next(iter(results.values())))
    print("test auROC (78 patients), death by the end of follow-up")
    print(f"{'model':<20}" + "".join(f"{'seed ' + str(s):>9}" for s in args.seeds) + f"{'mean':>9}")
    for n in names:
        vals = [results[s][n] for s in args.seeds]
        print(f"{n:<20}" + "".join(f"{v:>9.3f}" for v in vals) + f"{np.mean(vals):>9.3f}")
    return results


if __name__ == "__main__":
    main()
