"""The forecast task: one wide table of series, the first (``data.target``) forecast.

MASE is the test MAE divided by the in-sample seasonal-naive MAE (lag ``data.season``) of every
value before the test block, the training and validation parts together (saved as
``mase_scale`` in state.json), so the scale does not change with ``data.val``. The ``panel``
task (:mod:`.panel`) reads long tables of many series with the same definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...config import Config
from ...errors import InputError
from .base import AT_LEAST_1, SEED, FileTask, Prepared, check_data_keys, write_tsv


# ---------------------------------------------------------------------------------- forecasting
@dataclass
class SeriesData(Config):
    """data: section of a forecasting config (a wide time-series table in)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV/Parquet with a time column and value columns
    time_col: str = "time"
    value_cols: list | None = None  # input series (None: every other column)
    target: str | None = None  # the series to forecast (None: the first value column)
    lookback: int = 24  # steps the model sees
    horizon: int = 1  # steps forecast at once
    stride: int = 1  # steps between training windows
    test: float = 0.1  # last steps held out (a fraction, or a count when >= 1)
    val: float = 0.1  # steps before the test part used for validation
    season: int = 1  # season length for the seasonal-naive baseline and MASE scaling
    seed: int = 0

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected a time-series table, got none")
        steps = (lambda v: v >= 0, "a fraction in [0, 1) or a count of steps (>= 1)")
        check_data_keys(self, {
            "lookback": AT_LEAST_1, "horizon": AT_LEAST_1, "stride": AT_LEAST_1, "season": AT_LEAST_1,
            "test": steps, "val": steps, "seed": SEED,
        })  # fmt: skip


def _steps(v, n: int) -> int:
    return int(v) if v >= 1 else round(v * n)


class ForecastTask(FileTask):
    name = "forecast"
    data_class = SeriesData
    model_from_data = ("input_size", "targets", "horizon")  # set from the data

    def model_config_class(self) -> type:
        from ...models import ForecasterConfig

        return ForecasterConfig

    def loss(self, state: dict) -> str:
        return "model"

    def build_model(self, model_cfg):
        from ...models import Forecaster

        return Forecaster(model_cfg)

    def _read(self, d: SeriesData, path: str):
        from ...data.timeseries import read_series

        s = read_series(path, d.time_col, d.value_cols)
        target = d.target or s.columns[0]
        if target not in s.columns:
            raise InputError(f"data.target: expected one of {s.columns}, got {target!r}")
        order = [target] + [c for c in s.columns if c != target]  # the target first
        values = s.values[:, [s.columns.index(c) for c in order]]
        if not np.isfinite(values).all():
            r, c = (int(v) for v in np.argwhere(~np.isfinite(values))[0])
            t = s.time[r].item() if hasattr(s.time[r], "item") else s.time[r]
            raise InputError(
                f"{path}: column {order[c]!r}: missing value at time {t}; expected a value at every time step "
                "(fill or interpolate the gap)"
            )
        return s.time, values, order

    def prepare(self, d: SeriesData, log) -> Prepared:
        from ...data.timeseries import make_windows, mase_scale
        from ..preprocess import Standardizer

        log("reading the series")
        time, values, cols = self._read(d, d.file)
        n = len(values)
        n_test, n_val = _steps(d.test, n), _steps(d.val, n)
        if n_test < 1 or n - n_test - n_val <= d.lookback + d.horizon:
            raise InputError(
                f"data.test/val/lookback: a {n}-step series leaves no training windows with test={n_test}, "
                f"val={n_val}, lookback={d.lookback}, horizon={d.horizon}"
            )
        a, b = n - n_test - n_val, n - n_test
        scaler = Standardizer().fit(values[:a])
        z = scaler.transform(values)

        def windows(lo, hi, stride):
            X, Y = make_windows(z[lo:hi], d.lookback, d.horizon, stride, context=z[:lo] if lo else None)
            return torch.from_numpy(X), torch.from_numpy(Y[:, :, :1])

        train = windows(0, a, d.stride)
        val = windows(a, b, 1) if n_val >= d.horizon else None
        test = windows(b, n, 1)
        state = {
            "columns": cols,
            "mean": scaler.mean_.tolist(),
            "std": scaler.scale_.tolist(),
            "train_values": values[:a, 0].tolist(),
            # MASE's scale: the seasonal-naive MAE of every value before the test block (training
            # and validation parts), so it does not change with data.val
            "mase_scale": mase_scale(values[:b, 0], d.season),
            "season": d.season,
            "time": [t.item() if hasattr(t, "item") else t for t in time[b:]],
        }
        return Prepared(
            train=train,
            val=val,
            test=test,
            test_ids=state["time"][: len(test[0])],
            model_overrides={"input_size": values.shape[1], "targets": 1, "horizon": d.horizon},
            state=state,
            baselines=self._baselines(d, state, test[0]),
            split=self._split_record(d, time, a, b),
        )

    @staticmethod
    def _split_record(d: SeriesData, time, a: int, b: int) -> dict:
        """The time split as JSON: each part's first and last target time. Windows are cut after
        the split, so a validation or test window may read earlier values as its inputs, but no
        target time is in two parts."""
        t = [v.item() if hasattr(v, "item") else v for v in time]
        spans = {"train": (d.lookback, a), "val": (a, b), "test": (b, len(t))}
        return {"by": "time", **{k: {"target_times": [t[lo], t[hi - 1]] if hi > lo else []}
                                 for k, (lo, hi) in spans.items()}}  # fmt: skip

    def _baselines(self, d: SeriesData, state: dict, x: torch.Tensor) -> dict:
        from ...data.timeseries import naive_forecast, seasonal_naive_forecast

        raw_x = self._unscale(state, x.numpy()[..., :1])
        base = {"naive": naive_forecast(raw_x, d.horizon)}
        if d.season > 1 and d.lookback >= d.season:
            base[f"seasonal_naive_{d.season}"] = seasonal_naive_forecast(raw_x, d.horizon, d.season)
        return base

    def prepare_new(self, d: SeriesData, state: dict, path: str) -> Prepared:
        """Every window of a new series (scaled as in training) as a test set."""
        from ...data.timeseries import make_windows

        time, z = self.read_new(d, state, path)
        X, Y = make_windows(z, d.lookback, d.horizon, 1)
        test = (torch.from_numpy(X), torch.from_numpy(Y[:, :, :1]))
        st = {**state, "time": [t.item() if hasattr(t, "item") else t for t in time[d.lookback :]]}
        return Prepared(None, None, test, st["time"][: len(X)], {}, st, self._baselines(d, st, test[0]))

    def _unscale(self, state: dict, v: np.ndarray) -> np.ndarray:
        return (v * state["std"][0] + state["mean"][0]).astype(np.float64)

    def report(self, prep: Prepared, out: torch.Tensor, model=None) -> tuple[dict, dict]:
        from ...data.timeseries import forecast_metrics

        st, d_season = prep.state, prep.state["season"]
        point = model.point(out) if model is not None else out
        pred = self._unscale(st, point.numpy()[..., 0])  # (W, horizon)
        y = self._unscale(st, prep.test[1].numpy()[..., 0])
        # a run from before mase_scale was saved: its training values (the scale it reported then)
        scale = st.get("mase_scale")
        train = np.array(st["train_values"])
        metrics = {"model": forecast_metrics(y, pred, train, d_season, scale=scale)}
        for name, p in prep.baselines.items():
            metrics[name] = forecast_metrics(y, p[..., 0], train, d_season, scale=scale)
        for h in sorted({0, pred.shape[1] - 1}):  # 1-step and last-step errors
            metrics["model"][f"mae_step{h + 1}"] = float(np.mean(np.abs(pred[:, h] - y[:, h])))
        hz = pred.shape[1]
        # each window's last-step forecast against the truth at that time
        curve = {"time": np.array(st["time"][hz - 1 : hz - 1 + len(y)]), "truth": y[:, -1], "model": pred[:, -1],
                 "ylabel": f"{st['columns'][0]} (data units)",
                 "title": f"{hz}-step-ahead forecast against truth (test)"}  # fmt: skip
        for name, p in prep.baselines.items():
            curve[name] = p[:, -1, 0]
        if model is not None and model.config.output != "point":
            lo, hi = self._interval(model, out)
            curve["lower"], curve["upper"] = self._unscale(st, lo[:, -1]), self._unscale(st, hi[:, -1])
        return metrics, {"forecast": curve}

    def test_metrics(self, prep: Prepared, out: torch.Tensor, model=None) -> dict:
        return self.report(prep, out, model)[0]

    def finish(self, prep: Prepared, out: torch.Tensor, model, run_dir: Path, history: dict) -> tuple[dict, dict]:
        """Metrics, forecast and loss plots and test_predictions.tsv of a trained run."""
        from .. import evaluation as ev

        metrics, extra = self.report(prep, out, model)
        plots = ev.save_plots(run_dir, history or {}, forecast=extra["forecast"])
        fc = self._unscale(prep.state, model.point(out).numpy()[..., 0])
        header = ["target_time", *[f"step{h + 1}" for h in range(fc.shape[1])]]
        write_tsv(run_dir / "test_predictions.tsv", header,
                  [[t, *(f"{v:.6g}" for v in r)] for t, r in zip(prep.test_ids, fc)])  # fmt: skip
        return metrics, {"files": [*plots, "test_predictions.tsv"]}

    def evaluate_new(self, d: SeriesData, state: dict, path: str, model, predict, **labels) -> dict:
        """Metrics of every window of a new series, with the naive baselines on the same windows."""
        prep = self.prepare_new(d, state, path)
        return self.report(prep, predict(prep.test[0]), model)[0]

    def predict_new(self, d: SeriesData, state: dict, path: str, model, predict) -> tuple[list, list]:
        """The next horizon steps after the end of a new series (with the interval, if any)."""
        times, z = self.read_new(d, state, path)
        out = predict(torch.from_numpy(z[-d.lookback :][None]))
        fc = self._unscale(state, model.point(out).numpy()[0, :, 0])
        header, rows = ["step", "after_time", "forecast"], [[h + 1, times[-1], f"{v:.6g}"] for h, v in enumerate(fc)]
        if model.config.output != "point":
            lo, hi = self._interval(model, out)
            lo, hi = (self._unscale(state, np.asarray(v)[0]) for v in (lo, hi))
            header += ["lower", "upper"]
            rows = [[*r, f"{a:.6g}", f"{b:.6g}"] for r, a, b in zip(rows, lo, hi)]
        return header, rows

    def _interval(self, model, out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        cfg = model.config
        if cfg.output == "gaussian":
            m, s = out[..., 0, 0].numpy(), out[..., 0, 1].numpy()
            return m - 1.2816 * s, m + 1.2816 * s  # 80% interval
        q = out[..., 0, :].numpy()
        return q[..., 0], q[..., -1]

    def read_new(self, d: SeriesData, state: dict, path: str):
        """The last lookback window of a new series (in the trained columns) and its end time."""
        time, values, cols = self._read(d, path)
        if cols != state["columns"]:
            raise InputError(f"{path}: expected columns {state['columns']}, got {cols}")
        if len(values) < d.lookback:
            raise InputError(f"{path}: expected at least lookback={d.lookback} steps, got {len(values)}")
        z = ((values - np.array(state["mean"])) / np.array(state["std"])).astype(np.float32)
        return time, z

