"""Attributions on the inputs of a recurrent model: saliency, input x gradient, integrated
gradients (captum, with its completeness check), occlusion, and in-silico mutagenesis.

They run in eval mode with biolstm's transparent engine forced on every recurrent layer, so
the backward pass works on CPU and GPU alike (cuDNN's RNN backward refuses eval mode) and
goes through every gate. ``target`` picks the output: None for a single-output model (binary
logit or one regression value), else a class index.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..validation import check_module, check_tensor
from .gates import eval_mode


class Attribution(NamedTuple):
    method: str
    values: np.ndarray  # same shape as the input x: (B, T, C)
    output: np.ndarray  # (B,) the attributed output f(x)
    delta: np.ndarray | None  # integrated gradients: sum(attr) - (f(x) - f(baseline)), per example
    relative_error: float | None  # max |delta| / |f(x) - f(baseline)| over the batch


@contextlib.contextmanager
def transparent(model: torch.nn.Module):
    """Every biolstm recurrent layer runs the transparent engine inside the block."""
    from ..nn.layers import RNNBase

    saved = [(m, m.engine) for m in model.modules() if isinstance(m, RNNBase)]
    for m, _ in saved:
        m.engine = "transparent"
    try:
        yield model
    finally:
        for m, engine in saved:
            m.engine = engine


def _forward(model, target, lengths):
    def f(x, *extra):
        out = model(x, *extra) if extra else model(x)
        if out.dim() == 1:
            return out
        if target is None:
            if out.shape[-1] != 1:
                raise ValueError(f"target: expected a class index for a model with {out.shape[-1]} outputs, got None")
            return out[:, 0]
        return out[:, target]

    return f


METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "occlusion")


def attribute(
    model: torch.nn.Module,
    x: Tensor,
    method: str = "integrated_gradients",
    lengths: Tensor | None = None,
    target: int | None = None,
    baseline: Tensor | float | None = None,
    steps: int = 128,
    window: int = 5,
) -> Attribution:
    """Attributions ``(B, T, C)`` of the chosen output to each input value.

    ``baseline`` (integrated gradients, occlusion): zeros by default (no base at all for one-hot
    DNA); 0.25 is the uniform-base alternative. ``window``: occlusion width in positions.
    """
    from captum.attr import InputXGradient, IntegratedGradients, Occlusion, Saliency

    check_module(model)
    check_tensor(x, "x", dims=3)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    x = x.detach().float()
    extra = () if lengths is None else (torch.as_tensor(lengths, device=x.device),)
    base = torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline, dtype=x.dtype).expand_as(x)
    delta = rel = None
    with eval_mode(model), transparent(model):
        f = _forward(model, target, lengths)
        with torch.no_grad():
            fx = f(x, *extra)
        if method == "saliency":
            attr = Saliency(f).attribute(x.requires_grad_(), additional_forward_args=extra or None, abs=False)
        elif method == "input_x_gradient":
            attr = InputXGradient(f).attribute(x.requires_grad_(), additional_forward_args=extra or None)
        elif method == "occlusion":
            C = x.shape[-1]
            attr = Occlusion(f).attribute(
                x, sliding_window_shapes=(window, C), strides=(1, C), baselines=base,
                additional_forward_args=extra or None,
            )  # fmt: skip
        else:
            attr, d = IntegratedGradients(f).attribute(
                x, baselines=base, n_steps=steps, method="gausslegendre", additional_forward_args=extra or None,
                return_convergence_delta=True, internal_batch_size=max(1, 4096 // max(len(x), 1)) * len(x),
            )  # fmt: skip
            with torch.no_grad():
                gap = (fx - f(base, *extra)).abs()
            delta = d.detach().cpu().numpy()
            rel = float((d.abs() / gap.clamp_min(1e-12)).max())
    return Attribution(method, attr.detach().cpu().numpy(), fx.cpu().numpy(), delta, rel)


def in_silico_mutagenesis(
    model: torch.nn.Module,
    x: Tensor,
    lengths: Tensor | None = None,
    target: int | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Change of the output when each position is set to each base: ``(B, T, C)`` with
    ``ism[b, t, c] = f(x with position t set to base c) - f(x)`` (0 for the base already there
    and for padding). Every substitution of every sequence runs in batches of ``batch_size``."""
    check_module(model)
    check_tensor(x, "x", dims=3)
    x = x.detach().float()
    B, T, C = x.shape
    n = torch.full((B,), T) if lengths is None else torch.as_tensor(lengths).cpu()
    out = np.zeros((B, T, C), dtype=np.float32)
    with eval_mode(model), torch.no_grad():
        f = _forward(model, target, lengths)
        for b in range(B):
            ref = f(x[b : b + 1], *(() if lengths is None else (n[b : b + 1].to(x.device),)))
            L = int(n[b])
            pos = torch.arange(L).repeat_interleave(C)
            base = torch.arange(C).repeat(L)
            for lo in range(0, len(pos), batch_size):
                p, c = pos[lo : lo + batch_size], base[lo : lo + batch_size]
                mutated = x[b].expand(len(p), T, C).clone()
                mutated[torch.arange(len(p)), p] = 0.0
                mutated[torch.arange(len(p)), p, c] = 1.0
                extra = () if lengths is None else (n[b].repeat(len(p)).to(x.device),)
                out[b, p.numpy(), c.numpy()] = (f(mutated, *extra) - ref).cpu().numpy()
        out[(x == 1).cpu().numpy()] = 0.0  # the base already there: no change, by definition
    return out
