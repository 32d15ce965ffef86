"""Layers that Keras functional models need: merges of several tensors, shape layers and
normalisation, with Keras 3's semantics (checked against Keras 3.15 on its torch backend).

Merge layers take a LIST of tensors: ``call(inputs, mask)`` with ``mask`` None or a list (one
per input, each None or a boolean ``(batch, time)`` tensor), ``compute_output_shape(shapes)``
with a list of shapes without the batch axis. Masks follow Keras 3: the output of an elementwise
merge is masked with the OR of the inputs' masks when every input has one (else no mask);
``Maximum``/``Minimum`` take the other input's value at a masked step and ``Multiply`` treats a
masked step as 1; ``Concatenate`` ORs the (broadcast) masks along the last axis, or joins them
along time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .layers import Layer, _assign, _expect

_EPS = 1e-7  # Keras' backend.epsilon(), used in its masked moments


def _name(layer: Layer) -> str:
    return layer.layer_name or type(layer).__name__


# ---------------------------------------------------------------- merge layers
class _Merge(Layer):
    """Base of the merge layers: built from the list of the inputs' shapes."""

    min_inputs, max_inputs = 2, None

    def forward(self, inputs, mask=None):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{_name(self)}: expected a list of at least {self.min_inputs} tensors, got a single "
                f"{type(inputs).__name__}"
            )
        if mask is not None and (not isinstance(mask, (list, tuple)) or len(mask) != len(inputs)):
            raise ValueError(
                f"{_name(self)}: expected mask None or a list of {len(inputs)} masks (one per input), got {mask!r}"
            )
        shapes = [tuple(x.shape[1:]) for x in inputs]
        batches = {int(x.shape[0]) for x in inputs}
        if len(batches) > 1:
            raise ValueError(
                f"{_name(self)}: expected inputs with one batch size, got shapes {[tuple(x.shape) for x in inputs]}"
            )
        self.ensure_built(shapes)  # validates the shapes on every call
        return self.call(list(inputs), None if mask is None else list(mask))

    def ensure_built(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        out = self.compute_output_shape(shapes)  # validates
        if not self.built:
            self.build(shapes)
            self.built = True
            self.input_shape_ = shapes
        return out

    def _check_count(self, shapes: list) -> None:
        n = len(shapes)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            want = f"exactly {self.max_inputs}" if self.max_inputs == self.min_inputs else f"at least {self.min_inputs}"
            raise ValueError(f"{_name(self)}: expected {want} inputs, got {n}")

    def compute_output_shape(self, input_shapes):
        self._check_count(input_shapes)
        ranks = {len(s) for s in input_shapes}
        if len(ranks) > 1:
            raise ValueError(f"{_name(self)}: expected inputs of one rank, got shapes {list(input_shapes)}")
        out = []
        for dims in zip(*input_shapes):
            known = {d for d in dims if d is not None and d != 1}
            if len(known) > 1:
                raise ValueError(
                    f"{_name(self)}: expected inputs of the same shape (or 1 to broadcast), got shapes "
                    f"{list(input_shapes)}"
                )
            if None in dims:
                out.append(None if not known else next(iter(known)))
            else:
                out.append(next(iter(known)) if known else 1)
        return tuple(out)

    def compute_mask(self, x, mask):
        if mask is None or any(m is None for m in mask):
            return None
        out = mask[0].bool()
        for m in mask[1:]:
            out = out | m.bool()
        return out

    def call(self, inputs, mask=None):
        return self._merge(inputs)

    def _merge(self, inputs: list[Tensor]) -> Tensor:
        raise NotImplementedError


def _full_mask(m: Tensor, x: Tensor) -> Tensor:
    return m.bool().unsqueeze(-1).expand_as(x)


class Add(_Merge):
    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    min_inputs = max_inputs = 2

    def _merge(self, inputs):
        return inputs[0] - inputs[1]


class Average(Add):
    def _merge(self, inputs):
        return super()._merge(inputs) / len(inputs)


class Multiply(_Merge):
    """Masked steps count as 1; with every input masked, steps no input keeps are zeros."""

    def call(self, inputs, mask=None):
        masks = mask or [None] * len(inputs)
        out, keep = None, None
        for x, m in zip(inputs, masks):
            if m is not None:
                m = _full_mask(m, x)
                x = torch.where(m, x, torch.ones_like(x))
                keep = m if keep is None else keep | m
            out = x if out is None else out * x
        if all(m is not None for m in masks):
            out = torch.where(keep, out, torch.zeros_like(out))
        return out


class Maximum(_Merge):
    """At a step one input masks, the other's value (Keras 3's order-dependent rule)."""

    op = staticmethod(torch.maximum)

    def call(self, inputs, mask=None):
        masks = mask or [None] * len(inputs)
        out, out_mask = None, None
        for x, m in zip(inputs, masks):
            m = None if m is None else _full_mask(m, x)
            if out is None:
                out, out_mask = x, m
                continue
            if m is not None:
                x = torch.where(m, x, out)
            if out_mask is not None:
                out = torch.where(out_mask, out, x)
            out_mask = out_mask | m if m is not None and out_mask is not None else None
            out = self.op(out, x)
        return out


class Minimum(Maximum):
    op = staticmethod(torch.minimum)


class Concatenate(_Merge):
    """Joins the inputs along ``axis`` (Keras' numbering, with the batch axis: -1 is features)."""

    def __init__(self, axis: int = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(axis, int) or axis == 0:
            raise ValueError(f"Concatenate: expected a non-batch axis (an int, not 0), got {axis!r}")
        self.axis = axis

    def _dim(self, rank: int) -> int:
        """The axis as an index into a shape without the batch axis."""
        full = self.axis + rank + 1 if self.axis < 0 else self.axis
        if not 1 <= full <= rank:
            raise ValueError(f"{_name(self)}: axis {self.axis} is out of range for inputs of rank {rank + 1}")
        return full - 1

    def compute_output_shape(self, input_shapes):
        self._check_count(input_shapes)
        ranks = {len(s) for s in input_shapes}
        if len(ranks) > 1:
            raise ValueError(f"{_name(self)}: expected inputs of one rank, got shapes {list(input_shapes)}")
        k = self._dim(ranks.pop())
        out = []
        for i, dims in enumerate(zip(*input_shapes)):
            if i == k:
                out.append(None if None in dims else sum(dims))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1:
                raise ValueError(
                    f"{_name(self)}: expected shapes that match except along axis {self.axis}, got {list(input_shapes)}"
                )
            out.append(known.pop() if known else None)
        return tuple(out)

    def call(self, inputs, mask=None):
        return torch.cat(inputs, self._dim(inputs[0].dim() - 1) + 1)

    def compute_mask(self, x, mask):
        if mask is None or all(m is None for m in mask):
            return None
        full = [
            torch.ones_like(xi, dtype=torch.bool)
            if m is None
            else _full_mask(m, xi)
            if m.dim() < xi.dim()
            else m.bool()
            for xi, m in zip(x, mask)
        ]
        return torch.cat(full, self._dim(x[0].dim() - 1) + 1).any(-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# ---------------------------------------------------------------- shape layers
class Reshape(Layer):
    """(B, *in) -> (B, *target_shape); one entry of target_shape may be -1."""

    def __init__(self, target_shape, **kwargs) -> None:
        super().__init__(**kwargs)
        target = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in target) > 1 or any(d < -1 or d == 0 for d in target):
            raise ValueError(f"Reshape: expected positive sizes and at most one -1 in target_shape, got {target}")
        self.target_shape = target

    def compute_output_shape(self, input_shape):
        if any(d is None for d in input_shape):
            return tuple(None if d == -1 else d for d in self.target_shape)
        total, known = math.prod(input_shape), math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if total % known:
                raise ValueError(
                    f"{_name(self)}: cannot reshape inputs of shape {tuple(input_shape)} ({total} values) "
                    f"to {self.target_shape}"
                )
            return tuple(total // known if d == -1 else d for d in self.target_shape)
        if total != known:
            raise ValueError(
                f"{_name(self)}: expected inputs of {known} values to reshape to {self.target_shape}, "
                f"got shape {tuple(input_shape)} ({total} values)"
            )
        return self.target_shape

    def call(self, x, mask=None):
        self.compute_output_shape(tuple(x.shape[1:]))
        return x.reshape(x.shape[0], *self.target_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permutes the non-batch axes; ``dims`` is 1-based, as Keras: Permute((2, 1)) swaps T and F."""

    def __init__(self, dims, **kwargs) -> None:
        super().__init__(**kwargs)
        dims = tuple(int(d) for d in dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: expected dims to be a permutation of 1..{len(dims)}, got {dims}")
        self.dims = dims

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ValueError(
                f"{_name(self)}: expected inputs with {len(self.dims)} non-batch axes for dims {self.dims}, "
                f"got shape {tuple(input_shape)}"
            )
        return tuple(input_shape[d - 1] for d in self.dims)

    def call(self, x, mask=None):
        self.compute_output_shape(tuple(x.shape[1:]))
        return x.permute(0, *self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """(B, F) -> (B, n, F)."""

    def __init__(self, n: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"RepeatVector: expected a positive int n, got {n!r}")
        self.n = n

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"{_name(self)}: expected inputs of shape (batch, features), got (batch, *{tuple(input_shape)})"
            )
        return (self.n, input_shape[0])

    def call(self, x, mask=None):
        self.compute_output_shape(tuple(x.shape[1:]))
        return x.unsqueeze(1).expand(-1, self.n, -1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


# ---------------------------------------------------------------- normalisation
def _axes(axis, rank: int, layer: str) -> list[int]:
    """Keras axes (counting the batch axis) to sorted indices into a tensor with the batch axis."""
    axes = [axis] if isinstance(axis, int) else list(axis)
    out = sorted({a + rank + 1 if a < 0 else a for a in axes})
    if not out or any(not 1 <= a <= rank for a in out):
        raise ValueError(f"{layer}: axis {axis} is out of range for inputs of rank {rank + 1} (not the batch axis)")
    return out


class _Norm(Layer):
    """Shared weight handling: gamma (if scale), beta (if center), then any extra buffers."""

    extra: tuple[str, ...] = ()  # weights after gamma and beta
    config_keys: tuple[str, ...] = ("axis", "epsilon", "center", "scale")

    def get_config(self):
        return {**super().get_config(), **{k: getattr(self, k) for k in self.config_keys}}

    def _make(self, shape: tuple) -> None:
        self.gamma = nn.Parameter(torch.ones(shape)) if self.scale else None
        self.beta = nn.Parameter(torch.zeros(shape)) if self.center else None

    def _weight_names(self) -> list[str]:
        return [n for n, on in (("gamma", self.scale), ("beta", self.center)) if on] + list(self.extra)

    def get_weights(self):
        return [getattr(self, n).detach() for n in self._weight_names()]

    def set_weights(self, weights):
        names = self._weight_names()
        ws = _expect(weights, len(names), self)
        for n, w in zip(names, ws):
            _assign(getattr(self, n), w, n)

    def compute_mask(self, x, mask):
        return mask

    def _affine(self, y: Tensor, shape: list[int]) -> Tensor:
        if self.gamma is not None:
            y = y * self.gamma.reshape(shape)
        if self.beta is not None:
            y = y + self.beta.reshape(shape)
        return y


class LayerNormalization(_Norm):
    """Normalises each sample over ``axis`` (Keras' numbering), then ``gamma * x + beta``."""

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)

    def build(self, input_shape):
        self.axes_ = _axes(self.axis, len(input_shape), _name(self))
        self._make(tuple(input_shape[a - 1] for a in self.axes_))

    def call(self, x, mask=None):
        mean = x.mean(self.axes_, keepdim=True)
        var = x.var(self.axes_, keepdim=True, unbiased=False)
        y = (x - mean) * torch.rsqrt(var + self.epsilon)
        shape = [x.shape[d] if d in self.axes_ else 1 for d in range(x.dim())]
        return self._affine(y, shape)


class BatchNormalization(_Norm):
    """Per feature of ``axis``: batch statistics in training (they update the moving ones as
    Keras does, ``moving = momentum * moving + (1 - momentum) * batch`` with the biased batch
    variance and, given a mask, the statistics of the kept steps), moving ones in eval."""

    extra = ("moving_mean", "moving_variance")
    config_keys = ("axis", "momentum", "epsilon", "center", "scale")

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"BatchNormalization: expected an int axis, got {axis!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: expected momentum in [0, 1], got {momentum}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)

    def build(self, input_shape):
        (self.feature_axis_,) = _axes(self.axis, len(input_shape), _name(self))
        n = input_shape[self.feature_axis_ - 1]
        if n is None:
            raise ValueError(
                f"{_name(self)}: the normalised axis {self.axis} must have a known size, got shape {input_shape}"
            )
        self._make((n,))
        self.register_buffer("moving_mean", torch.zeros(n))
        self.register_buffer("moving_variance", torch.ones(n))

    def _moments(self, x: Tensor, dims: list[int], mask: Tensor | None) -> tuple[Tensor, Tensor]:
        if mask is None:
            return x.mean(dims), x.var(dims, unbiased=False)
        if mask.dim() != x.dim() - 1:
            raise ValueError(f"{_name(self)}: expected a mask of shape {tuple(x.shape[:-1])}, got {tuple(mask.shape)}")
        m = mask.bool().unsqueeze(-1).expand_as(x)
        w = m.to(x.dtype).sum(dims, keepdim=True) + _EPS
        mean = torch.where(m, x, 0).sum(dims, keepdim=True) / w
        var = torch.where(m, x - mean, 0).square().sum(dims, keepdim=True) / w
        return mean.flatten(), var.flatten()

    def call(self, x, mask=None):
        dims = [d for d in range(x.dim()) if d != self.feature_axis_]
        if self.training:
            mean, var = self._moments(x, dims, mask)
            with torch.no_grad():
                k = self.momentum
                self.moving_mean.mul_(k).add_(mean.detach() * (1 - k))
                self.moving_variance.mul_(k).add_(var.detach() * (1 - k))
        else:
            mean, var = self.moving_mean, self.moving_variance
        shape = [x.shape[d] if d == self.feature_axis_ else 1 for d in range(x.dim())]
        y = (x - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + self.epsilon)
        return self._affine(y, shape)


MERGING_LAYERS: dict[str, type[Layer]] = {
    c.__name__: c
    for c in (
        Concatenate,
        Add,
        Subtract,
        Multiply,
        Average,
        Maximum,
        Minimum,
        Reshape,
        Permute,
        RepeatVector,
        LayerNormalization,
        BatchNormalization,
    )
}
