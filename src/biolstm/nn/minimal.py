"""MinLSTM and MinGRU (Feng et al. 2024, "Were RNNs All We Needed?").

Their gates depend on the input only, so the recurrence ``h_t = a_t * h_{t-1} + b_t`` is
linear in h and the whole sequence is computed at once by a parallel scan in log space
(cumulative sums and a log-cumsum-exp over time: no Python loop over steps), which is how
they train. At inference they can also run one step at a time with constant memory
(:meth:`step`), giving the same states.

MinLSTM: f_t = sigmoid(W_f x_t), i_t = sigmoid(W_i x_t), h~_t = g(W_h x_t),
normalised f' = f / (f + i), i' = i / (f + i), h_t = f'_t * h_{t-1} + i'_t * h~_t.
MinGRU: z_t = sigmoid(W_z x_t), h~_t = g(W_h x_t), h_t = (1 - z_t) * h_{t-1} + z_t * h~_t.
g(x) = x + 0.5 for x >= 0 and sigmoid(x) otherwise keeps states positive, as the log-space
scan needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_positive_int


def _g(x: Tensor) -> Tensor:
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def _log_g(x: Tensor) -> Tensor:
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def parallel_scan_log(log_a: Tensor, log_b: Tensor) -> Tensor:
    """``h_t = a_t h_{t-1} + b_t`` (h_{-1} folded into b_0) for positive a, b given in log space,
    over dim 1: ``(B, T, H)`` -> ``(B, T, H)``."""
    a_star = torch.cumsum(log_a, dim=1)
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))


class _MinimalBase(nn.Module):
    gates = 2  # linear maps per layer (MinLSTM: 3)

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = True, bias: bool = True
    ):
        super().__init__()
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
        """(a_t, input term) for one step, in linear space."""
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
        output (B, T, hidden_size) and h_n (num_layers, B, hidden_size), by parallel scan.
        ``h0`` must be positive (default 0.5, the value g(0) gives)."""
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"x: expected (batch, time, {self.input_size}), got shape {tuple(x.shape)}")
        if not self.batch_first:
            x = x.transpose(0, 1)
        h0 = self._initial(x, h0)
        finals = []
        for k, layer in enumerate(self.layers):
            log_a, log_b = self._coefficients(layer(x))
            log_b = torch.cat([log_b[:, :1].logaddexp(log_a[:, :1] + torch.log(h0[k]).unsqueeze(1)), log_b[:, 1:]], 1)
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
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}"


class MinGRU(_MinimalBase):
    """``MinGRU(input_size, hidden_size, num_layers=1, batch_first=True)``; see the module docstring."""

    gates = 2

    def _coefficients(self, pre):
        k, hid = pre.chunk(2, -1)
        return -F.softplus(k), -F.softplus(-k) + _log_g(hid)  # log(1 - z), log z + log g(h~)

    def _step_coefficients(self, pre):
        k, hid = pre.chunk(2, -1)
        z = torch.sigmoid(k)
        return 1 - z, z * _g(hid)


class MinLSTM(_MinimalBase):
    """``MinLSTM(input_size, hidden_size, num_layers=1, batch_first=True)``; see the module docstring."""

    gates = 3

    def _coefficients(self, pre):
        f, i, hid = pre.chunk(3, -1)
        diff = F.softplus(-f) - F.softplus(-i)  # log f' = -softplus(diff), log i' = -softplus(-diff)
        return -F.softplus(diff), -F.softplus(-diff) + _log_g(hid)

    def _step_coefficients(self, pre):
        f, i, hid = pre.chunk(3, -1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        return f / (f + i), i / (f + i) * _g(hid)
