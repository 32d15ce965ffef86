"""MinLSTM and MinGRU: both scans (chunked linear, log-space parallel) equal a step-by-step
reference written from the equations, and the module's own sequential step; gradients flow;
they learn."""

from __future__ import annotations

import pytest
import torch

from biolstm.nn import MinGRU, MinLSTM, linear_scan


def reference(model, x, h0):
    """The recurrences written out, one step at a time, in float64."""
    h = h0.clone()
    outs = []
    for t in range(x.shape[1]):
        inp = x[:, t]
        new = []
        for k, layer in enumerate(model.layers):
            pre = layer(inp)
            if isinstance(model, MinLSTM):
                f, i, hid = pre.chunk(3, -1)
                f, i = torch.sigmoid(f), torch.sigmoid(i)
                tilde = torch.where(hid >= 0, hid + 0.5, torch.sigmoid(hid))
                hk = f / (f + i) * h[k] + i / (f + i) * tilde
            else:
                z, hid = pre.chunk(2, -1)
                z = torch.sigmoid(z)
                tilde = torch.where(hid >= 0, hid + 0.5, torch.sigmoid(hid))
                hk = (1 - z) * h[k] + z * tilde
            new.append(hk)
            inp = hk
        h = torch.stack(new)
        outs.append(inp)
    return torch.stack(outs, 1), h


@pytest.mark.parametrize("scan", ["linear", "log"])
@pytest.mark.parametrize("cls", [MinLSTM, MinGRU])
@pytest.mark.parametrize("layers", [1, 2])
def test_parallel_scan_matches_the_step_by_step_reference(cls, layers, scan):
    torch.manual_seed(0)
    m = cls(3, 5, num_layers=layers, scan=scan).double()
    x = torch.randn(4, 120, 3, dtype=torch.float64) * 2
    h0 = torch.rand(layers, 4, 5, dtype=torch.float64) + 0.1
    out, h_n = m(x, h0)
    ref_out, ref_h = reference(m, x, h0)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(h_n, ref_h, atol=1e-6, rtol=1e-6)
    h = h0
    for t in range(x.shape[1]):  # sequential inference gives the same states
        h = m.step(x[:, t], h)
    torch.testing.assert_close(h, h_n, atol=1e-6, rtol=1e-6)
    tm = cls(3, 5, num_layers=layers, batch_first=False, scan=scan).double()
    tm.load_state_dict(m.state_dict())
    torch.testing.assert_close(tm(x.transpose(0, 1), h0)[0].transpose(0, 1), out)


def test_linear_scan_values_and_gradients():
    torch.manual_seed(0)
    a = torch.rand(2, 23, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 23, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)  # any sign: no logs taken
    h, ref = h0, []
    for t in range(23):
        h = a[:, t] * h + b[:, t]
        ref.append(h)
    for chunk in (1, 4, 5, 23, 40):  # dividing T or not, one chunk, chunks longer than T
        torch.testing.assert_close(linear_scan(a, b, h0, chunk), torch.stack(ref, 1))
        assert torch.autograd.gradcheck(lambda a, b, h0, c=chunk: linear_scan(a, b, h0, c), (a, b, h0))
    with pytest.raises(ValueError, match="a, b: expected two"):
        linear_scan(a, b[:, :5], h0)


def test_linear_scan_keeps_float32_precision_over_long_sequences():
    torch.manual_seed(0)
    m = MinLSTM(4, 8)
    x = torch.randn(2, 3000, 4)
    exact = MinLSTM(4, 8).double()
    exact.load_state_dict(m.state_dict())
    want = exact(x.double())[0]
    for scan in ("linear", "auto"):  # the PyTorch scan and, where it builds, the native kernel
        m.scan = scan
        assert (m(x)[0].double() - want).abs().max() < 1e-5
    m.scan = "log"
    assert (m(x)[0].double() - want).abs().max() < 1e-2  # the log scan is looser in float32


@pytest.mark.parametrize("scan", ["linear", "log"])
def test_gradients_and_errors(scan):
    torch.manual_seed(0)
    m = MinLSTM(2, 4, scan=scan).double()
    x = torch.randn(2, 20, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: m(inp)[0].sum(), (x,))
    h0 = torch.rand(1, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: m(x, h)[1].sum(), (h0,))
    with pytest.raises(ValueError, match=r"x: expected \(batch, time, 2\)"):
        m(torch.randn(2, 20, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="h0: expected positive states of shape"):
        m(x, torch.ones(2, 2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="scan: expected one of 'auto', 'native', 'linear', 'log'"):
        MinLSTM(2, 4, scan="fast")


def test_learns_to_keep_a_marked_value():
    # inputs are (value, marker) with one marker per sequence; the target is the marked value,
    # which the input-only gates must write at the marker and keep to the end
    for cls in (MinGRU, MinLSTM):
        torch.manual_seed(0)
        B, T = 256, 64
        v = torch.randn(B, T, 1)
        mark = torch.zeros(B, T, 1)
        mark[torch.arange(B), torch.randint(0, T // 2, (B,))] = 1.0
        x, y = torch.cat([v, mark], -1), (v * mark).sum((1, 2))
        m, head = cls(2, 16), torch.nn.Linear(16, 1)
        opt = torch.optim.Adam([*m.parameters(), *head.parameters()], lr=0.05)
        for _ in range(300):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(head(m(x)[1][-1]).squeeze(-1), y)
            loss.backward()
            opt.step()
        assert loss.item() < 0.05, (cls.__name__, loss.item())  # the target's variance is 1
