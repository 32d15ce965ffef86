"""Gradient flow through time, two ways.

:func:`model_gradient_flow` measures a trained model on real data: the norm of the gradient of
each example's own loss with respect to the input x_t of the model's recurrent layer at every
step t, so it shows how much of the error signal the trained weights carry back to each step.

:func:`gradient_flow` is an illustration of the seed article's vanishing-gradient claim, not a
measurement of any run: freshly initialised RNN, GRU and LSTM cells on synthetic noise whose
target depends on the first step only. The recurrence is unrolled with biolstm's cells so that
every hidden state h_t is a node of the graph; the loss is read at the last step only, so
dLoss/dh_t measures how much of the error signal reaches step t.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

CELLS = ("rnn", "gru", "lstm")


class GradientFlow(NamedTuple):
    cell: str
    norms: np.ndarray  # (T,) mean over the batch of ||dLoss/dh_t||
    ratio: float  # norms[0] / norms[-1]: the share of the signal that reaches the first step


def gradient_flow(
    cell: str = "lstm",
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
    hidden_size: int = 32,
    steps: int = 100,
    seed: int = 0,
    forget_bias: float = 1.0,
    batch: int = 64,
) -> GradientFlow:
    """||dLoss/dh_t|| for a freshly initialised ``cell`` ('rnn', 'gru', 'lstm') reading ``x``
    ``(B, T, D)`` and predicting ``y`` ``(B,)`` from its last state (binary cross-entropy).

    Without data, the task is the sign of the first input among ``steps`` standard normal
    ones (``batch`` sequences), so the answer depends on the first step and the signal must
    travel the whole way.
    """
    from ..nn import GRUCell, LSTMCell, RNNCell

    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {CELLS}, got {cell!r}")
    g = torch.Generator().manual_seed(seed)
    if x is None:
        x = torch.randn(batch, steps, 1, generator=g)
        y = (x[:, 0, 0] > 0).float()
    if y is None:
        raise ValueError("y: expected targets (B,) with x, got None")
    torch.manual_seed(seed)
    D = x.shape[-1]
    if cell == "lstm":
        rnn = LSTMCell(D, hidden_size, forget_bias=forget_bias)  # the usual unit forget bias
    else:
        rnn = GRUCell(D, hidden_size) if cell == "gru" else RNNCell(D, hidden_size)
    head = torch.nn.Linear(hidden_size, 1)
    rnn, head, x = rnn.double(), head.double(), x.double()  # float64: tiny gradients do not underflow to 0
    B, T, _ = x.shape
    h = torch.zeros(B, hidden_size, dtype=torch.float64)
    c = torch.zeros(B, hidden_size, dtype=torch.float64)
    states = []
    for t in range(T):
        if cell == "lstm":
            h, c = rnn(x[:, t], (h, c))
        else:
            h = rnn(x[:, t], h)
        h.retain_grad()
        states.append(h)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(head(h).squeeze(-1), y.double())
    loss.backward()
    norms = np.array([float(s.grad.norm(dim=-1).mean()) for s in states])
    return GradientFlow(cell, norms, float(norms[0] / max(norms[-1], 1e-30)))


class ModelGradientFlow(NamedTuple):
    layer: str  # the recurrent layer whose input x_t was differentiated (its name in the model)
    target: str  # what was differentiated: 'loss' (each example's own) or 'output' (the first)
    norms: np.ndarray  # (T,) mean of ||d target / d x_t|| over the examples (and calls) reaching step t
    counts: np.ndarray  # (T,) examples (times calls) that reach step t
    n: int  # examples
    calls: int  # calls of the layer per forward pass (2 when a model also reads the reverse complement)
    bidirectional: bool  # the layer also reads backwards, so the signal reaches x_t from both ends
    ratio: float  # norms[0] / norms[-1]


def model_gradient_flow(model: torch.nn.Module, x, y=None, loss: str | None = None, layer: str | None = None):
    """||d loss_b / d x_t|| of a trained ``model``: how much of each example's own error signal
    reaches the input x_t of its recurrent layer (the first, or the one named ``layer``) at step t.

    ``x`` is what the model's forward takes (a tensor, a tuple, or a dict such as
    ``{"x": X, "lengths": L}``), ``y`` the targets and ``loss`` a Trainer loss name
    ('bce_with_logits', 'cross_entropy', 'mse', ...) or 'model' (the model's own
    ``loss(out, y)``, taken as a batch mean). Without ``y`` the model's first output is
    differentiated instead. The layer's input is cut from what comes before it (front end,
    embedding), so only the way through the recurrence and what follows it counts. Eval mode
    and the transparent engine (as for attributions); steps past a sequence's length are left
    out. Returns a :class:`ModelGradientFlow`.
    """
    from ..nn import MinGRU, MinLSTM, RNNBase
    from ..train.inputs import Inputs
    from ..train.trainer import per_sample_loss
    from ..validation import check_module
    from .attributions import transparent
    from .gates import eval_mode

    check_module(model)
    found = {n: m for n, m in model.named_modules() if isinstance(m, (RNNBase, MinGRU, MinLSTM))}
    if not found:
        raise ValueError(f"model: expected a biolstm recurrent layer (LSTM, GRU, RNN, MinLSTM, MinGRU), got none in "
                         f"{type(model).__name__}")  # fmt: skip
    name = layer if layer is not None else next(iter(found))
    if name not in found:
        raise ValueError(f"layer: expected one of {list(found)}, got {name!r}")
    module = found[name]
    if (y is None) != (loss is None):
        got = f"y={'given' if y is not None else None}, loss={loss!r}"
        raise ValueError(f"y, loss: expected both (the loss) or neither (the output), got {got}")
    cut: list = []  # (input leaf, lengths) of every call of the layer

    def leaf(mod, args, kwargs):
        if not isinstance(args[0], torch.Tensor) or args[0].dim() != 3:
            raise ValueError(f"model: expected its layer {name!r} to read a (batch, time, features) tensor, "
                             f"got {type(args[0]).__name__}")  # fmt: skip
        z = args[0].detach().requires_grad_(True)  # the gradient stops here: the recurrence and after
        cut.append((z, kwargs.get("lengths")))
        return (z, *args[1:]), kwargs

    inputs = Inputs(x)
    device = next(model.parameters()).device
    args, kwargs = inputs.take(torch.arange(len(inputs)), device)
    handle = module.register_forward_pre_hook(leaf, with_kwargs=True)
    try:
        with eval_mode(model), transparent(model), torch.enable_grad():
            out = model(*args, **kwargs)
            if y is None:
                target = out.reshape(len(out), -1)[:, 0].sum()  # examples are independent in eval mode
            elif loss == "model":
                target = model.loss(out, torch.as_tensor(y, device=out.device).to(out.dtype)) * len(out)
            else:
                target = per_sample_loss(loss, out, torch.as_tensor(y, device=out.device)).sum()
            grads = torch.autograd.grad(target, [z for z, _ in cut], allow_unused=True)
    finally:
        handle.remove()
    if not cut:
        raise ValueError(f"model: its forward did not call the layer {name!r}")
    batch_first = getattr(module, "batch_first", True)
    total = count = None
    for (z, lengths), g in zip(cut, grads):
        g = torch.zeros_like(z) if g is None else g
        g = g if batch_first else g.transpose(0, 1)  # (B, T, D)
        B, T = g.shape[:2]
        alive = torch.ones(B, T, dtype=torch.bool, device=g.device)
        if lengths is not None:
            alive = torch.arange(T, device=g.device) < torch.as_tensor(lengths, device=g.device).unsqueeze(1)  # (B, T)
        per = (g.detach().double().norm(dim=-1) * alive).sum(0)  # (T,)
        total = per if total is None else total + per
        count = alive.sum(0) if count is None else count + alive.sum(0)
    T = int((count > 0).nonzero().max()) + 1 if bool((count > 0).any()) else 0
    norms = (total[:T] / count[:T].clamp_min(1)).cpu().numpy()
    counts = count[:T].cpu().numpy()
    ratio = float(norms[0] / max(norms[-1], 1e-30)) if T else float("nan")
    return ModelGradientFlow(
        name, "output" if y is None else "loss", norms, counts, len(inputs), len(cut),
        bool(getattr(module, "bidirectional", False)), ratio,
    )  # fmt: skip
