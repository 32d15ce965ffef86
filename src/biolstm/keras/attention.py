"""Keras' attention layers: ``Attention`` (Luong, dot-product) and ``AdditiveAttention``
(Bahdanau), with Keras 3's semantics (checked against Keras 3 on its torch backend).

Both are called on a list ``[query, value]`` or ``[query, value, key]`` (the key defaults to the
value), of shapes ``(B, Tq, dim)``, ``(B, Tv, dim)`` and ``(B, Tv, dim)``, and return
``(B, Tq, dim_value)``. ``mask=[query_mask, value_mask]`` (each None or a boolean ``(B, T)``):
padded value steps get no weight (their scores drop by 1e9 before the softmax) and padded query
steps give zeros; the output keeps the query's mask. ``return_attention_scores=True`` returns
``[output, scores]`` with the scores ``(B, Tq, Tv)`` after the softmax; ``use_causal_mask=True``
lets query step i attend to value steps <= i only.

Weights, in Keras' order: ``Attention(use_scale=True)`` a scalar ``scale`` (then, with
``score_mode="concat"``, the scalar ``concat_score_weight``); ``AdditiveAttention(use_scale=True)``
a ``scale`` vector of size dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_choice, check_probability
from .layers import Layer, _assign, _expect
from .merging import _name


class _BaseAttention(Layer):
    """Shared machinery: input and mask checks, masking, softmax, scores on request."""

    weight_names: tuple[str, ...] = ()

    def __init__(self, use_scale: bool = False, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.use_scale = bool(use_scale)
        self.dropout = check_probability(dropout, "dropout")

    # -- checks and shapes
    def _check_inputs(self, inputs) -> None:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{_name(self)}: expected a list [query, value] or [query, value, key], got a single "
                f"{type(inputs).__name__}"
            )
        if not 2 <= len(inputs) <= 3:
            raise ValueError(
                f"{_name(self)}: expected a list of 2 or 3 inputs [query, value(, key)], got {len(inputs)}"
            )

    def compute_output_shape(self, input_shape, return_attention_scores: bool = False):
        self._check_inputs(input_shape)
        shapes = [tuple(s) for s in input_shape]
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        if any(len(s) != 2 for s in (q, v, k)):
            raise ValueError(f"{_name(self)}: expected inputs of shape (batch, time, dim), got shapes {shapes}")
        if None not in (v[0], k[0]) and v[0] != k[0]:
            raise ValueError(f"{_name(self)}: value and key must have the same length, got shapes {shapes}")
        if None not in (q[-1], k[-1]) and q[-1] != k[-1]:
            raise ValueError(f"{_name(self)}: query and key must have the same last axis, got shapes {shapes}")
        out = (q[0], v[-1])
        return [out, (q[0], k[0])] if return_attention_scores else out

    def ensure_built(self, input_shape):
        self._check_inputs(input_shape)
        shapes = [tuple(s) for s in input_shape]
        out = self.compute_output_shape(shapes)
        if not self.built:
            self.build(shapes)
            self.built = True
            self.input_shape_ = shapes
        return out

    # -- running
    def forward(self, inputs, mask=None, return_attention_scores: bool = False, use_causal_mask: bool = False):
        self._check_inputs(inputs)
        if mask is not None and (not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3):
            raise ValueError(f"{_name(self)}: expected mask None or a list [query_mask, value_mask], got {mask!r}")
        self.ensure_built([tuple(x.shape[1:]) for x in inputs])
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        q_mask = mask[0] if mask else None
        v_mask = mask[1] if mask else None
        scores = self._scores(q, k)  # (B, Tq, Tv)
        keep = None if v_mask is None else v_mask.bool().unsqueeze(-2)  # (B, 1, Tv)
        if use_causal_mask:
            tq, tv = scores.shape[-2:]
            causal = torch.ones(tq, tv, dtype=torch.bool, device=scores.device).tril().unsqueeze(0)
            keep = causal if keep is None else keep & causal
        if keep is not None:
            scores = torch.where(keep, scores, scores - 1.0e9)
        weights = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, self.dropout, True)
        out = weights @ v
        if q_mask is not None:
            out = torch.where(q_mask.bool().unsqueeze(-1), out, torch.zeros_like(out))
        return [out, weights] if return_attention_scores else out

    def compute_mask(self, x, mask):
        if mask is None or mask[0] is None:
            return None
        return mask[0].bool()

    def _scores(self, q: Tensor, k: Tensor) -> Tensor:
        raise NotImplementedError

    # -- weights and config
    def get_weights(self):
        return [getattr(self, n).detach() for n in self.weight_names_()]

    def set_weights(self, weights):
        names = self.weight_names_()
        ws = _expect(weights, len(names), self)
        for n, w in zip(names, ws):
            _assign(getattr(self, n), w, n)

    def weight_names_(self) -> list[str]:
        return ["scale"] if self.use_scale else []

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "dropout": self.dropout}


class Attention(_BaseAttention):
    """Luong attention: ``scores = query @ key^T`` (times ``scale`` if ``use_scale``); with
    ``score_mode="concat"``, ``concat_score_weight * sum(tanh(scale * (q + k)))``."""

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0, **kwargs) -> None:
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)
        check_choice(score_mode, ("dot", "concat"), "score_mode")
        self.score_mode = score_mode

    def build(self, input_shape):
        self.scale = nn.Parameter(torch.ones(())) if self.use_scale else None
        self.concat_score_weight = nn.Parameter(torch.ones(())) if self.score_mode == "concat" else None

    def weight_names_(self):
        return super().weight_names_() + (["concat_score_weight"] if self.score_mode == "concat" else [])

    def _scores(self, q, k):
        if self.score_mode == "dot":
            scores = q @ k.transpose(-2, -1)
            return scores * self.scale if self.scale is not None else scores
        s = q.unsqueeze(-2) + k.unsqueeze(-3)
        if self.scale is not None:
            s = self.scale * s
        return self.concat_score_weight * torch.tanh(s).sum(-1)

    def get_config(self):
        return {**super().get_config(), "score_mode": self.score_mode}


class AdditiveAttention(_BaseAttention):
    """Bahdanau attention: ``scores = sum(scale * tanh(q + k), -1)``; ``scale`` is a vector of
    size dim (glorot-uniform, as Keras) when ``use_scale``."""

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        dim = input_shape[0][-1]
        if self.use_scale:
            if dim is None:
                raise ValueError(f"{_name(self)}: the query's last axis must have a known size, got {input_shape}")
            limit = math.sqrt(3.0 / dim)  # glorot-uniform of a vector: fan_in = fan_out = dim
            self.scale = nn.Parameter(torch.empty(dim).uniform_(-limit, limit))
        else:
            self.scale = None

    def _scores(self, q, k):
        t = torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3))
        return (self.scale * t if self.scale is not None else t).sum(-1)


ATTENTION_LAYERS: dict[str, type[Layer]] = {c.__name__: c for c in (Attention, AdditiveAttention)}
