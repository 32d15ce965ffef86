"""Attributions on the inputs of a recurrent model: saliency, input x gradient, integrated
gradients (captum, with its completeness check), occlusion, and in-silico mutagenesis.

They run in eval mode with biolstm's transparent engine forced on every recurrent layer, so
the backward pass works on CPU and GPU alike (cuDNN's RNN backward refuses eval mode) and
goes through every gate. ``target`` picks the output: None for a single-output model (binary
logit or one regression value), else a class index (a track of a profile model, whose output
is then the mean over its bins).
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
        if out.dim() == 3:  # a profile (B, bins, tracks): each track's mean output over the bins
            out = out.mean(1)
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


class ShuffledAttribution(NamedTuple):
    """Integrated gradients averaged over dinucleotide-shuffled references."""

    hypothetical: np.ndarray  # (B, T, C): the contribution each letter would have at each position
    values: np.ndarray  # (B, T, C): hypothetical projected onto the observed letters (zero elsewhere)
    output: np.ndarray  # (B,) f(x)
    delta: np.ndarray  # (B,) sum(values) - mean_k (f(x) - f(ref_k)): the completeness error
    relative_error: float  # mean |delta| / mean |f(x) - f(ref_k)| over the batch and references
    references: int


def shuffled_references(x: np.ndarray, n: int, lengths=None, seed: int = 0) -> np.ndarray:
    """``n`` dinucleotide-shuffled copies of every sequence of a one-hot batch ``x`` (B, T, C):
    ``(n, B, T, C)``. Each sequence is shuffled within its length (padding stays padding), every
    distinct row (a base, N, ...) kept as it was; the shuffles are seeded by ``seed``."""
    from ..data.genome import dinucleotide_shuffle

    x = np.asarray(x, dtype=np.float32)
    B, T, _ = x.shape
    rng = np.random.default_rng(seed)
    refs = np.repeat(x[None], n, axis=0)
    for b in range(B):
        L = T if lengths is None else int(lengths[b])
        rows, codes = np.unique(x[b, :L], axis=0, return_inverse=True)
        if len(rows) > 60:
            raise ValueError("x: expected one-hot rows (a sequence alphabet) for dinucleotide shuffles")
        text = "".join(chr(48 + int(c)) for c in np.ravel(codes))
        for k in range(n):
            shuffled = dinucleotide_shuffle(text, rng)
            refs[k, b, :L] = rows[[ord(ch) - 48 for ch in shuffled]]
    return refs


def shuffled_integrated_gradients(
    model: torch.nn.Module,
    x: Tensor,
    lengths: Tensor | None = None,
    target: int | None = None,
    references: int = 10,
    steps: int = 16,
    seed: int = 0,
    batch_size: int = 2048,
) -> ShuffledAttribution:
    """Integrated gradients of one-hot sequences against ``references`` dinucleotide-shuffled
    copies of each sequence (DeepLIFT / DeepSHAP's reference for genomics), averaged.

    For each reference r the path gradient g (Gauss-Legendre, ``steps`` points) gives the
    hypothetical contribution of letter c at position t, ``g[t, c] - sum_c' r[t, c'] g[t, c']``
    (what that letter would contribute in place of the reference): TF-MoDISco's input. Projected
    onto the observed letters (times x) it sums, per sequence, to ``f(x) - f(r)`` up to the
    quadrature error reported in ``delta``."""
    check_module(model)
    check_tensor(x, "x", dims=3)
    if references < 1 or steps < 1:
        raise ValueError(f"references, steps: expected at least 1, got {references}, {steps}")
    x = x.detach().float()
    device = x.device
    B, T, C = x.shape
    n = None if lengths is None else torch.as_tensor(lengths).cpu()
    refs = torch.from_numpy(shuffled_references(x.cpu().numpy(), references, n, seed)).to(device)
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=x.dtype)
    w = torch.tensor(weights / 2, dtype=x.dtype)
    hyp = torch.zeros(B, T, C)
    gaps, diff = torch.zeros(B), torch.zeros(B)
    whole = () if n is None else (n.to(device),)  # the lengths argument of a batch of the B sequences
    with eval_mode(model), transparent(model):
        f = _forward(model, target, lengths)
        with torch.no_grad():
            fx = f(x, *whole).cpu()
        per = max(1, batch_size // B)  # interpolation points per chunk
        for k in range(references):
            r = refs[k]
            grad = torch.zeros(B, T, C)
            for lo in range(0, steps, per):
                a = alphas[lo : lo + per].to(device)
                pts = (r[None] + a[:, None, None, None] * (x - r)[None]).reshape(-1, T, C).requires_grad_()
                extra = () if n is None else (n.repeat(len(a)).to(device),)
                out = f(pts, *extra)
                (g,) = torch.autograd.grad(out.sum(), pts)
                grad += (g.reshape(len(a), B, T, C).cpu() * w[lo : lo + per, None, None, None]).sum(0)
            with torch.no_grad():
                fr = f(r, *whole).cpu()
            hyp += grad - (grad * r.cpu()).sum(-1, keepdim=True)
            gaps += (fx - fr).abs()
            diff += fx - fr
    hyp /= references
    if n is not None:
        hyp[torch.arange(T)[None, :] >= n[:, None]] = 0.0
    values = hyp * x.cpu()
    delta = values.sum((1, 2)) - diff / references
    rel = float(delta.abs().mean() / (gaps / references).mean().clamp_min(1e-12))
    return ShuffledAttribution(hyp.numpy(), values.numpy(), fx.numpy(), delta.numpy(), rel, references)
