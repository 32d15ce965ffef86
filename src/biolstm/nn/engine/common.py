"""What the LSTM, GRU and RNN scans share: buffers and their layouts, the reused backward
workspaces, steps in chunks for the weight products, derivatives of the activations, and the
reversal of padded sequences for the backward direction. See :mod:`biolstm.nn.engine`."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

import torch
from torch import Tensor

from ..activations import Activation
from ..native import scan as native_scan
from ..native.workspace import WORKSPACE_MAX_BYTES
from ..native.workspace import workspace as native_workspace


def use_fast_tanh(device: torch.device) -> bool:
    """Whether the LSTM scan computes tanh as 2 sigmoid(2x) - 1 on this device.

    True on CPU, where torch's tanh kernel is about 3x slower than its sigmoid; the result
    differs from tanh by rounding only (about 1e-7 absolute in float32, 1e-16 in float64).
    False elsewhere (GPUs evaluate tanh as fast as sigmoid).
    """
    return torch.device(device).type == "cpu"


_WORKSPACE = threading.local()


def workspace(name: str, like: Tensor, features: int | None = None) -> Tensor:
    """A scratch (T, F, B) tensor laid out like ``like``, reused across backward passes.

    The backward passes need large temporaries (the gate-gradient buffer is as large as all
    gates of all steps). A fresh buffer of that size costs page faults on first touch, about
    7 ms per 26 MB here, so the last one of each name is kept per thread and reused when the
    next call has the same shape. Contents are undefined: callers overwrite every element.
    ``features`` overrides F. :func:`release_workspace` frees them.
    """
    T, F, B = like.shape
    F = features or F
    bm = like.stride(1) == 1 and B > 1  # batch-major storage (T, B, F)
    opts = dict(dtype=like.dtype, device=like.device)
    key = (T, F, B, bm, like.dtype, like.device)
    cache = _WORKSPACE.__dict__
    hit = cache.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    t = torch.empty(T, B, F, **opts).transpose(1, 2) if bm else torch.empty(T, F, B, **opts)
    if t.numel() * t.element_size() <= WORKSPACE_MAX_BYTES:  # keep only moderate buffers
        cache[name] = (key, t)
    else:
        cache.pop(name, None)
    return t


def release_workspace() -> None:
    """Free the scratch buffers the backward passes keep for reuse (this thread's), and the
    buffers the native MinLSTM / MinGRU kernel keeps (those still in use live on with their
    tensors)."""
    _WORKSPACE.__dict__.clear()
    native_workspace.clear()


def active(batch_sizes: Sequence[int] | None, t: int, B: int) -> int:
    return B if batch_sizes is None else batch_sizes[t]


def alive(lengths: Tensor, T: int) -> Tensor:
    """(T, B) bool: step t is within sequence b."""
    return torch.arange(T, device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)


def final_state(Y: Tensor, h0: Tensor, lengths: Tensor | None) -> Tensor:
    """State after each row's last valid step: Y[len-1, b], or h0[b] when len == 0."""
    if lengths is None:
        return Y[-1].clone()
    rows = torch.arange(Y.shape[1], device=Y.device)
    last = Y[(lengths - 1).clamp(min=0), rows]  # (B, P)
    return torch.where((lengths > 0).unsqueeze(1), last, h0)


def cols(views, t: int, n: int, B: int):
    """The active columns of each per-step view: all of them when n == B."""
    if n == B:
        return [v[t] for v in views]
    return [v[t][..., :n] for v in views]


def deriv_into(act: Activation, y: Tensor, x: Tensor | None, out: Tensor) -> Tensor:
    """out = act'(x) where y = act(x), in place for sigmoid and tanh (no temporaries)."""
    if act.name == "sigmoid":  # y (1 - y)
        torch.neg(y, out=out).add_(1).mul_(y)
    elif act.name == "tanh":  # 1 - y^2
        torch.mul(y, y, out=out).neg_().add_(1)
    elif act.name == "relu":  # 1 where y > 0; y >= 0, so that is sign(y)
        torch.sign(y, out=out)
    elif act.name == "linear":
        out.fill_(1)
    else:
        out.copy_(act.grad(y, x))
    return out


def batch_major(B: int) -> bool:
    """Storage layout of the LSTM scan's per-step buffers for batch size B.

    Per step, the scan works on logical ``(features, B)`` blocks. For B >= 32 they are stored
    feature-major (each gate a contiguous block; fastest element-wise work). For smaller
    batches they are stored batch-major ``(B, features)`` and used through transposed views:
    MKL's product with only a few columns is several times slower than with few rows.
    """
    return B < 32


def step_buffers(T: int, B: int, bm: bool, alloc, opts):
    """Allocator of logical (T, F, B) buffers in the chosen storage layout."""

    def buf(F: int, how=None) -> Tensor:
        how = how or alloc
        return how(T, B, F, **opts).transpose(1, 2) if bm else how(T, F, B, **opts)

    return buf


def chunk_steps(T: int, per_step: int, budget: int = 1 << 20) -> int:
    """Steps per chunk so that a (features, steps*B) block holds about ``budget`` numbers."""
    return max(1, min(T, budget // max(per_step, 1)))


def stepwise_columns(X: Tensor, t0: int, t1: int) -> Tensor:
    """(T, F, B) steps t0:t1 as one (F, (t1-t0)*B) matrix, columns ordered (t, b)."""
    return X[t0:t1].permute(1, 0, 2).reshape(X.shape[1], -1)


def project_inputs(x: Tensor, w_ih: Tensor, b: Tensor | None, out: Tensor) -> Tensor:
    """Write ``W_ih x_t + b`` for all steps into ``out``, logical (T, F, B), either storage."""
    T, B, D = x.shape
    F = w_ih.shape[0]
    if out.transpose(1, 2).is_contiguous():  # storage (T, B, F): one (T*B, D) x (D, F) product
        flat = out.transpose(1, 2).view(T * B, F)
        X2 = x.reshape(T * B, D)
        torch.addmm(b, X2, w_ih.t(), out=flat) if b is not None else torch.mm(X2, w_ih.t(), out=flat)
    else:  # storage (T, F, B): one batched product
        wx = w_ih.expand(T, F, D)
        if b is not None:
            torch.baddbmm(b.view(1, F, 1).expand(T, F, B), wx, x.transpose(1, 2), out=out)
        else:
            torch.bmm(wx, x.transpose(1, 2), out=out)
    return out


def chunks(T: int, per_step: int, budget: int = 1 << 20):
    """(t0, t1) ranges of steps, sized so a (features, steps*B) block holds about ``budget``
    numbers (1M by default)."""
    step = chunk_steps(T, per_step, budget)
    return [(t0, min(T, t0 + step)) for t0 in range(0, T, step)]


def prev_rows(Y: Tensor, h0: Tensor, mask: Tensor | None, t0: int, t1: int) -> Tensor:
    """h_{t-1} for steps t0:t1 as rows ordered (t, b), masked as the loop saw them."""
    hp = Y[t0 - 1 : t1 - 1] if t0 > 0 else torch.cat([h0.unsqueeze(0), Y[: t1 - 1]])  # (k, B, P)
    if mask is not None:
        hp = hp * mask
    return hp.reshape(-1, hp.shape[-1])


def activate_(act: Activation, v: Tensor, fast: bool, pre: Tensor | None, t: int, n: int, two, one) -> None:
    """Apply ``act`` to step t's block in place, keeping the pre-activation if the backward
    pass needs it. ``fast``: act is tanh, computed as 2 sigmoid(2u) - 1 (see use_fast_tanh)."""
    if fast:
        v.add_(v).sigmoid_().mul_(two).sub_(one)
        return
    if pre is not None:
        pre[t, :, :n] = v
    act.apply_(v)


class InputGrads:
    """Accumulates dx, dW_ih and the input-side bias gradient chunk by chunk.

    For narrow inputs (D < 64) the products are formed transposed, ``W_ih^T @ block`` and
    ``x^T @ block^T``: MKL is several times slower on products whose result has only a few
    columns than on the transposed ones with a few rows.
    """

    def __init__(self, need, x: Tensor, w_ih: Tensor, has_bias: bool) -> None:
        self.x, self.w_ih = x, w_ih
        self.narrow = x.shape[2] < 64
        self.dx = x.new_empty(x.shape) if need[0] else None  # contiguous (T, B, D)
        shape = (w_ih.shape[1], w_ih.shape[0]) if self.narrow else w_ih.shape
        self.dw = w_ih.new_zeros(shape) if need[1] else None  # (D, F) when narrow, else (F, D)
        self.db = w_ih.new_zeros(w_ih.shape[0]) if (has_bias and need[2]) else None

    def add(self, blk: Tensor, t0: int, t1: int) -> None:
        """Add one chunk's share from its gate-gradient block (F, k*B), steps t0:t1."""
        D = self.x.shape[2]
        if self.dx is not None:
            out = self.dx[t0:t1].view(-1, D)
            if self.narrow:
                out.copy_(torch.mm(self.w_ih.t(), blk).t())
            else:
                torch.mm(blk.t(), self.w_ih, out=out)
        if self.dw is not None:
            xs = self.x[t0:t1].reshape(-1, D)
            self.dw.addmm_(xs.t(), blk.t()) if self.narrow else self.dw.addmm_(blk, xs)
        if self.db is not None:
            self.db.add_(blk.sum(1))

    def result(self) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        dw = self.dw.t().contiguous() if (self.dw is not None and self.narrow) else self.dw
        return self.dx, dw, self.db


_TRITON_FAILED: list[str] = []  # why the Triton kernels could not run, once it happened


def run_steps(kernel, name: str, *args) -> bool:
    """``kernel.<name>(*args)``; True when it ran. A Triton kernel that fails to compile or to
    launch (a GPU or Triton version it was never run on) says why once per process, as a
    BiolstmWarning, and is not used again: False, and the caller runs its PyTorch loop (the
    buffers are untouched: a kernel fails before it runs)."""
    if kernel is native_scan:
        getattr(kernel, name)(*args)
        return True
    try:
        getattr(kernel, name)(*args)
    except Exception as err:
        import warnings

        from ...validation import BiolstmWarning

        _TRITON_FAILED.append(f"{type(err).__name__}: {str(err)[:300]}")
        warnings.warn(f"the Triton step kernels failed ({_TRITON_FAILED[0]}); the transparent engine runs its step "
                      "loops in PyTorch on this device from now on (same values, slower)", BiolstmWarning,
                      stacklevel=2)  # fmt: skip
        return False
    return True


def step_kernel(tensors, *acts):
    """The module whose ``lstm_forward`` ... ``rnn_backward`` run the step loops of these tensors
    (input, parameters, state, mask; None skipped) with these activations, or None for the
    PyTorch loop: the C kernel (:mod:`biolstm.nn.native.scan`) for CPU float32, the Triton
    kernels (:mod:`.triton_scan`) for CUDA float32 where Triton is installed, with activations
    they know."""
    if native_scan.usable(tensors, *acts):
        return native_scan
    ts = [t for t in tensors if t is not None]
    known = all(a.name in native_scan.ACTIVATIONS for a in acts)
    if ts[0].is_cuda and known and all(t.dtype == torch.float32 for t in ts) and not _TRITON_FAILED:
        try:
            from . import triton_scan
        except ImportError:  # no Triton: the PyTorch loop
            return None
        return triton_scan
    return None


def subnormals_flushed_on_the_cpu(backward):
    """A scan's backward run with subnormal results flushed to zero when its forward ran the C
    step loop (see :func:`biolstm.nn.native.scan.subnormals_flushed`): the loop, the BLAS
    products in it and the weight products after it."""

    @functools.wraps(backward)
    def run(ctx, *grads):
        if getattr(ctx, "kernel", None) is native_scan:
            with native_scan.subnormals_flushed():
                return backward(ctx, *grads)
        return backward(ctx, *grads)

    return run


custom_fwd = torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
custom_bwd = torch.amp.custom_bwd(device_type="cuda")


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of a time-major batch within its own length.

    Positions past a sequence's length stay where they are. The map is its own inverse, so
    the same call turns a reversed direction's outputs back into input order.  # (T, B, X)
    """
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    L = lengths.to(x.device).unsqueeze(0)  # (1, B)
    idx = torch.where(t < L, L - 1 - t, t)  # (T, B)
    return x.gather(0, idx.unsqueeze(-1).expand_as(x))
