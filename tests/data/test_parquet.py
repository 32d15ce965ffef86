"""Parquet, advertised by every table reader (forecast series, expression matrices, longitudinal
visits), reads to the same numbers as the same table in CSV, through the readers and through
each task's preparation; a damaged Parquet file is one InputError line naming the file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from biolstm import InputError
from biolstm.cli import app
from biolstm.data.expression import read_expression
from biolstm.data.longitudinal import read_longitudinal
from biolstm.data.tables import read_table
from biolstm.data.timeseries import read_series
from biolstm.pipeline.tasks import (
    ExpressionData,
    ExpressionTask,
    ForecastTask,
    LongitudinalData,
    LongitudinalTask,
    SeriesData,
)

runner = CliRunner()


def _series(n=80, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({"time": t, "flu": np.sin(t / 5) + rng.normal(0, 0.1, n), "temp": rng.normal(20, 3, n)})


def _expression(n=30, genes=6, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, genes)).astype(np.float32), columns=[f"g{k}" for k in range(genes)])
    df.insert(0, "sample", [f"s{k}" for k in range(n)])
    df["y"] = ["tumour" if k % 2 else "normal" for k in range(n)]
    df["donor"] = [f"d{k // 3}" for k in range(n)]
    return df


def _visits(subjects=24, seed=0):
    """One row per visit: irregular times, a lab value missing at some visits, an outcome."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(subjects):
        t = 0.0
        for _ in range(int(rng.integers(2, 6))):
            a = float(rng.normal(5 + s % 2, 1)) if rng.random() > 0.3 else np.nan
            rows.append({"id": f"p{s}", "time": t, "a": a, "b": float(rng.normal()), "age": 40 + s, "status": s % 2})
            t += float(rng.integers(20, 200))
    return pd.DataFrame(rows)


def _both(df: pd.DataFrame, tmp_path, stem: str):
    """The same table as CSV and as Parquet."""
    csv, pq = tmp_path / f"{stem}.csv", tmp_path / f"{stem}.parquet"
    df.to_csv(csv, index=False)
    df.to_parquet(pq, index=False)
    return csv, pq


def _same(a, b):
    """Tensors, arrays, dicts and tuples of them are equal (float32 as written, so exactly)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (tuple, list)) and a and isinstance(a[0], (torch.Tensor, np.ndarray, dict)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _same(u, v)
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    elif isinstance(a, np.ndarray) and a.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    else:
        assert list(np.asarray(a)) == list(np.asarray(b)), (a, b)


def test_series_from_parquet_equals_csv(tmp_path):
    df = _series()
    csv, pq = _both(df, tmp_path, "flu")
    a, b = read_series(csv), read_series(pq)
    assert b.columns == ["flu", "temp"] and b.values.shape == (80, 2)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_allclose(b.values, df[["flu", "temp"]].to_numpy(np.float32))
    # the forecast task: the same windows, scaling and baselines
    prep = [ForecastTask().prepare(SeriesData(file=str(p), lookback=8, horizon=2), lambda m: None) for p in (csv, pq)]
    _same(prep[0].train, prep[1].train)
    _same(prep[0].test, prep[1].test)
    assert prep[0].state == prep[1].state and prep[1].test_ids == prep[0].test_ids
    _same(prep[0].baselines, prep[1].baselines)


def test_expression_from_parquet_equals_csv(tmp_path):
    df = _expression()
    csv, pq = _both(df, tmp_path, "expr")
    a = read_expression(csv, label="y", group="donor", sample="sample")
    b = read_expression(pq, label="y", group="donor", sample="sample")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(b.x, df[[f"g{k}" for k in range(6)]].to_numpy())
    assert b.genes == a.genes and b.samples == a.samples == df["sample"].tolist()
    assert list(b.labels) == list(df["y"]) and list(b.groups) == list(df["donor"])
    # the expression task, split by donor
    d = [ExpressionData(file=str(p), sample="sample", group="donor", split="group", components=4) for p in (csv, pq)]
    prep = [ExpressionTask().prepare(x, lambda m: None) for x in d]
    _same(prep[0].train, prep[1].train)
    _same(prep[0].test, prep[1].test)
    assert prep[0].state == prep[1].state and prep[1].test_ids == prep[0].test_ids
    _same(prep[0].pca, prep[1].pca)


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_longitudinal_from_parquet_equals_csv(tmp_path, layout):
    df = _visits()
    if layout == "wide":  # one row per subject: time_1, a_1, b_1, time_2, ...
        df["visit"] = df.groupby("id").cumcount() + 1
        wide = df.pivot(index="id", columns="visit", values=["time", "a", "b"])
        wide.columns = [f"{v}_{k}" for v, k in wide.columns]
        keep = df.groupby("id")[["age", "status"]].first()
        df = pd.concat([keep, wide], axis=1).reset_index()
    csv, pq = _both(df, tmp_path, "visits")
    a = read_longitudinal(csv, "id", "time", ["a", "b"], ["age"], layout=layout)
    b = read_longitudinal(pq, "id", "time", ["a", "b"], ["age"], layout=layout)
    assert b.x.shape == (24, 5, 7) and list(b.ids) == list(a.ids)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.static, b.static)
    # the longitudinal task reads the table twice (sequences, then targets and training means)
    d = [LongitudinalData(file=str(p), variables=["a", "b"], static=["age"], layout=layout) for p in (csv, pq)]
    prep = [LongitudinalTask().prepare(x, lambda m: None) for x in d]
    _same(prep[0].train, prep[1].train)
    _same(prep[0].test, prep[1].test)
    assert prep[0].state == prep[1].state and prep[1].test_ids == prep[0].test_ids


def _damaged(tmp_path) -> dict:
    """A good Parquet file broken the usual ways: cut short, overwritten inside, empty, or not
    Parquet at all."""
    good = tmp_path / "good.parquet"
    _series(40).to_parquet(good, index=False)
    raw = good.read_bytes()
    inside = bytearray(raw)
    inside[8:200] = b"\xff" * 192  # the first page header
    footer = bytearray(raw)
    footer[-60:-8] = b"\xab" * 52  # the file metadata
    files = {
        "cut": raw[: len(raw) // 2],
        "page": bytes(inside),
        "footer": bytes(footer),
        "empty": b"",
        "csv": b"time,flu\n1,2\n",
    }
    for name, data in files.items():
        (tmp_path / f"{name}.parquet").write_bytes(data)
    return {name: tmp_path / f"{name}.parquet" for name in files}


READERS = {
    "table": read_table,
    "series": read_series,
    "expression": lambda p: read_expression(p, label=None),
    "longitudinal": lambda p: read_longitudinal(p, "id", "time", ["a"]),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_a_damaged_parquet_file_is_one_line_naming_it(tmp_path, reader):
    for name, path in _damaged(tmp_path).items():
        with pytest.raises(InputError) as info:
            READERS[reader](path)
        text = str(info.value)
        assert text.startswith(f"{path}: expected a Parquet table, got an error ("), (name, text)
        assert "\n" not in text, (name, text)


def test_the_cli_reports_a_damaged_parquet_file_in_one_line(tmp_path):
    path = _damaged(tmp_path)["page"]
    cfg = tmp_path / "f.yaml"
    cfg.write_text(yaml.safe_dump({"task": "forecast", "data": {"file": path.name, "lookback": 4}}))
    res = runner.invoke(app, ["train", str(cfg), "-o", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: expected a Parquet table"), res.output
    assert "Traceback" not in res.output
