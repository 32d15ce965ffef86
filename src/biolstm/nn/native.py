"""A small native kernel for MinLSTM / MinGRU on the CPU, compiled at first use.

``kernels/minrnn.c`` fuses a layer's gates and its recurrence into one pass over time forward
and one backward (see that file). It is plain C, built once with the system C compiler
(``$CC``, else ``cc``) into a user cache folder (``$BIOLSTM_CACHE``, else
``$XDG_CACHE_HOME/biolstm`` or ``~/.cache/biolstm``) under a name made from a hash of the
source, the flags and the CPU, and loaded with ctypes. Built with OpenMP it runs on torch's
own OpenMP thread pool (the process has loaded torch's libgomp.so.1 before, and the loader
reuses it), so its threads do not fight torch's spinning workers for the cores; where OpenMP
is missing it is built without and split over Python threads (ctypes releases the GIL).
A wide layer's matrix products and every sum of partial gradients are the kernel's own too,
each sum in one fixed order: outputs and gradients are the same bits at any thread count (on
one machine and build; a BLAS such as MKL splits a long sum between its threads and adds the
parts in an order that depends on how many there are). Where no compiler is found, the build
fails, or ``BIOLSTM_NATIVE=0`` is set, :func:`kernel` returns None (with the reason in
:func:`unavailable_reason`) and the layers use their PyTorch scan, which gives the same values;
a build that fails says so once per process (a BiolstmWarning naming the reason).
``biolstm --version`` reports the kernel (:func:`describe`).
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

_SOURCE = Path(__file__).with_name("kernels") / "minrnn.c"
# -ffp-contract=fast: ISO C mode would otherwise keep every a * b + c as two roundings, no FMA
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast", "-fPIC", "-shared",
          "-std=c99"]  # fmt: skip
_OPENMP = ["-fopenmp"]  # tried first; without it the kernel still builds, threads come from Python
_BLOCK = 128  # hidden units per lane, as BLOCK in minrnn.c
_lock = threading.Lock()
_state: dict = {}


def cache_dir() -> Path:
    root = os.environ.get("BIOLSTM_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "biolstm"


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


def _compile(cc: str, flags: list[str]) -> Path:
    """The library built with ``flags``, from the cache or compiled into it."""
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join([cc, *flags, _cpu_signature()]).encode()).hexdigest()[:16]
    target = cache_dir() / f"minrnn-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        res = subprocess.run([cc, *flags, "-o", tmp, str(_SOURCE)], capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise OSError(f"{cc} failed: {res.stderr.strip()[-500:]}")
        os.replace(tmp, target)  # atomic: another process sees no library or the whole of it
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _build() -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise OSError("no C compiler (set CC or install gcc)")
    for flags in (_FLAGS + _OPENMP, _FLAGS):  # without OpenMP where it does not build or load
        try:
            lib = ctypes.CDLL(str(_compile(cc, flags)))
            break
        except (OSError, subprocess.SubprocessError) as err:
            if flags == _FLAGS:
                raise OSError(str(err)) from err
    i64, ptr, int_ = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    strides = ctypes.POINTER(i64)
    lib.minrnn_forward.argtypes = [ptr] * 6 + [strides] + [i64] * 4 + [int_, i64, i64, int_]
    lib.minrnn_backward.argtypes = [ptr] * 7 + [strides] + [ptr] * 5 + [i64] * 4 + [int_, i64, i64, int_]
    lib.minrnn_gemm.argtypes = [ptr] * 3 + [strides] + [i64] * 3 + [int_, i64, i64, i64, int_]
    lib.minrnn_sum.argtypes = [ptr] * 2 + [i64] * 6 + [int_]
    lib.minrnn_gemm_tiles.argtypes = lib.minrnn_sum_parts.argtypes = [i64, i64]
    lib.minrnn_gemm_tiles.restype = lib.minrnn_sum_parts.restype = i64
    lib.minrnn_forward.restype = lib.minrnn_backward.restype = lib.minrnn_gemm.restype = lib.minrnn_sum.restype = None
    lib.minrnn_openmp.restype = int_
    lib.openmp = bool(lib.minrnn_openmp())
    return lib


def kernel() -> ctypes.CDLL | None:
    """The loaded kernel library, building it on first use; None where it cannot be had."""
    with _lock:
        if "lib" not in _state:
            _state["lib"], _state["why"] = None, None
            if os.environ.get("BIOLSTM_NATIVE", "1") == "0":
                _state["why"] = "disabled by BIOLSTM_NATIVE=0"
            else:
                try:
                    _state["lib"] = _build()
                except (OSError, subprocess.SubprocessError) as err:
                    _state["why"] = str(err)
                    import warnings

                    from ..validation import BiolstmWarning

                    # once per process (the result is kept): which kernel, why, and what runs instead
                    warnings.warn(f"the MinLSTM/MinGRU C kernel is not available ({err}); MinLSTM and MinGRU "
                                  "use their PyTorch scan instead (same values, slower)", BiolstmWarning,
                                  stacklevel=2)  # fmt: skip
        return _state["lib"]


def describe() -> str:
    """One line on the kernel: active (with or without OpenMP, and where it is cached) or why
    not. Builds it if it was not yet."""
    lib = kernel()
    if lib is None:
        return f"not available ({unavailable_reason()}); the PyTorch scan runs instead"
    return f"active ({'OpenMP' if lib.openmp else 'Python threads'}; built in {cache_dir()})"


def unavailable_reason() -> str | None:
    """Why :func:`kernel` gave None (after it was called), else None."""
    return _state.get("why")


def usable(*tensors: Tensor) -> bool:
    """Whether the native kernel can run on these tensors (input, parameters, state): all on
    the CPU in float32, and the kernel available."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and kernel() is not None


_pool: dict[int, ThreadPoolExecutor] = {}
if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's threads: start afresh
    os.register_at_fork(after_in_child=_pool.clear)


def _run(fn, lanes: int, work: int, *args) -> None:
    """Call ``fn(*args, lane0, lane1, threads)`` over ``lanes`` lanes, split over torch's thread
    count when there is enough ``work`` (elements) to pay for the threads: by OpenMP inside the
    kernel when it was built with it, else by one call per Python thread."""
    n = max(1, min(torch.get_num_threads(), lanes, work // 65536 or 1))
    if n == 1 or kernel().openmp:
        fn(*args, 0, lanes, n)
        return
    pool = _pool.get(n)
    if pool is None:
        pool = _pool[n] = ThreadPoolExecutor(n, thread_name_prefix="biolstm-minrnn")
    bounds = [lanes * k // n for k in range(n + 1)]
    for f in [pool.submit(fn, *args, lo, hi, 1) for lo, hi in itertools.pairwise(bounds)]:
        f.result()


WORKSPACE_MAX_BYTES = 256 * 2**20  # kept scratch buffers are at most this large (here and in functional)


class _Workspace:
    """Reusable float32 buffers for the kernel's largest temporary: the projected input of a
    wide layer, kept from forward for backward (50 MB at B=8, T=4096, 3H=384). glibc gives
    buffers above 32 MiB back to the system when they are freed, so each fresh one is faulted in
    again page by page (about 20 ms for 50 MB on the benchmark machine, as long as the matrix
    product that fills it). A buffer here is handed out again only once nothing refers to it: a
    tensor made by ``torch.frombuffer`` holds a reference to its buffer for as long as its
    storage lives (views, tensors saved for backward, a graph kept with retain_graph included). At most ``keep`` free
    buffers are kept, none above WORKSPACE_MAX_BYTES (a 100,000-step sequence would otherwise
    keep 1.2 GB after its step); ``biolstm.nn.functional.release_workspace()`` drops them all."""

    MIN_BYTES = 8 << 20  # smaller buffers glibc recycles itself

    def __init__(self, keep: int = 4):
        self.keep = keep
        self._bufs: list[bytearray] = []
        self._lock = threading.Lock()
        self._unused = self._refs_when_unused()

    def _refs_when_unused(self) -> int:
        self._bufs.append(bytearray(0))
        try:
            return next(sys.getrefcount(b) for b in self._bufs)  # the list, the loop name, the call
        finally:
            self._bufs.clear()

    def empty(self, shape: tuple[int, ...]) -> Tensor:
        """An uninitialised float32 tensor of ``shape``, on a kept buffer where one is free."""
        nbytes = 4 * torch.Size(shape).numel()
        if not self.MIN_BYTES <= nbytes <= WORKSPACE_MAX_BYTES:
            return torch.empty(shape)
        with self._lock:
            buf = next((b for b in self._bufs if len(b) == nbytes and sys.getrefcount(b) == self._unused), None)
            if buf is None:
                buf = bytearray(nbytes)
                free = [b for b in self._bufs if sys.getrefcount(b) == self._unused]
                for old in free[: max(0, len(free) + 1 - self.keep)]:
                    self._bufs.remove(old)
                self._bufs.append(buf)
            return torch.frombuffer(buf, dtype=torch.float32).view(shape)

    def clear(self) -> None:
        with self._lock:
            self._bufs.clear()  # buffers still in use live on with their tensors


_workspace = _Workspace()


PROJECT_MAX = 32  # inputs up to this width are projected inside the kernel (see minrnn.c): faster here to D=32


_CHUNK_BYTES = 2 << 20  # one time chunk of a wide layer's projected input: it stays in cache for the kernel


def _spans(B: int, T: int, GH: int, wide: bool) -> list[tuple[int, int]]:
    """The kernel calls' time spans [t0, t1): the whole sequence for a narrow input; for a wide
    one, chunks whose projection is made (and, backward, its gradient used) just before or after
    the kernel reads (writes) it, while it is in cache."""
    from .functional import _chunks  # functional imports this module

    return _chunks(T, B * GH, budget=_CHUNK_BYTES // 4) if wide else [(0, T)]


def _strides(*values: int):
    return (ctypes.c_int64 * len(values))(*values)


def _gemm(a: int, a_rows: tuple, a_step: int, b: int, b_rows: tuple, c: int, c_rows: tuple, M: int, N: int, K: int,
          accumulate: bool) -> None:  # fmt: skip
    """C (M x N) = (C if accumulate else 0) + A (M x K) B (K x N) at addresses a, b, c: A(i, k) at
    a_rows(i) + k * a_step, B(k, j) at b_rows(k) + j, C(i, j) at c_rows(i) + j (in floats), each
    rows map (n, outer, inner) being i -> (i // n) * outer + (i % n) * inner. Each element is one
    chain of multiply-adds over k in order, whatever the thread count (see minrnn.c), which a
    BLAS does not promise: MKL splits a long k between its threads."""
    lib, parts = kernel(), torch.get_num_threads()  # tiles for the threads: they change no bit
    _run(lib.minrnn_gemm, lib.minrnn_gemm_tiles(M, parts), M * N * K // 32, a, b, c,
         _strides(*a_rows, *b_rows, *c_rows, a_step), M, N, K, int(accumulate), parts)  # fmt: skip


def _rows(n: int, T: int, F: int) -> tuple[int, int, int]:
    """Rows (b, t) of a time chunk of n steps of a contiguous (B, T, F) tensor."""
    return (n, T * F, F)


def _flat(stride: int) -> tuple[int, int, int]:
    """Rows ``stride`` floats apart."""
    return (1, stride, 0)


def _sum_rows(t: Tensor) -> Tensor:
    """(outer, rows, cols) contiguous -> (outer, cols), the rows added in order whatever the
    thread count (torch.sum promises no order)."""
    outer, rows, cols = t.shape
    out = torch.empty((outer, cols))
    lib = kernel()
    _run(lib.minrnn_sum, lib.minrnn_sum_parts(outer, cols), t.numel() // 4, t.data_ptr(), out.data_ptr(), rows, cols,
         rows * cols, cols)  # fmt: skip
    return out


class MinRNNLayer(torch.autograd.Function):
    """One MinLSTM / MinGRU layer: ``minrnn(x, weight, bias, h0, lstm)`` with x (B, T, D),
    weight (G*H, D), bias (G*H,) or None, h0 (B, H) -> output (B, T, H). For small D (one-hot
    DNA, D=4; up to :data:`PROJECT_MAX`) the kernel projects each step itself and the
    (B, T, G*H) pre-activations and their gradient never exist. For wider inputs the projection
    is a matrix product per time chunk (:func:`_gemm`), stored chunk after chunk for backward; the
    kernel adds the bias, runs the gates and the recurrence over the chunk while it is in cache.
    Backward runs the chunks in reverse, each chunk's gradient of the projection going into the
    weight and input gradients at once. Backward returns the bias gradient from the same pass."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, h0: Tensor, lstm: bool) -> Tensor:
        lib = kernel()
        B, T, D = x.shape
        H, GH = h0.shape[1], weight.shape[0]
        x = x.contiguous()
        weight = weight.detach()
        bias_ = bias.detach().contiguous() if bias is not None else torch.zeros(GH)
        h0 = h0.contiguous()
        out = torch.empty((B, T, H), dtype=x.dtype)
        wide = D > PROJECT_MAX
        pre = _workspace.empty((B * T * GH,)) if wide else None  # chunk after chunk, each (B, t1 - t0, G*H)
        wt = weight.t().contiguous()  # (D, G*H)
        for t0, t1 in _spans(B, T, GH, wide):
            chunk = None
            if wide:  # x[:, t0:t1] (B * n, D) @ wt -> the chunk (B * n, G*H), read in place
                chunk = pre[B * t0 * GH : B * t1 * GH]
                _gemm(_at(x, t0), _rows(t1 - t0, T, D), 1, wt.data_ptr(), _flat(GH), chunk.data_ptr(), _flat(GH),
                      B * (t1 - t0), GH, D, False)  # fmt: skip
            start, stride = _state_before(h0, out, t0)
            _run(lib.minrnn_forward, _lanes(B, H), B * (t1 - t0) * H, _ptr(chunk), _at(x, t0), _ptr(wt),
                 bias_.data_ptr(), start, _at(out, t0), _strides(T * D, stride, T * H), B, t1 - t0, H, D,
                 int(lstm))  # fmt: skip
        ctx.save_for_backward(x, weight.contiguous(), wt, bias_, pre, h0, out)
        ctx.lstm, ctx.has_bias = lstm, bias is not None
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        lib = kernel()
        x, weight, wt, bias_, pre, h0, out = ctx.saved_tensors
        if grad.stride(-1) not in (0, 1):  # the kernel reads units in a row, or one value for all (sum's gradient)
            grad = grad.contiguous()
        B, T, H = out.shape
        D, GH = x.shape[2], weight.shape[0]
        lanes = _lanes(B, H)
        need_x, need_w, need_b, need_h0, _ = ctx.needs_input_grad
        wide = pre is not None
        spans = _spans(B, T, GH, wide)
        carry, grad_bias = torch.zeros_like(h0), torch.zeros((B, GH), dtype=x.dtype)  # carry ends as dL/dh0
        # wide: one chunk's dL/d pre at a time, folded into grad_x and grad_w after each chunk;
        # narrow: the kernel's own per-lane input gradient and per-row weight gradient, summed after.
        # Every sum here has one order whatever the thread count: the kernel's lanes, _gemm, _sum_rows
        gpre = torch.empty(B * max(t1 - t0 for t0, t1 in spans) * GH) if wide else None
        grad_x = torch.empty((B, T, D)) if need_x and wide else None
        grad_w = torch.zeros((GH, D)) if need_w and wide else None
        grad_xl = torch.empty((lanes, T, D)) if need_x and not wide else None
        grad_wt = None if wide else torch.zeros((B, D, GH))
        for t0, t1 in reversed(spans):
            n = t1 - t0
            start, stride = _state_before(h0, out, t0)
            _run(lib.minrnn_backward, lanes, B * n * H, pre.data_ptr() + 4 * B * t0 * GH if wide else None, _at(x, t0),
                 _ptr(wt), bias_.data_ptr(), start, _at(out, t0), grad.data_ptr() + 4 * t0 * grad.stride(1),
                 _strides(T * D, stride, T * H, *grad.stride()), _ptr(gpre), _ptr(grad_xl), _ptr(grad_wt),
                 carry.data_ptr(), grad_bias.data_ptr(), B, n, H, D, int(ctx.lstm))  # fmt: skip
            if wide and need_w:  # grad_w (G*H, D) += gpre (B * n, G*H)^T @ x[:, t0:t1] (B * n, D)
                _gemm(gpre.data_ptr(), _flat(1), GH, _at(x, t0), _rows(n, T, D), grad_w.data_ptr(), _flat(D), GH, D,
                      B * n, True)  # fmt: skip
            if wide and need_x:  # grad_x[:, t0:t1] (B * n, D) = gpre (B * n, G*H) @ weight (G*H, D)
                _gemm(gpre.data_ptr(), _flat(GH), 1, weight.data_ptr(), _flat(D), _at(grad_x, t0), _rows(n, T, D),
                      B * n, D, GH, False)  # fmt: skip
        if not wide:
            if need_x:  # per lane (B, lanes per row, T * D) -> per row
                grad_x = grad_xl.view(B, T, D) if lanes == B else _sum_rows(grad_xl.view(B, -1, T * D)).view(B, T, D)
            grad_w = _sum_rows(grad_wt.view(1, B, D * GH)).view(D, GH).t() if need_w else None
        grad_b = _sum_rows(grad_bias.view(1, B, GH)).view(GH) if need_b and ctx.has_bias else None
        return grad_x, grad_w, grad_b, carry if need_h0 else None, None


def _at(t: Tensor, step: int) -> int:
    """Address of step ``step`` of batch row 0 of a contiguous (B, T, ...) float32 tensor."""
    return t.data_ptr() + 4 * step * t.stride(1)


def _state_before(h0: Tensor, out: Tensor, t0: int) -> tuple[int, int]:
    """Address and batch stride of the state before step t0: h0, or the output at t0 - 1."""
    return (h0.data_ptr(), h0.stride(0)) if t0 == 0 else (_at(out, t0 - 1), out.stride(0))


def _lanes(B: int, H: int) -> int:
    """Work items of the kernel: each batch row's hidden units in blocks of _BLOCK."""
    return B * -(-H // _BLOCK)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()
