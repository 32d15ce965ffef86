"""The MinLSTM / MinGRU layer on its C kernel (``kernels/minrnn.c``).

The kernel fuses a layer's gates and its recurrence into one pass over time forward and one
backward (see that file). Built with OpenMP it runs on torch's own OpenMP thread pool; where
OpenMP is missing, calls are split over Python threads (:mod:`.threads`). A wide layer's matrix
products and every sum of partial gradients are the kernel's own too, each sum in one fixed
order: outputs and gradients are the same bits at any thread count (on one machine and build; a
BLAS such as MKL splits a long sum between its threads and adds the parts in an order that
depends on how many there are). Where the kernel cannot be had (:mod:`.build`), :func:`kernel`
returns None and the layers use their PyTorch scan, which gives the same values.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from . import build
from .threads import run_lanes
from .workspace import workspace

_BLOCK = 128  # hidden units per lane, as BLOCK in minrnn.c


def _setup(lib: ctypes.CDLL) -> None:
    i64, ptr, int_ = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    strides = ctypes.POINTER(i64)
    lib.minrnn_forward.argtypes = [ptr] * 6 + [strides] + [i64] * 4 + [int_, i64, i64, int_]
    lib.minrnn_backward.argtypes = [ptr] * 7 + [strides] + [ptr] * 5 + [i64] * 4 + [int_, i64, i64, int_]
    lib.minrnn_gemm.argtypes = [ptr] * 3 + [strides] + [i64] * 3 + [int_, i64, i64, i64, int_]
    lib.minrnn_sum.argtypes = [ptr] * 2 + [i64] * 6 + [int_]
    lib.minrnn_gemm_tiles.argtypes = lib.minrnn_sum_parts.argtypes = [i64, i64]
    lib.minrnn_gemm_tiles.restype = lib.minrnn_sum_parts.restype = i64
    lib.minrnn_forward.restype = lib.minrnn_backward.restype = lib.minrnn_gemm.restype = lib.minrnn_sum.restype = None


def kernel() -> ctypes.CDLL | None:
    """The loaded kernel library, built or found on first use; None where it cannot be had."""
    return build.load("minrnn", _setup)


def describe() -> str:
    return build.describe("minrnn", _setup)


def unavailable_reason() -> str | None:
    """Why :func:`kernel` gave None (after it was called), else None."""
    return build.unavailable_reason("minrnn")


def usable(*tensors: Tensor) -> bool:
    """Whether the native kernel can run on these tensors (input, parameters, state): all on
    the CPU in float32, and the kernel available."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and kernel() is not None


def _run(fn, lanes: int, work: int, *args) -> None:
    run_lanes(kernel().openmp, fn, lanes, work, *args)


PROJECT_MAX = 32  # inputs up to this width are projected inside the kernel (see minrnn.c): faster here to D=32


_CHUNK_BYTES = 2 << 20  # one time chunk of a wide layer's projected input: it stays in cache for the kernel


def _spans(B: int, T: int, GH: int, wide: bool) -> list[tuple[int, int]]:
    """The kernel calls' time spans [t0, t1): the whole sequence for a narrow input; for a wide
    one, chunks whose projection is made (and, backward, its gradient used) just before or after
    the kernel reads (writes) it, while it is in cache."""
    from ..engine.common import chunks  # the engine imports this package

    return chunks(T, B * GH, budget=_CHUNK_BYTES // 4) if wide else [(0, T)]


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
        lease = workspace.lease((B * T * GH,)) if wide else None
        pre = lease.tensor if wide else None  # chunk after chunk, each (B, t1 - t0, G*H)
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
        ctx.lease = lease  # the buffer of pre is this node's until the node is gone
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
