"""Recorded gates, the seed's equations 3.1/3.2 as a reference loop, and the gate recorder."""

from __future__ import annotations

import pytest
import torch

import biolstm.nn as bnn

DT = torch.float64


def seed_reference_lstm(x, W, b, h0, c0):
    """LSTM written straight from the seed's equations 3.1 and 3.2, one step at a time.

    i_t = sigma(W_xi x_t + W_hi h_{t-1} + b_i)      f_t = sigma(W_xf x_t + W_hf h_{t-1} + b_f)
    o_t = sigma(W_xo x_t + W_ho h_{t-1} + b_o)      g_t = tanh(W_xg x_t + W_hg h_{t-1} + b_g)
    C_t = f_t * C_{t-1} + i_t * g_t                 h_t = o_t * tanh(C_t)
    x: (B, T, D); W, b: dicts keyed 'xi', 'hi', ... and 'i', 'f', 'o', 'g'.
    """
    h, C = h0, c0
    rows = {k: [] for k in "ifgoch"}
    for t in range(x.shape[1]):
        xt = x[:, t]
        i = torch.sigmoid(xt @ W["xi"].T + h @ W["hi"].T + b["i"])
        f = torch.sigmoid(xt @ W["xf"].T + h @ W["hf"].T + b["f"])
        o = torch.sigmoid(xt @ W["xo"].T + h @ W["ho"].T + b["o"])
        g = torch.tanh(xt @ W["xg"].T + h @ W["hg"].T + b["g"])
        C = f * C + i * g
        h = o * torch.tanh(C)
        for k, v in zip("ifgoch", (i, f, g, o, C, h)):
            rows[k].append(v)
    return {k: torch.stack(v, 1) for k, v in rows.items()}


def split_torch_weights(lstm, sfx="_l0"):
    """torch's stacked i|f|g|o weights -> the seed's per-gate matrices."""
    W, b = {}, {}
    w_ih, w_hh = getattr(lstm, "weight_ih" + sfx), getattr(lstm, "weight_hh" + sfx)
    bias = getattr(lstm, "bias_ih" + sfx) + getattr(lstm, "bias_hh" + sfx)
    for k, gate in enumerate("ifgo"):
        rows = slice(k * lstm.hidden_size, (k + 1) * lstm.hidden_size)
        W["x" + gate], W["h" + gate], b[gate] = w_ih[rows], w_hh[rows], bias[rows]
    return W, b


@pytest.mark.parametrize("engine", ["transparent", "fused", "autograd"])
def test_seed_equations_agree_with_every_engine(engine):
    lstm = bnn.LSTM(3, 5, batch_first=True, dtype=DT, engine=engine)
    x = torch.randn(4, 7, 3, dtype=DT)
    h0, c0 = torch.randn(1, 4, 5, dtype=DT), torch.randn(1, 4, 5, dtype=DT)
    W, b = split_torch_weights(lstm)
    ref = seed_reference_lstm(x, W, b, h0[0], c0[0])
    out, (h_n, c_n) = lstm(x, (h0, c0))
    torch.testing.assert_close(out, ref["h"], atol=1e-12, rtol=0)
    torch.testing.assert_close(h_n[0], ref["h"][:, -1], atol=1e-12, rtol=0)
    torch.testing.assert_close(c_n[0], ref["c"][:, -1], atol=1e-12, rtol=0)


def test_lstm_trace_matches_seed_equations():
    lstm = bnn.LSTM(3, 5, batch_first=True, dtype=DT)
    x = torch.randn(4, 7, 3, dtype=DT)
    h0, c0 = torch.randn(1, 4, 5, dtype=DT), torch.randn(1, 4, 5, dtype=DT)
    out, _, trace = lstm(x, (h0, c0), return_gates=True)
    ref = seed_reference_lstm(x, *split_torch_weights(lstm), h0[0], c0[0])
    assert trace.gate_names == ("i", "f", "g", "o", "c", "h")
    for k in "ifgoch":
        assert trace[k].shape == (4, 7, 5)
        torch.testing.assert_close(trace[k], ref[k], atol=1e-12, rtol=0)
    assert torch.equal(trace["h"], out)


def test_trace_per_layer_and_direction_is_consistent():
    lstm = bnn.LSTM(3, 6, num_layers=2, bidirectional=True, batch_first=True, dtype=DT)
    x = torch.randn(3, 8, 3, dtype=DT)
    lengths = torch.tensor([8, 3, 5])
    out, (h_n, c_n), tr = lstm(x, lengths=lengths, return_gates=True)
    assert tr.num_layers == 2 and tr.num_directions == 2
    assert torch.equal(tr.lengths, lengths)
    for layer in range(2):
        for d in range(2):
            i, f, g, o, c, h = (tr.gate(k, layer, d) for k in "ifgoch")
            # the cell update and output of every step follow from the recorded gates
            if d == 0:
                c_prev = torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], 1)
            else:  # the reverse direction reads right to left within each length
                c_prev = torch.zeros_like(c)
                for b, n in enumerate(lengths.tolist()):
                    c_prev[b, : n - 1] = c[b, 1:n]
            alive = (torch.arange(8) < lengths.unsqueeze(1)).unsqueeze(-1)
            torch.testing.assert_close(c, torch.where(alive, f * c_prev + i * g, 0.0), atol=1e-12, rtol=0)
            torch.testing.assert_close(h, o * torch.tanh(c), atol=1e-12, rtol=0)
            k = layer * 2 + d
            for b, n in enumerate(lengths.tolist()):
                last = n - 1 if d == 0 else 0
                torch.testing.assert_close(h_n[k, b], h[b, last], atol=1e-12, rtol=0)
                torch.testing.assert_close(c_n[k, b], c[b, last], atol=1e-12, rtol=0)
                assert torch.count_nonzero(torch.stack([i, f, g, o, c, h])[:, b, n:]) == 0
    # the last layer's recorded h are the module's output
    torch.testing.assert_close(torch.cat([tr.gate("h", 1, 0), tr.gate("h", 1, 1)], -1), out, atol=0, rtol=0)


def test_gru_trace_matches_its_equations():
    gru = bnn.GRU(2, 4, batch_first=True, dtype=DT)
    x = torch.randn(3, 6, 2, dtype=DT)
    out, _h_n, tr = gru(x, return_gates=True)
    r, z, n, h = (tr[k] for k in "rznh")
    h_prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], 1)
    torch.testing.assert_close(h, (1 - z) * n + z * h_prev, atol=1e-12, rtol=0)
    W_hn, b_hn = gru.weight_hh_l0[8:], gru.bias_hh_l0[8:]
    W_in, b_in = gru.weight_ih_l0[8:], gru.bias_ih_l0[8:]
    torch.testing.assert_close(n, torch.tanh(x @ W_in.T + b_in + r * (h_prev @ W_hn.T + b_hn)), atol=1e-12, rtol=0)
    assert torch.equal(h, out)


def test_trace_of_unbatched_and_packed_inputs():
    lstm = bnn.LSTM(2, 3)
    x = torch.randn(5, 2)
    out, _, tr = lstm(x, return_gates=True)
    assert tr["f"].shape == (5, 3)
    torch.testing.assert_close(tr["h"], out)
    seqs = [torch.randn(4, 2), torch.randn(2, 2), torch.randn(3, 2)]
    packed = torch.nn.utils.rnn.pack_sequence(seqs, enforce_sorted=False)
    _, _, tr = lstm(packed, return_gates=True)
    assert tr["i"].shape == (3, 4, 3)  # (B, T, H) in the caller's order
    assert torch.equal(tr.lengths, torch.tensor([4, 2, 3]))
    _single, _, tr1 = lstm(seqs[2], return_gates=True)
    torch.testing.assert_close(tr["h"][2, :3], tr1["h"], atol=1e-6, rtol=0)


def test_return_gates_does_not_change_outputs_or_gradients():
    lstm = bnn.LSTM(3, 4, num_layers=2, dtype=DT)
    x = torch.randn(6, 2, 3, dtype=DT, requires_grad=True)
    y1 = lstm(x)[0]
    y2, _, _ = lstm(x, return_gates=True)
    torch.testing.assert_close(y1, y2, atol=1e-12, rtol=0)
    g1 = torch.autograd.grad(y1.sum(), x)[0]
    g2 = torch.autograd.grad(y2.sum(), x)[0]
    torch.testing.assert_close(g1, g2, atol=1e-12, rtol=0)


def test_record_gates_collects_from_inner_layers():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = bnn.LSTM(4, 6, batch_first=True)  # engine 'auto' would pick fused
            self.head = torch.nn.Linear(6, 1)

        def forward(self, x):
            return self.head(self.encoder(x)[0][:, -1])

    net = Net()
    x = torch.randn(2, 5, 4)
    with bnn.record_gates(net) as rec:
        y = net(x)
        net(x[:1])
    assert len(rec["encoder"]) == 2
    assert rec["encoder"][0]["f"].shape == (2, 5, 6)
    assert rec["encoder"][1]["f"].shape == (1, 5, 6)
    assert not net.encoder._trace_sinks  # unhooked afterwards
    torch.testing.assert_close(net(x), y)
    with pytest.raises(ValueError, match="model"):
        with bnn.record_gates(torch.nn.Linear(2, 2)):
            pass


def test_trace_gate_name_error():
    _, _, tr = bnn.GRU(2, 3)(torch.randn(4, 2), return_gates=True)
    with pytest.raises(KeyError, match="expected one of"):
        tr.gate("f")
