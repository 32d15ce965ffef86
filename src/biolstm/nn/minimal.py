"""MinLSTM and MinGRU (Feng et al. 2024, "Were RNNs All We Needed?").

Their gates depend on the input only, so the recurrence ``h_t = a_t * h_{t-1} + b_t`` is
linear in h and the whole sequence is computed at once by a scan instead of a step loop
through the network. The computation is chosen by ``scan=``:

* ``'auto'`` (default): ``'native'`` where it can run (CPU float32 and a C compiler at first
  use), else ``'linear'``.
* ``'native'``: a small C kernel (:mod:`biolstm.nn.native`) that fuses each layer's gates and
  its recurrence into one pass over time forward and one backward, recomputing the gates
  instead of storing them; the fastest on a CPU. Same values as ``'linear'`` to float32
  rounding, and the same bits on any number of threads.
* ``'linear'``: a chunked scan in linear space, in PyTorch (any device and dtype). The
  sequence is cut into chunks of about sqrt(T) steps; all chunks are scanned together
  (sqrt(T) vectorised steps), then the chunk boundaries are joined (sqrt(T) small steps) and
  the result fixed up with one cumulative product. Backward is the same scan run in reverse
  (the gradient of a linear recurrence is a linear recurrence), written by hand, so autograd
  stores only a and h. Products of gates in [0, 1] only shrink, so it is exact to rounding
  in float32.
* ``'log'``: the paper's parallel scan in log space (cumulative sums and a log-cumsum-exp,
  no loop at all); it loses about 1e-4 relative precision in float32 over thousands of
  steps and is slower on CPU, but has depth log(T) on a GPU.

At inference they can also run one step at a time with constant memory (:meth:`step`),
giving the same states.

MinLSTM: f_t = sigmoid(W_f x_t), i_t = sigmoid(W_i x_t), h~_t = g(W_h x_t),
normalised f' = f / (f + i), i' = i / (f + i), h_t = f'_t * h_{t-1} + i'_t * h~_t.
MinGRU: z_t = sigmoid(W_z x_t), h~_t = g(W_h x_t), h_t = (1 - z_t) * h_{t-1} + z_t * h~_t.
g(x) = x + 0.5 for x >= 0 and sigmoid(x) otherwise keeps states positive, as the log-space
scan needs.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_choice, check_positive_int
from .native import minrnn as native

_SCANS = ("auto", "native", "linear", "log")


def _g(x: Tensor) -> Tensor:
    return F.relu(x) + torch.sigmoid(x.clamp(max=0))  # x + 0.5 for x >= 0, sigmoid(x) below


def _log_g(x: Tensor) -> Tensor:
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def _chunked_scan(a: Tensor, b: Tensor, h0: Tensor, chunk: int, reverse: bool = False) -> Tensor:
    """``h_t = a_t h_{t-1} + b_t`` over dim 1 of (B, T, H) tensors from ``h0`` (B, H); with
    ``reverse``, ``h_t = a_t h_{t+1} + b_t`` from the end, ``h0`` entering after the last step."""
    B, T, H = a.shape
    L = chunk
    C = -(-T // L)
    if C * L != T:  # pad with a = 1, b = 0 on the side scanned last: the real steps are unaffected
        side = (0, 0, C * L - T, 0) if reverse else (0, 0, 0, C * L - T)
        a, b = F.pad(a, side, value=1.0), F.pad(b, side)
    a4, b4 = a.reshape(B, C, L, H), b.reshape(B, C, L, H)  # step j of chunk c at [:, c, j]
    local = torch.empty_like(a4)  # the scan of every chunk from a zero state, all chunks at once
    prod = torch.empty_like(a4)  # the product of a within the chunk up to and including j
    order = range(L - 1, -1, -1) if reverse else range(L)
    first = order[0]
    local[:, :, first], prod[:, :, first] = b4[:, :, first], a4[:, :, first]
    for prev, j in itertools.pairwise(order):
        torch.addcmul(b4[:, :, j], a4[:, :, j], local[:, :, prev], out=local[:, :, j])
        torch.mul(a4[:, :, j], prod[:, :, prev], out=prod[:, :, j])
    last = order[-1]
    starts = torch.empty((B, C, H), dtype=a.dtype, device=a.device)  # the state entering chunk c
    state = h0
    for k in range(C - 1, -1, -1) if reverse else range(C):
        starts[:, k] = state
        state = torch.addcmul(local[:, k, last], prod[:, k, last], state)
    h = torch.addcmul(local, prod, starts.unsqueeze(2)).reshape(B, C * L, H)
    return h[:, C * L - T :] if reverse else h[:, :T]


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0, chunk):
        h = _chunked_scan(a, b, h0, chunk)
        ctx.save_for_backward(a, h, h0)
        ctx.chunk = chunk
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        a, h, h0 = ctx.saved_tensors
        # dL/dh_t (through every later step) = g_t + a_{t+1} dL/dh_{t+1}: the same scan, reversed
        gh = _chunked_scan(F.pad(a[:, 1:], (0, 0, 0, 1)), grad, torch.zeros_like(h0), ctx.chunk, reverse=True)
        grad_a = torch.empty_like(a)
        torch.mul(gh[:, 1:], h[:, :-1], out=grad_a[:, 1:])
        torch.mul(gh[:, 0], h0, out=grad_a[:, 0])
        return grad_a, gh, a[:, 0] * gh[:, 0], None


def _gate_terms(pre: Tensor, lstm: bool) -> tuple[Tensor, Tensor]:
    """(a, g(h~)) from a layer's pre-activations: MinLSTM a = f / (f + i), MinGRU a = 1 - z."""
    if lstm:
        f, i, hid = pre.chunk(3, -1)
        a = torch.sigmoid(F.softplus(-i) - F.softplus(-f))  # f / (f + i), safe when both underflow
    else:
        k, hid = pre.chunk(2, -1)
        a = torch.sigmoid(-k)
    return a, _g(hid)


def _default_chunk(T: int) -> int:
    """About sqrt(T), preferring a divisor of T (no padding) within a factor 2."""
    root = max(1, round(T**0.5))
    for d in sorted(range(max(1, root // 2), 2 * root + 1), key=lambda d: abs(d - root)):
        if T % d == 0:
            return d
    return root


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, chunk: int | None = None) -> Tensor:
    """``h_t = a_t h_{t-1} + b_t`` over dim 1: ``a``, ``b`` (B, T, H), ``h0`` (B, H) (default 0)
    -> (B, T, H), by the chunked scan (chunks of ``chunk`` steps, default about sqrt(T)), with a
    hand-written backward. Meant for |a| <= 1, as gates give."""
    if a.shape != b.shape or a.dim() != 3:
        raise ValueError(f"a, b: expected two (batch, time, hidden) tensors of one shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")  # fmt: skip
    if h0 is None:
        h0 = torch.zeros_like(a[:, 0])
    if chunk is None:
        chunk = _default_chunk(a.shape[1])
    check_positive_int(chunk, "chunk")
    return _LinearScan.apply(a, b, h0, chunk)


def parallel_scan_log(log_a: Tensor, log_b: Tensor) -> Tensor:
    """``h_t = a_t h_{t-1} + b_t`` (h_{-1} folded into b_0) for positive a, b given in log space,
    over dim 1: ``(B, T, H)`` -> ``(B, T, H)``."""
    a_star = torch.cumsum(log_a, dim=1)
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))


class _MinimalBase(nn.Module):
    gates = 2  # linear maps per layer (MinLSTM: 3)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        batch_first: bool = True,
        bias: bool = True,
        scan: str = "auto",
    ):
        super().__init__()
        check_choice(scan, _SCANS, "scan")
        self.scan = scan
        check_positive_int(input_size, "input_size")
        check_positive_int(hidden_size, "hidden_size")
        check_positive_int(num_layers, "num_layers")
        self.input_size, self.hidden_size, self.num_layers, self.batch_first = (
            input_size,
            hidden_size,
            num_layers,
            batch_first,
        )
        self.layers = nn.ModuleList(
            nn.Linear(input_size if k == 0 else hidden_size, self.gates * hidden_size, bias=bias)
            for k in range(num_layers)
        )

    def _coefficients(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        """(log a_t, log of the input term b_t without h) from the layer's pre-activations."""
        raise NotImplementedError

    def _step_coefficients(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        """(a_t, input term b_t) in linear space, for one step or a whole sequence."""
        raise NotImplementedError

    def _initial(self, x: Tensor, h0: Tensor | None) -> Tensor:
        B = x.shape[0]
        if h0 is None:
            return torch.full((self.num_layers, B, self.hidden_size), 0.5, dtype=x.dtype, device=x.device)
        if h0.shape != (self.num_layers, B, self.hidden_size):
            raise ValueError(
                f"h0: expected positive states of shape {(self.num_layers, B, self.hidden_size)}, got {tuple(h0.shape)}"
            )
        return h0

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (B, T, input_size) if batch_first else (T, B, input_size) -> (output, h_n) with
        output (B, T, hidden_size) and h_n (num_layers, B, hidden_size), by the chosen scan.
        ``h0`` defaults to 0.5 (the value g(0) gives); the log scan needs it positive."""
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"x: expected (batch, time, {self.input_size}), got shape {tuple(x.shape)}")
        if not self.batch_first:
            x = x.transpose(0, 1)
        h0 = self._initial(x, h0)
        finals = []
        fused = self.scan in ("auto", "native") and native.usable(x, h0, *self.parameters())
        if self.scan == "native" and not fused:
            why = "x, h0 and the parameters are not all CPU float32" if native.kernel() else native.unavailable_reason()
            raise RuntimeError(f"scan='native': the native kernel cannot run here ({why}); use scan='auto'")
        for k, layer in enumerate(self.layers):
            if fused:
                x = native.MinRNNLayer.apply(x, layer.weight, layer.bias, h0[k], self.gates == 3)
            elif self.scan != "log":
                x = linear_scan(*self._step_coefficients(layer(x)), h0[k])
            else:
                log_a, log_b = self._coefficients(layer(x))
                log_b = torch.cat(
                    [log_b[:, :1].logaddexp(log_a[:, :1] + torch.log(h0[k]).unsqueeze(1)), log_b[:, 1:]], 1
                )
                log_a = torch.cat([torch.zeros_like(log_a[:, :1]), log_a[:, 1:]], 1)  # h_{-1} already in b_0
                x = parallel_scan_log(log_a, log_b)
            finals.append(x[:, -1])
        out = x if self.batch_first else x.transpose(0, 1)
        return out, torch.stack(finals)

    def step(self, x_t: Tensor, h: Tensor | None = None) -> Tensor:
        """One step at inference: ``x_t`` (B, input_size), ``h`` (num_layers, B, hidden) -> new h."""
        h = self._initial(x_t.unsqueeze(1), h)
        new = []
        inp = x_t
        for k, layer in enumerate(self.layers):
            a, b = self._step_coefficients(layer(inp))
            inp = a * h[k] + b
            new.append(inp)
        return torch.stack(new)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}, "
                f"scan={self.scan!r}")  # fmt: skip


class MinGRU(_MinimalBase):
    """``MinGRU(input_size, hidden_size, num_layers=1, batch_first=True, scan='auto')``; see the
    module docstring."""

    gates = 2

    def _coefficients(self, pre):
        k, hid = pre.chunk(2, -1)
        return -F.softplus(k), -F.softplus(-k) + _log_g(hid)  # log(1 - z), log z + log g(h~)

    def _step_coefficients(self, pre):
        a, g = _gate_terms(pre, lstm=False)
        return a, (1 - a) * g


class MinLSTM(_MinimalBase):
    """``MinLSTM(input_size, hidden_size, num_layers=1, batch_first=True, scan='auto')``; see the
    module docstring."""

    gates = 3

    def _coefficients(self, pre):
        f, i, hid = pre.chunk(3, -1)
        diff = F.softplus(-f) - F.softplus(-i)  # log f' = -softplus(diff), log i' = -softplus(-diff)
        return -F.softplus(diff), -F.softplus(-diff) + _log_g(hid)

    def _step_coefficients(self, pre):
        a, g = _gate_terms(pre, lstm=True)
        return a, (1 - a) * g
