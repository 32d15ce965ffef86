"""The transparent engine's step loops in C (``kernels/scan.c``): bindings and when they apply.

Each call runs one layer and direction over all its steps, forward or backward: per step one
matrix product by torch's own BLAS (its ``sgemm_``, found in torch's library) and one fused
element-wise pass that also stores every gate. The engine (:mod:`biolstm.nn.engine`) calls these
for float32 CPU tensors whose activations the kernel knows (:data:`ACTIVATIONS`), without an
LSTM projection (``proj_size``) and outside autocast; anything else runs its PyTorch step loop,
which gives the same values. All buffers are batch-major and contiguous, as scan.c describes.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os

import torch
from torch import Tensor

from . import build

ACTIVATIONS = {"sigmoid": 0, "tanh": 1, "relu": 2, "linear": 3, "hard_sigmoid": 4}  # codes in scan.c


def _sgemm_address() -> int:
    """Address of the BLAS sgemm_ inside torch's CPU library (MKL or OpenBLAS, as built)."""
    libdir = os.path.join(os.path.dirname(torch.__file__), "lib")
    for path in sorted(glob.glob(os.path.join(libdir, "libtorch_cpu.*"))):
        try:
            fn = ctypes.CDLL(path).sgemm_
        except (OSError, AttributeError):
            continue
        return ctypes.cast(fn, ctypes.c_void_p).value
    raise OSError(f"torch's CPU library in {libdir} exports no BLAS sgemm_")


def _setup(lib: ctypes.CDLL) -> None:
    p, i64, int_ = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.scan_lstm_forward.argtypes = [p] * 11 + [i64] * 3 + [int_] * 3
    lib.scan_lstm_backward.argtypes = [p] * 14 + [i64] * 3 + [int_] * 3
    lib.scan_gru_forward.argtypes = [p] * 10 + [i64] * 3 + [int_] * 3
    lib.scan_gru_backward.argtypes = [p] * 15 + [i64] * 3 + [int_] * 3
    lib.scan_rnn_forward.argtypes = [p] * 7 + [i64] * 3 + [int_] * 2
    lib.scan_rnn_backward.argtypes = [p] * 10 + [i64] * 3 + [int_] * 2
    for fn in ("lstm", "gru", "rnn"):
        getattr(lib, f"scan_{fn}_forward").restype = getattr(lib, f"scan_{fn}_backward").restype = None
    lib.scan_flush_subnormals.argtypes = [int_] * 3
    lib.scan_flush_subnormals.restype = lib.scan_csr.restype = int_
    lib.sgemm = _sgemm_address()


def kernel() -> ctypes.CDLL | None:
    return build.load("scan", _setup)


def describe() -> str:
    return build.describe("scan", _setup)


def unavailable_reason() -> str | None:
    return build.unavailable_reason("scan")


def usable(tensors, *acts) -> bool:
    """Whether the step kernel runs these (input, parameters, state, mask; None skipped) with
    these activations."""
    if not all(a.name in ACTIVATIONS for a in acts):
        return False
    ts = [t for t in tensors if t is not None]
    if not all(t.device.type == "cpu" and t.dtype == torch.float32 for t in ts):
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    return kernel() is not None


@contextlib.contextmanager
def subnormals_flushed():
    """Within the block, subnormal float results are zero (x86 flush-to-zero and
    denormals-are-zero) on this thread and on the OpenMP pool that runs torch's and the
    kernel's work; as it was afterwards. A gradient fading back through time from a loss on the
    last step turns subnormal, and x86 computes on subnormals many times slower: an LSTM
    training step measured 7x slower with 5% of its gate gradients subnormal. They are below
    1.2e-38 in magnitude, so zero is within rounding of them (TensorFlow runs this way too)."""
    lib = kernel()
    if lib is None:
        yield
        return
    threads = torch.get_num_threads()
    keep = lib.scan_csr()
    lib.scan_flush_subnormals(1, threads, keep)
    try:
        yield
    finally:
        lib.scan_flush_subnormals(0, threads, keep)


def _p(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _sizes(batch_sizes) -> ctypes.Array | None:
    return None if batch_sizes is None else (ctypes.c_int64 * len(batch_sizes))(*batch_sizes)


def _strides(dY: Tensor) -> ctypes.Array:
    return (ctypes.c_int64 * 3)(*dY.stride())


def _c(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.contiguous()


def _scratch(mask: Tensor | None, B: int, H: int) -> Tensor | None:
    return None if mask is None else torch.empty(B, H)


def lstm_forward(G, C, TC, Y, h0, c0, w_hh, mask, batch_sizes, act, rec) -> None:
    """G (T, B, 4H): input side in, activations out; C, TC, Y (T, B, H) written."""
    lib = kernel()
    T, B, H = C.shape
    tmp = _scratch(mask, B, H)  # kept here: the kernel writes to it
    h0, c0, w_hh, mask = _c(h0), _c(c0), _c(w_hh), _c(mask)
    lib.scan_lstm_forward(lib.sgemm, G.data_ptr(), C.data_ptr(), TC.data_ptr(), Y.data_ptr(), h0.data_ptr(),
                          c0.data_ptr(), w_hh.data_ptr(), _p(mask), _p(tmp), _sizes(batch_sizes),
                          T, B, H, ACTIVATIONS[act.name], ACTIVATIONS[rec.name], torch.get_num_threads())  # fmt: skip


def lstm_backward(G, C, TC, c0, w_hh, mask, batch_sizes, dY, DG, dh, dc, act, rec) -> None:
    """DG (T, B, 4H) written; dh, dc (B, H, contiguous): dL/dh_T, dL/dc_T in, dL/dh0, dL/dc0 out."""
    lib = kernel()
    T, B, H = C.shape
    tmp = _scratch(mask, B, H)  # kept here: the kernel writes to it
    c0, w_hh, mask = _c(c0), _c(w_hh), _c(mask)
    lib.scan_lstm_backward(lib.sgemm, G.data_ptr(), C.data_ptr(), TC.data_ptr(), c0.data_ptr(), w_hh.data_ptr(),
                           _p(mask), _sizes(batch_sizes), dY.data_ptr(), _strides(dY), DG.data_ptr(), dh.data_ptr(),
                           dc.data_ptr(), _p(tmp), T, B, H, ACTIVATIONS[act.name],
                           ACTIVATIONS[rec.name], torch.get_num_threads())  # fmt: skip


def gru_forward(G, HH, Y, h0, w_hh, b_hh, mask, batch_sizes, act, rec) -> None:
    """G (T, B, 3H): input side in, activations r | z | n out; HH (T, B, 3H) and Y (T, B, H) written."""
    lib = kernel()
    T, B, H = Y.shape
    tmp = _scratch(mask, B, H)  # kept here: the kernel writes to it
    h0, w_hh, b_hh, mask = _c(h0), _c(w_hh), _c(b_hh), _c(mask)
    lib.scan_gru_forward(lib.sgemm, G.data_ptr(), HH.data_ptr(), Y.data_ptr(), h0.data_ptr(), w_hh.data_ptr(),
                         _p(b_hh), _p(mask), _p(tmp), _sizes(batch_sizes), T, B, H,
                         ACTIVATIONS[act.name], ACTIVATIONS[rec.name], torch.get_num_threads())  # fmt: skip


def gru_backward(G, HH, Y, h0, w_hh, mask, batch_sizes, dY, DX, DHN, dh, act, rec) -> None:
    """DX (T, B, 3H) and DHN (T, B, H) written; dh (B, H): dL/dh_T in, dL/dh0 out."""
    lib = kernel()
    T, B, H = Y.shape
    dhh, tmp = torch.empty(B, 3 * H), torch.empty(B, H)  # scratch, kept alive through the call
    h0, w_hh, mask = _c(h0), _c(w_hh), _c(mask)
    lib.scan_gru_backward(lib.sgemm, G.data_ptr(), HH.data_ptr(), Y.data_ptr(), h0.data_ptr(), w_hh.data_ptr(),
                          _p(mask), _sizes(batch_sizes), dY.data_ptr(), _strides(dY), DX.data_ptr(), DHN.data_ptr(),
                          dhh.data_ptr(), dh.data_ptr(), tmp.data_ptr(), T, B, H,
                          ACTIVATIONS[act.name], ACTIVATIONS[rec.name], torch.get_num_threads())  # fmt: skip


def rnn_forward(Y, h0, w_hh, mask, batch_sizes, act) -> None:
    """Y (T, B, H): input side in, outputs out."""
    lib = kernel()
    T, B, H = Y.shape
    tmp = _scratch(mask, B, H)  # kept here: the kernel writes to it
    h0, w_hh, mask = _c(h0), _c(w_hh), _c(mask)
    lib.scan_rnn_forward(lib.sgemm, Y.data_ptr(), h0.data_ptr(), w_hh.data_ptr(), _p(mask),
                         _p(tmp), _sizes(batch_sizes), T, B, H, ACTIVATIONS[act.name],
                         torch.get_num_threads())  # fmt: skip


def rnn_backward(Y, w_hh, mask, batch_sizes, dY, DP, dh, act) -> None:
    """DP (T, B, H) written; dh (B, H): dL/dh_T in, dL/dh0 out."""
    lib = kernel()
    T, B, H = Y.shape
    tmp = _scratch(mask, B, H)  # kept here: the kernel writes to it
    w_hh, mask = _c(w_hh), _c(mask)
    lib.scan_rnn_backward(lib.sgemm, Y.data_ptr(), w_hh.data_ptr(), _p(mask), _sizes(batch_sizes), dY.data_ptr(),
                          _strides(dY), DP.data_ptr(), dh.data_ptr(), _p(tmp), T, B, H,
                          ACTIVATIONS[act.name], torch.get_num_threads())  # fmt: skip
