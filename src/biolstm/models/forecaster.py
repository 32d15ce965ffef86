"""Forecaster: an LSTM/GRU encoder over the lookback window, a direct multi-step head.

``forward(x, static=None)`` maps a window ``(B, lookback, F)`` to the next ``horizon`` steps of
``targets`` series: point forecasts ``(B, horizon, targets)``, or with ``output='quantile'``
one value per quantile ``(B, horizon, targets, Q)`` trained with the pinball loss, or with
``output='gaussian'`` a mean and a standard deviation ``(B, horizon, targets, 2)`` trained by
Gaussian negative log-likelihood. Static covariates (sex, treatment, age) join the sequence
encoding before the head (late fusion).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config
from ..nn import GRU, LSTM
from ..validation import check_choice, check_model_config, check_positive_int, check_probability


@dataclass
class ForecasterConfig(Config):
    """Architecture of a :class:`Forecaster`. Unknown keys are refused by from_dict."""

    _what = "model config"

    input_size: int = 1  # features per step of the window
    targets: int = 1  # series forecast (the first `targets` features unless told otherwise)
    horizon: int = 1  # steps forecast at once (direct multi-step)
    hidden_size: int = 64  # recurrent units
    num_layers: int = 1  # stacked recurrent layers
    cell: str = "lstm"  # lstm | gru
    dropout: float = 0.0  # between stacked layers and before the head
    static_size: int = 0  # static covariates joined to the encoding (0: none)
    output: str = "point"  # point | quantile | gaussian
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)  # for output='quantile'
    anchor: str = "none"  # none | last | seasonal: the network learns the correction to this forecast
    season: int = 1  # season length for anchor='seasonal' (the lookback must cover it)
    window_norm: bool = False  # standardise each window by its own mean/std and undo it on the output

    def __post_init__(self) -> None:
        for name in ("input_size", "targets", "horizon", "hidden_size", "num_layers"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.static_size, "static_size", minimum=0)
        check_choice(self.cell, ("lstm", "gru"), "cell")
        check_probability(self.dropout, "dropout")
        check_choice(self.output, ("point", "quantile", "gaussian"), "output")
        check_choice(self.anchor, ("none", "last", "seasonal"), "anchor")
        check_positive_int(self.season, "season")
        self.quantiles = tuple(float(q) for q in self.quantiles)
        if self.output == "quantile" and not all(0 < q < 1 for q in self.quantiles):
            raise ValueError(f"quantiles: expected values in (0, 1), got {self.quantiles}")

    @property
    def outputs_per_step(self) -> int:
        return {"point": 1, "quantile": len(self.quantiles), "gaussian": 2}[self.output]


class Forecaster(nn.Module):
    def __init__(self, config: ForecasterConfig | None = None, **overrides) -> None:
        super().__init__()
        check_model_config(config, ForecasterConfig)
        cfg = (config or ForecasterConfig()).merged(**overrides)
        self.config = cfg
        rnn_cls = LSTM if cfg.cell == "lstm" else GRU
        self.rnn = rnn_cls(
            cfg.input_size,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size + cfg.static_size, cfg.horizon * cfg.targets * cfg.outputs_per_step)

    def forward(self, x: Tensor, static: Tensor | None = None) -> Tensor:
        cfg = self.config
        if x.dim() != 3 or x.shape[-1] != cfg.input_size:
            raise ValueError(f"x: expected (batch, lookback, {cfg.input_size}), got shape {tuple(x.shape)}")
        if (static is None) != (cfg.static_size == 0):
            raise ValueError(
                f"static: expected {'None' if cfg.static_size == 0 else f'(batch, {cfg.static_size})'}"
                f" for static_size={cfg.static_size}, got {None if static is None else tuple(static.shape)}"
            )
        loc = scale = None
        if cfg.window_norm:  # per-window location and scale (amplitude-free dynamics, RevIN-style)
            loc = x.mean(1, keepdim=True)
            scale = x.std(1, keepdim=True, unbiased=False).clamp_min(1e-3)
            x = (x - loc) / scale
        _, state = self.rnn(x)
        h = (state[0] if isinstance(state, tuple) else state)[-1]  # last layer's final state  # (B, H)
        if static is not None:
            h = torch.cat([h, static.to(h.dtype)], -1)
        out = self.head(self.drop(h)).view(len(x), cfg.horizon, cfg.targets, cfg.outputs_per_step)
        base = self.anchor(x)  # (B, horizon, targets) or None
        if cfg.output == "point":
            out = out.squeeze(-1) if base is None else out.squeeze(-1) + base
        elif cfg.output == "gaussian":
            mean = out[..., 0] if base is None else out[..., 0] + base
            out = torch.stack([mean, F.softplus(out[..., 1]) + 1e-6], -1)
        elif base is not None:
            out = out + base.unsqueeze(-1)
        if loc is None:
            return out
        t_loc, t_scale = loc[..., : cfg.targets], scale[..., : cfg.targets]  # (B, 1, targets)
        if cfg.output == "point":
            return out * t_scale + t_loc
        if cfg.output == "gaussian":
            return torch.stack([out[..., 0] * t_scale + t_loc, out[..., 1] * t_scale], -1)
        return out * t_scale.unsqueeze(-1) + t_loc.unsqueeze(-1)

    def anchor(self, x: Tensor) -> Tensor | None:
        """The forecast the network corrects: the last value (naive) or the value one season back
        (seasonal naive) of each target, ``(B, horizon, targets)``; None for anchor='none'."""
        cfg = self.config
        if cfg.anchor == "none":
            return None
        y = x[..., : cfg.targets]
        if cfg.anchor == "last":
            return y[:, -1:].expand(-1, cfg.horizon, -1)
        if x.shape[1] < cfg.season:
            raise ValueError(f"x: anchor='seasonal' needs a lookback of at least season={cfg.season}, got {x.shape[1]}")
        steps = torch.arange(cfg.horizon, device=x.device) % cfg.season  # y[t+h] ~ y[t+h-season]
        return y[:, x.shape[1] - cfg.season + steps]

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        """Training loss for ``y`` (B, horizon, targets): MSE, pinball, or Gaussian NLL."""
        cfg = self.config
        if cfg.output == "point":
            return F.mse_loss(out, y)
        if cfg.output == "gaussian":
            return F.gaussian_nll_loss(out[..., 0], y, out[..., 1] ** 2)
        q = torch.tensor(cfg.quantiles, dtype=out.dtype, device=out.device)
        diff = y.unsqueeze(-1) - out  # (B, horizon, targets, Q)
        return torch.maximum(q * diff, (q - 1) * diff).mean()

    def point(self, out: Tensor) -> Tensor:
        """The point forecast inside any output: itself, the median quantile, or the mean."""
        cfg = self.config
        if cfg.output == "point":
            return out
        if cfg.output == "gaussian":
            return out[..., 0]
        k = min(range(len(cfg.quantiles)), key=lambda i: abs(cfg.quantiles[i] - 0.5))
        return out[..., k]
