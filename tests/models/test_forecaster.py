"""Forecaster: shapes of each output kind, losses, static covariates, and beating naive on sunspots."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from biolstm.data.timeseries import forecast_metrics, make_windows, naive_forecast, read_series, split_in_time
from biolstm.models import Forecaster, ForecasterConfig
from biolstm.pipeline.preprocess import Standardizer

from ..datafiles import SUNSPOTS


def test_output_kinds_and_losses():
    x, y = torch.randn(5, 12, 2), torch.randn(5, 3, 1)
    point = Forecaster(input_size=2, horizon=3)
    assert point(x).shape == (5, 3, 1) and point.loss(point(x), y) >= 0
    quant = Forecaster(input_size=2, horizon=3, output="quantile", quantiles=(0.1, 0.5, 0.9))
    out = quant(x)
    assert out.shape == (5, 3, 1, 3) and torch.equal(quant.point(out), out[..., 1])
    # pinball loss by hand for one element
    q_out = torch.zeros(1, 1, 1, 3)
    q_y = torch.ones(1, 1, 1)
    assert float(quant.loss(q_out, q_y)) == pytest.approx((0.1 + 0.5 + 0.9) / 3)
    gauss = Forecaster(input_size=2, horizon=3, output="gaussian")
    g = gauss(x)
    assert g.shape == (5, 3, 1, 2) and (g[..., 1] > 0).all() and torch.isfinite(gauss.loss(g, y))
    stat = Forecaster(input_size=2, static_size=3)
    assert stat(x, torch.randn(5, 3)).shape == (5, 1, 1)
    with pytest.raises(ValueError, match=r"static: expected \(batch, 3\)"):
        stat(x)
    with pytest.raises(ValueError, match="model config: unknown key 'horizont'"):
        ForecasterConfig.from_dict({"horizont": 3})
    with pytest.raises(TypeError, match=r"config: expected a ForecasterConfig or None .*got 4 \(int\)"):
        Forecaster(4)  # the slip for Forecaster(input_size=4)


def test_beats_the_naive_forecast_on_sunspots():
    s = read_series(SUNSPOTS)
    sp = split_in_time(len(s.values), test=0.15, val=0)
    train, test = s.values[sp.train], s.values[sp.test]
    sc = Standardizer().fit(train)
    Xtr, Ytr = make_windows(sc.transform(train), lookback=24, horizon=1)
    Xte, Yte = make_windows(sc.transform(test), lookback=24, horizon=1, context=sc.transform(train))
    torch.manual_seed(0)
    model = Forecaster(hidden_size=32)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(Xtr), torch.from_numpy(Ytr)
    for _ in range(150):
        opt.zero_grad()
        model.loss(model(xt), yt).backward()
        opt.step()
    with torch.no_grad():
        pred = model.eval()(torch.from_numpy(Xte)).numpy()
    ours = forecast_metrics(sc.inverse_transform(Yte[:, :, 0]), sc.inverse_transform(pred[:, :, 0]), train)
    naive = forecast_metrics(
        sc.inverse_transform(Yte[:, :, 0]), sc.inverse_transform(naive_forecast(Xte, 1)[:, :, 0]), train
    )
    assert ours["mae"] < naive["mae"]


def test_anchors_and_window_normalisation():
    torch.manual_seed(0)
    x = torch.randn(4, 12, 2)
    plain = Forecaster(input_size=2, horizon=5)
    seasonal = Forecaster(plain.config.merged(anchor="seasonal", season=3))
    seasonal.load_state_dict(plain.state_dict())
    # the seasonal anchor adds y[t+h-season] (h = 0..4 -> lookback steps 9, 10, 11, 9, 10) to the same network output
    base = x[:, [9, 10, 11, 9, 10], :1]
    torch.testing.assert_close(seasonal(x), plain(x) + base)
    last = Forecaster(plain.config.merged(anchor="last"))
    last.load_state_dict(plain.state_dict())
    torch.testing.assert_close(last(x), plain(x) + x[:, -1:, :1])
    with pytest.raises(ValueError, match="needs a lookback of at least season=20"):
        Forecaster(input_size=2, anchor="seasonal", season=20)(x)
    # per-window normalisation: shifting and scaling a window shifts and scales its forecast
    for output in ("point", "quantile", "gaussian"):
        m = Forecaster(input_size=1, horizon=2, window_norm=True, output=output).eval()
        w = torch.randn(3, 10, 1)
        a, b = m(w), m(w * 7 + 100)
        if output == "gaussian":
            torch.testing.assert_close(b[..., 0], a[..., 0] * 7 + 100, atol=1e-3, rtol=1e-5)
            torch.testing.assert_close(b[..., 1], a[..., 1] * 7, atol=1e-3, rtol=1e-5)
        else:
            torch.testing.assert_close(b, a * 7 + 100, atol=1e-3, rtol=1e-5)


def test_ensemble_members_masked_targets_and_window_scale():
    from biolstm.models.forecaster import ForecasterEnsemble, ForecasterEnsembleConfig

    torch.manual_seed(0)
    x, y = torch.randn(6, 8, 3), torch.randn(6, 2, 1)
    ens = ForecasterEnsemble(input_size=3, horizon=2, members=3)
    with torch.no_grad():
        out = ens(x)
    assert out.shape == (6, 3, 2, 1)  # (B, members, horizon, targets)
    with torch.no_grad():
        members = [m(x) for m in ens.members]
    torch.testing.assert_close(ens.point(out), torch.stack(members).mean(0))
    torch.testing.assert_close(ens.loss(out, y), torch.stack([F.mse_loss(m, y) for m in members]).mean())
    assert not torch.equal(members[0], members[1])  # each member from its own initial weights
    # a target marked unobserved (channel 1 = 0) is left out of the loss whatever its value
    seen = torch.ones_like(y)
    seen[0, 1] = 0
    masked = torch.stack([y, seen], -1)  # (B, horizon, targets, 2)
    y2 = y.clone()
    y2[0, 1] = 1e6
    m1 = ens.members[0]
    assert float(m1.loss(out[:, 0], masked)) == pytest.approx(
        float(((out[:, 0] - y) ** 2)[seen > 0].mean()), rel=1e-6)  # fmt: skip
    assert float(m1.loss(out[:, 0], torch.stack([y2, seen], -1))) == pytest.approx(float(m1.loss(out[:, 0], masked)))
    # window_scale: scaling the target channel scales the forecast (spreads above the floor)
    for kind in ("std", "diff"):
        sc = ForecasterEnsemble(ForecasterEnsembleConfig(input_size=3, horizon=2, members=2, window_scale=kind)).eval()
        w = torch.randn(4, 10, 3)
        w[..., 1] = 1.0  # every step observed
        big = w.clone()
        big[..., 0] *= 5
        with torch.no_grad():
            torch.testing.assert_close(sc(big), 5 * sc(w), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="window_scale: expected one of"):
        ForecasterEnsembleConfig(window_scale="max")
