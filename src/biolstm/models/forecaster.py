"""Forecaster: an LSTM/GRU encoder over the lookback window, a direct multi-step head.

``forward(x, static=None)`` maps a window ``(B, lookback, F)`` to the next ``horizon`` steps of
``targets`` series: point forecasts ``(B, horizon, targets)``, or with ``output='quantile'``
one value per quantile ``(B, horizon, targets, Q)`` trained with the pinball loss, or with
``output='gaussian'`` a mean and a standard deviation ``(B, horizon, targets, 2)`` trained by
Gaussian negative log-likelihood. Static covariates (sex, treatment, age) join the sequence
encoding before the head (late fusion). :class:`ForecasterEnsemble` trains several Forecasters
side by side, each from its own initial weights, and forecasts their mean.
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
    point_loss: str = "mse"  # mse | mae | huber: the training loss of output='point'

    def __post_init__(self) -> None:
        for name in ("input_size", "targets", "horizon", "hidden_size", "num_layers"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.static_size, "static_size", minimum=0)
        check_choice(self.cell, ("lstm", "gru"), "cell")
        check_probability(self.dropout, "dropout")
        check_choice(self.output, ("point", "quantile", "gaussian"), "output")
        check_choice(self.anchor, ("none", "last", "seasonal"), "anchor")
        check_choice(self.point_loss, ("mse", "mae", "huber"), "point_loss")
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
        """Training loss for ``y`` (B, horizon, targets): ``point_loss`` (MSE, MAE or Huber),
        pinball, or Gaussian NLL. ``y`` of shape (B, horizon, targets, 2) holds each target's
        value and whether it was observed (1) or not (0): unobserved targets are left out of
        the mean (a window near a series' end or across a gap still teaches its other steps)."""
        cfg = self.config
        if y.dim() == 4:
            y, seen = y[..., 0], y[..., 1]  # (B, horizon, targets) each
            return (self._elementwise(out, y) * seen).sum() / seen.sum().clamp_min(1.0)
        if cfg.output == "point":
            fn = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss}[cfg.point_loss]
            return fn(out, y)
        if cfg.output == "gaussian":
            return F.gaussian_nll_loss(out[..., 0], y, out[..., 1] ** 2)
        q = torch.tensor(cfg.quantiles, dtype=out.dtype, device=out.device)
        diff = y.unsqueeze(-1) - out  # (B, horizon, targets, Q)
        return torch.maximum(q * diff, (q - 1) * diff).mean()

    def _elementwise(self, out: Tensor, y: Tensor) -> Tensor:
        """The loss of each target  # (B, horizon, targets)."""
        cfg = self.config
        if cfg.output == "point":
            fn = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss}[cfg.point_loss]
            return fn(out, y, reduction="none")
        if cfg.output == "gaussian":
            return F.gaussian_nll_loss(out[..., 0], y, out[..., 1] ** 2, reduction="none")
        q = torch.tensor(cfg.quantiles, dtype=out.dtype, device=out.device)
        diff = y.unsqueeze(-1) - out  # (B, horizon, targets, Q)
        return torch.maximum(q * diff, (q - 1) * diff).mean(-1)

    def point(self, out: Tensor) -> Tensor:
        """The point forecast inside any output: itself, the median quantile, or the mean."""
        cfg = self.config
        if cfg.output == "point":
            return out
        if cfg.output == "gaussian":
            return out[..., 0]
        k = min(range(len(cfg.quantiles)), key=lambda i: abs(cfg.quantiles[i] - 0.5))
        return out[..., k]


@dataclass
class ForecasterEnsembleConfig(ForecasterConfig):
    """A :class:`ForecasterConfig` for each member of a :class:`ForecasterEnsemble`."""

    members: int = 1  # Forecasters trained side by side, each from its own initial weights; the forecast is their mean
    window_scale: str = "none"  # none | std | diff: channel 0 over its spread in the window (output multiplied back)
    scale_floor: float = 0.05  # the least window scale (a window of one observed value has no spread)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.members, "members")
        check_choice(self.window_scale, ("none", "std", "diff"), "window_scale")
        if not (isinstance(self.scale_floor, (int, float)) and self.scale_floor > 0):
            raise ValueError(f"scale_floor: expected a number > 0, got {self.scale_floor!r}")


class ForecasterEnsemble(nn.Module):
    """``members`` Forecasters of one config, trained together: each member is initialised
    from its own draw of the random stream, sees the same batches and has its own loss (the
    sum of disjoint losses: each member's gradients are what it would get trained alone in
    that batch order). ``forward`` returns every member's output, ``(B, members, ...)``, so
    training and validation losses are the members' mean; :meth:`point` averages their point
    forecasts, ``(B, horizon, targets)``: a deep ensemble over initial weights.

    ``window_scale`` reads channel 0 as the target (relative to its value at the window's end,
    as the panel task gives it) and channel 1 as whether each step was observed: each window's
    target channel is divided by its spread over the observed steps (``std``: the standard
    deviation; ``diff``: the mean absolute change between successive observed steps, the
    in-window naive error), at least ``scale_floor``, and the forecast multiplied back, so
    fast- and slow-moving windows look alike to the network while the loss stays in the
    data's units (RevIN's idea, for the target's scale only)."""

    def __init__(self, config: ForecasterEnsembleConfig | None = None, **overrides) -> None:
        super().__init__()
        check_model_config(config, ForecasterEnsembleConfig)
        cfg = (config or ForecasterEnsembleConfig()).merged(**overrides)
        self.config = cfg
        self.members = nn.ModuleList([Forecaster(cfg) for _ in range(cfg.members)])

    def forward(self, x: Tensor, static: Tensor | None = None) -> Tensor:
        cfg = self.config
        if cfg.window_scale == "none":
            return torch.stack([m(x, static) for m in self.members], 1)  # (B, K, horizon, targets[, Q|2])
        s = self.window_spread(x)  # (B,)
        x = torch.cat([x[..., :1] / s[:, None, None], x[..., 1:]], -1)
        out = torch.stack([m(x, static) for m in self.members], 1)  # (B, K, horizon, targets[, Q|2])
        return out * s.view(-1, *([1] * (out.dim() - 1)))  # a Gaussian's mean and SD scale alike

    def window_spread(self, x: Tensor) -> Tensor:
        """Each window's spread of channel 0 over its observed steps (channel 1)  # (B,)."""
        v, seen = x[..., 0], x[..., 1]  # (B, L)
        if self.config.window_scale == "std":
            n = seen.sum(1).clamp_min(1.0)
            mean = (v * seen).sum(1) / n
            s = (((v - mean[:, None]) ** 2 * seen).sum(1) / n).sqrt()
        else:
            both = seen[:, 1:] * seen[:, :-1]  # (B, L - 1)
            s = ((v[:, 1:] - v[:, :-1]).abs() * both).sum(1) / both.sum(1).clamp_min(1.0)
        return s.clamp_min(self.config.scale_floor)

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return torch.stack([m.loss(out[:, k], y) for k, m in enumerate(self.members)]).mean()

    def point(self, out: Tensor) -> Tensor:
        """The members' mean point forecast ``(B, horizon, targets)``."""
        return torch.stack([m.point(out[:, k]) for k, m in enumerate(self.members)], 1).mean(1)
