"""Shared helpers for the recurrent-core tests: configurations, runs and comparisons."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch
from torch.nn.utils.rnn import pack_padded_sequence

import biolstm.nn as bnn

DT = torch.float64


@dataclass
class Config:
    mode: str  # "LSTM" | "GRU" | "RNN_TANH" | "RNN_RELU"
    layers: int = 1
    bidirectional: bool = False
    batch_first: bool = False
    proj: int = 0
    init_state: bool = False
    inputs: str = "plain"  # "plain" | "packed" | "lengths" | "unbatched"
    T: int = 5
    B: int = 3
    D: int = 4
    H: int = 6
    lengths: list[int] = field(default_factory=list)

    def kwargs(self) -> dict:
        kw = dict(num_layers=self.layers, bidirectional=self.bidirectional, batch_first=self.batch_first)
        if self.mode == "LSTM":
            kw["proj_size"] = self.proj
        if self.mode.startswith("RNN"):
            kw["nonlinearity"] = "relu" if self.mode == "RNN_RELU" else "tanh"
        return kw

    def torch_cls(self):
        return {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}.get(self.mode, torch.nn.RNN)

    def bio_cls(self):
        return {"LSTM": bnn.LSTM, "GRU": bnn.GRU}.get(self.mode, bnn.RNN)


def random_configs(n: int, seed: int) -> list[Config]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        mode = ["LSTM", "LSTM", "GRU", "RNN_TANH", "RNN_RELU"][k % 5]
        cfg = Config(
            mode=mode,
            layers=rng.randint(1, 3),
            bidirectional=rng.random() < 0.5,
            batch_first=rng.random() < 0.5,
            proj=rng.choice([0, 0, 3]) if mode == "LSTM" else 0,
            init_state=rng.random() < 0.5,
            inputs=rng.choice(["plain", "packed", "lengths", "unbatched"]),
            T=rng.randint(1, 7),
            B=rng.randint(1, 4),
            D=rng.randint(1, 5),
            H=rng.randint(4, 7),
        )
        cfg.lengths = [rng.randint(1, cfg.T) for _ in range(cfg.B)]
        out.append(cfg)
    return out


def make_pair(cfg: Config, engine: str = "transparent", **options):
    torch.manual_seed(1234)
    ref = cfg.torch_cls()(cfg.D, cfg.H, dtype=DT, **cfg.kwargs())
    torch.manual_seed(1234)
    mine = cfg.bio_cls()(cfg.D, cfg.H, dtype=DT, engine=engine, **cfg.kwargs(), **options)
    return ref, mine


def make_inputs(cfg: Config, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    shape = (cfg.B, cfg.T, cfg.D) if cfg.batch_first else (cfg.T, cfg.B, cfg.D)
    if cfg.inputs == "unbatched":
        shape = (cfg.T, cfg.D)
    x = torch.randn(*shape, generator=g, dtype=DT, requires_grad=True)
    hx = None
    if cfg.init_state:
        L = cfg.layers * (2 if cfg.bidirectional else 1)
        P = cfg.proj or cfg.H
        batch = () if cfg.inputs == "unbatched" else (cfg.B,)
        h0 = torch.randn(L, *batch, P, generator=g, dtype=DT, requires_grad=True)
        if cfg.mode == "LSTM":
            c0 = torch.randn(L, *batch, cfg.H, generator=g, dtype=DT, requires_grad=True)
            hx = (h0, c0)
        else:
            hx = h0
    return x, hx


def leaves(x, hx):
    out = [x]
    if hx is not None:
        out += list(hx) if isinstance(hx, tuple) else [hx]
    return out


def run(module, cfg: Config, x, hx, use_lengths_arg: bool):
    """Run either module on cfg's input kind; return (padded output, list of final states)."""
    lengths = torch.tensor(cfg.lengths)
    if cfg.inputs == "packed":
        packed = pack_padded_sequence(x, lengths, batch_first=cfg.batch_first, enforce_sorted=False)
        out, hidden = module(packed, hx)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=cfg.batch_first, total_length=cfg.T)
    elif cfg.inputs == "lengths":
        if use_lengths_arg:
            out, hidden = module(x, hx, lengths=lengths)
        else:  # torch: the same thing through packing
            packed = pack_padded_sequence(x, lengths, batch_first=cfg.batch_first, enforce_sorted=False)
            out, hidden = module(packed, hx)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=cfg.batch_first, total_length=cfg.T)
    else:
        out, hidden = module(x, hx)
    states = list(hidden) if isinstance(hidden, tuple) else [hidden]
    return out, states


def loss_of(out, states):
    # A loss that weighs every output and state differently, so each gradient path matters.
    w = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)
    total = (out * w).sum() + (out**2).sum()
    for k, s in enumerate(states):
        total = total + ((k + 1) * s.sin()).sum()
    return total
