"""Time series: reading, split in time, windows across boundaries, scaler, baselines, metrics."""

from __future__ import annotations

import numpy as np
import pytest

from biolstm.data.timeseries import (
    forecast_metrics,
    make_windows,
    mase_scale,
    naive_forecast,
    read_series,
    seasonal_naive_forecast,
    split_in_time,
)
from biolstm.pipeline.preprocess import Standardizer

from ..datafiles import SUNSPOTS


def test_sunspots_pipeline_has_no_leak():
    s = read_series(SUNSPOTS)
    assert s.values.shape == (289, 1) and s.time[0] == 1700 and s.columns == ["value"]
    sp = split_in_time(len(s.values), test=0.2, val=0.1)
    train, test = s.values[sp.train], s.values[sp.test]
    scaler = Standardizer().fit(train)
    assert abs(scaler.transform(train).mean()) < 1e-5  # fitted on the training part only
    X, Y = make_windows(scaler.transform(test), lookback=20, horizon=3, context=scaler.transform(s.values[sp.val]))
    assert Y.shape[1:] == (3, 1)
    # every target lies inside the test block; the first window looks back into validation
    assert len(X) == len(test) - 3 + 1
    np.testing.assert_allclose(scaler.inverse_transform(Y[0]), test[:3], rtol=1e-5)
    naive = forecast_metrics(scaler.inverse_transform(Y), scaler.inverse_transform(naive_forecast(X, 3)), train)
    seasonal = forecast_metrics(
        scaler.inverse_transform(Y), scaler.inverse_transform(seasonal_naive_forecast(X, 3, 11)), train, season=11
    )
    assert naive["mase"] > 0 and seasonal["mae"] > 0  # the ~11-year solar cycle baseline


def test_windows_and_baselines_by_hand():
    v = np.arange(10, dtype=np.float32)
    X, Y = make_windows(v, lookback=3, horizon=2, stride=2)
    np.testing.assert_array_equal(X[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(Y[0, :, 0], [3, 4])
    assert len(X) == 3  # targets start at 3, 5, 7
    np.testing.assert_array_equal(naive_forecast(X, 2)[0, :, 0], [2, 2])
    np.testing.assert_array_equal(seasonal_naive_forecast(X, 2, 2)[0, :, 0], [1, 2])
    m = forecast_metrics(np.array([1.0, 2.0]), np.array([2.0, 2.0]), np.array([0.0, 1.0, 2.0]))
    assert m["mae"] == 0.5 and m["rmse"] == pytest.approx(np.sqrt(0.5)) and m["mase"] == 0.5
    assert m["smape"] == pytest.approx(100 * (2 / 3) / 2)
    with pytest.raises(ValueError, match="too short"):
        make_windows(v[:3], lookback=3)
    with pytest.raises(ValueError, match="test, val: expected sizes"):
        split_in_time(10, test=0.6, val=0.5)


def test_read_series_errors(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("time,value\n1,2\n1,3\n")
    with pytest.raises(ValueError, match=r"s\.csv: line 3: time 1 appears twice"):
        read_series(f)
    f.write_text("time,value\n1,2\n2,abc\n")
    with pytest.raises(ValueError, match=r"column 'value': expected finite numbers, got 'abc' at time 2"):
        read_series(f)
    f.write_text("t,value\n1,2\n")
    with pytest.raises(ValueError, match="expected a time column 'time'"):
        read_series(f)
    t = tmp_path / "s.tsv"
    t.write_text("time\ta\tb\n2\t1\t\n1\t3\t4\n")
    s = read_series(t)
    assert s.columns == ["a", "b"] and s.time.tolist() == [1, 2] and np.isnan(s.values[1, 1])


def test_mase_scale_leaves_out_missing_pairs_and_is_what_forecast_metrics_divides_by():
    v = np.array([1.0, 3.0, np.nan, 4.0, 8.0, 7.0])
    assert mase_scale(v) == pytest.approx((2 + 4 + 1) / 3)  # |3-1|, |8-4|, |7-8|
    assert mase_scale(v, season=2) == pytest.approx((1 + 3) / 2)  # |4-3|, |7-4|; the pairs with nan left out
    assert np.isnan(mase_scale(np.array([1.0]))) and np.isnan(mase_scale(np.array([1.0, np.nan, 2.0])))
    m = forecast_metrics(np.array([1.0, 2.0]), np.array([2.0, 4.0]), scale=0.5)
    assert m["mase"] == pytest.approx(1.5 / 0.5)
    assert forecast_metrics(np.array([1.0]), np.array([2.0]), v)["mase"] == pytest.approx(1 / mase_scale(v))
