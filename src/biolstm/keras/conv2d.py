"""Keras' image layers, channels-last ``(B, H, W, C)``: ``Conv2D`` and ``MaxPooling2D`` (Keras 3's
padding rules and weight layout, checked against Keras 3 on its torch backend); and ``Lambda``,
which wraps a Python callable (so a model holding one cannot be saved).

``padding="same"`` pads as Keras (and TensorFlow) do: ``max((ceil(n / s) - 1) * s + k - n, 0)``
in all, the smaller half before; max pooling pads with -inf. Conv2D's weights are
``kernel (kh, kw, in, filters)`` and ``bias (filters,)``.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_choice, check_positive_int
from .layers import Layer, _assign, _expect, _glorot_, _output_activation
from .merging import _name


def _pair(v, what: str) -> tuple[int, int]:
    pair = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(pair) != 2:
        raise ValueError(f"{what}: expected an int or a pair of ints, got {v!r}")
    for p in pair:
        check_positive_int(p, what)
    return pair  # type: ignore[return-value]


def _out_len(n, k: int, s: int, padding: str):
    if n is None:
        return None
    return math.ceil(n / s) if padding == "same" else (n - k) // s + 1 if n >= k else 0


def _same_pad(x, ks, ss, value: float = 0.0):
    """Pad (B, C, H, W) as Keras' "same": the total over each axis, the smaller half first."""
    pads = []
    for n, k, s in zip(reversed(x.shape[2:]), reversed(ks), reversed(ss)):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


class _Spatial(Layer):
    def _check_rank(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{_name(self)}: expected inputs of shape (batch, height, width, channels), "
                f"got (batch, *{tuple(input_shape)})"
            )

    def _spatial_out(self, input_shape):
        self._check_rank(input_shape)
        return tuple(_out_len(n, k, s, self.padding) for n, k, s in zip(input_shape[:2], self.kernel_, self.strides_))


class Conv2D(_Spatial):
    """Channels-last 2-D convolution: (B, H, W, C) -> (B, H', W', filters)."""

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        activation=None,
        use_bias: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_positive_int(filters, "filters")
        check_choice(padding, ("valid", "same"), "padding")
        self.filters, self.padding, self.use_bias = filters, padding, use_bias
        self.kernel_, self.strides_ = _pair(kernel_size, "kernel_size"), _pair(strides, "strides")
        self.activation = _output_activation(activation)
        self.activation_arg = activation if isinstance(activation, str) or activation is None else None

    def build(self, input_shape):
        self._check_rank(input_shape)
        if input_shape[-1] is None:
            raise ValueError(f"{_name(self)}: the channels axis must have a known size, got {input_shape}")
        self.conv = nn.Conv2d(input_shape[-1], self.filters, self.kernel_, stride=self.strides_, bias=self.use_bias)
        _glorot_(self.conv.weight)
        if self.use_bias:
            nn.init.zeros_(self.conv.bias)

    def call(self, x, mask=None):
        x = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        if self.padding == "same":
            x = _same_pad(x, self.kernel_, self.strides_)
        return self.activation(self.conv(x).permute(0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        return (*self._spatial_out(input_shape), self.filters)

    def get_weights(self):  # kernel (kh, kw, in, filters), bias (filters,)
        w = [self.conv.weight.detach().permute(2, 3, 1, 0)]
        return [*w, self.conv.bias.detach()] if self.use_bias else w

    def set_weights(self, weights):
        ws = _expect(weights, 2 if self.use_bias else 1, self)
        _assign(self.conv.weight, ws[0].permute(3, 2, 0, 1), "kernel (permuted)")
        if self.use_bias:
            _assign(self.conv.bias, ws[1], "bias")

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_),
            "strides": list(self.strides_),
            "padding": self.padding,
            "activation": self.activation_arg,
            "use_bias": self.use_bias,
        }


class MaxPooling2D(_Spatial):
    """(B, H, W, C) -> (B, H', W', C); ``strides`` defaults to ``pool_size``."""

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", **kwargs) -> None:
        super().__init__(**kwargs)
        check_choice(padding, ("valid", "same"), "padding")
        self.kernel_ = _pair(pool_size, "pool_size")
        self.strides_ = self.kernel_ if strides is None else _pair(strides, "strides")
        self.padding = padding

    def call(self, x, mask=None):
        x = x.permute(0, 3, 1, 2)
        if self.padding == "same":
            x = _same_pad(x, self.kernel_, self.strides_, value=-math.inf)
        return F.max_pool2d(x, self.kernel_, self.strides_).permute(0, 2, 3, 1)

    def compute_output_shape(self, input_shape):
        return (*self._spatial_out(input_shape), input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.kernel_),
            "strides": list(self.strides_),
            "padding": self.padding,
        }


class Lambda(Layer):
    """Calls ``function`` on the input (a tensor, or the list of a multi-input call); ``function``
    may take ``mask=`` too. ``output_shape`` (a shape without the batch axis, or a callable on the
    input shape) is inferred when omitted, by running the function on zeros. ``mask`` (None, a
    tensor or a callable ``(inputs, mask) -> mask``) is the output's mask, as in Keras.

    A Lambda holds Python code, so it has no config: ``get_config`` (hence ``model.save``)
    raises a ValueError; rebuild the model in code and load its weights instead.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: expected a callable function, got {type(function).__name__}")
        self.function, self.output_shape, self.mask, self.arguments = function, output_shape, mask, arguments or {}
        try:
            self._takes_mask = "mask" in inspect.signature(function).parameters
        except (TypeError, ValueError):  # builtins without a signature
            self._takes_mask = False

    def forward(self, x, mask=None):
        shapes = [tuple(t.shape[1:]) for t in x] if isinstance(x, (list, tuple)) else tuple(x.shape[1:])
        self.ensure_built(shapes)
        return self.call(x, mask)

    def ensure_built(self, input_shape):
        if not self.built:
            self.built = True
            self.input_shape_ = input_shape
        return self.compute_output_shape(input_shape)

    def call(self, x, mask=None):
        kwargs = dict(self.arguments)
        if self._takes_mask:
            kwargs["mask"] = mask
        return self.function(x, **kwargs)

    def compute_output_shape(self, input_shape):
        if self.output_shape is not None:
            out = self.output_shape(input_shape) if callable(self.output_shape) else self.output_shape
            return [tuple(s) for s in out] if isinstance(out, list) else tuple(out)
        return self._infer_shape(input_shape)

    def _infer_shape(self, input_shape):
        """Run the function on zeros twice, unknown lengths as 2 then 3: axes that change are None."""

        def probe(n):
            def zeros(s):
                return torch.zeros(1, *(n if d is None else d for d in s))

            x = [zeros(s) for s in input_shape] if isinstance(input_shape, list) else zeros(input_shape)
            with torch.no_grad():
                y = self.call(x, None)
            return [tuple(t.shape[1:]) for t in y] if isinstance(y, (list, tuple)) else tuple(y.shape[1:])

        def known(s):
            return None not in (s if not isinstance(s, list) else [d for t in s for d in t])

        a = probe(2)
        if known(input_shape):
            return a
        b = probe(3)
        if isinstance(a, list):
            return [tuple(p if p == q else None for p, q in zip(s, t)) for s, t in zip(a, b)]
        return tuple(p if p == q else None for p, q in zip(a, b))

    def compute_mask(self, x, mask):
        return self.mask(x, mask) if callable(self.mask) else self.mask

    def get_config(self):
        raise ValueError(
            f"{_name(self)}: a Lambda layer cannot be saved (it wraps a Python callable); "
            "rebuild the model in code and load its weights instead"
        )


CONV2D_LAYERS: dict[str, type[Layer]] = {c.__name__: c for c in (Conv2D, MaxPooling2D, Lambda)}
