"""Longitudinal tables: masks, carried-forward values, time since observation, gaps (PBC data)."""

from __future__ import annotations

import numpy as np
import pytest

from biolstm.data.longitudinal import read_longitudinal

from ..datafiles import PBC


def test_by_hand(tmp_path):
    f = tmp_path / "visits.csv"
    f.write_text("id,day,a,b,sex\n1,0,1.0,,f\n1,10,,5.0,f\n1,30,3.0,,f\n2,0,,,m\n")
    d = read_longitudinal(f, "id", "day", ["a", "b"], static=["sex"], fill={"a": 0.5, "b": 9.0})
    assert d.x.shape == (2, 3, 7) and d.lengths.tolist() == [3, 1]
    a, b = d.x[0, :, 0], d.x[0, :, 1]
    assert a.tolist() == [1.0, 1.0, 3.0] and b.tolist() == [9.0, 5.0, 5.0]  # carried forward, filled first
    assert d.x[0, :, 2].tolist() == [1, 0, 1] and d.x[0, :, 3].tolist() == [0, 1, 0]  # masks
    assert d.x[0, :, 4].tolist() == [0, 10, 0] and d.x[0, :, 5].tolist() == [0, 0, 20]  # since last seen
    assert d.x[0, :, 6].tolist() == [0, 10, 20]  # gap between visits
    assert d.static[:, 0].tolist() == [0, 1]  # f, m as category codes
    assert not d.x[1, 1:].any()  # padding stays zero
    f.write_text("id,day,a\n1,0,x\n")
    with pytest.raises(ValueError, match=r"visits\.csv: column 'a': expected numbers, got values such as 'x'"):
        read_longitudinal(f, "id", "day", ["a"])
    with pytest.raises(ValueError, match=r"expected columns \['zz'\]"):
        read_longitudinal(f, "id", "day", ["zz"])


def test_pbc_visits():
    labs = ["bili", "chol", "albumin", "alk.phos", "ast", "platelet", "protime"]
    d = read_longitudinal(PBC, "id", "day", labs, static=["age", "sex", "trt"])
    assert len(d.ids) == 312 and d.lengths.sum() == 1945
    V = len(labs)
    masks = d.x[..., V : 2 * V]
    alive = np.arange(d.x.shape[1]) < d.lengths[:, None]
    # chol is the lab most often missing in these visits; the masks say so instead of zeros
    observed = masks[alive].mean(0)
    assert observed[labs.index("chol")] < observed[labs.index("bili")] == 1.0
    assert np.isfinite(d.x).all()


def test_wide_layout_reads_like_long(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text("id,day,a,sex\n1,0,1.0,f\n1,10,,f\n1,30,3.0,f\n2,0,5.0,m\n")
    wide = tmp_path / "wide.csv"
    wide.write_text("id,sex,day_1,a_1,day_2,a_2,day_3,a_3\n1,f,0,1.0,10,,30,3.0\n2,m,0,5.0,,,,\n")
    a = read_longitudinal(long, "id", "day", ["a"], static=["sex"])
    b = read_longitudinal(wide, "id", "day", ["a"], static=["sex"], layout="wide")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.static, b.static)
    with pytest.raises(ValueError, match=r"wide.csv: expected numbered visit columns such as b_1"):
        read_longitudinal(wide, "id", "day", ["b"], layout="wide")
