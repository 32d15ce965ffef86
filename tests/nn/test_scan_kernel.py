"""The transparent engine's C step loops (biolstm.nn.native.scan): for every cell, activation the
kernel knows, variable lengths, recurrent-dropout masks, hidden sizes off the vector width and
batches on one or several threads, the float32 kernel gives the outputs, gates and gradients of
the float64 PyTorch step loop; anything it does not know runs the PyTorch loop."""

from __future__ import annotations

import pytest
import torch

from biolstm.nn import LSTM, get_activation
from biolstm.nn.engine import GRUScan, LSTMScan, RNNScan
from biolstm.nn.native import build
from biolstm.nn.native import scan as native_scan
from biolstm.validation import BiolstmWarning


@pytest.fixture
def _kernel():
    # built at install (setup.py), else at first use: its absence is a failure, not a skip
    assert native_scan.kernel() is not None, f"no step kernel: {native_scan.unavailable_reason()}"


needs_kernel = pytest.mark.usefixtures("_kernel")

ACTS = [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("linear", "sigmoid"), ("sigmoid", "tanh")]


def _inputs(cell: str, B: int, H: int, lengths: bool, mask: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    T, D = 23, 6
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    r = lambda *s, scale=1.0: torch.randn(*s, generator=g) * scale  # noqa: E731
    # a contracting recurrence: float32 rounding is not amplified over the steps
    args = dict(x=r(T, B, D), w_ih=r(G * H, D, scale=0.5), b=r(G * H, scale=0.3), h0=r(B, H, scale=0.5),
                w_hh=r(G * H, H, scale=0.6 / H**0.5))  # fmt: skip
    if cell == "lstm":
        args["c0"] = r(B, H, scale=0.5)
    if cell == "gru":
        args["b_hh"] = r(G * H, scale=0.3)
    args["mask"] = (torch.rand(B, H, generator=g) > 0.3).float() / 0.7 if mask else None
    lens = None
    if lengths:
        lens = torch.sort(torch.randint(0, T + 1, (B,), generator=g), descending=True).values
        lens[0] = T  # the longest runs all steps; some may have none
    return args, lens


def _apply(cell, args, lens, act, rec):
    a, ra = get_activation(act), get_activation(rec)
    T = args["x"].shape[0]
    bs = None if lens is None else [int((lens > t).sum()) for t in range(T)]
    if cell == "lstm":
        out = LSTMScan.apply(args["x"], args["w_ih"], args["b"], args["h0"], args["c0"], args["w_hh"], None,
                             args["mask"], bs, lens, a, ra, False)  # fmt: skip
        return out[0], out[1:3], out[3]
    if cell == "gru":
        out = GRUScan.apply(args["x"], args["w_ih"], args["b"], args["h0"], args["w_hh"], args["b_hh"], args["mask"],
                            bs, lens, a, ra, False)  # fmt: skip
        return out[0], out[1:2], out[2]
    y, hn = RNNScan.apply(args["x"], args["w_ih"], args["b"], args["h0"], args["w_hh"], args["mask"], bs, lens, a,
                          False)  # fmt: skip
    return y, (hn,), y


def _run(cell, args, lens, act, rec, dtype, loss):
    copy = lambda k, v: v.detach().to(dtype, copy=True).requires_grad_(k != "mask")  # noqa: E731
    args = {k: (copy(k, v) if v is not None else None) for k, v in args.items()}
    y, states, gates = _apply(cell, args, lens, act, rec)
    total = loss(y) + sum(s.square().sum() for s in states)
    total.backward()
    return [y, *states, gates, *(v.grad for k, v in args.items() if v is not None and k != "mask")]


LOSSES = {
    "sum": lambda y: y.sum(),  # gradient of strides (0, 0, 0): read in place
    "weighted": lambda y: (y.sin() * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum(),
}


@needs_kernel
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize(("act", "rec"), ACTS)
@pytest.mark.parametrize(("B", "H"), [(3, 5), (40, 33)])  # one thread / several; H off the 16-float vectors
@pytest.mark.parametrize(("lengths", "mask"), [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("loss", ["sum", "weighted"])
def test_kernel_equals_the_float64_torch_loop(cell, act, rec, B, H, lengths, mask, loss, monkeypatch):
    calls = []
    for name in ("lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "rnn_forward", "rnn_backward"):
        fn = getattr(native_scan, name)
        monkeypatch.setattr(native_scan, name, lambda *a, _fn=fn, _n=name, **k: (calls.append(_n), _fn(*a, **k))[1])
    args, lens = _inputs(cell, B, H, lengths, mask, seed=B * H)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = _run(cell, args, lens, act, rec, torch.float32, LOSSES[loss])
    finally:
        torch.set_num_threads(before)
    assert calls == [f"{cell}_forward", f"{cell}_backward"]  # the float32 run was the kernel's
    want = _run(cell, args, lens, act, rec, torch.float64, LOSSES[loss])
    assert len(calls) == 2  # the float64 run was PyTorch's
    for g, w in zip(got, want):
        assert g.dtype == torch.float32
        assert (g.double() - w).abs().max().item() < 3e-5 * (w.abs().max().item() + 1.0)


@needs_kernel
def test_what_the_kernel_does_not_know_runs_the_torch_loop(monkeypatch):
    used = []
    monkeypatch.setattr(native_scan, "lstm_forward", lambda *a, **k: used.append(1))
    torch.manual_seed(0)
    x = torch.randn(2, 7, 3)
    for m in (LSTM(3, 4, batch_first=True, activation="elu"), LSTM(3, 4, batch_first=True, proj_size=2),
              LSTM(3, 4, batch_first=True).double()):  # fmt: skip
        m.engine = "transparent"
        m(x.to(next(m.parameters()).dtype))
    assert used == []
    LSTM(3, 4, batch_first=True, engine="transparent")(x)
    assert used == [1]


def test_without_the_kernel_the_layers_say_so_once_and_run(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setattr(build, "installed", lambda name: [])
    monkeypatch.setenv("BIOLSTM_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    torch.manual_seed(0)
    m, x = LSTM(3, 4, batch_first=True, engine="transparent"), torch.randn(2, 7, 3)
    with pytest.warns(BiolstmWarning, match=r"LSTM/GRU/RNN step kernel is not available \(false failed.*PyTorch"):
        out = m(x)[0]
    assert native_scan.kernel() is None and "false failed" in native_scan.unavailable_reason()
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setenv("BIOLSTM_NATIVE", "0")
    torch.testing.assert_close(m(x)[0], out)


def test_the_kernels_were_built_at_install_for_each_cpu_level():
    # `pip install` (make test's set-up) builds every kernel through setup.py; the loader picks
    # the best build this CPU runs, and each build it could pick gives the same values
    for name in ("scan", "minrnn"):
        assert build.installed(name), f"no install-time build of {name} in {build.KERNEL_DIR}"
    if build.x86():
        assert [t for t, _, _ in build.X86_LEVELS] == ["v4", "v3", "v1"]


@needs_kernel
def test_each_install_time_build_this_cpu_runs_gives_the_same_values(monkeypatch):
    args, lens = _inputs("lstm", 8, 20, True, True, seed=1)
    builds = build.installed("scan")
    results = []
    for path in builds:
        monkeypatch.setattr(build, "_state", {})
        monkeypatch.setattr(build, "installed", lambda name, _p=path: [_p])
        assert native_scan.describe().startswith(f"active, built at install ({path.name})")
        results.append(_run("lstm", args, lens, "tanh", "sigmoid", torch.float32, LOSSES["weighted"]))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # the builds differ in FMA use only


def test_the_loader_picks_the_best_build_the_cpu_runs(monkeypatch):
    if not build.x86():
        pytest.skip("instruction-set levels are x86-64's")
    monkeypatch.setattr(build, "_cpu_flags", lambda: {"sse2", "avx2", "fma", "bmi2", "f16c", "movbe", "avx512f"})
    assert build._runnable_tags() == ["v3", "v1"]  # AVX-512 in part only: not v4
    monkeypatch.setattr(build, "_cpu_flags", lambda: set())
    assert build._runnable_tags() == ["v1"]  # nothing known: the baseline only


@needs_kernel
def test_gradients_fading_back_through_time_are_flushed_not_subnormal():
    # a loss on the last step only: the gate gradients fade to nothing over 400 steps; stored
    # subnormal they would slow every later product several times over
    from biolstm.nn.engine import common

    torch.manual_seed(0)
    m, x = LSTM(4, 32, batch_first=True, engine="transparent"), torch.rand(16, 400, 4)
    lib = native_scan.kernel()
    before = lib.scan_csr() & 0x8040
    m(x)[0][:, -1].sum().backward()
    assert lib.scan_csr() & 0x8040 == before  # flush-to-zero is off again afterwards
    dg = common._WORKSPACE.__dict__["lstm_dg"][1]
    assert (dg[0] == 0).all() and (dg[-1] != 0).any()  # faded to zero at the first step
    assert not ((dg != 0) & (dg.abs() < torch.finfo(torch.float32).tiny)).any()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


def test_a_failing_gpu_kernel_says_so_once_and_the_torch_loop_runs(monkeypatch):
    # a Triton kernel that cannot compile or launch on some GPU: one warning naming why, then
    # the PyTorch loop, forward and backward, for the rest of the process
    from biolstm.nn.engine import common
    from biolstm.nn.engine import lstm as lstm_module

    class Broken:
        @staticmethod
        def lstm_forward(*args):
            raise RuntimeError("no kernel for this GPU")

    monkeypatch.setattr(common, "_TRITON_FAILED", [])
    monkeypatch.setattr(lstm_module, "step_kernel", lambda tensors, *acts: Broken)
    torch.manual_seed(0)
    m, x = LSTM(3, 4, batch_first=True, engine="transparent"), torch.randn(2, 5, 3, requires_grad=True)
    with pytest.warns(BiolstmWarning, match=r"Triton step kernels failed \(RuntimeError: no kernel for this GPU\)"):
        out = m(x)[0]
    out.sum().backward()
    ref = torch.nn.LSTM(3, 4, batch_first=True)
    ref.load_state_dict(m.state_dict())
    torch.testing.assert_close(out, ref(x)[0])
    assert common._TRITON_FAILED and common.step_kernel((x.cuda() if torch.cuda.is_available() else x,)) is not Broken


def test_an_installed_build_of_another_source_is_not_loaded(monkeypatch, tmp_path):
    # a checkout whose kernel changed without a reinstall: the stale build is skipped, the
    # current source compiled at first use
    assert build.installed("scan") and native_scan.kernel() is not None, native_scan.unavailable_reason()
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setenv("BIOLSTM_CACHE", str(tmp_path))
    monkeypatch.setattr(build, "source_hash", lambda name: "another-source")
    assert native_scan.describe().startswith("active, compiled at first use")
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.undo()
    assert native_scan.describe().startswith("active, built at install")
