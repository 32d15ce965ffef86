"""ProfileModel: coverage profiles along a sequence, binned, for one or several tracks (as BPNet
and Basenji predict ChIP-seq, ATAC-seq or CAGE coverage from sequence).

A :class:`~biolstm.models.SequenceTagger` (convolution with 'same' padding, a bidirectional
LSTM/GRU, a linear head at every position) gives one value per position and track; the values
of each bin of ``bin`` positions are averaged:

    x (B, T, C) -> tagger (B, T, K) -> mean over each bin (B, T / bin, K)

With ``loss: poisson`` (the default, for coverage, which is a count) the output is the log of
the expected mean coverage per base of each bin and the loss is the Poisson negative log
likelihood; :meth:`coverage` gives the coverage itself. With ``loss: mse`` the output is
``log1p`` of the coverage, trained by mean squared error.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config
from ..validation import check_choice, check_model_config, check_positive_int
from .tagger import SequenceTagger, SequenceTaggerConfig, check_architecture


@dataclass
class ProfileModelConfig(Config):
    """Architecture of a :class:`ProfileModel`. Unknown keys are refused by from_dict."""

    _what = "model config"

    input_channels: int = 4  # features per position: 4 for DNA one-hot
    conv_filters: int = 32  # filters of the convolution front end ('same' padding keeps positions aligned)
    conv_kernel: int = 15  # convolution width in bases (odd: centred on each base)
    batch_norm: bool = True  # batch-normalise the convolution's outputs and the head's inputs
    hidden_size: int = 32  # recurrent units per direction
    num_layers: int = 1  # stacked recurrent layers
    cell: str = "lstm"  # lstm | gru
    bidirectional: bool = True  # read both ways, so each base sees both flanks
    dropout: float = 0.1  # dropout after the convolution and before the head
    num_outputs: int = 1  # tracks predicted (set from data.tracks)
    bin: int = 10  # bases per output bin (set from data.bin)
    loss: str = "poisson"  # poisson (output: log of the mean coverage per base) | mse (output: log1p of it)

    def __post_init__(self) -> None:
        check_architecture(self)
        check_positive_int(self.bin, "bin")
        check_choice(self.loss, ("poisson", "mse"), "loss")


class ProfileModel(nn.Module):
    """``forward(x, lengths=None)``: x ``(B, T, C)`` with T a multiple of ``bin`` -> ``(B, T / bin,
    num_outputs)`` (log rates for the Poisson loss, log1p coverage for MSE); :meth:`loss` is the
    training loss, :meth:`coverage` the predicted coverage."""

    config_class = ProfileModelConfig

    def __init__(self, config: ProfileModelConfig | None = None, **overrides) -> None:
        super().__init__()
        check_model_config(config, ProfileModelConfig)
        cfg = (config or ProfileModelConfig()).merged(**overrides)
        self.config = cfg
        K = cfg.num_outputs
        self.tagger = SequenceTagger(SequenceTaggerConfig(
            input_channels=cfg.input_channels, conv_filters=cfg.conv_filters, conv_kernel=cfg.conv_kernel,
            batch_norm=cfg.batch_norm, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, cell=cfg.cell,
            bidirectional=cfg.bidirectional, dropout=cfg.dropout, num_outputs=K,
            task="binary" if K == 1 else "multiclass",
        ))  # fmt: skip

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        B, T = x.shape[0], x.shape[1]
        if T % self.config.bin:
            raise ValueError(f"x: expected a length that is a multiple of bin={self.config.bin}, got {T}")
        per_base = self.tagger(x, lengths)
        per_base = per_base.unsqueeze(-1) if per_base.dim() == 2 else per_base  # (B, T, K)
        return per_base.reshape(B, T // self.config.bin, self.config.bin, -1).mean(2)

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        """Poisson NLL of the coverage ``y`` (B, bins, K) given log rates, or MSE of log1p(y)."""
        if self.config.loss == "poisson":
            return F.poisson_nll_loss(out, y, log_input=True, full=False)
        return F.mse_loss(out, torch.log1p(y.clamp_min(0)))

    def coverage(self, out: Tensor) -> Tensor:
        """Predicted mean coverage per base of each bin, from the outputs."""
        return torch.exp(out) if self.config.loss == "poisson" else torch.expm1(out).clamp_min(0)
