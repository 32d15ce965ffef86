"""Checkpoints: round trip, atomicity, checksums, refusal of pickles."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from biolstm.train import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from biolstm.train.checkpoint import join_state_dict, rng_state, set_rng_state, split_state_dict


def test_round_trip_with_optimizer_and_rng(tmp_path):
    model = torch.nn.LSTM(3, 4)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.95))
    model(torch.randn(5, 2, 3))[0].sum().backward()
    opt.step()
    opt_t, opt_meta = split_state_dict(opt.state_dict(), "optimizer")
    rng_t, rng_meta = rng_state()
    path = save_checkpoint(
        tmp_path, 12, model, {"epoch": 1, "optimizer": opt_meta, "rng": rng_meta}, {**opt_t, **rng_t}
    )
    assert path.name == "ckpt-00000012"
    expected_draw = torch.rand(3)
    model_t, extra, meta = load_checkpoint(path)
    for k, v in model.state_dict().items():
        assert torch.equal(model_t[k], v)
    restored = join_state_dict(extra, meta["optimizer"])
    assert restored["param_groups"][0]["betas"] == (0.8, 0.95)
    for sid, st in opt.state_dict()["state"].items():
        assert torch.equal(restored["state"][sid]["exp_avg"], st["exp_avg"])
    set_rng_state(extra, meta["rng"])
    assert torch.equal(torch.rand(3), expected_draw)


def test_keeps_newest_and_ignores_temporaries(tmp_path):
    m = torch.nn.Linear(2, 2)
    for step in range(1, 5):
        save_checkpoint(tmp_path, step, m, {}, keep=2)
    (tmp_path / ".ckpt-00000009.abc").mkdir()  # a write that was interrupted
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000003", "ckpt-00000004"]


def test_damaged_checkpoint_is_refused_and_the_previous_one_used(tmp_path):
    m = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path, 1, m, {"epoch": 1})
    with torch.no_grad():
        m.weight.add_(1)
    newest = save_checkpoint(tmp_path, 2, m, {"epoch": 2})
    data = bytearray((newest / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (newest / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum does not match"):
        load_checkpoint(newest)
    path, (_, _, meta) = latest_checkpoint(tmp_path)
    assert path.name == "ckpt-00000001" and meta["epoch"] == 1


def test_foreign_or_missing_metadata(tmp_path):
    m = torch.nn.Linear(2, 2)
    p = save_checkpoint(tmp_path, 1, m, {})
    meta = json.loads((p / "meta.json").read_text())
    meta["format"] = "something-else"
    (p / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="expected format 'biolstm-checkpoint/1'"):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match=r"meta\.json"):
        load_checkpoint(tmp_path / "nothing")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_pickles_are_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps(_Evil()))
    torch_file = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, torch_file)
    for f in (bad, torch_file):
        with pytest.raises(CheckpointError, match="never unpickles"):
            load_checkpoint(f)
    assert not (tmp_path / "pwned").exists()


def test_state_with_unstorable_value_is_rejected():
    with pytest.raises(TypeError, match="optimizer: cannot store a value of type object"):
        split_state_dict({"x": object()}, "optimizer")


def test_a_safetensors_file_whose_header_length_starts_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    """A pickle starts with byte 0x80; so does a safetensors file whose JSON header is 128 (mod
    256) bytes long. The header's opening brace at byte 8 tells them apart."""
    from biolstm.train.checkpoint import load_verified, refuse_pickle, save_tensors, sha256_file

    for n in range(1, 200):  # a tensor name whose length moves the header length through 0x80
        f = tmp_path / "w.safetensors"
        save_tensors(f, {"w" * n: torch.zeros(1)})
        if f.read_bytes()[0] == 0x80:
            break
    assert f.read_bytes()[0] == 0x80
    refuse_pickle(f)  # no error
    assert torch.equal(load_verified(f, sha256_file(f), "model.json")["w" * n], torch.zeros(1))
    renamed = tmp_path / "x.safetensors"
    renamed.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="never unpickles"):
        refuse_pickle(renamed)
