"""Recorded gates: every gate and state of every step, per layer and direction.

A :class:`Trace` is what ``LSTM(...)(x, return_gates=True)`` returns as its last element, and
what :func:`record_gates` collects from every biolstm recurrent layer inside any model.
Tensors are batch-first, ``(B, T, H)``, in the caller's batch order, with time running in
input order for both directions (the reverse direction's step t is the state after reading
position t). Positions past a sequence's length are zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

GATE_NAMES = {
    "LSTM": ("i", "f", "g", "o", "c", "h"),
    "GRU": ("r", "z", "n", "h"),
    "RNN_TANH": ("h",),
    "RNN_RELU": ("h",),
}


@dataclass
class Trace:
    """Gates and states of a recurrent stack.

    Attributes:
        mode: 'LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU'.
        layers: ``layers[layer][direction]`` is a dict gate name -> tensor ``(B, T, H)``
            (``(T, H)`` for unbatched input). LSTM: i, f, g, o, c, h; GRU: r, z, n, h;
            RNN: h.
        lengths: valid length of each sequence ``(B,)``, or None when all are full.
    """

    mode: str
    layers: list[list[dict[str, Tensor]]]
    lengths: Tensor | None = None

    @property
    def gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES[self.mode]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_directions(self) -> int:
        return len(self.layers[0])

    def gate(self, name: str, layer: int = -1, direction: int = 0) -> Tensor:
        """One gate or state, e.g. ``trace.gate('f', layer=0, direction=1)``."""
        if name not in self.gate_names:
            raise KeyError(f"gate: expected one of {self.gate_names} for {self.mode}, got {name!r}")
        return self.layers[layer][direction][name]

    def __getitem__(self, name: str) -> Tensor:
        """``trace['f']``: the gate of the last layer's forward direction."""
        return self.gate(name)

    def detach(self) -> Trace:
        return Trace(
            self.mode,
            [[{k: v.detach() for k, v in rec.items()} for rec in layer] for layer in self.layers],
            self.lengths,
        )

    def cpu(self) -> Trace:
        return Trace(
            self.mode,
            [[{k: v.cpu() for k, v in rec.items()} for rec in layer] for layer in self.layers],
            None if self.lengths is None else self.lengths.cpu(),
        )


@dataclass
class GateRecorder:
    """Collects a :class:`Trace` from each forward call of each recurrent layer.

    ``traces`` maps the layer's qualified name in the model to the list of its traces, in
    call order.
    """

    traces: dict[str, list[Trace]] = field(default_factory=dict)

    def add(self, name: str, trace: Trace) -> None:
        self.traces.setdefault(name, []).append(trace.detach())

    def __getitem__(self, name: str) -> list[Trace]:
        return self.traces[name]

    def __len__(self) -> int:
        return len(self.traces)


@contextlib.contextmanager
def record_gates(model: torch.nn.Module) -> Iterator[GateRecorder]:
    """Record the gates of every biolstm recurrent layer in ``model`` while in the block.

    Example::

        with record_gates(model) as rec:
            model(x)
        forget = rec["encoder.lstm"][0].gate("f")  # (B, T, H)

    The layers run the transparent engine inside the block, whatever their ``engine``.
    """
    from .layers import RNNBase  # local: layers imports this module

    recorder = GateRecorder()
    hooked = []
    for name, module in model.named_modules():
        if isinstance(module, RNNBase):
            sink = (name or type(module).__name__, recorder)
            module._trace_sinks.append(sink)
            hooked.append((module, sink))
    if not hooked:
        raise ValueError(
            f"model: expected a module containing biolstm.nn LSTM/GRU/RNN layers, got {type(model).__name__} with none"
        )
    try:
        yield recorder
    finally:
        for module, sink in hooked:
            module._trace_sinks.remove(sink)


class CarriedState:
    """Handle of :func:`carry_state`: ``reset()`` starts the next call from zeros again."""

    def __init__(self, layers: list) -> None:
        self.layers = layers

    def reset(self) -> None:
        for m in self.layers:
            m._carry["state"] = None


@contextlib.contextmanager
def carry_state(model: torch.nn.Module) -> Iterator[CarriedState]:
    """Inside the block, every biolstm recurrent layer in ``model`` starts each call from the
    final state of its previous call (detached), when no ``hx`` is given: a long sequence fed
    in chunks is processed as one, with memory set by the chunk length (truncated BPTT when
    training, streaming inference otherwise). Bidirectional layers are refused: their reverse
    direction cannot be carried forward.
    """
    from .layers import RNNBase  # local: layers imports this module

    layers = [m for m in model.modules() if isinstance(m, RNNBase)]
    if not layers:
        raise ValueError(
            f"model: expected a module containing biolstm.nn LSTM/GRU/RNN layers, got {type(model).__name__} with none"
        )
    bidi = [type(m).__name__ for m in layers if m.bidirectional]
    if bidi:
        raise ValueError("carry_state: bidirectional layers read the future; expected one-directional layers")
    for m in layers:
        m._carry = {"state": None}
    try:
        yield CarriedState(layers)
    finally:
        for m in layers:
            m._carry = None
