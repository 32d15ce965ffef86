"""SequenceClassifier: convolution (motif scanner) + bidirectional LSTM/GRU + pooling + head.

A DanQ-style architecture for one-hot DNA/RNA/protein: a 1-D convolution finds motifs, max
pooling shortens the sequence, a bidirectional recurrent layer reads the motif track for
their order and spacing, and attention (or max/mean/last) pooling over time feeds a linear
head. Variable lengths are respected end to end: padding never changes a prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config
from ..nn import GRU, LSTM
from ..validation import check_choice, check_positive_int, check_probability


@dataclass
class SequenceClassifierConfig(Config):
    """Architecture of a :class:`SequenceClassifier`. Unknown keys are refused by from_dict."""

    _what = "model config"

    input_channels: int = 4  # one-hot channels: 4 DNA/RNA, 5 with a soft-mask channel, 20 protein
    conv_filters: int = 64  # filters of the motif-scanning convolution; 0 disables it
    conv_kernel: int = 19  # convolution width in positions (odd keeps motifs centred)
    pool: int = 4  # max-pool width after the convolution (1: no pooling)
    hidden_size: int = 32  # recurrent units per direction
    num_layers: int = 1  # stacked recurrent layers
    cell: str = "lstm"  # lstm | gru
    bidirectional: bool = True  # read the sequence both ways (strand-agnostic motifs)
    dropout: float = 0.2  # dropout after the convolution and before the head
    pooling: str = "attention"  # attention | max | mean | last: how steps become one vector
    num_outputs: int = 1  # 1 for binary tasks; the number of classes or labels otherwise
    task: str = "binary"  # binary | multiclass | multilabel | regression

    def __post_init__(self) -> None:
        check_positive_int(self.input_channels, "input_channels")
        check_positive_int(self.conv_filters, "conv_filters", minimum=0)
        check_positive_int(self.conv_kernel, "conv_kernel")
        check_positive_int(self.pool, "pool")
        check_positive_int(self.hidden_size, "hidden_size")
        check_positive_int(self.num_layers, "num_layers")
        check_choice(self.cell, ("lstm", "gru"), "cell")
        check_probability(self.dropout, "dropout")
        check_choice(self.pooling, ("attention", "max", "mean", "last"), "pooling")
        check_positive_int(self.num_outputs, "num_outputs")
        check_choice(self.task, ("binary", "multiclass", "multilabel", "regression"), "task")
        if self.task == "binary" and self.num_outputs != 1:
            raise ValueError(f"num_outputs: expected 1 for task='binary', got {self.num_outputs}")


class SequenceClassifier(nn.Module):
    """``forward(x, lengths=None)``: x ``(B, T, C)`` one-hot -> logits ``(B,)`` for binary tasks,
    else ``(B, num_outputs)``. Apply sigmoid/softmax for probabilities (see :meth:`predict_proba`)."""

    def __init__(self, config: SequenceClassifierConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = (config or SequenceClassifierConfig()).merged(**overrides)
        self.config = cfg
        channels = cfg.input_channels
        self.conv = None
        if cfg.conv_filters:
            self.conv = nn.Conv1d(channels, cfg.conv_filters, cfg.conv_kernel, padding=cfg.conv_kernel // 2)
            channels = cfg.conv_filters
        rnn_cls = LSTM if cfg.cell == "lstm" else GRU
        self.rnn = rnn_cls(
            channels, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True, bidirectional=cfg.bidirectional
        )
        width = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        self.attention = (
            nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1, bias=False))
            if cfg.pooling == "attention"
            else None
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(width, cfg.num_outputs)

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Per-step features ``(B, T', 2H)`` after conv, pooling and the recurrent layer."""
        if x.dim() != 3 or x.shape[-1] != self.config.input_channels:
            raise ValueError(
                f"x: expected (batch, length, {self.config.input_channels}) one-hot input, got shape {tuple(x.shape)}"
            )
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            keep = (torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)).unsqueeze(-1)
            x = x * keep  # padding contributes nothing to the convolution
        if self.conv is not None:
            h = F.relu(self.conv(x.transpose(1, 2)))  # (B, F, T)
            if self.config.pool > 1:
                h = F.max_pool1d(h, self.config.pool, ceil_mode=False)
                if lengths is not None:
                    lengths = lengths // self.config.pool
            x = self.drop(h.transpose(1, 2))  # (B, T', F)
        if lengths is not None:
            lengths = lengths.clamp(min=1, max=x.shape[1])
        out, _ = self.rnn(x, lengths=lengths)  # (B, T', 2H)
        return out, lengths

    def pool(self, h: Tensor, lengths: Tensor | None) -> Tensor:
        B, T, _ = h.shape
        alive = None if lengths is None else torch.arange(T, device=h.device) < lengths.unsqueeze(1)  # (B, T')
        mode = self.config.pooling
        if mode == "attention":
            score = self.attention(h).squeeze(-1)  # (B, T')
            if alive is not None:
                score = score.masked_fill(~alive, float("-inf"))
            return (torch.softmax(score, 1).unsqueeze(-1) * h).sum(1)
        if mode == "max":
            return (h if alive is None else h.masked_fill(~alive.unsqueeze(-1), float("-inf"))).max(1).values
        if mode == "mean":
            if alive is None:
                return h.mean(1)
            return (h * alive.unsqueeze(-1)).sum(1) / lengths.unsqueeze(1).to(h.dtype)
        if lengths is None:  # last
            return h[:, -1]
        return h[torch.arange(B, device=h.device), lengths - 1]

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h, lengths = self.encode(x, lengths)
        logits = self.head(self.drop(self.pool(h, lengths)))
        return logits.squeeze(-1) if self.config.task == "binary" else logits

    @torch.no_grad()
    def predict_proba(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Probabilities in eval mode: sigmoid (binary, multilabel) or softmax (multiclass)."""
        was = self.training
        self.eval()
        logits = self(x, lengths)
        self.train(was)
        if self.config.task == "multiclass":
            return torch.softmax(logits, -1)
        return torch.sigmoid(logits) if self.config.task != "regression" else logits
