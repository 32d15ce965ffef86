"""YAML configs, dotted overrides and unknown keys."""

from __future__ import annotations

import pytest

from biolstm.config import apply_overrides, load_yaml, save_yaml
from biolstm.models import SequenceClassifierConfig


def test_load_override_save_round_trip(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("model:\n  hidden_size: 32\n  cell: lstm\ntrain:\n  epochs: 5\n")
    cfg = apply_overrides(load_yaml(f), ["model.hidden-size=64", "train.lr=3e-3", "--data.path=a.fa"])
    assert cfg["model"]["hidden_size"] == 64 and cfg["train"]["lr"] == 0.003 and cfg["data"]["path"] == "a.fa"
    model = SequenceClassifierConfig.from_dict(cfg["model"])
    assert model.hidden_size == 64
    out = tmp_path / "resolved.yaml"
    save_yaml(cfg, out)
    assert load_yaml(out) == cfg


def test_config_errors(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("model:\n  hidden_size: [1,\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: line \d+: expected valid YAML"):
        load_yaml(f)
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="expected a mapping of sections"):
        load_yaml(f)
    f.write_text("model:\n  hiden_size: 3\n")
    with pytest.raises(ValueError, match="model config: unknown key 'hiden_size'"):
        SequenceClassifierConfig.from_dict(load_yaml(f)["model"])
    with pytest.raises(ValueError, match=r"override: expected 'section\.key=value'"):
        apply_overrides({}, ["model.hidden_size"])
    with pytest.raises(ValueError, match="is a value, not a section"):
        apply_overrides({"model": 3}, ["model.x=1"])
    f.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ValueError, match="expected valid YAML"):  # safe_load builds no objects
        load_yaml(f)
