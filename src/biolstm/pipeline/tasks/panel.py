"""Panel forecasting: one global LSTM forecaster over many series of a long table.

A long table has one row per (series id, time): the target, dynamic covariates (known per time,
missing values allowed) and static covariates (one value per series; text columns one-hot).
One model is trained on windows from every series, as darts and neuralforecast train their
global models; a table without an id column (or with one id) is a single series.

How a run is built, so that no value of a test block is used to fit anything:

- **Split in time, per series.** The last ``test`` time points of every series are its test
  block, the ``val`` points before them its validation block, the rest its training part.
  A series with too few points for a test block and two values before it is not scored; its
  values train the model (``metrics.json`` lists it).
- **Fitted preprocessors** (:mod:`biolstm.pipeline.preprocess`, saved in ``state.json``): the
  target transform (:class:`~biolstm.pipeline.preprocess.TargetTransform`: none, log, log1p,
  Box-Cox with lambda fitted by maximum likelihood), per-series or global scaling
  (:class:`~biolstm.pipeline.preprocess.SeriesScaler`), the covariates' standardisation
  (:class:`~biolstm.pipeline.preprocess.Standardizer`) are fitted on the training parts only;
  static covariates (:class:`~biolstm.pipeline.preprocess.StaticEncoder`) do not change in
  time. Forecasts are taken back through the scaler and the transform, and clipped at 0 with
  ``nonnegative``.
- **Windows.** A window ends at a forecast origin ``o`` (the last time read) and forecasts the
  ``horizon`` steps after it. Each step's inputs: the target (scaled, the last observation
  carried forward over missing values, and with ``relative`` as its change from the value at
  the origin), whether it was observed (0 for missing values and for the padding of a history
  shorter than ``lookback``), each covariate (carried forward, scaled) and whether it was
  observed, and the time since the previous row (in the table's median step, for irregular
  series). The network forecasts the target's change from the origin; the model
  (:class:`~biolstm.models.forecaster.ForecasterEnsemble`, ``model.window_scale``) divides it by
  the window's own spread and multiplies the output back, so slow and fast series, early and
  late parts of a growth curve, look alike to it. Training windows have their origin in the
  training part and their targets up to its end: a target past the end (or missing) is
  masked out of the loss, never read. Validation windows do the same inside the validation
  block; test windows have their origin at the end of the training (or validation) part or
  later and every target inside the test block (``test - horizon + 1`` origins per series).
  Dynamic covariates are read up to the origin only (past covariates).
- **Baselines on the same test targets**: naive (the last observed value), seasonal naive
  (``season`` > 1), and per series AutoARIMA and AutoETS from statsforecast (``season_length``
  = ``season``), fitted on each series' training part (missing values linearly interpolated:
  statsforecast takes none) and applied at each origin to the history up to it without
  re-estimation (``forward``), as the network is; a series where a fit fails gets the naive
  forecast, and metrics.json names it.

**MASE** (fixed, and written into metrics.json): for each series, the mean absolute error of
the forecasts over its test targets divided by the in-sample seasonal-naive mean absolute error
(lag ``season``; 1: naive) of **every value before its test block**, the training and the
validation parts together, so that the scale does not change when a validation block is used;
pairs with a missing value are left out. MAE, RMSE and sMAPE (%) are computed per series in
the target's units; each metric in metrics.json is the mean over the scored series.

:func:`backtest` evaluates a trained run at several successive forecast origins before the end
of each series (rolling origin), with the same baselines beside the model.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...config import Config
from ...data.timeseries import mase_scale
from ...errors import InputError
from ...models.forecaster import ForecasterEnsembleConfig
from ...validation import check_choice
from ..preprocess import SCALES, TRANSFORMS, SeriesScaler, Standardizer, StaticEncoder, TargetTransform
from .base import AT_LEAST_1, SEED, FileTask, Prepared, check_data_keys, write_tsv

BASELINES = ("naive", "seasonal_naive", "auto_arima", "auto_ets")
MASE_SCALE = (
    "per series: the in-sample seasonal-naive mean absolute error (lag = data.season; 1: naive) of every value "
    "before the series' test block (training and validation parts; pairs with a missing value left out); each "
    "metric is the mean over the scored series"
)


def _plain(v):
    return v.item() if hasattr(v, "item") else v


@dataclass
class PanelData(Config):
    """data: section of a panel-forecasting config (a long table: one row per series id and time)."""

    _what = "data config"

    file: str | None = None  # CSV/TSV/Parquet, one row per (series id, time)
    id_col: str | None = None  # the series id column (None: the whole table is one series)
    time_col: str = "time"  # the time column (numbers or dates; irregular steps allowed)
    target: str = "value"  # the column to forecast (missing values: masked in the inputs, not scored)
    covariates: list = field(default_factory=list)  # dynamic covariates (missing allowed; read up to each origin)
    static: list = field(default_factory=list)  # per-series covariates joined before the head (text columns one-hot)
    categorical: list = field(default_factory=list)  # static columns read as categories although numeric (a diet 1-4)
    lookback: int = 12  # steps the model reads up to each forecast origin (a shorter history is padded and masked)
    horizon: int = 3  # steps forecast from each origin
    season: int = 1  # season length: seasonal-naive baseline, MASE scale, AutoARIMA/AutoETS season_length (1: none)
    test: int = 3  # the last N time points of every series form the test block
    val: int = 0  # the N time points before each test block validate (0: none; at least horizon otherwise)
    transform: str = "none"  # none | log | log1p | boxcox (lambda fitted on training values), undone on output
    scale: str = "per_series"  # per_series | global | none: target standardisation fitted on training values
    nonnegative: bool = False  # clip every forecast (the model's and the baselines') at 0
    relative: bool = True  # the target read and forecast as changes from its value at the origin (else: levels)
    ensemble: int = 5  # networks trained side by side from different initial weights; the forecast is their mean
    baselines: list = field(default_factory=lambda: list(BASELINES))  # naive, seasonal_naive, auto_arima, auto_ets
    seed: int = 0  # nothing in a split in time is random; train.seed seeds the networks

    def __post_init__(self) -> None:
        if self.file is None:
            raise InputError("data.file: expected a long table (one row per series id and time), got none")
        for key in ("covariates", "static", "categorical", "baselines"):
            v = getattr(self, key)
            if not isinstance(v, list) or not all(isinstance(c, str) for c in v):
                raise InputError(f"data.{key}: expected a list of names, got {v!r:.60}")
        check_data_keys(self, {
            "lookback": AT_LEAST_1, "horizon": AT_LEAST_1, "season": AT_LEAST_1, "test": AT_LEAST_1,
            "val": (lambda v: v >= 0, "an int >= 0"), "ensemble": AT_LEAST_1, "seed": SEED,
        })  # fmt: skip
        check_choice(self.transform, TRANSFORMS, "data.transform")
        check_choice(self.scale, SCALES, "data.scale")
        for b in self.baselines:
            check_choice(b, BASELINES, "data.baselines")
        if self.horizon > self.test:
            raise InputError(f"data.horizon: expected at most data.test ({self.test}), got {self.horizon}")
        if 0 < self.val < self.horizon:
            raise InputError(f"data.val: expected 0 or at least data.horizon ({self.horizon}), got {self.val}")
        unknown = [c for c in self.categorical if c not in self.static]
        if unknown:
            raise InputError(f"data.categorical: {unknown[0]!r} is not in data.static {self.static}")


@dataclass
class PanelModelConfig(ForecasterEnsembleConfig):
    """model: section of a panel forecaster (a ForecasterEnsemble of LSTMs over the windows)."""

    hidden_size: int = 32  # recurrent units
    dropout: float = 0.1  # between stacked layers and before the head
    anchor: str = "none"  # none | last | seasonal: the network learns the correction to this forecast
    point_loss: str = "mae"  # mse | mae | huber: the training loss of output='point'
    window_scale: str = "diff"  # none | std | diff: the target over its spread in the window (output multiplied back)


# --------------------------------------------------------------------------------- the data
@dataclass
class _Blocks:
    """Where each series' parts begin: training [0, a), validation [a, b), test [b, n)."""

    a: np.ndarray
    b: np.ndarray
    n: np.ndarray
    scored: np.ndarray  # bool: the series has a test block


def _blocks(panel, test: int, val: int) -> _Blocks:
    n = np.array([len(y) for y in panel.y])
    b, a = n - test, n - test - val
    seen_before = np.array([np.isfinite(y[: max(k, 0)]).sum() for y, k in zip(panel.y, a)])
    scored = (a >= 2) & (seen_before >= 2)
    a, b = np.where(scored, a, n), np.where(scored, b, n)
    return _Blocks(a, b, n, scored)


def _locf(v: np.ndarray) -> np.ndarray:
    """Missing values (NaN) replaced by the last observation before them (leading ones stay NaN)."""
    v = np.array(v, dtype=np.float64)
    flat = v.reshape(len(v), -1)
    idx = np.where(np.isfinite(flat), np.arange(len(v))[:, None], -1)
    idx = np.maximum.accumulate(idx, axis=0)
    out = np.where(idx >= 0, flat[np.maximum(idx, 0), np.arange(flat.shape[1])], np.nan)
    return out.reshape(v.shape)


def _numeric_times(t: np.ndarray) -> np.ndarray | None:
    t = np.asarray(t)
    if np.issubdtype(t.dtype, np.number):
        return t.astype(np.float64)
    import pandas as pd

    d = pd.to_datetime(pd.Series(t), errors="coerce")
    return None if d.isna().any() else (d - d.iloc[0]).dt.total_seconds().to_numpy() / 86400.0


def _median_step(times: list) -> float:
    steps = [np.diff(t) for t in (_numeric_times(x) for x in times) if t is not None and len(t) > 1]
    steps = np.concatenate(steps) if steps else np.array([])
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else 1.0


def _fill(v: np.ndarray) -> np.ndarray:
    """A history for statsforecast (which takes no missing values): from the first observed
    value, interior gaps linearly interpolated between the values around them, a gap at the end
    carried forward; nothing after the history's end is read."""
    v = np.asarray(v, dtype=np.float64)
    seen = np.flatnonzero(np.isfinite(v))
    if seen.size == 0:
        return v[:0]
    v = v[seen[0] :]
    k = np.flatnonzero(np.isfinite(v))
    return np.interp(np.arange(len(v)), k, v[k])


class _Fitted:
    """Everything fitted on the training parts (and JSON in state.json)."""

    def __init__(self, state: dict) -> None:
        self.state = state
        self.transform = TargetTransform.from_json(state["transform"])
        self.scaler = SeriesScaler.from_json(state["scaler"])
        self.cov = Standardizer.from_json(state["cov_scaler"]) if state.get("cov_scaler") else None
        self.static = StaticEncoder.from_json(state["static"]) if state.get("static") else None
        self.step = float(state["time_step"])


def _fit(d: PanelData, panel, blocks: _Blocks, where: str) -> dict:
    """The preprocessing state, fitted on the training parts only."""
    train_y = [y[:a] for y, a in zip(panel.y, blocks.a)]
    flat = np.concatenate(train_y)
    try:
        tr = TargetTransform(d.transform).fit(flat)
    except ValueError as err:
        raise InputError(f"{where}: column {d.target!r}: data.{err}") from None
    ids = np.concatenate([[i] * len(y) for i, y in zip(panel.ids, train_y)]).astype(object)
    scaler = SeriesScaler(d.scale).fit(tr.transform(flat), ids)
    state = {
        "ids": list(panel.ids),
        "transform": tr.to_json(),
        "scaler": scaler.to_json(),
        "time_step": _median_step([t[:a] for t, a in zip(panel.times, blocks.a)]),
        "season": d.season,
        "horizon": d.horizon,
        "lookback": d.lookback,
        "nonnegative": d.nonnegative,
    }
    if panel.covariates:
        rows = np.concatenate([c[:a] for c, a in zip(panel.cov, blocks.a)])
        unseen = [c for k, c in enumerate(panel.covariates) if not np.isfinite(rows[:, k]).any()]
        if unseen:
            raise InputError(f"{where}: column {unseen[0]!r}: expected an observed value in the training parts, "
                             "got none")  # fmt: skip
        state["cov_scaler"] = Standardizer().fit(rows).to_json()
    if panel.static_cols:
        state["static"] = StaticEncoder(d.categorical).fit(panel.static, panel.static_cols).to_json()
    return state


def _features(panel, k: int, fitted: _Fitted, scaler: SeriesScaler, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Series ``k``'s inputs per time ``(T, channels)`` and its scaled target ``(T,)`` (NaN where missing)."""
    y = panel.y[k]
    try:
        z = scaler.transform(fitted.transform.transform(y), [panel.ids[k]] * len(y))
    except ValueError as err:
        raise InputError(f"{where}: series {panel.ids[k]!r}: data.{err}") from None
    obs = np.isfinite(z)
    zf = np.nan_to_num(_locf(z))
    cols = [zf[:, None], obs[:, None].astype(np.float64)]
    if panel.covariates:
        c = fitted.cov.transform(panel.cov[k]).astype(np.float64)
        cols += [np.nan_to_num(_locf(c)), np.isfinite(panel.cov[k]).astype(np.float64)]
    t = _numeric_times(panel.times[k])
    gap = np.ones(len(y)) if t is None else np.diff(t, prepend=t[0]) / fitted.step
    gap[0] = 0.0
    cols.append(gap[:, None])
    return np.concatenate(cols, 1).astype(np.float32), z


def _channels(covariates: list) -> int:
    return 3 + 2 * len(covariates)


class _Windows:
    """Windows of a panel at chosen origins: inputs, scaled targets, and per window its series,
    origin and target times and the raw truth."""

    def __init__(self, panel, fitted: _Fitted, scaler: SeriesScaler, lookback: int, horizon: int, where: str,
                 relative: bool = True):  # fmt: skip
        self.panel, self.fitted, self.L, self.H, self.relative = panel, fitted, lookback, horizon, relative
        self.feats = [_features(panel, k, fitted, scaler, where) for k in range(len(panel.ids))]
        self.static = fitted.static.transform(panel.static) if fitted.static is not None else None

    def origins(self, k: int, lo: int, hi: int, end: int) -> list[int]:
        """Origins o in [lo, hi] of series k with an observation at or before o and at least one
        observed target before index ``end`` (targets from ``end`` on are never read)."""
        z = self.feats[k][1][:end]
        first = int(np.argmax(np.isfinite(z))) if np.isfinite(z).any() else len(z)
        return [o for o in range(max(lo, first), hi + 1) if np.isfinite(z[o + 1 : o + 1 + self.H]).any()]

    def inputs(self, pairs: list[tuple[int, int]]) -> dict:
        L, C = self.L, self.feats[0][0].shape[1] if self.feats else 0
        X = np.zeros((len(pairs), L, C), dtype=np.float32)
        for w, (k, o) in enumerate(pairs):
            f = self.feats[k][0]
            lo = max(0, o - L + 1)
            X[w, L - (o + 1 - lo) :] = f[lo : o + 1]  # padded at the start: zeros, observed = 0
            if self.relative:  # the target as its change from the origin; the padding stays 0
                X[w, L - (o + 1 - lo) :, 0] -= f[o, 0]
        out = {"x": torch.from_numpy(X)}
        if self.static is not None:
            out["static"] = torch.from_numpy(self.static[[k for k, _ in pairs]])
        return out

    def level(self, k: int, o: int) -> float:
        """What the network's output is relative to: the scaled target at the origin (the last
        observation carried forward) with ``relative``, else 0."""
        return float(self.feats[k][0][o, 0]) if self.relative else 0.0

    def targets(self, pairs: list[tuple[int, int]], ends: np.ndarray | None = None) -> torch.Tensor:
        """Scaled targets (relative to :meth:`level`) and whether each is observed, ``(W, H, 1, 2)``:
        a target at or after ``ends[series]`` (the end of the window's part) counts as
        unobserved, with value 0, so no value of a later part is read."""
        Y = np.zeros((len(pairs), self.H, 1, 2), dtype=np.float32)
        for w, (k, o) in enumerate(pairs):
            end = len(self.feats[k][1]) if ends is None else int(ends[k])
            z = self.feats[k][1][o + 1 : min(o + 1 + self.H, end)]
            seen = np.isfinite(z)
            Y[w, : len(z), 0, 0] = np.where(seen, z - self.level(k, o), 0.0)
            Y[w, : len(z), 0, 1] = seen
        return torch.from_numpy(Y)

    def records(self, pairs: list[tuple[int, int]]) -> list[dict]:
        p = self.panel
        return [{"series": k, "id": p.ids[k], "origin": _plain(p.times[k][o]), "level": self.level(k, o),
                 "targets": [_plain(t) for t in p.times[k][o + 1 : o + 1 + self.H]],
                 "truth": p.y[k][o + 1 : o + 1 + self.H].tolist()} for k, o in pairs]  # fmt: skip


# ---------------------------------------------------------------------------- the baselines
def _stat_model(name: str, season: int):
    from statsforecast.models import AutoARIMA, AutoETS

    return AutoARIMA(season_length=season) if name == "auto_arima" else AutoETS(season_length=season)


def baseline_forecasts(panel, pairs: list[tuple[int, int]], fit_end: dict, names: list, season: int,
                       horizon: int) -> tuple[dict, dict]:  # fmt: skip
    """Forecasts ``(W, horizon)`` of each baseline at the windows ``pairs`` (series, origin), in
    the target's units, and {baseline: [series ids where its fit failed (naive used)]}.

    Naive: the last observed value at or before the origin; seasonal naive: the value one season
    before each target (carried forward over missing values). AutoARIMA and AutoETS are fitted
    once per series on its values before ``fit_end[series]`` and applied at each origin to the
    history up to it (statsforecast's ``forward``: no re-estimation)."""
    out, failed = {}, {}
    raw = [_locf(y) for y in panel.y]
    naive = np.array([np.repeat(raw[k][o], horizon) for k, o in pairs]).reshape(len(pairs), horizon)
    if "naive" in names:
        out["naive"] = naive
    if "seasonal_naive" in names and season > 1:
        h = np.arange(1, horizon + 1)
        back = h - season * np.ceil(h / season).astype(int)  # y[o + h - season * ceil(h / season)]
        out[f"seasonal_naive_{season}"] = np.array(
            [[raw[k][o + b] if o + b >= 0 else np.nan for b in back] for k, o in pairs]
        ).reshape(len(pairs), horizon)
    for name in (n for n in ("auto_arima", "auto_ets") if n in names):
        fc = naive.copy()
        fits: dict = {}
        failed[name] = []
        for w, (k, o) in enumerate(pairs):
            if k not in fits:
                fits[k] = None
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fits[k] = _stat_model(name, season).fit(_fill(panel.y[k][: fit_end[k]]))
                except Exception:  # statsforecast raises many kinds on short or flat series
                    failed[name].append(panel.ids[k])
            if fits[k] is None:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f = np.asarray(fits[k].forward(y=_fill(panel.y[k][: o + 1]), h=horizon)["mean"], dtype=np.float64)
                if np.isfinite(f).all():
                    fc[w] = f
            except Exception:
                if panel.ids[k] not in failed[name]:
                    failed[name].append(panel.ids[k])
        out[name] = fc
    return out, {k: v for k, v in failed.items() if v}


# ------------------------------------------------------------------------------- the metrics
def panel_metrics(records: list[dict], forecasts: dict, scales: dict) -> dict:
    """{name: mae, rmse, smape, mase}: each per series over its observed test targets, then the
    mean over series (MASE over the series with a positive scale). ``forecasts``: {name: (W, H)}
    aligned with ``records``; ``scales``: {series id: MASE scale}."""
    from ...data.timeseries import forecast_metrics

    by: dict = {}
    for w, r in enumerate(records):
        by.setdefault(r["id"], []).append(w)
    out = {}
    for name, fc in forecasts.items():
        rows = []
        for sid, ws in by.items():
            y = np.array([records[w]["truth"] for w in ws], dtype=np.float64)
            p = np.asarray(fc, dtype=np.float64)[ws]
            ok = np.isfinite(y) & np.isfinite(p)
            if not ok.any():
                continue
            rows.append(forecast_metrics(y[ok], p[ok], None, scale=scales.get(sid, math.nan)))
        keys = ("mase", "smape", "mae", "rmse")
        out[name] = {k: float(np.nanmean([r[k] for r in rows])) if rows and any(np.isfinite(r[k]) for r in rows)
                     else math.nan for k in keys}  # fmt: skip
    return out


# ----------------------------------------------------------------------------------- the task
class PanelTask(FileTask):
    """Panel forecasting (see the module docstring)."""

    name = "panel"
    data_class = PanelData
    model_from_data = ("input_size", "targets", "horizon", "static_size", "members", "season")  # set from the data

    def model_config_class(self) -> type:
        return PanelModelConfig

    def loss(self, state: dict) -> str:
        return "model"

    def build_model(self, model_cfg):
        from ...models.forecaster import ForecasterEnsemble

        return ForecasterEnsemble(model_cfg)

    def read(self, d: PanelData, path: str):
        from ...data.panel import read_panel

        return read_panel(path, d.id_col, d.time_col, d.target, d.covariates, d.static)

    def prepare(self, d: PanelData, log) -> Prepared:
        log("reading the table")
        panel = self.read(d, d.file)
        blocks = _blocks(panel, d.test, d.val)
        if not blocks.scored.any():
            raise InputError(f"{d.file}: no series has data.test={d.test} + data.val={d.val} points and two observed "
                             "values before them; expected at least one")  # fmt: skip
        state = _fit(d, panel, blocks, d.file)
        state["mase_scale"] = [mase_scale(y[:b], d.season) if s else None
                               for y, b, s in zip(panel.y, blocks.b, blocks.scored)]  # fmt: skip
        state["mase_definition"] = MASE_SCALE
        fitted = _Fitted(state)
        win = _Windows(panel, fitted, fitted.scaler, d.lookback, d.horizon, d.file, d.relative)
        H = d.horizon
        parts: dict = {"train": [], "val": [], "test": []}
        for k in range(len(panel.ids)):
            a, b, n = int(blocks.a[k]), int(blocks.b[k]), int(blocks.n[k])
            parts["train"] += [(k, o) for o in win.origins(k, 0, a - 2, a)]
            if b > a:
                parts["val"] += [(k, o) for o in win.origins(k, a - 1, b - 2, b)]
            if blocks.scored[k]:
                parts["test"] += [(k, o) for o in win.origins(k, b - 1, n - H - 1, n)]
        if not parts["train"]:
            raise InputError(f"{d.file}: no training window: expected a series with more than data.horizon "
                             f"({H}) values before its validation and test blocks")  # fmt: skip
        log(f"fitting baselines on {int(blocks.scored.sum())} series (training parts only)")
        records = win.records(parts["test"])
        baselines, failed = baseline_forecasts(panel, parts["test"], dict(enumerate(blocks.a)), d.baselines,
                                               d.season, H)  # fmt: skip
        if d.nonnegative:
            baselines = {k: np.maximum(v, 0.0) for k, v in baselines.items()}
        state["baseline_fallbacks"] = failed
        static_size = fitted.static.width if fitted.static is not None else 0
        return Prepared(
            train=(win.inputs(parts["train"]), win.targets(parts["train"], blocks.a)),
            val=(win.inputs(parts["val"]), win.targets(parts["val"], blocks.b)) if parts["val"] else None,
            test=(win.inputs(parts["test"]), win.targets(parts["test"])),
            test_ids=records,
            model_overrides={
                "input_size": _channels(panel.covariates), "targets": 1, "horizon": H,
                "static_size": static_size, "members": d.ensemble, "season": d.season,
            },
            state=state,
            baselines=baselines,
            split=self._split_record(panel, parts, H, {"train": blocks.a, "val": blocks.b, "test": blocks.n}),
        )

    @staticmethod
    def _split_record(panel, parts: dict, H: int, ends: dict) -> dict:
        """The time split as JSON: per part and series, the first and last target time read
        (targets at or after a part's end are masked). Windows read earlier values as inputs,
        but no target time is in two parts."""
        rec: dict = {"by": "time"}
        for name, pairs in parts.items():
            span: dict = {}
            for k, o in pairs:
                t = panel.times[k]
                first, last = _plain(t[o + 1]), _plain(t[min(o + H, int(ends[name][k]) - 1)])
                key = str(panel.ids[k])
                span[key] = [span[key][0], last] if key in span else [first, last]
            rec[name] = {"target_times": span}
        return rec

    # ------------------------------------------------------------------------- outputs
    def forecasts(self, state: dict, records: list[dict], out: torch.Tensor, model, nonnegative: bool) -> np.ndarray:
        """The model's point forecasts ``(W, H)`` in the target's units."""
        fitted = _Fitted(state)
        point = (model.point(out) if model is not None else out).detach().cpu().numpy()[..., 0].astype(np.float64)
        point = point + np.array([r.get("level", 0.0) for r in records])[:, None]  # (W, H): back to scaled levels
        scaler = SeriesScaler.from_json(state.get("scaler_new", state["scaler"]))
        fc = fitted.transform.inverse_transform(scaler.inverse_transform(point, [r["id"] for r in records]))
        return np.maximum(fc, 0.0) if nonnegative else fc

    def _scales(self, state: dict) -> dict:
        return {i: s for i, s in zip(state["ids"], state["mase_scale"]) if s is not None}

    def test_metrics(self, prep: Prepared, out: torch.Tensor, model=None) -> dict:
        st = prep.state
        fc = self.forecasts(st, prep.test_ids, out, model, st.get("nonnegative", False))
        return panel_metrics(prep.test_ids, {"model": fc, **prep.baselines}, self._scales(st))

    def finish(self, prep: Prepared, out: torch.Tensor, model, run_dir: Path, history: dict) -> tuple[dict, dict]:
        """Metrics (mean over series), loss and forecast plots, and test_predictions.tsv: one
        row per series, origin and step with the target time, the truth and every forecast."""
        from .. import evaluation as ev

        st, rec = prep.state, prep.test_ids
        fc = self.forecasts(st, rec, out, model, st.get("nonnegative", False))
        metrics = panel_metrics(rec, {"model": fc, **prep.baselines}, self._scales(st))
        names = list(prep.baselines)
        rows = []
        for w, r in enumerate(rec):
            for h, t in enumerate(r["targets"]):
                rows.append([r["id"], r["origin"], t, h + 1, f"{fc[w, h]:.6g}", _fmt(r["truth"][h]),
                             *(_fmt(prep.baselines[n][w, h]) for n in names)])  # fmt: skip
        write_tsv(run_dir / "test_predictions.tsv",
                  ["series", "origin_time", "target_time", "step", "forecast", "truth", *names], rows)  # fmt: skip
        first = [w for w, r in enumerate(rec) if r["series"] == rec[0]["series"]] if rec else []
        curve = None
        if first:  # the first scored series: each target time's forecast from the earliest origin before it
            seen: dict = {}
            for w in first:
                for h, t in enumerate(rec[w]["targets"]):
                    seen.setdefault(t, (w, h))
            times = sorted(seen, key=lambda t: (seen[t][0], seen[t][1]))
            curve = {"time": np.arange(len(times)) if not _numeric(times) else np.array(times, dtype=float),
                     "truth": np.array([rec[seen[t][0]]["truth"][seen[t][1]] for t in times], dtype=float),
                     "model": np.array([fc[seen[t]] for t in times]),
                     "ylabel": "target (data units)",
                     "title": f"Series {rec[0]['series']}: each time's forecast from the earliest origin before it "
                              "(test)"}  # fmt: skip
            for n in names:
                curve[n] = np.array([prep.baselines[n][seen[t]] for t in times])
        plots = ev.save_plots(run_dir, history or {}, forecast=curve)
        extra = {
            "mase_scale": MASE_SCALE,
            "series_scored": len({r["id"] for r in rec}),
            "series_not_scored": [i for i, s in zip(st["ids"], st["mase_scale"]) if s is None],
        }
        if st.get("baseline_fallbacks"):
            extra["baseline_fallbacks"] = st["baseline_fallbacks"]
        return metrics, {**extra, "files": [*plots, "test_predictions.tsv"]}

    # ------------------------------------------------------------------------- new data
    def _new(self, d: PanelData, state: dict, path: str, fit_end=None):
        """A new table with the run's preprocessing: (panel, windows). Series the run has not
        seen are scaled by their own values before ``fit_end`` (None: all their values)."""
        panel = self.read(d, path)  # the run's columns, or an error naming the one missing
        if d.id_col is None and len(state["ids"]) == 1:  # one series without ids: the run's, whatever the file's name
            panel = panel._replace(ids=list(state["ids"]))
        fitted = _Fitted(state)
        ends = fit_end if fit_end is not None else [len(y) for y in panel.y]
        vals = [fitted.transform.transform(y[:e]) for y, e in zip(panel.y, ends)]
        ids = np.concatenate([[i] * len(v) for i, v in zip(panel.ids, vals)]).astype(object)
        scaler = fitted.scaler.with_series(np.concatenate(vals), ids)
        return panel, _Windows(panel, fitted, scaler, d.lookback, d.horizon, path, d.relative), scaler

    def evaluate_new(self, d: PanelData, state: dict, path: str, model, predict, **labels) -> dict:
        """Metrics on a new table: the last data.test points of each series as its test block,
        with the trained model and preprocessing, beside the baselines fitted on each series'
        values before its test block."""
        panel = self.read(d, path)
        blocks = _blocks(panel, d.test, 0)
        if not blocks.scored.any():
            raise InputError(f"{path}: no series has data.test={d.test} points and two observed values before them")
        panel, win, scaler = self._new(d, state, path, fit_end=list(blocks.b))
        pairs = [(int(k), o) for k in np.flatnonzero(blocks.scored)
                 for o in win.origins(int(k), int(blocks.b[k]) - 1, int(blocks.n[k]) - d.horizon - 1, len(panel.y[k]))]
        rec = win.records(pairs)
        st = {**state, "scaler_new": scaler.to_json()}
        fc = self.forecasts(st, rec, predict(win.inputs(pairs)), model, d.nonnegative)
        base, _ = baseline_forecasts(panel, pairs, {k: int(blocks.b[k]) for k, _ in pairs}, d.baselines, d.season,
                                     d.horizon)  # fmt: skip
        if d.nonnegative:
            base = {k: np.maximum(v, 0.0) for k, v in base.items()}
        scales = {panel.ids[k]: mase_scale(panel.y[k][: blocks.b[k]], d.season) for k, _ in pairs}
        return panel_metrics(rec, {"model": fc, **base}, scales)

    def predict_new(self, d: PanelData, state: dict, path: str, model, predict) -> tuple[list, list]:
        """The next data.horizon steps after the last row of every series of a new table: one row
        per series and step with the origin (the last time read) and the target time (the last
        time plus the series' median step)."""
        from ...data.panel import future_times

        panel, win, scaler = self._new(d, state, path)
        pairs = [(k, len(y) - 1) for k, y in enumerate(panel.y)]
        rec = [{"id": panel.ids[k], "origin": _plain(panel.times[k][o]), "level": win.level(k, o)} for k, o in pairs]
        st = {**state, "scaler_new": scaler.to_json()}
        fc = self.forecasts(st, rec, predict(win.inputs(pairs)), model, d.nonnegative)
        rows = []
        for (k, _), r, f in zip(pairs, rec, fc):
            times = future_times(panel.times[k], d.horizon)
            rows += [[r["id"], r["origin"], _plain(t) if t is not None else "", h + 1, f"{v:.6g}"]
                     for h, (t, v) in enumerate(zip(times, f))]  # fmt: skip
        return ["series", "origin_time", "target_time", "step", "forecast"], rows


def _fmt(v) -> str:
    return "" if v is None or not np.isfinite(v) else f"{v:.6g}"


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


# ------------------------------------------------------------------------------ backtesting
def backtest(run_dir: str | Path, folds: int = 3, data: str | Path | None = None, step: int = 1,
             baselines: list | None = None, threads: int | None = None) -> dict:  # fmt: skip
    """Rolling-origin evaluation of a trained panel run: the model and the baselines at ``folds``
    successive forecast origins before the end of every series, without retraining.

    Fold ``j`` (0 = the latest) puts each series' origin ``horizon + j * step`` rows before its
    end and scores the ``horizon`` steps after it; with the run's own table, data.test ==
    data.horizon and val 0, fold 0 is the run's test block. ``data``: another table with the
    run's columns (default: the run's own file), e.g. the same series observed for longer.
    Baselines (``baselines``, default the run's) are fitted per series on the values before the
    earliest fold's first target, so no fit sees a scored value, and applied at each origin to
    the history up to it; the MASE scale of a fold is the in-sample seasonal-naive MAE of the
    values before its first target. The model is the run's as trained: each fold reports the
    share of its scored targets that lie in the run's training or validation targets
    (``seen_in_training``; 0 for a fold wholly after them).

    Returns ``{"folds": [{"fold", "offset", "origins", "series", "seen_in_training",
    "metrics": {name: {mase, smape, mae, rmse}}}, ...] (earliest first), "mean": {name:
    {metric: mean over folds}}, "mase_scale": definition}``."""
    import json

    from ..._cpu import use_threads
    from ..._io import read_json
    from ...train import Trainer
    from ..run import load_run

    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise InputError(f"folds: expected an int >= 1, got {folds!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise InputError(f"step: expected an int >= 1, got {step!r}")
    use_threads(threads)
    run_dir = Path(run_dir)
    task, d, model, state, tcfg = load_run(run_dir)
    if task.name != PanelTask.name:
        raise InputError(f"{run_dir}: expected a run of task 'panel', got {task.name!r}")
    path = str(data) if data is not None else d.file
    names = list(d.baselines if baselines is None else baselines)
    for b in names:
        check_choice(b, BASELINES, "baselines")
    H = d.horizon
    split = read_json(run_dir / "split.json", "the run's split") if (run_dir / "split.json").is_file() else {}
    seen_until = {}  # series id (as text) -> the last target time the model trained or validated on
    for part in ("train", "val"):
        for sid, (_, last) in split.get(part, {}).get("target_times", {}).items():
            seen_until[sid] = max(seen_until.get(sid, last), last)
    panel = task.read(d, path)
    n = np.array([len(y) for y in panel.y])
    first_target = n - H - (folds - 1) * step  # the earliest fold's first target, per series
    usable = [k for k in range(len(n)) if first_target[k] >= 2 and np.isfinite(panel.y[k][: first_target[k]]).sum() > 1]
    if not usable:
        raise InputError(f"{path}: no series is long enough for {folds} folds of horizon {H} and step {step}")
    panel, win, scaler = task._new(d, state, path, fit_end=list(first_target))
    trainer = Trainer(model, tcfg.merged(device="cpu" if not torch.cuda.is_available() else None))
    st = {**state, "scaler_new": scaler.to_json()}
    out_folds = []
    for j in reversed(range(folds)):
        pairs = [(k, int(n[k]) - H - 1 - j * step) for k in usable]
        pairs = [(k, o) for k, o in pairs if o >= 0 and np.isfinite(panel.y[k][o + 1 : o + 1 + H]).any()]
        if not pairs:
            continue
        rec = win.records(pairs)
        fc = task.forecasts(st, rec, trainer.predict(win.inputs(pairs)), model, d.nonnegative)
        base, failed = baseline_forecasts(panel, pairs, {k: int(first_target[k]) for k, _ in pairs}, names,
                                          d.season, H)  # fmt: skip
        if d.nonnegative:
            base = {k: np.maximum(v, 0.0) for k, v in base.items()}
        scales = {panel.ids[k]: mase_scale(panel.y[k][: o + 1], d.season) for k, o in pairs}
        seen = [_le(t, seen_until[str(r["id"])]) if str(r["id"]) in seen_until else False
                for r in rec for t, y in zip(r["targets"], r["truth"]) if np.isfinite(y)]  # fmt: skip
        fold = {"fold": j, "offset": j * step, "origins": {str(r["id"]): r["origin"] for r in rec},
                "series": len(pairs), "seen_in_training": float(np.mean(seen)) if seen else 0.0,
                "metrics": panel_metrics(rec, {"model": fc, **base}, scales)}  # fmt: skip
        if failed:
            fold["baseline_fallbacks"] = failed
        out_folds.append(fold)
    mean = {}
    for name in out_folds[0]["metrics"] if out_folds else []:
        mean[name] = {m: float(np.nanmean([f["metrics"][name][m] for f in out_folds])) for m in
                      ("mase", "smape", "mae", "rmse")}  # fmt: skip
    return json.loads(json.dumps({"folds": out_folds, "mean": mean, "mase_scale": MASE_SCALE}, default=_plain))


def _le(a, b) -> bool:
    try:
        return a <= b
    except TypeError:
        return str(a) <= str(b)
