"""SequenceTagger: one prediction per position (many-to-many), for per-base or per-residue labels.

An optional 1-D convolution with 'same' padding (every output position stays aligned with its
input position) reads the local letters, a bidirectional LSTM/GRU from :mod:`biolstm.nn`
carries context from both flanks, and one linear head is applied at every position:

    x (B, T, C) -> conv, batch norm, ReLU (B, T, F) -> BiLSTM (B, T, 2H) -> batch norm, linear (B, T, K)

The two batch normalisations (``batch_norm``, on by default) are what make weak signals
learnable in a few epochs: a repeat's k-mer composition is a small shift of features whose
mean is large, and without them a per-base soft-mask model on the Oct4/MafK peaks stayed at the
majority rate for epochs while logistic regression on window k-mer counts found the signal.
Their statistics are taken over the real positions only.

Lengths are respected end to end: positions past a sequence's length are zeroed before the
convolution (they read as the zero padding at a sequence end), and the recurrent layer stops at
each length (the backward direction starts at the last real position), so the outputs at the
real positions of a sequence are the same whatever padding follows it. The outputs at padding
positions are meaningless: the loss (``masked_cross_entropy``) and the metrics leave them out.
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
class SequenceTaggerConfig(Config):
    """Architecture of a :class:`SequenceTagger`. Unknown keys are refused by from_dict."""

    _what = "model config"

    input_channels: int = 4  # features per position: 4 DNA/RNA one-hot, 20 protein
    conv_filters: int = 32  # filters of the convolution front end ('same' padding keeps positions aligned); 0: none
    conv_kernel: int = 9  # convolution width in positions (odd: centred on each position)
    batch_norm: bool = True  # batch-normalise the convolution's outputs and the head's inputs over the real
    # positions (padding left out): signals that are small shifts of a large mean, as k-mer composition is, are
    # found in a few epochs instead of dozens
    hidden_size: int = 32  # recurrent units per direction
    num_layers: int = 1  # stacked recurrent layers
    cell: str = "lstm"  # lstm | gru
    bidirectional: bool = True  # read both ways, so each position sees both flanks
    dropout: float = 0.1  # dropout after the convolution and before the head
    num_outputs: int = 1  # 1 for binary labels; the number of classes otherwise
    task: str = "binary"  # binary (one logit per position) | multiclass (num_outputs logits per position)

    def __post_init__(self) -> None:
        check_architecture(self)
        check_choice(self.task, ("binary", "multiclass"), "task")
        if self.task == "binary" and self.num_outputs != 1:
            raise ValueError(f"num_outputs: expected 1 for task='binary', got {self.num_outputs}")
        if self.task == "multiclass" and self.num_outputs < 2:
            raise ValueError(f"num_outputs: expected at least 2 for task='multiclass', got {self.num_outputs}")


def check_architecture(cfg) -> None:
    """The keys a tagger-shaped model shares (front end, recurrent layer, dropout, outputs)."""
    check_positive_int(cfg.input_channels, "input_channels")
    check_positive_int(cfg.conv_filters, "conv_filters", minimum=0)
    check_positive_int(cfg.conv_kernel, "conv_kernel")
    check_positive_int(cfg.hidden_size, "hidden_size")
    check_positive_int(cfg.num_layers, "num_layers")
    check_choice(cfg.cell, ("lstm", "gru"), "cell")
    check_probability(cfg.dropout, "dropout")
    check_positive_int(cfg.num_outputs, "num_outputs")


class SequenceTagger(nn.Module):
    """``forward(x, lengths=None)``: x ``(B, T, C)`` -> logits ``(B, T)`` for binary labels, else
    ``(B, T, num_outputs)``; :meth:`predict_proba` gives probabilities."""

    config_class = SequenceTaggerConfig

    def __init__(self, config: SequenceTaggerConfig | None = None, **overrides) -> None:
        super().__init__()
        check_model_config(config, SequenceTaggerConfig)
        cfg = (config or SequenceTaggerConfig()).merged(**overrides)
        self.config = cfg
        channels = cfg.input_channels
        width = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        self.conv = self.conv_norm = None
        if cfg.conv_filters:
            self.conv = nn.Conv1d(channels, cfg.conv_filters, cfg.conv_kernel, padding="same")
            channels = cfg.conv_filters
            self.conv_norm = nn.BatchNorm1d(channels) if cfg.batch_norm else None
        rnn_cls = LSTM if cfg.cell == "lstm" else GRU
        self.rnn = rnn_cls(
            channels, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True, bidirectional=cfg.bidirectional
        )
        self.head_norm = nn.BatchNorm1d(width) if cfg.batch_norm else None
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(width, cfg.num_outputs)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        cfg = self.config
        if x.dim() != 3 or x.shape[-1] != cfg.input_channels:
            raise ValueError(f"x: expected (batch, length, {cfg.input_channels}) input, got shape {tuple(x.shape)}")
        keep = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            keep = torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)  # (B, T)
            x = x * keep.unsqueeze(-1).to(x.dtype)  # padding reads as the zeros past a sequence's end
        if self.conv is not None:
            h = _normalise(self.conv_norm, self.conv(x.transpose(1, 2)).transpose(1, 2), keep)  # (B, T, F)
            x = self.drop(F.relu(h))
        out, _ = self.rnn(x, lengths=lengths)  # (B, T, 2H), zeros past each length
        logits = self.head(self.drop(_normalise(self.head_norm, out, keep)))  # (B, T, K)
        return logits.squeeze(-1) if cfg.task == "binary" else logits

    @torch.no_grad()
    def predict_proba(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Probabilities in eval mode: sigmoid ``(B, T)`` (binary) or softmax ``(B, T, K)``."""
        was = self.training
        self.eval()
        logits = self(x, lengths)
        self.train(was)
        return torch.sigmoid(logits) if self.config.task == "binary" else torch.softmax(logits, -1)


def _normalise(norm: nn.BatchNorm1d | None, h: Tensor, keep: Tensor | None) -> Tensor:
    """``norm`` (batch normalisation) of ``h`` (B, T, F) over the real positions ``keep`` (B, T)
    only: its statistics, and the running ones eval mode uses, never see padding (left 0)."""
    if norm is None:
        return h
    if keep is None:
        return norm(h.reshape(-1, h.shape[-1])).reshape(h.shape)  # (B*T, F)
    out = torch.zeros_like(h)
    out[keep] = norm(h[keep])  # (P, F): the batch's real positions
    return out
