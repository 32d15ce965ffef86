"""Keras-style layers on biolstm.nn, channels-last ``(batch, time, features)``.

Layers build lazily from the shape of their input, as in Keras, with Keras' initialisers
(glorot-uniform kernels, orthogonal recurrent kernels, zero biases, forget bias 1 when
``unit_forget_bias``). Masks (from ``Masking`` or ``Embedding(mask_zero=True)``) travel
between layers as a boolean ``(batch, time)`` tensor and reach the recurrent layers.

Each layer's ``get_config()`` returns the arguments that rebuild it (saved with the model).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import nn as bnn
from ..nn.activations import Activation, get_activation
from ..validation import check_choice, check_positive_int, check_probability

Shape = tuple  # a shape without the batch dimension; None for unknown lengths


class Layer(nn.Module):
    """Base: lazy ``build(input_shape)``, ``call(x, mask)``, ``compute_mask``, config."""

    def __init__(self, input_shape: Shape | None = None, name: str | None = None, **kwargs) -> None:
        super().__init__()
        if "input_dim" in kwargs and input_shape is None:  # Keras' Dense(units, input_dim=D)
            input_shape = (kwargs.pop("input_dim"),)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unknown argument {next(iter(kwargs))!r}")
        self.input_shape_arg = tuple(input_shape) if input_shape is not None else None
        self.layer_name = name
        self.built = False
        self.input_shape_: Shape | None = None

    # -- to override
    def build(self, input_shape: Shape) -> None:
        """Create parameters for inputs of ``input_shape`` (no batch dimension)."""

    def call(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def compute_mask(self, x: Tensor, mask: Tensor | None) -> Tensor | None:
        return None  # most layers consume the mask

    def get_config(self) -> dict[str, Any]:
        return {"input_shape": self.input_shape_arg, "name": self.layer_name}

    # -- machinery
    def __call__(self, *args, **kwargs):
        from .functional import is_symbolic, symbolic_call

        if is_symbolic(args, kwargs):  # the functional API: record the call, return KerasTensor(s)
            return symbolic_call(self, *args, **kwargs)
        return super().__call__(*args, **kwargs)

    def ensure_built(self, input_shape: Shape) -> Shape:
        if not self.built:
            self.build(tuple(input_shape))
            self.built = True
            self.input_shape_ = tuple(input_shape)
        return self.compute_output_shape(tuple(input_shape))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        self.ensure_built(tuple(x.shape[1:]))
        return self.call(x, mask)

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # Keras weight lists: what keras' layer.get_weights() returns, in its shapes and order.
    def get_weights(self) -> list[Tensor]:
        return []

    def set_weights(self, weights: list) -> None:
        if weights:
            raise ValueError(f"weights: {type(self).__name__} has no weights, got {len(weights)} arrays")


def _assign(param: Tensor, value, what: str) -> None:
    value = torch.as_tensor(value, dtype=param.dtype).to(param.device)
    if tuple(value.shape) != tuple(param.shape):
        raise ValueError(f"weights: expected {what} of shape {tuple(param.shape)}, got {tuple(value.shape)}")
    with torch.no_grad():
        param.copy_(value)


def _expect(weights: list, n: int, layer: Layer) -> list:
    """Check the count, and each array's shape against the layer's own Keras-format weights."""
    if len(weights) != n:
        raise ValueError(f"weights: expected {n} arrays for {type(layer).__name__}, got {len(weights)}")
    ws = [torch.as_tensor(w) if not isinstance(w, Tensor) else w for w in weights]
    for k, (w, mine) in enumerate(zip(ws, layer.get_weights())):
        if tuple(w.shape) != tuple(mine.shape):
            raise ValueError(
                f"weights[{k}] of {type(layer).__name__}: expected shape {tuple(mine.shape)} "
                f"(Keras' layout), got {tuple(w.shape)}"
            )
    return ws


def _output_activation(spec):
    """Activations of Dense/Conv1D outputs: the element-wise ones, plus 'softmax' (last axis)."""
    if spec == "softmax":
        return Activation("softmax", lambda x: torch.softmax(x, dim=-1))
    return get_activation(spec, "activation")


def _glorot_(w: Tensor) -> Tensor:
    receptive = w[0, 0].numel() if w.dim() > 2 else 1  # kernel width of a convolution
    limit = math.sqrt(6.0 / ((w.shape[0] + w.shape[1]) * receptive))
    return nn.init.uniform_(w, -limit, limit)


class Dense(Layer):
    """``activation(x W + b)`` on the last axis (so also per step of a sequence)."""

    def __init__(self, units: int, activation=None, use_bias: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive_int(units, "units")
        self.units, self.use_bias = units, use_bias
        self.activation = _output_activation(activation)
        self.activation_arg = activation if isinstance(activation, str) or activation is None else None

    def build(self, input_shape):
        self.linear = nn.Linear(input_shape[-1], self.units, bias=self.use_bias)
        _glorot_(self.linear.weight)
        if self.use_bias:
            nn.init.zeros_(self.linear.bias)

    def call(self, x, mask=None):
        return self.activation(self.linear(x))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def compute_mask(self, x, mask):
        return mask if x.dim() == 3 else None

    def get_weights(self):  # kernel (in, units), bias (units,)
        w = [self.linear.weight.detach().t()]
        return [*w, self.linear.bias.detach()] if self.use_bias else w

    def set_weights(self, weights):
        ws = _expect(weights, 2 if self.use_bias else 1, self)
        _assign(self.linear.weight, ws[0].t(), "kernel (transposed)")
        if self.use_bias:
            _assign(self.linear.bias, ws[1], "bias")

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation_arg,
            "use_bias": self.use_bias,
        }


class Dropout(Layer):
    def __init__(self, rate: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = check_probability(rate, "rate")

    def call(self, x, mask=None):
        return F.dropout(x, self.rate, self.training)

    def compute_mask(self, x, mask):
        return mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class Masking(Layer):
    """Marks steps whose features all equal ``mask_value`` as padding."""

    def __init__(self, mask_value: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, x, mask=None):
        keep = self.compute_mask(x, mask)
        return x * keep.unsqueeze(-1).to(x.dtype)

    def compute_mask(self, x, mask):
        return (x != self.mask_value).any(-1)  # (B, T)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


class Embedding(Layer):
    """Integer tokens (B, T) to vectors (B, T, output_dim); index 0 is padding if mask_zero."""

    def __init__(self, input_dim: int, output_dim: int, mask_zero: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive_int(input_dim, "input_dim")
        check_positive_int(output_dim, "output_dim")
        self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero

    def build(self, input_shape):
        self.embedding = nn.Embedding(self.input_dim, self.output_dim)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)  # Keras' default

    def call(self, x, mask=None):
        if x.dtype.is_floating_point:
            x = x.long()
        if int(x.min()) < 0 or int(x.max()) >= self.input_dim:
            raise ValueError(
                f"Embedding: expected token ids in [0, {self.input_dim}), got min {int(x.min())}, max {int(x.max())}"
            )
        return self.embedding(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def compute_mask(self, x, mask):
        return (x != 0) if self.mask_zero else None

    def get_weights(self):
        return [self.embedding.weight.detach()]

    def set_weights(self, weights):
        _assign(self.embedding.weight, _expect(weights, 1, self)[0], "embeddings")

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
        }


def _mask_to_lengths(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """Move each sequence's valid steps to the front (stable), so padding anywhere, not only at
    the end, becomes a length. Returns (packed x, lengths, gather index or None)."""
    mask = mask.bool()
    lengths = mask.sum(1)
    if bool((mask == (torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1))).all()):
        return x, lengths, None  # already right-padded
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # valid steps first  # (B, T)
    return x.gather(1, order.unsqueeze(-1).expand_as(x)), lengths, order


class _Recurrent(Layer):
    """LSTM / GRU / SimpleRNN on biolstm.nn with Keras' arguments and initialisers."""

    mode = "LSTM"
    gates = 4

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        unit_forget_bias: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        engine: str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_positive_int(units, "units")
        self.units = units
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        get_activation(activation, "activation")
        get_activation(recurrent_activation, "recurrent_activation")
        self.use_bias = use_bias
        self.unit_forget_bias = unit_forget_bias
        self.dropout = check_probability(dropout, "dropout")
        self.recurrent_dropout = check_probability(recurrent_dropout, "recurrent_dropout")
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards, self.stateful = go_backwards, stateful
        self.engine = engine
        self.states: tuple | Tensor | None = None

    def _make_rnn(self, input_dim: int) -> bnn.RNNBase:
        kw = dict(
            batch_first=True,
            bias=self.use_bias,
            recurrent_dropout=self.recurrent_dropout,
            engine=self.engine,
            activation=self.activation,
        )
        if self.mode == "LSTM":
            return bnn.LSTM(input_dim, self.units, recurrent_activation=self.recurrent_activation, **kw)
        if self.mode == "GRU":
            return bnn.GRU(input_dim, self.units, recurrent_activation=self.recurrent_activation, **kw)
        return bnn.RNN(input_dim, self.units, **kw)

    def build(self, input_shape):
        self.rnn = self._make_rnn(input_shape[-1])
        H = self.units
        with torch.no_grad():
            _glorot_(self.rnn.weight_ih_l0)  # Keras initialises the stacked kernel as one matrix
            nn.init.orthogonal_(self.rnn.weight_hh_l0)  # Keras: one orthogonal (units, G*units) kernel
            if self.use_bias:
                self.rnn.bias_ih_l0.zero_()
                self.rnn.bias_hh_l0.zero_()
                if self.unit_forget_bias and self.mode == "LSTM":
                    self.rnn.bias_ih_l0[H : 2 * H] = 1.0
                if self.mode != "GRU":  # Keras has one bias: keep torch's second one at zero
                    self.rnn.bias_hh_l0.requires_grad_(False)

    def reset_states(self) -> None:
        self.states = None

    reset_state = reset_states  # Keras 3's name

    def forward(self, x: Tensor, mask: Tensor | None = None, initial_state=None):
        self.ensure_built(tuple(x.shape[1:]))
        return self.call(x, mask, initial_state)

    def _initial(self, initial_state, batch: int):
        """Keras' ``initial_state`` ([h, c] for LSTM, [h] or h for GRU and SimpleRNN, each
        (batch, units)) as biolstm.nn's hx ((1, batch, units) per state)."""
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        need = 2 if self.mode == "LSTM" else 1
        name = self.layer_name or type(self).__name__
        if len(states) != need:
            raise ValueError(f"{name}: initial_state: expected {need} tensor{'s' * (need > 1)} of shape "
                             f"(batch, {self.units}), got {len(states)}")  # fmt: skip
        out = []
        for s in states:
            s = torch.as_tensor(s)
            if tuple(s.shape) != (batch, self.units):
                raise ValueError(f"{name}: initial_state: expected shape ({batch}, {self.units}), got {tuple(s.shape)}")
            out.append(s.unsqueeze(0))
        return tuple(out) if self.mode == "LSTM" else out[0]

    def call(self, x, mask=None, initial_state=None):
        if self.dropout and self.training:  # one input mask per sequence, as Keras
            keep = torch.empty(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype).bernoulli_(1 - self.dropout)
            x = x * keep / (1 - self.dropout)
        lengths, order = None, None
        if mask is not None:
            x, lengths, order = _mask_to_lengths(x, mask)
        if self.go_backwards:
            x = bnn.engine.reverse_padded(x.transpose(0, 1), lengths).transpose(0, 1)
        hx = self.states if self.stateful else None
        if initial_state is not None:
            hx = self._initial(initial_state, x.shape[0])
        elif hx is not None:
            carried = (hx[0] if isinstance(hx, tuple) else hx).shape[1]
            if carried != x.shape[0]:
                raise ValueError(
                    f"{self.layer_name or type(self).__name__}: stateful=True carries one state per sample, "
                    f"so every batch must have {carried} samples like the previous one, got {x.shape[0]}; "
                    "use a batch_size that divides the number of samples, or call reset_states() between sequences"
                )
        out, state = self.rnn(x, hx, lengths=lengths)
        if self.stateful:
            self.states = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        h = state[0][-1] if isinstance(state, tuple) else state[-1]  # (B, units)
        if self.return_sequences:
            if mask is not None and not self.go_backwards:
                # Keras: a masked step repeats the output of the last unmasked step before it (zeros
                # before the first); ``out`` holds the unmasked steps first, in order
                last = mask.bool().long().cumsum(1) - 1  # (B, T)
                out = out.gather(1, last.clamp_min(0).unsqueeze(-1).expand(-1, -1, out.shape[-1]))
                out = out * (last >= 0).unsqueeze(-1).to(out.dtype)
            elif order is not None:  # put outputs back on their steps; padding steps get zeros
                back = torch.zeros_like(out)
                out = back.scatter(1, order.unsqueeze(-1).expand_as(out), out)
            result = out
        else:
            result = h
        if self.return_state:
            extra = [state[0][-1], state[1][-1]] if isinstance(state, tuple) else [state[-1]]
            return [result, *extra]
        return result

    def compute_output_shape(self, input_shape):
        out = (input_shape[0], self.units) if self.return_sequences else (self.units,)
        if self.return_state:  # Keras: [output, state_h, state_c] (LSTM) or [output, state]
            return [out, *[(self.units,)] * (2 if self.mode == "LSTM" else 1)]
        return out

    def compute_mask(self, x, mask):
        return mask if self.return_sequences else None

    def _keras_order(self) -> list[int]:
        # torch stacks gates as LSTM i|f|g|o, GRU r|z|n; Keras as LSTM i|f|c|o, GRU z|r|h
        return [1, 0, 2] if self.mode == "GRU" else list(range(self.gates))

    def _reorder(self, w: Tensor, order: list[int]) -> Tensor:  # permute gate blocks along dim 0
        H = self.units
        return torch.cat([w[k * H : (k + 1) * H] for k in order], 0)

    def get_weights(self):
        """Keras' list: kernel (D, G*H), recurrent_kernel (H, G*H), bias (G*H,) or, for GRU
        (reset_after=True), bias (2, 3H) = [input bias, recurrent bias]."""
        r, order = self.rnn, self._keras_order()
        out = [self._reorder(r.weight_ih_l0.detach(), order).t(), self._reorder(r.weight_hh_l0.detach(), order).t()]
        if self.use_bias:
            b_ih, b_hh = self._reorder(r.bias_ih_l0.detach(), order), self._reorder(r.bias_hh_l0.detach(), order)
            out.append(torch.stack([b_ih, b_hh]) if self.mode == "GRU" else b_ih + b_hh)
        return out

    def set_weights(self, weights):
        ws = _expect(weights, 3 if self.use_bias else 2, self)
        r, order = self.rnn, self._keras_order()  # the permutations here are their own inverses
        _assign(r.weight_ih_l0, self._reorder(ws[0].t(), order), "kernel (transposed)")
        _assign(r.weight_hh_l0, self._reorder(ws[1].t(), order), "recurrent_kernel (transposed)")
        if self.use_bias:
            if self.mode == "GRU":
                if tuple(ws[2].shape) != (2, 3 * self.units):
                    raise ValueError(
                        f"weights: expected a GRU bias of shape (2, {3 * self.units}) "
                        f"(reset_after=True), got {tuple(ws[2].shape)}"
                    )
                _assign(r.bias_ih_l0, self._reorder(ws[2][0], order), "bias")
                _assign(r.bias_hh_l0, self._reorder(ws[2][1], order), "bias")
            else:
                _assign(r.bias_ih_l0, self._reorder(ws[2], order), "bias")
                _assign(r.bias_hh_l0, torch.zeros_like(r.bias_hh_l0), "bias")

    def get_config(self):
        keys = (
            "units",
            "activation",
            "recurrent_activation",
            "use_bias",
            "unit_forget_bias",
            "dropout",
            "recurrent_dropout",
            "return_sequences",
            "return_state",
            "go_backwards",
            "stateful",
            "engine",
        )
        cfg = {k: getattr(self, k) for k in keys}
        for k in ("activation", "recurrent_activation"):
            if not isinstance(cfg[k], str):
                raise ValueError(f"{k}: a model with a callable activation cannot be saved; use a Keras name")
        return {**super().get_config(), **cfg}


class LSTM(_Recurrent):
    """Keras' LSTM on biolstm.nn.LSTM (any activation; gates via biolstm.nn.record_gates)."""


class GRU(_Recurrent):
    """Keras' GRU (reset_after=True, torch's and Keras 3's default form) on biolstm.nn.GRU."""

    mode, gates = "GRU", 3


class SimpleRNN(_Recurrent):
    """Keras' SimpleRNN on biolstm.nn.RNN."""

    mode, gates = "RNN", 1

    def __init__(self, units: int, activation="tanh", **kwargs) -> None:
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, unit_forget_bias=False, **kwargs)


class Bidirectional(Layer):
    """Runs ``layer`` forwards and a copy backwards; merge_mode 'concat', 'sum', 'mul', 'ave'."""

    def __init__(self, layer: _Recurrent, merge_mode: str = "concat", **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"layer: expected an LSTM, GRU or SimpleRNN layer, got {type(layer).__name__}")
        check_choice(merge_mode, ("concat", "sum", "mul", "ave"), "merge_mode")
        self.merge_mode = merge_mode
        self.forward_layer = layer
        cfg = {k: v for k, v in layer.get_config().items() if k not in ("input_shape", "name")}
        cfg["go_backwards"] = not layer.go_backwards
        self.backward_layer = type(layer)(**cfg)
        self.inner_config = {"class_name": type(layer).__name__, "config": layer.get_config()}

    def build(self, input_shape):
        self.forward_layer.ensure_built(input_shape)
        self.backward_layer.ensure_built(input_shape)

    def forward(self, x: Tensor, mask: Tensor | None = None, initial_state=None):
        self.ensure_built(tuple(x.shape[1:]))
        return self.call(x, mask, initial_state)

    def call(self, x, mask=None, initial_state=None):
        fwd = bwd = None
        if initial_state is not None:  # Keras: the forward layer's states, then the backward layer's
            states = list(initial_state)
            if len(states) % 2:
                raise ValueError(f"{self.layer_name or 'Bidirectional'}: initial_state: expected the forward "
                                 f"and the backward layer's states (an even number), got {len(states)}")  # fmt: skip
            fwd, bwd = states[: len(states) // 2], states[len(states) // 2 :]
        a = self.forward_layer(x, mask, fwd)
        b = self.backward_layer(x, mask, bwd)
        extra = []
        if self.forward_layer.return_state:  # [output, *forward states, *backward states]
            (a, *sa), (b, *sb) = a, b
            extra = [*sa, *sb]
        if self.forward_layer.return_sequences:
            b = b.flip(1) if mask is None else _unreverse(b, mask)
        if self.merge_mode == "concat":
            out = torch.cat([a, b], -1)
        elif self.merge_mode == "sum":
            out = a + b
        elif self.merge_mode == "mul":
            out = a * b
        else:
            out = (a + b) / 2
        return [out, *extra] if extra else out

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if isinstance(out, list):
            out, *states = out
        out = (*out[:-1], out[-1] * 2) if self.merge_mode == "concat" else out
        return [out, *states, *states] if states else out

    def get_weights(self):
        return self.forward_layer.get_weights() + self.backward_layer.get_weights()

    def set_weights(self, weights):
        n = len(self.forward_layer.get_weights())
        _expect(weights, 2 * n, self)
        self.forward_layer.set_weights(weights[:n])
        self.backward_layer.set_weights(weights[n:])

    def compute_mask(self, x, mask):
        return mask if self.forward_layer.return_sequences else None

    def get_config(self):
        return {**super().get_config(), "merge_mode": self.merge_mode, "layer": self.inner_config}


def _unreverse(y: Tensor, mask: Tensor) -> Tensor:
    """A go_backwards layer's outputs (reversed within each length) back to input order."""
    lengths = mask.bool().sum(1)
    return bnn.engine.reverse_padded(y.transpose(0, 1), lengths).transpose(0, 1)


class Conv1D(Layer):
    """Channels-last 1-D convolution: (B, T, C) -> (B, T', filters)."""

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        padding: str = "valid",
        dilation_rate: int = 1,
        activation=None,
        use_bias: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_positive_int(filters, "filters")
        kernel_size = kernel_size[0] if isinstance(kernel_size, (tuple, list)) else kernel_size
        check_positive_int(kernel_size, "kernel_size")
        check_choice(padding, ("valid", "same"), "padding")
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.padding, self.dilation_rate, self.use_bias = padding, dilation_rate, use_bias
        self.activation = _output_activation(activation)
        self.activation_arg = activation if isinstance(activation, str) or activation is None else None

    def build(self, input_shape):
        self.conv = nn.Conv1d(
            input_shape[-1],
            self.filters,
            self.kernel_size,
            stride=self.strides,
            dilation=self.dilation_rate,
            bias=self.use_bias,
        )
        _glorot_(self.conv.weight)
        if self.use_bias:
            nn.init.zeros_(self.conv.bias)

    def call(self, x, mask=None):
        x = x.transpose(1, 2)  # (B, C, T)
        if self.padding == "same":
            total = self.dilation_rate * (self.kernel_size - 1)
            x = F.pad(x, (total // 2, total - total // 2))
        return self.activation(self.conv(x).transpose(1, 2))

    def get_weights(self):  # kernel (k, in, filters), bias (filters,)
        w = [self.conv.weight.detach().permute(2, 1, 0)]
        return [*w, self.conv.bias.detach()] if self.use_bias else w

    def set_weights(self, weights):
        ws = _expect(weights, 2 if self.use_bias else 1, self)
        _assign(self.conv.weight, ws[0].permute(2, 1, 0), "kernel (permuted)")
        if self.use_bias:
            _assign(self.conv.bias, ws[1], "bias")

    def compute_output_shape(self, input_shape):
        T = input_shape[0]
        if T is not None:
            span = self.dilation_rate * (self.kernel_size - 1)
            T = T if self.padding == "same" else T - span
            T = (T - 1) // self.strides + 1 if self.padding == "valid" else math.ceil(T / self.strides)
        return (T, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "activation": self.activation_arg,
            "use_bias": self.use_bias,
        }


class MaxPooling1D(Layer):
    def __init__(self, pool_size: int = 2, strides: int | None = None, padding: str = "valid", **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive_int(pool_size, "pool_size")
        check_choice(padding, ("valid", "same"), "padding")
        self.pool_size, self.strides, self.padding = pool_size, strides or pool_size, padding

    def call(self, x, mask=None):
        x = x.transpose(1, 2)
        if self.padding == "same":
            T = x.shape[-1]
            out = math.ceil(T / self.strides)
            total = max((out - 1) * self.strides + self.pool_size - T, 0)
            x = F.pad(x, (total // 2, total - total // 2), value=-math.inf)
        return F.max_pool1d(x, self.pool_size, self.strides).transpose(1, 2)

    def compute_output_shape(self, input_shape):
        T = input_shape[0]
        if T is not None:
            T = math.ceil(T / self.strides) if self.padding == "same" else (T - self.pool_size) // self.strides + 1
        return (T, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


class GlobalMaxPooling1D(Layer):
    def call(self, x, mask=None):
        if mask is not None:
            x = x.masked_fill(~mask.bool().unsqueeze(-1), -math.inf)
        return x.max(1).values

    def compute_output_shape(self, input_shape):
        return (input_shape[-1],)


class GlobalAveragePooling1D(Layer):
    def call(self, x, mask=None):
        if mask is None:
            return x.mean(1)
        m = mask.to(x.dtype).unsqueeze(-1)
        return (x * m).sum(1) / m.sum(1).clamp_min(1)

    def compute_output_shape(self, input_shape):
        return (input_shape[-1],)


class Flatten(Layer):
    def call(self, x, mask=None):
        return x.reshape(x.shape[0], -1)

    def compute_output_shape(self, input_shape):
        if any(d is None for d in input_shape):
            raise ValueError(f"Flatten: expected a fixed input shape, got {input_shape}")
        return (math.prod(input_shape),)


class TimeDistributed(Layer):
    """Applies ``layer`` to every step: (B, T, ...) -> (B, T, ...')."""

    def __init__(self, layer: Layer, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(f"layer: expected a biolstm.keras layer, got {type(layer).__name__}")
        self.layer = layer
        self.inner_config = {"class_name": type(layer).__name__, "config": layer.get_config()}

    def build(self, input_shape):
        self.layer.ensure_built(input_shape[1:])

    def call(self, x, mask=None):
        B, T = x.shape[:2]
        y = self.layer(x.reshape(B * T, *x.shape[2:]))
        return y.reshape(B, T, *y.shape[1:])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.layer.compute_output_shape(input_shape[1:]))

    def get_weights(self):
        return self.layer.get_weights()

    def set_weights(self, weights):
        self.layer.set_weights(weights)

    def compute_mask(self, x, mask):
        return mask

    def get_config(self):
        return {**super().get_config(), "layer": self.inner_config}


class InputLayer(Layer):
    """``Input(shape=(T, D))``: declares the input shape of a Sequential model."""

    def __init__(self, shape: Shape, **kwargs) -> None:
        super().__init__(input_shape=shape, **kwargs)

    def call(self, x, mask=None):
        return x

    def compute_mask(self, x, mask):
        return mask

    def get_config(self):
        return {"shape": self.input_shape_arg, "name": self.layer_name}


def Input(shape: Shape, name: str | None = None, dtype=None, batch_size: int | None = None):
    """Keras' ``Input``: a symbolic tensor for the functional API (``Model(inputs, outputs)``);
    ``Sequential.add(Input(shape))`` declares a Sequential model's input shape with it."""
    from .functional import Input as symbolic_input

    return symbolic_input(shape, name=name, dtype=dtype, batch_size=batch_size)


LAYERS = {
    c.__name__: c
    for c in (
        Dense,
        Dropout,
        Masking,
        Embedding,
        LSTM,
        GRU,
        SimpleRNN,
        Bidirectional,
        Conv1D,
        MaxPooling1D,
        GlobalMaxPooling1D,
        GlobalAveragePooling1D,
        Flatten,
        TimeDistributed,
        InputLayer,
    )
}


def layer_from_config(spec: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``{"class_name": ..., "config": {...}}``."""
    cls = LAYERS.get(spec.get("class_name"))
    if cls is None:
        raise ValueError(f"layer: expected one of {sorted(LAYERS)}, got {spec.get('class_name')!r}")
    cfg = dict(spec["config"])
    if cls in (Bidirectional, TimeDistributed):
        cfg["layer"] = layer_from_config(cfg["layer"])
    return cls(**cfg)


from .merging import (  # noqa: E402, F401  (re-exports; merging.py builds on the classes above)
    MERGING_LAYERS,
    Add,
    Average,
    BatchNormalization,
    Concatenate,
    LayerNormalization,
    Maximum,
    Minimum,
    Multiply,
    Permute,
    RepeatVector,
    Reshape,
    Subtract,
)

LAYERS.update(MERGING_LAYERS)

from .attention import ATTENTION_LAYERS, AdditiveAttention, Attention  # noqa: E402, F401

LAYERS.update(ATTENTION_LAYERS)

from .conv2d import CONV2D_LAYERS, Conv2D, Lambda, MaxPooling2D  # noqa: E402, F401

LAYERS.update(CONV2D_LAYERS)

from .text import TEXT_LAYERS, TextVectorization  # noqa: E402, F401

LAYERS.update(TEXT_LAYERS)
