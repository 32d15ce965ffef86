"""biolstm.nn LSTM/GRU/RNN against torch.nn, in float64, over randomised configurations."""

from __future__ import annotations

import pytest
import torch

import biolstm.nn as bnn

from .helpers import DT, Config, leaves, loss_of, make_inputs, make_pair, random_configs, run

CONFIGS = random_configs(60, seed=2026)


def _compare(cfg: Config, engine: str, tol: float = 1e-10):
    ref, mine = make_pair(cfg, engine)
    x, hx = make_inputs(cfg)
    out_r, st_r = run(ref, cfg, x, hx, use_lengths_arg=False)
    grads_r = torch.autograd.grad(loss_of(out_r, st_r), leaves(x, hx) + list(ref.parameters()))
    out_m, st_m = run(mine, cfg, x, hx, use_lengths_arg=True)
    grads_m = torch.autograd.grad(loss_of(out_m, st_m), leaves(x, hx) + list(mine.parameters()))
    torch.testing.assert_close(out_m, out_r, atol=tol, rtol=0)
    for a, b in zip(st_m, st_r):
        torch.testing.assert_close(a, b, atol=tol, rtol=0)
    names = ["input", "h0", "c0"][: len(leaves(x, hx))] + [n for n, _ in mine.named_parameters()]
    for name, a, b in zip(names, grads_m, grads_r):
        torch.testing.assert_close(a, b, atol=tol, rtol=0, msg=lambda m, name=name: f"grad {name}: {m}")


@pytest.mark.parametrize(
    "cfg",
    CONFIGS,
    ids=lambda c: (
        f"{c.mode}-L{c.layers}-bi{int(c.bidirectional)}-"
        f"bf{int(c.batch_first)}-p{c.proj}-h{int(c.init_state)}-{c.inputs}"
    ),
)
def test_transparent_equals_torch(cfg):
    _compare(cfg, "transparent")


@pytest.mark.parametrize("cfg", CONFIGS[:20], ids=lambda c: f"{c.mode}-{c.inputs}")
def test_fused_and_autograd_engines_equal_torch(cfg):
    _compare(cfg, "fused")
    _compare(cfg, "autograd")


def test_same_seed_gives_torch_initial_weights():
    for torch_cls, bio_cls, kw in [
        (torch.nn.LSTM, bnn.LSTM, dict(num_layers=2, bidirectional=True, proj_size=3)),
        (torch.nn.GRU, bnn.GRU, dict(num_layers=3)),
        (torch.nn.RNN, bnn.RNN, dict(nonlinearity="relu", bidirectional=True)),
    ]:
        torch.manual_seed(5)
        ref = torch_cls(4, 8, **kw)
        torch.manual_seed(5)
        mine = bio_cls(4, 8, **kw)
        assert list(ref.state_dict()) == list(mine.state_dict())
        for (n, a), b in zip(ref.state_dict().items(), mine.state_dict().values()):
            assert torch.equal(a, b), n


def test_state_dict_loads_both_ways():
    ref = torch.nn.LSTM(3, 10, num_layers=2, bidirectional=True, proj_size=4, batch_first=True)
    mine = bnn.LSTM(3, 10, num_layers=2, bidirectional=True, proj_size=4, batch_first=True)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(2, 9, 3)
    torch.testing.assert_close(mine(x)[0], ref(x)[0], atol=1e-5, rtol=0)
    mine2 = bnn.LSTM(3, 10, num_layers=2, bidirectional=True, proj_size=4, batch_first=True)
    ref.load_state_dict(mine2.state_dict())
    torch.testing.assert_close(mine2(x)[0], ref(x)[0], atol=1e-5, rtol=0)


def test_fused_engine_is_torchs_kernel_bit_for_bit():
    torch.manual_seed(3)
    ref = torch.nn.GRU(5, 7, num_layers=2, bidirectional=True)
    mine = bnn.GRU(5, 7, num_layers=2, bidirectional=True, engine="fused")
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(6, 2, 5)
    assert torch.equal(mine(x)[0], ref(x)[0])


def test_float32_transparent_close_to_torch():
    # float32 on CPU uses tanh = 2 sigmoid(2x) - 1; differences stay at rounding level.
    ref = torch.nn.LSTM(8, 32, num_layers=2, batch_first=True)
    mine = bnn.LSTM(8, 32, num_layers=2, batch_first=True, engine="transparent")
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(4, 50, 8, requires_grad=True)
    y_r, y_m = ref(x)[0], mine(x)[0]
    torch.testing.assert_close(y_m, y_r, atol=2e-6, rtol=0)
    g_r = torch.autograd.grad(y_r.sum(), [x, *ref.parameters()])
    g_m = torch.autograd.grad(y_m.sum(), [x, *mine.parameters()])
    for a, b in zip(g_m, g_r):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_lengths_semantics(mode):
    cfg = Config(mode=mode, layers=2, bidirectional=True, batch_first=True, T=6, B=4, H=5)
    _, mine = make_pair(cfg)
    x = torch.randn(4, 6, 4, dtype=DT)
    lengths = torch.tensor([6, 0, 3, 1])
    hx = torch.randn(4, 4, 5, dtype=DT)
    hx = (hx, torch.randn(4, 4, 5, dtype=DT)) if mode == "LSTM" else hx
    out, hidden = mine(x, hx, lengths=lengths)
    states = hidden if isinstance(hidden, tuple) else (hidden,)
    # Outputs past each length are exactly zero.
    for b, n in enumerate(lengths.tolist()):
        assert torch.count_nonzero(out[b, n:]) == 0
    # A length of 0 keeps the initial state.
    for s, s0 in zip(states, hx if isinstance(hx, tuple) else (hx,)):
        assert torch.equal(s[:, 1], s0[:, 1])
    # Every other sequence matches running it alone, truncated to its length.
    for b, n in enumerate(lengths.tolist()):
        if n == 0:
            continue
        h_b = tuple(s[:, b : b + 1] for s in hx) if isinstance(hx, tuple) else hx[:, b : b + 1]
        out_b, hid_b = mine(x[b : b + 1, :n], h_b)
        torch.testing.assert_close(out[b : b + 1, :n], out_b, atol=1e-12, rtol=0)
        for s, sb in zip(states, hid_b if isinstance(hid_b, tuple) else (hid_b,)):
            torch.testing.assert_close(s[:, b : b + 1], sb, atol=1e-12, rtol=0)


def test_lengths_fused_equals_transparent_including_zero_length():
    x = torch.randn(5, 7, 3, dtype=DT)
    lengths = torch.tensor([7, 0, 2, 5, 1])
    a = bnn.LSTM(3, 6, batch_first=True, bidirectional=True, dtype=DT, engine="fused")
    b = bnn.LSTM(3, 6, batch_first=True, bidirectional=True, dtype=DT, engine="transparent")
    b.load_state_dict(a.state_dict())
    (ya, (ha, ca)), (yb, (hb, cb)) = a(x, lengths=lengths), b(x, lengths=lengths)
    for u, v in [(ya, yb), (ha, hb), (ca, cb)]:
        torch.testing.assert_close(u, v, atol=1e-12, rtol=0)


def test_gradient_at_padded_positions_is_ignored():
    lstm = bnn.LSTM(2, 4, batch_first=True, dtype=DT, engine="transparent")
    x = torch.randn(2, 5, 2, dtype=DT, requires_grad=True)
    out, _ = lstm(x, lengths=torch.tensor([5, 2]))
    (gx,) = torch.autograd.grad(out.sum(), x)
    assert torch.count_nonzero(gx[1, 2:]) == 0
    assert torch.count_nonzero(gx[1, :2]) > 0


def test_auto_engine_choice():
    lstm = bnn.LSTM(3, 4)
    assert lstm._choose_engine(need_trace=False) == "fused"
    assert lstm._choose_engine(need_trace=True) == "transparent"
    assert bnn.LSTM(3, 4, activation="relu")._choose_engine(False) == "transparent"
    assert bnn.GRU(3, 4, layer_norm=True)._choose_engine(False) == "transparent"
    rd = bnn.LSTM(3, 4, recurrent_dropout=0.2)
    assert rd._choose_engine(False) == "transparent"
    rd.eval()  # no recurrent dropout at inference: the fused kernel gives the same result
    assert rd._choose_engine(False) == "fused"
    assert bnn.RNN(3, 4, nonlinearity="relu")._choose_engine(False) == "fused"


def test_auto_trains_on_the_c_step_loop_where_it_is_faster():
    from biolstm.nn.native import scan

    assert scan.kernel() is not None, scan.unavailable_reason()  # built at install
    lstm, gru = bnn.LSTM(3, 4, batch_first=True), bnn.GRU(3, 4)
    x = torch.randn(32, 5, 3)
    assert lstm._choose_engine(False, x) == "transparent"  # training, CPU float32, batch 32
    assert gru._choose_engine(False, x.transpose(0, 1)) == "transparent"  # time-major: the batch is dim 1
    assert lstm._choose_engine(False, x[:8]) == "fused"  # small batches: oneDNN is faster there
    assert lstm._choose_engine(False, x.double()) == "fused"
    assert bnn.LSTM(3, 4, proj_size=2, batch_first=True)._choose_engine(False, x) == "fused"
    assert bnn.RNN(3, 4, batch_first=True)._choose_engine(False, x) == "fused"
    with torch.no_grad():  # inference: oneDNN
        assert lstm._choose_engine(False, x) == "fused"
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 4, batch_first=True)
    lstm.load_state_dict(ref.state_dict())
    x.requires_grad_()
    torch.testing.assert_close(lstm(x)[0], ref(x)[0], atol=1e-6, rtol=1e-5)  # the same values either way


def test_fused_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="activation='relu'"):
        bnn.LSTM(3, 4, activation="relu", engine="fused")(torch.randn(2, 1, 3))
    with pytest.raises(ValueError, match="return_gates"):
        bnn.LSTM(3, 4, engine="fused")(torch.randn(2, 1, 3), return_gates=True)


def test_dropout_between_layers():
    lstm = bnn.LSTM(3, 8, num_layers=3, dropout=0.5, engine="transparent", dtype=DT)
    ref = torch.nn.LSTM(3, 8, num_layers=3, dropout=0.5, dtype=DT)
    ref.load_state_dict(lstm.state_dict())
    x = torch.randn(5, 2, 3, dtype=DT)
    lstm.eval()
    ref.eval()
    torch.testing.assert_close(lstm(x)[0], ref(x)[0], atol=1e-12, rtol=0)
    lstm.train()
    torch.manual_seed(0)
    a = lstm(x)[0]
    torch.manual_seed(1)
    b = lstm(x)[0]
    assert not torch.allclose(a, b)  # training mode drops units between layers


def test_double_backward_through_autograd_engine():
    lstm = bnn.LSTM(2, 3, engine="autograd", dtype=DT)
    x = torch.randn(4, 1, 2, dtype=DT, requires_grad=True)
    (g,) = torch.autograd.grad(lstm(x)[0].pow(2).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(gg).all() and gg.abs().sum() > 0


@pytest.mark.parametrize("B", [31, 32, 40])  # both storage layouts of the scans
@pytest.mark.parametrize("inputs", ["plain", "lengths"])
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_RELU"])
def test_both_scan_layouts_equal_torch(mode, B, inputs):
    proj = 3 if mode == "LSTM" else 0
    cfg = Config(mode=mode, layers=2, bidirectional=True, proj=proj, init_state=True, inputs=inputs, T=6, B=B, H=7)
    cfg.lengths = [1 + (7 * b) % 6 for b in range(B)]
    _compare(cfg, "transparent")
