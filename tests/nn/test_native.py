"""The native MinLSTM / MinGRU kernel (biolstm.nn.native.minrnn): the same outputs and gradients
as the float64 PyTorch scan, at any hidden size, with or without bias; the same bits on 1, 2 or
3 threads; safe at extreme gates; a clear fallback when it cannot be built; the workspace's
leases."""

from __future__ import annotations

import platform
import warnings

import pytest
import torch

from biolstm.nn import MinGRU, MinLSTM
from biolstm.nn.engine import release_workspace
from biolstm.nn.native import build, threads
from biolstm.nn.native import minrnn as native
from biolstm.nn.native import workspace as ws_mod
from biolstm.validation import BiolstmWarning


@pytest.fixture
def _kernel():
    # built at install (setup.py), else at first use: its absence is a failure, not a skip
    assert native.kernel() is not None, f"no native kernel: {native.unavailable_reason()}"


needs_kernel = pytest.mark.usefixtures("_kernel")


def _first_use(monkeypatch, tmp_path):
    """Forget the loaded kernel and ignore the install-time builds: the next load compiles into
    tmp_path."""
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setattr(build, "installed", lambda name: [])
    monkeypatch.setenv("BIOLSTM_CACHE", str(tmp_path))


def _run(m, x, h0, x_grad=True):
    x, h0 = x.clone().requires_grad_(x_grad), h0.clone().requires_grad_()
    out, h_n = m(x, h0)
    (out.sin().sum() + 2 * h_n.sum()).backward()  # a loss touching every step and the final state
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    return [out, h_n, x.grad, h0.grad, *grads]


def _assert_near(got, want):
    """Each float32 result within 2e-5 (relative to the float64 one's largest value, plus 1) of
    the float64 result; results the reference did not produce are skipped."""
    for g, w in zip(got, want):
        if w is not None:
            assert (g.double() - w).abs().max().item() < 2e-5 * (w.abs().max().item() + 1.0)


# (input width, hidden, layers, bias, batch_first): inputs up to native.PROJECT_MAX wide are
# projected inside the kernel, wider ones by a matrix product; hidden sizes across lane blocks
CASES = [(3, 5, 1, True, True), (3, 128, 2, False, True), (4, 130, 1, True, False), (40, 257, 2, True, True),
         (33, 20, 2, True, True)]  # fmt: skip


@needs_kernel
@pytest.mark.parametrize("cls", [MinLSTM, MinGRU])
@pytest.mark.parametrize(("inputs", "hidden", "layers", "bias", "batch_first"), CASES)
@pytest.mark.parametrize("x_grad", [True, False])
def test_native_equals_the_float64_scan(cls, inputs, hidden, layers, bias, batch_first, x_grad):
    torch.manual_seed(hidden)
    m = cls(inputs, hidden, num_layers=layers, bias=bias, batch_first=batch_first, scan="native")
    exact = cls(inputs, hidden, num_layers=layers, bias=bias, batch_first=batch_first, scan="linear").double()
    exact.load_state_dict(m.state_dict())
    x = torch.randn(4, 61, inputs) * 3 / inputs**0.5  # large pre-activations: both branches of g, saturated gates
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    h0 = torch.rand(layers, 4, hidden)
    got, want = _run(m, x, h0, x_grad), _run(exact, x.double(), h0.double(), x_grad)
    assert (got[2] is None) is (not x_grad)
    _assert_near(got, want)


@needs_kernel
@pytest.mark.parametrize("cls", [MinLSTM, MinGRU])
@pytest.mark.parametrize("steps", [1, 7, 61])
def test_native_wide_input_in_time_chunks_equals_the_float64_scan(cls, steps, monkeypatch):
    # a wide input is projected and run a time chunk at a time (state and gradient carried
    # across chunks); chunks of 1 and 7 steps (the last one short) and one of the whole sequence
    B, T, D, H = 3, 61, 40, 20
    monkeypatch.setattr(native, "_CHUNK_BYTES", 4 * B * 3 * H * steps)
    assert len(native._spans(B, T, 3 * H, True)) == -(-T // steps)
    torch.manual_seed(steps)
    m = cls(D, H, num_layers=2, scan="native")
    exact = cls(D, H, num_layers=2, scan="linear").double()
    exact.load_state_dict(m.state_dict())
    x, h0 = torch.randn(B, T, D), torch.rand(2, B, H)
    _assert_near(_run(m, x, h0), _run(exact, x.double(), h0.double()))


@needs_kernel
@pytest.mark.parametrize("cls", [MinLSTM, MinGRU])
def test_native_on_one_hot_input_equals_the_float64_scan(cls):
    # the kernel skips the zero entries of x in its projection and weight gradient; the input
    # gradient still covers them
    torch.manual_seed(1)
    m = cls(4, 24, num_layers=2, scan="native")
    exact = cls(4, 24, num_layers=2, scan="linear").double()
    exact.load_state_dict(m.state_dict())
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 50)), 4).float()
    x[0, :5] = 0.0  # an N: no base at all
    h0 = torch.rand(2, 3, 24)
    _assert_near(_run(m, x, h0), _run(exact, x.double(), h0.double()))


def _on_threads(m, x, h0, counts=(1, 2, 3)):
    """_run's results on each number of threads, asserted the same bits as on the first."""
    before = torch.get_num_threads()
    try:
        runs = []
        for n in counts:
            torch.set_num_threads(n)
            runs.append(_run(m, x, h0))
    finally:
        torch.set_num_threads(before)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert torch.equal(a, b)
    return runs[0]


# (class, input width, hidden, layers, batch, steps). Measured on an Intel Xeon with MKL's matrix
# products (which split a long sum between threads and add the parts in an order that depends on
# their number): 1 and 2 threads gave a different weight gradient of layer 1 in the first case (a
# sum over 8 x 300 rows) and a different output in the second (sums over 1,000 inputs). The
# kernel's own products and sums run in one order, however the work is split.
THREAD_CASES = [(MinLSTM, 4, 40, 2, 8, 300), (MinGRU, 1000, 520, 1, 2, 25)]


@needs_kernel
@pytest.mark.parametrize(("cls", "inputs", "hidden", "layers", "batch", "steps"), THREAD_CASES)
def test_native_is_deterministic_across_thread_counts_and_matches_the_module_step(
    cls, inputs, hidden, layers, batch, steps
):
    torch.manual_seed(0)
    m = cls(inputs, hidden, num_layers=layers, scan="native")
    x, h0 = torch.randn(batch, steps, inputs), torch.rand(layers, batch, hidden)
    one = _on_threads(m, x, h0)
    h = h0
    with torch.no_grad():
        for t in range(x.shape[1]):
            h = m.step(x[:, t], h)
    torch.testing.assert_close(h, one[1], atol=1e-5, rtol=1e-5)


@needs_kernel
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="an x86-64 compiler flag")
def test_native_built_without_avx512_is_deterministic_across_thread_counts(monkeypatch, tmp_path):
    # the build for x86-64 CPUs without AVX-512: the products' register blocks are 8 floats wide
    _first_use(monkeypatch, tmp_path)
    monkeypatch.setattr(build, "COMMON_FLAGS", [*build.COMMON_FLAGS, "-mno-avx512f"])
    assert native.kernel() is not None, native.unavailable_reason()
    for cls, inputs, hidden, layers, batch, steps in THREAD_CASES:
        torch.manual_seed(0)
        m = cls(inputs, hidden, num_layers=layers, scan="native")
        exact = cls(inputs, hidden, num_layers=layers, scan="linear").double()
        exact.load_state_dict(m.state_dict())
        x, h0 = torch.randn(batch, steps, inputs), torch.rand(layers, batch, hidden)
        _assert_near(_on_threads(m, x, h0), _run(exact, x.double(), h0.double()))


@needs_kernel
def test_native_gates_stay_exact_when_both_gates_underflow():
    # f = -200, i = -201: f' = sigmoid(f) / (sigmoid(f) + sigmoid(i)) = 1 / (1 + e^-1), though
    # both sigmoids are below float32's range; a naive ratio gives 0/0
    m = MinLSTM(1, 1, bias=True, scan="native")
    with torch.no_grad():
        m.layers[0].weight.zero_()
        m.layers[0].bias.copy_(torch.tensor([-200.0, -201.0, 1.0]))
    x, h0 = torch.zeros(1, 3, 1, requires_grad=True), torch.zeros(1, 1, 1)
    out, _ = m(x, h0)
    a = 1 / (1 + torch.exp(torch.tensor(-1.0)))
    want = torch.zeros(3)
    h = 0.0
    for t in range(3):
        h = a * h + (1 - a) * 1.5
        want[t] = h
    torch.testing.assert_close(out.flatten(), want)
    out.sum().backward()
    assert torch.isfinite(m.layers[0].bias.grad).all() and torch.isfinite(m.layers[0].weight.grad).all()


def test_auto_falls_back_and_native_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setenv("BIOLSTM_NATIVE", "0")
    assert native.kernel() is None
    assert native.unavailable_reason() == "disabled by BIOLSTM_NATIVE=0"
    torch.manual_seed(0)
    m, x = MinLSTM(2, 3), torch.randn(2, 7, 2)
    out = m(x)[0]  # scan='auto' falls back to the PyTorch scan
    m.scan = "linear"
    torch.testing.assert_close(out, m(x)[0])
    m.scan = "native"
    with pytest.raises(RuntimeError, match=r"scan='native'.*disabled by BIOLSTM_NATIVE=0"):
        m(x)
    # a compiler that fails: no kernel, the compiler's complaint kept, nothing left in the cache
    _first_use(monkeypatch, tmp_path)
    monkeypatch.setenv("BIOLSTM_NATIVE", "1")
    monkeypatch.setenv("CC", "false")
    with pytest.warns(BiolstmWarning, match=r"C kernel is not available \(.*false failed.*\); MinLSTM and MinGRU use"):
        assert native.kernel() is None
    assert "false failed" in native.unavailable_reason()
    assert list(tmp_path.iterdir()) == []
    with warnings.catch_warnings():  # said once per process
        warnings.simplefilter("error")
        assert native.kernel() is None
        assert native.describe().startswith("not available (") and "PyTorch scan instead" in native.describe()


@needs_kernel
def test_native_refuses_what_it_cannot_run():
    m = MinGRU(2, 3, scan="native").double()
    with pytest.raises(RuntimeError, match="x, h0 and the parameters are not all CPU float32"):
        m(torch.randn(1, 4, 2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="not all CPU float32"):  # float64 weights, float32 input
        m(torch.randn(1, 4, 2))
    m.scan = "auto"  # auto takes the PyTorch scan for float64
    assert m(torch.randn(1, 4, 2, dtype=torch.float64))[0].dtype == torch.float64


def test_the_kernel_builds_into_the_cache(monkeypatch, tmp_path):
    assert native.kernel() is not None, native.unavailable_reason()
    _first_use(monkeypatch, tmp_path)
    assert native.kernel() is not None
    assert "compiled at first use" in native.describe()
    built = list(tmp_path.glob("minrnn-*.so"))
    assert len(built) == 1 and built[0].stat().st_size > 0
    monkeypatch.setattr(build, "_state", {})
    stamp = built[0].stat().st_mtime_ns
    assert native.kernel() is not None  # a second process loads the cached library without rebuilding
    assert built[0].stat().st_mtime_ns == stamp


@needs_kernel
def test_native_under_cpu_autocast():
    torch.manual_seed(0)
    m, x = MinLSTM(3, 64, scan="native"), torch.randn(8, 200, 3)
    with torch.no_grad():
        want = m(x)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the projection stays float32 for the kernel
            torch.testing.assert_close(m(x)[0], want)


@needs_kernel
@pytest.mark.parametrize("inputs", [4, 40])  # projected in the kernel, or by a matrix product
def test_native_propagates_nan(inputs):
    # a diverged weight must show as NaN in the output (the Trainer's non-finite check relies
    # on it), not be hidden by the kernel's clamped exponential
    m = MinLSTM(inputs, 8, scan="native")
    with torch.no_grad():
        m.layers[0].weight[3, 0] = float("nan")
    out = m(torch.randn(2, 5, inputs))[0]
    assert torch.isnan(out[..., 3]).all() and torch.isfinite(out[..., :3]).all()
    # one-hot input: the kernel skips zero entries only while every weight is finite, so the
    # NaN weight of a base that never occurs still reaches the output, as 0 * NaN does in torch
    x = torch.zeros(2, 5, inputs)
    x[..., 1] = 1.0
    out = m(x)[0]
    assert torch.isnan(out[..., 3]).all() and torch.isfinite(out[..., :3]).all()


def test_workspace_hands_a_buffer_out_again_only_when_its_lease_ends():
    ws = ws_mod.Workspace(keep=2)
    shape = (3 << 20,)  # 12 MiB: above the size glibc recycles by itself
    a = ws.lease(shape)
    first = a.tensor.data_ptr()
    b = ws.lease(shape)
    second = b.tensor.data_ptr()
    assert second != first  # a is leased
    view = a.tensor[5:]
    a.release()
    a.release()  # idempotent
    assert a.tensor is None
    c = ws.lease(shape)
    assert c.tensor.data_ptr() == first  # released: reused, no fresh pages (the lease's holder vouched)
    del view
    del b  # a lease dropped by its holder ends too
    d = ws.lease(shape)
    assert d.tensor.data_ptr() == second
    assert len(ws._free) == 0
    c.release(), d.release()
    assert len(ws._free) == 2  # at most keep free buffers
    ws.lease(shape).release()
    assert len(ws._free) == 2
    assert ws.lease((10,)).tensor.shape == (10,)  # small requests are plain tensors, never kept
    huge = ws.lease((ws_mod.WORKSPACE_MAX_BYTES // 4 + 1,))  # and so are huge ones
    huge.release()
    assert all(len(buf) <= ws_mod.WORKSPACE_MAX_BYTES for buf in ws._free)
    ws.clear()
    assert ws._free == []
    ws_mod.workspace.lease(shape).release()
    assert ws_mod.workspace._free
    release_workspace()  # the one call that frees every kept buffer
    assert ws_mod.workspace._free == []


@needs_kernel
def test_native_keeps_saved_buffers_through_a_retained_graph():
    # a wide input goes through the workspace; the graph kept by retain_graph must keep its
    # projected input even while other steps run in between
    torch.manual_seed(0)
    m = MinLSTM(40, 256, scan="native")
    x1, x2 = torch.randn(2, 2048, 40), torch.randn(2, 2048, 40)
    loss = m(x1)[0].square().mean()
    loss.backward(retain_graph=True)
    first = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    m(x2)[0].square().mean().backward()  # takes whatever workspace buffers are free
    m.zero_grad()
    loss.backward()
    for p, want in zip(m.parameters(), first):
        torch.testing.assert_close(p.grad, want, rtol=0, atol=0)


@needs_kernel
@pytest.mark.parametrize("inputs", [4, 40])
def test_native_reads_broadcast_and_strided_output_gradients(inputs):
    # the sum of the output gives a gradient of strides (0, 0, 0), a weighted sum over units per
    # step one of stride 0 along the units, a time-major loss a permuted one: read in place
    torch.manual_seed(2)
    m = MinLSTM(inputs, 20, scan="native")
    exact = MinLSTM(inputs, 20, scan="linear").double()
    exact.load_state_dict(m.state_dict())
    x, w, r = torch.randn(3, 30, inputs), torch.randn(3, 30), torch.randn(30, 3, 20)
    losses = [lambda o: o.sum(), lambda o: (o.sum(-1) * w.to(o.dtype)).sum(),
              lambda o: (o.transpose(0, 1) * r.to(o.dtype)).sum()]  # fmt: skip
    for loss in losses:
        grads = []
        for model, xi in ((m, x), (exact, x.double())):
            xi = xi.clone().requires_grad_()
            loss(model(xi)[0]).backward()
            grads.append([xi.grad, *(p.grad.clone() for p in model.parameters())])
            model.zero_grad()
        _assert_near(*grads)


@needs_kernel
@pytest.mark.parametrize("inputs", [4, 40])
def test_native_built_without_openmp_splits_lanes_over_python_threads(inputs, monkeypatch, tmp_path):
    torch.manual_seed(3)
    m = MinLSTM(inputs, 130, num_layers=2, scan="native")  # two lane blocks per batch row
    x, h0 = torch.randn(4, 300, inputs), torch.rand(2, 4, 130)  # enough work for two threads
    want = _run(m, x, h0)  # the OpenMP build (where the compiler has it)
    _first_use(monkeypatch, tmp_path)
    monkeypatch.setattr(build, "OPENMP", [])
    monkeypatch.setattr(threads, "_pool", {})
    assert native.kernel() is not None and not native.kernel().openmp
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        got = _run(m, x, h0)
    finally:
        torch.set_num_threads(before)
    assert 2 in threads._pool  # the lanes went to two Python threads
    for g, w in zip(got, want):
        assert torch.equal(g, w)  # the same lanes, the same sums, whichever threads run them
