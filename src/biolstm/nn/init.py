"""Gate-bias initialisations for long memory: a fixed forget bias and chrono initialisation.

Both write the input-side bias (``bias_ih``) and zero the matching slice of ``bias_hh``, so
the effective bias ``b_ih + b_hh`` is exactly the value set.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import check_positive_int, check_type


def _directions(module: nn.Module):
    """Yield (bias_ih, bias_hh, hidden_size) for each layer and direction of a stack or cell."""
    names = [n for n, _ in module.named_parameters(recurse=False) if n.startswith("bias_ih")]
    if not names:
        raise ValueError(
            f"module: expected a recurrent layer with biases (bias=True), got {type(module).__name__} without"
        )
    for name in names:
        yield getattr(module, name), getattr(module, name.replace("bias_ih", "bias_hh")), module.hidden_size


def _gate_slice(module: nn.Module, what: str) -> tuple[int, int]:
    mode = getattr(module, "mode", None) or {"LSTMCell": "LSTM", "GRUCell": "GRU"}.get(type(module).__name__)
    if mode == "LSTM":
        return 1, 0  # forget gate is chunk 1 of i|f|g|o; input gate chunk 0
    if mode == "GRU":
        return 1, -1  # update gate z (chunk 1 of r|z|n) keeps the old state
    raise ValueError(f"{what}: expected an LSTM or GRU module, got {type(module).__name__} ({mode})")


@torch.no_grad()
def forget_bias_(module: nn.Module, value: float = 1.0) -> nn.Module:
    """Set the forget-gate bias (GRU: the update gate z) of every layer to ``value``.

    ``value=1.0`` is Keras' ``unit_forget_bias=True`` (Jozefowicz et al. 2015).
    """
    check_type(value, (int, float), "forget_bias")
    keep, _ = _gate_slice(module, "forget_bias")
    for b_ih, b_hh, H in _directions(module):
        b_ih[keep * H : (keep + 1) * H] = float(value)
        b_hh[keep * H : (keep + 1) * H] = 0.0
    return module


@torch.no_grad()
def chrono_init_(module: nn.Module, t_max: int) -> nn.Module:
    """Chrono initialisation (Tallec & Ollivier 2018) for dependencies up to ``t_max`` steps.

    LSTM: ``b_f ~ log(U(1, t_max - 1))`` and ``b_i = -b_f``; GRU: the update gate's bias
    ``b_z ~ log(U(1, t_max - 1))``. Forget-gate time scales then spread over [1, t_max].
    """
    check_positive_int(t_max, "chrono_init", minimum=2)
    keep, inp = _gate_slice(module, "chrono_init")
    for b_ih, b_hh, H in _directions(module):
        u = torch.empty(H, dtype=torch.float64).uniform_(1.0, max(t_max - 1, 1.0 + 1e-12))
        bf = torch.log(u).to(device=b_ih.device, dtype=b_ih.dtype)
        b_ih[keep * H : (keep + 1) * H] = bf
        b_hh[keep * H : (keep + 1) * H] = 0.0
        if inp >= 0:
            b_ih[inp * H : (inp + 1) * H] = -bf
            b_hh[inp * H : (inp + 1) * H] = 0.0
    return module


def forget_time_scale(bias: float) -> float:
    """Characteristic memory of a constant forget gate sigma(bias): -1 / log(sigma(bias))."""
    f = 1.0 / (1.0 + math.exp(-bias))
    return -1.0 / math.log(f)
