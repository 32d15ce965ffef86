"""Gate maths for one step, and the single-step modules LSTMCell, GRUCell, RNNCell.

The step functions below are written with ordinary autograd operations. They define the
cells (their docstrings carry the equations), serve the single-step modules, and drive the
layer-norm variant of the transparent engine. The fast full-sequence path with its own
backward pass lives in :mod:`biolstm.nn.engine`.

Gate order follows torch: LSTM i | f | g | o, GRU r | z | n.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_positive_int, check_type
from .activations import Activation, get_activation


class LayerNormParams(NamedTuple):
    """Layer-norm gains (and cell bias) of one layer and direction; any may be None."""

    ih_weight: Tensor | None  # gain on x W_ih^T  (G,)
    hh_weight: Tensor | None  # gain on h W_hh^T  (G,)
    cell_weight: Tensor | None = None  # LSTM: gain on c before act  (H,)
    cell_bias: Tensor | None = None  # LSTM: shift on c before act  (H,)


def _ln(x: Tensor, weight: Tensor | None, bias: Tensor | None = None) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], weight, bias)


def project_input(x: Tensor, w_ih: Tensor, b: Tensor | None, ln: LayerNormParams | None) -> Tensor:
    """Input side of the gates: ``x W_ih^T + b``, or ``LN(x W_ih^T) + b`` with layer norm."""
    if ln is None:
        return F.linear(x, w_ih, b)
    out = _ln(F.linear(x, w_ih), ln.ih_weight)
    return out if b is None else out + b


def lstm_step(
    xp: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    w_hr: Tensor | None = None,
    act: Activation | None = None,
    rec_act: Activation | None = None,
    ln: LayerNormParams | None = None,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
    r"""One LSTM step (the seed's equations 3.1 and 3.2).

    .. math::
        i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t = \phi(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t = o_t \odot \phi(c_t)

    sigma is ``rec_act`` (default sigmoid), phi is ``act`` (default tanh). With projection,
    ``h_t = W_hr (o_t * phi(c_t))``. With layer norm (as in haste's LayerNormLSTM) the two
    gate halves are normalised separately and the cell before phi:
    ``gates = LN(W_i x) + LN(W_h h) + b``, ``h_t = o_t * phi(LN(c_t))``.
    With a recurrent-dropout ``mask``, ``h_{t-1}`` is multiplied by it before ``W_h``.

    Args:
        xp: input side of the gates, ``(B, 4H)`` (see :func:`project_input`).
        h, c: previous state ``(B, P)``, ``(B, H)``.
    Returns:
        ``(h_t, c_t, (i, f, g, o))``.
    """
    act = act or get_activation("tanh")
    rec_act = rec_act or get_activation("sigmoid")
    hh = F.linear(h if mask is None else h * mask, w_hh)  # (B, 4H)
    if ln is not None:
        hh = _ln(hh, ln.hh_weight)
    i, f, g, o = (xp + hh).chunk(4, dim=-1)
    i, f, g, o = rec_act(i), rec_act(f), act(g), rec_act(o)
    c = f * c + i * g
    cn = _ln(c, ln.cell_weight, ln.cell_bias) if ln is not None else c
    m = o * act(cn)
    h = F.linear(m, w_hr) if w_hr is not None else m
    return h, c, (i, f, g, o)


def gru_step(
    xp: Tensor,
    h: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None = None,
    act: Activation | None = None,
    rec_act: Activation | None = None,
    ln: LayerNormParams | None = None,
    mask: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    r"""One GRU step, torch's equations (the reset gate is applied after ``W_hn h``).

    .. math::
        r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t = \phi(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    ``xp`` is ``x W_ih^T + b_ih``  ``(B, 3H)``. Layer norm normalises ``W_i x`` and
    ``W_h h`` separately, before their biases. Returns ``(h_t, (r, z, n))``.
    """
    act = act or get_activation("tanh")
    rec_act = rec_act or get_activation("sigmoid")
    hh = F.linear(h if mask is None else h * mask, w_hh)  # (B, 3H)
    if ln is not None:
        hh = _ln(hh, ln.hh_weight)
    if b_hh is not None:
        hh = hh + b_hh
    xr, xz, xn = xp.chunk(3, dim=-1)
    hr, hz, hn = hh.chunk(3, dim=-1)
    r = rec_act(xr + hr)
    z = rec_act(xz + hz)
    n = act(xn + r * hn)
    return n + z * (h - n), (r, z, n)


def rnn_step(
    xp: Tensor,
    h: Tensor,
    w_hh: Tensor,
    act: Activation | None = None,
    ln: LayerNormParams | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""One Elman step: :math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`.

    ``xp`` is ``x W_ih^T + b_ih + b_hh``  ``(B, H)``.
    """
    act = act or get_activation("tanh")
    hh = F.linear(h if mask is None else h * mask, w_hh)
    if ln is not None:
        hh = _ln(hh, ln.hh_weight)
    return act(xp + hh)


class _CellBase(nn.Module):
    """Parameters and checks shared by the single-step cells (torch's names and init)."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        check_positive_int(input_size, "input_size")
        check_positive_int(hidden_size, "hidden_size")
        check_type(bias, bool, "bias")
        factory = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(num_chunks * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(num_chunks * hidden_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(num_chunks * hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(num_chunks * hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s

    def _check(self, input: Tensor, hx: Tensor | None, name: str = "hx") -> bool:
        if not isinstance(input, Tensor):
            raise TypeError(f"input: expected a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(
                f"input: expected 1-D (input_size,) or 2-D (batch, input_size), got {input.dim()}-D "
                f"of shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input: expected last dimension input_size={self.input_size}, got {input.shape[-1]}")
        batched = input.dim() == 2
        if hx is not None and hx.dim() != input.dim():
            raise ValueError(
                f"{name}: expected {input.dim()}-D to match the {'batched' if batched else 'unbatched'} "
                f"input, got {hx.dim()}-D"
            )
        return batched

    def _bias_sum(self) -> Tensor | None:
        return None if self.bias_ih is None else self.bias_ih + self.bias_hh


class LSTMCell(_CellBase):
    r"""A single LSTM step; a drop-in for :class:`torch.nn.LSTMCell`.

    Equations as in :func:`lstm_step` (the seed's 3.1/3.2):
    :math:`c' = f \odot c + i \odot g`, :math:`h' = o \odot \phi(c')`.

    Args:
        input_size, hidden_size, bias, device, dtype: as in torch.
        activation: phi, for g and the cell output (Keras name or callable; default tanh).
        recurrent_activation: sigma, for i, f, o (default sigmoid).
        forget_bias: if set, ``bias_ih``'s forget slice starts at this value and
            ``bias_hh``'s at 0 (Keras ``unit_forget_bias`` is 1.0). Default None: torch init.

    Shapes: input ``(B, D)`` or ``(D,)``; hx ``(h, c)`` each ``(B, H)`` or ``(H,)``.
    Returns ``(h', c')``, plus the gates ``(i, f, g, o)`` when ``return_gates=True``.
    Parameters: weight_ih ``(4H, D)``, weight_hh ``(4H, H)``, bias_ih, bias_hh ``(4H,)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        activation: str | Callable = "tanh",
        recurrent_activation: str | Callable = "sigmoid",
        forget_bias: float | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)
        self.activation = get_activation(activation, "activation")
        self.recurrent_activation = get_activation(recurrent_activation, "recurrent_activation")
        self.forget_bias = forget_bias
        if forget_bias is not None and bias:
            H = hidden_size
            with torch.no_grad():
                self.bias_ih[H : 2 * H].fill_(float(forget_bias))
                self.bias_hh[H : 2 * H].zero_()

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None, *, return_gates: bool = False):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"hx: expected a tuple (h, c), got {type(hx).__name__}")
        batched = self._check(input, None if hx is None else hx[0])
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            z = input.new_zeros(input.shape[0], self.hidden_size)
            h, c = z, z
        else:
            h, c = (hx[0], hx[1]) if batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        xp = F.linear(input, self.weight_ih, self._bias_sum())
        h, c, gates = lstm_step(xp, h, c, self.weight_hh, None, self.activation, self.recurrent_activation)
        if not batched:
            h, c, gates = h.squeeze(0), c.squeeze(0), tuple(g.squeeze(0) for g in gates)
        return ((h, c), gates) if return_gates else (h, c)


class GRUCell(_CellBase):
    r"""A single GRU step; a drop-in for :class:`torch.nn.GRUCell`.

    Equations as in :func:`gru_step`: :math:`h' = (1 - z) \odot n + z \odot h`.

    Args: as :class:`LSTMCell`; ``activation`` is applied to n, ``recurrent_activation``
    to r and z. Parameters: weight_ih ``(3H, D)``, weight_hh ``(3H, H)``, biases ``(3H,)``.
    Returns ``h'``, plus ``(r, z, n)`` when ``return_gates=True``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        activation: str | Callable = "tanh",
        recurrent_activation: str | Callable = "sigmoid",
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)
        self.activation = get_activation(activation, "activation")
        self.recurrent_activation = get_activation(recurrent_activation, "recurrent_activation")

    def forward(self, input: Tensor, hx: Tensor | None = None, *, return_gates: bool = False):
        batched = self._check(input, hx)
        if not batched:
            input = input.unsqueeze(0)
        h = input.new_zeros(input.shape[0], self.hidden_size) if hx is None else (hx if batched else hx.unsqueeze(0))
        xp = F.linear(input, self.weight_ih, self.bias_ih)
        h, gates = gru_step(xp, h, self.weight_hh, self.bias_hh, self.activation, self.recurrent_activation)
        if not batched:
            h, gates = h.squeeze(0), tuple(g.squeeze(0) for g in gates)
        return (h, gates) if return_gates else h


class RNNCell(_CellBase):
    r"""A single Elman step; a drop-in for :class:`torch.nn.RNNCell`.

    :math:`h' = \phi(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})` with phi = ``nonlinearity``
    ('tanh' or 'relu' as in torch) or, beyond torch, any ``activation`` (name or callable),
    which takes precedence when given.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
        *,
        activation: str | Callable | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.activation = get_activation(activation if activation is not None else nonlinearity, "activation")

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        batched = self._check(input, hx)
        if not batched:
            input = input.unsqueeze(0)
        h = input.new_zeros(input.shape[0], self.hidden_size) if hx is None else (hx if batched else hx.unsqueeze(0))
        xp = F.linear(input, self.weight_ih, self._bias_sum())
        h = rnn_step(xp, h, self.weight_hh, self.activation)
        return h if batched else h.squeeze(0)
