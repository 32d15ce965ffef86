"""Gate statistics from the transparent engine's trace (LSTMVis-style views of a trained model).

Every function takes ``(model, x, ...)``, where ``x`` is what the model's forward takes (a
tensor, a tuple, or a dict such as ``{"x": X, "lengths": L}``), runs the model in eval mode
while recording the gates of every biolstm recurrent layer, and returns NamedTuples of numpy
arrays. Only valid steps (inside each sequence's length) are counted.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
import torch

from ..nn import record_gates
from ..nn.trace import Trace
from ..validation import check_module


class GateStatistics(NamedTuple):
    layer: str  # qualified name of the recurrent layer in the model, with layer/direction
    gates: tuple[str, ...]  # gate names (LSTM: i, f, g, o; GRU: r, z, n)
    left: dict[str, np.ndarray]  # gate -> (H,) fraction of valid steps with the gate < 0.1
    right: dict[str, np.ndarray]  # gate -> (H,) fraction of valid steps with the gate > 0.9
    timescale: np.ndarray  # (H,) memory time scale in steps: mean of -1 / log(keep gate)
    steps: int  # valid steps counted


class TrackingCells(NamedTuple):
    layer: str
    units: np.ndarray  # unit indices, best first
    correlation: np.ndarray  # Pearson r of each listed unit's state with the signal
    state: str  # 'c' or 'h'


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Eval mode inside the block, the model's previous mode after it."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def _call(model, x):
    from ..train.inputs import Inputs

    inputs = Inputs(x)
    device = next(model.parameters()).device
    args, kwargs = inputs.take(torch.arange(len(inputs)), device)
    return model(*args, **kwargs)


def traces(model: torch.nn.Module, x) -> dict[str, Trace]:
    """The trace of each biolstm recurrent layer for input ``x`` (first call of each layer)."""
    check_module(model)
    with eval_mode(model), torch.no_grad(), record_gates(model) as rec:
        _call(model, x)
    return {name: ts[0].cpu() for name, ts in rec.traces.items()}


def _valid(trace: Trace, T: int) -> np.ndarray:
    B = trace.layers[0][0][trace.gate_names[-1]].shape[0]
    if trace.lengths is None:
        return np.ones((B, T), dtype=bool)
    return np.arange(T)[None] < trace.lengths.numpy()[:, None]


def _records(trace: Trace, name: str):
    for layer, dirs in enumerate(trace.layers):
        for direction, rec in enumerate(dirs):
            label = name + (f"[layer {layer}]" if trace.num_layers > 1 else "")
            label += " (reverse)" if direction == 1 else ""
            yield label, rec


def gate_statistics(model: torch.nn.Module, x, low: float = 0.1, high: float = 0.9) -> list[GateStatistics]:
    """Per recurrent layer and direction: saturation of each gate and unit, and the memory time
    scale of each unit from its keep gate (LSTM forget gate f; GRU update gate z, which keeps
    the previous state in torch's convention)."""
    out = []
    for name, trace in traces(model, x).items():
        gates = tuple(g for g in trace.gate_names if g not in ("c", "h"))
        keep = {"LSTM": "f", "GRU": "z"}.get(trace.mode)
        for label, rec in _records(trace, name):
            T = rec["h"].shape[1]
            valid = _valid(trace, T)
            n = int(valid.sum())
            left, right = {}, {}
            for g in gates:
                v = rec[g].numpy()[valid]  # (steps, H)
                if g in ("g", "n"):  # tanh candidates: saturation at -1/+1 on the [0, 1] scale
                    v = (v + 1) / 2
                left[g], right[g] = (v < low).mean(0), (v > high).mean(0)
            if keep is not None:
                f = np.clip(rec[keep].numpy()[valid], 1e-6, 1 - 1e-6)
                timescale = (-1.0 / np.log(f)).mean(0)
            else:
                timescale = np.zeros(rec["h"].shape[-1])
            out.append(GateStatistics(label, gates, left, right, timescale, n))
    if not out:
        raise ValueError("model: expected biolstm recurrent layers with gates, found none")
    return out


def _resample(signal: np.ndarray, T: int) -> np.ndarray:
    """A per-position signal ``(B, L)`` at the recurrent layer's ``T`` steps (block means when
    a front end pooled the sequence)."""
    B, L = signal.shape
    if L == T:
        return signal
    k = L // T
    if k < 1:
        raise ValueError(f"signal: expected at least {T} positions, got {L}")
    return signal[:, : k * T].reshape(B, T, k).mean(-1)


def tracking_cells(model: torch.nn.Module, x, signal, state: str = "c", top: int = 10) -> list[TrackingCells]:
    """Units whose state follows ``signal``, ranked by |Pearson r| over valid steps. ``signal`` is
    an array ``(B, L)`` (e.g. 1 where a motif occurs), ``'position'`` (the step index), or an
    int: that input feature (channel) of ``x``, e.g. 3 for T in one-hot DNA."""
    xs = x["x"] if isinstance(x, dict) else x[0] if isinstance(x, tuple) else x
    if isinstance(signal, str):
        if signal != "position":
            raise ValueError(f"signal: expected an array, 'position' or a feature index, got {signal!r}")
        signal = np.tile(np.arange(xs.shape[1], dtype=np.float64), (len(xs), 1))
    elif isinstance(signal, (int, np.integer)):
        if not 0 <= signal < xs.shape[-1]:
            raise ValueError(f"signal: expected a feature index in [0, {xs.shape[-1]}), got {signal}")
        signal = np.asarray(xs[..., signal].cpu() if isinstance(xs, torch.Tensor) else xs[..., signal])
    signal = np.asarray(signal.cpu() if isinstance(signal, torch.Tensor) else signal, dtype=np.float64)
    out = []
    for name, trace in traces(model, x).items():
        st = state if state in trace.gate_names else "h"
        for label, rec in _records(trace, name):
            h = rec[st].numpy().astype(np.float64)  # (B, T, H)
            valid = _valid(trace, h.shape[1])
            s = _resample(signal, h.shape[1])[valid]  # (steps,)
            v = h[valid]  # (steps, H)
            vc, sc = v - v.mean(0), s - s.mean()
            denom = np.sqrt((vc**2).sum(0) * (sc**2).sum())
            r = np.where(denom > 0, (vc * sc[:, None]).sum(0) / np.where(denom > 0, denom, 1), 0.0)
            order = np.argsort(-np.abs(r))[:top]
            out.append(TrackingCells(label, order, r[order], st))
    return out


def hidden_trajectories(model: torch.nn.Module, x, units, state: str = "h", layer: str | None = None) -> np.ndarray:
    """States of the chosen ``units`` at every step ``(B, T, len(units))`` of one recurrent layer
    (the first, or the one named ``layer``), forward direction."""
    found = traces(model, x)
    name = layer or next(iter(found))
    if name not in found:
        raise ValueError(f"layer: expected one of {list(found)}, got {name!r}")
    trace = found[name]
    st = state if state in trace.gate_names else "h"
    return trace.gate(st, layer=-1, direction=0).numpy()[..., list(units)]
