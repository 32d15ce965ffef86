"""SequenceClassifier and SequenceRegressor: front end + bidirectional LSTM/GRU + pooling + head.

A DanQ-style architecture for one-hot DNA/RNA/protein: a 1-D convolution finds motifs, max
pooling shortens the sequence, a bidirectional recurrent layer reads the motif track for
their order and spacing, and attention (or max/mean/last) pooling over time feeds a linear
head. Variable lengths are respected end to end: padding never changes a prediction.

The same model reads other inputs through its front end: token ids (``vocab_size > 0``:
an embedding, for k-mers or text), or many features per step (expression profiles, lab
values) through a projection to ``projection_size`` (``projection='linear'``, learned, or
``'pca'``, fixed to principal components fitted on the training split with
:meth:`set_pca`). Static covariates (``static_size``) join the pooled sequence encoding
before the head (late fusion). ``rc_average`` averages the outputs for a DNA sequence and
its reverse complement at prediction time.
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
class SequenceClassifierConfig(Config):
    """Architecture of a :class:`SequenceClassifier`. Unknown keys are refused by from_dict."""

    _what = "model config"

    input_channels: int = 4  # features per step: 4 DNA/RNA one-hot, 5 with soft-mask channel, 20 protein
    vocab_size: int = 0  # > 0: inputs are token ids (0 = padding) read through an embedding
    embedding_dim: int = 32  # embedding width for token inputs
    projection: str = "linear"  # linear (learned) | pca (fixed, see set_pca): used if projection_size > 0
    projection_size: int = 0  # project input_channels features to this many before the rest (0: no)
    conv_filters: int = 64  # filters of the motif-scanning convolution; 0 disables it
    conv_kernel: int = 19  # convolution width in positions (odd keeps motifs centred)
    pool: int = 4  # max-pool width after the convolution (1: no pooling)
    hidden_size: int = 32  # recurrent units per direction
    num_layers: int = 1  # stacked recurrent layers
    cell: str = "lstm"  # lstm | gru
    bidirectional: bool = True  # read the sequence both ways (strand-agnostic motifs)
    dropout: float = 0.2  # dropout after the convolution and before the head
    pooling: str = "attention"  # attention | max | mean | last: how steps become one vector
    num_outputs: int = 1  # 1 for binary tasks; the number of classes, labels or targets otherwise
    task: str = "binary"  # binary | multiclass | multilabel | regression
    static_size: int = 0  # static covariates joined to the pooled encoding (0: none)
    decay_variables: int = 0  # V > 0: inputs start with V values | V masks | V times since observed,
    # and missing values decay from the last observation toward the mean (0) as in GRU-D
    rc_average: bool = False  # predictions average a DNA sequence and its reverse complement
    members: int = 1  # > 1: that many models trained side by side from their own initial weights; logits averaged

    def __post_init__(self) -> None:
        check_positive_int(self.input_channels, "input_channels")
        check_positive_int(self.vocab_size, "vocab_size", minimum=0)
        check_positive_int(self.embedding_dim, "embedding_dim")
        check_choice(self.projection, ("linear", "pca"), "projection")
        check_positive_int(self.projection_size, "projection_size", minimum=0)
        check_positive_int(self.static_size, "static_size", minimum=0)
        check_positive_int(self.decay_variables, "decay_variables", minimum=0)
        if self.decay_variables and 3 * self.decay_variables > self.input_channels:
            raise ValueError(
                f"decay_variables: expected 3 x {self.decay_variables} <= input_channels ({self.input_channels})"
            )
        if self.rc_average and (self.vocab_size or self.input_channels not in (4, 5)):
            raise ValueError(
                f"rc_average: expected one-hot DNA/RNA input (input_channels 4 or 5), got input_channels="
                f"{self.input_channels}, vocab_size={self.vocab_size}"
            )
        check_positive_int(self.members, "members")
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
        check_model_config(config, SequenceClassifierConfig, self.config_class)  # a regressor takes either
        cfg = (config or self.config_class()).merged(**overrides)
        self.config = cfg
        channels = cfg.input_channels
        self.embedding = self.project = None
        if cfg.decay_variables:  # GRU-D input decay: gamma = exp(-relu(w * delta + b)), per variable
            # w starts positive so that relu passes gradient for every delta > 0 (at w = b = 0 it would not)
            self.decay_weight = nn.Parameter(torch.full((cfg.decay_variables,), 0.1))
            self.decay_bias = nn.Parameter(torch.zeros(cfg.decay_variables))
        if cfg.vocab_size:
            self.embedding = nn.Embedding(cfg.vocab_size, cfg.embedding_dim, padding_idx=0)
            channels = cfg.embedding_dim
        if cfg.projection_size:
            self.project = nn.Linear(channels, cfg.projection_size)
            self.project.requires_grad_(cfg.projection == "linear")
            channels = cfg.projection_size
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
        self.head = nn.Linear(width + cfg.static_size, cfg.num_outputs)

    config_class = SequenceClassifierConfig

    @torch.no_grad()
    def set_pca(self, components: Tensor, mean: Tensor) -> None:
        """Fix the projection to ``(x - mean) @ components.T`` (components ``(P, F)``, from PCA
        fitted on the training split only)."""
        if self.project is None or self.config.projection != "pca":
            raise ValueError("set_pca: expected a model with projection='pca' and projection_size > 0")
        components, mean = torch.as_tensor(components), torch.as_tensor(mean)
        if tuple(components.shape) != tuple(self.project.weight.shape):
            raise ValueError(
                f"components: expected shape {tuple(self.project.weight.shape)}, got {tuple(components.shape)}"
            )
        self.project.weight.copy_(components)
        self.project.bias.copy_(-(components @ mean.to(components.dtype)))

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Per-step features ``(B, T', 2H)`` after the front end, pooling and the recurrent layer."""
        cfg = self.config
        if self.embedding is not None:
            if x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"x: expected (batch, length) integer token ids, got {x.dtype} {tuple(x.shape)}")
            if len(x) and (int(x.min()) < 0 or int(x.max()) >= cfg.vocab_size):
                raise ValueError(f"x: expected token ids in [0, {cfg.vocab_size}), got {int(x.min())}..{int(x.max())}")
            x = self.embedding(x)
        elif x.dim() != 3 or x.shape[-1] != cfg.input_channels:
            raise ValueError(f"x: expected (batch, length, {cfg.input_channels}) input, got shape {tuple(x.shape)}")
        if cfg.decay_variables:
            x = self.decay(x)
        if self.project is not None:
            x = self.project(x)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            if bool((lengths < x.shape[1]).any()):
                keep = (torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)).unsqueeze(-1)
                x = x * keep  # padding contributes nothing to the convolution
        if self.conv is not None:
            h = self.conv(x.transpose(1, 2))  # (B, F, T)
            if self.config.pool > 1:
                # relu(max) = max(relu): the same values, on a pool-th of the elements
                h = F.max_pool1d(h, self.config.pool, ceil_mode=False)
                if lengths is not None:
                    lengths = lengths // self.config.pool
            x = self.drop(F.relu(h).transpose(1, 2))  # (B, T', F)
        if lengths is not None:
            lengths = lengths.clamp(min=1, max=x.shape[1])
        out, _ = self.rnn(x, lengths=lengths)  # (B, T', 2H)
        return out, lengths

    def decay(self, x: Tensor) -> Tensor:
        """GRU-D's input decay (Che et al. 2018): an unobserved value is the last observation
        pulled toward the (standardised) mean 0 by ``exp(-relu(w * delta + b))``, learned per
        variable; observed values pass unchanged."""
        V = self.config.decay_variables
        value, mask, delta = x[..., :V], x[..., V : 2 * V], x[..., 2 * V : 3 * V]
        gamma = torch.exp(-F.relu(self.decay_weight * delta + self.decay_bias))
        return torch.cat([mask * value + (1 - mask) * gamma * value, x[..., V:]], -1)

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

    def _logits(self, x: Tensor, lengths: Tensor | None, static: Tensor | None) -> Tensor:
        cfg = self.config
        h, lengths = self.encode(x, lengths)
        z = self.pool(h, lengths)
        if (static is None) != (cfg.static_size == 0):
            raise ValueError(
                f"static: expected {'None' if cfg.static_size == 0 else f'(batch, {cfg.static_size})'}"
                f" for static_size={cfg.static_size}, got {None if static is None else tuple(static.shape)}"
            )
        if static is not None:
            z = torch.cat([z, static.to(z.dtype)], -1)
        logits = self.head(self.drop(z))
        return logits.squeeze(-1) if cfg.task == "binary" else logits

    def forward(self, x: Tensor, lengths: Tensor | None = None, static: Tensor | None = None) -> Tensor:
        out = self._logits(x, lengths, static)
        if self.config.rc_average and not self.training:
            out = (out + self._logits(reverse_complement(x, lengths), lengths, static)) / 2
        return out

    @torch.no_grad()
    def predict_proba(self, x: Tensor, lengths: Tensor | None = None, static: Tensor | None = None) -> Tensor:
        """Probabilities in eval mode: sigmoid (binary, multilabel) or softmax (multiclass)."""
        was = self.training
        self.eval()
        logits = self(x, lengths, static)
        self.train(was)
        if self.config.task == "multiclass":
            return torch.softmax(logits, -1)
        return torch.sigmoid(logits) if self.config.task != "regression" else logits


MEMBER_LOSS = {"binary": "bce_with_logits", "multilabel": "bce_with_logits", "multiclass": "cross_entropy",
               "regression": "mse"}  # fmt: skip


class ClassifierEnsemble(nn.Module):
    """``config.members`` SequenceClassifiers (or regressors) of one config trained together: a
    deep ensemble over initial weights. Each member starts from its own draw of the random
    stream, sees the same batches and has its own loss (the members' losses are disjoint, so
    each member's gradients are what it would get trained alone in that batch order).

    In training mode ``forward`` returns every member's output stacked on dim 1 and
    :meth:`loss` (the Trainer's ``loss: model``) is the mean of the members' losses; in eval
    mode it returns the mean of the members' logits (values for regression), shaped as one
    member's output, so everything downstream reads it as one model's (and :meth:`loss` scores
    such an output as one model's: validation loss)."""

    def __init__(self, config: SequenceClassifierConfig) -> None:
        super().__init__()
        member = SequenceRegressor if config.task == "regression" else SequenceClassifier
        self.config = config
        self.members = nn.ModuleList([member(config) for _ in range(config.members)])
        self.member_loss = MEMBER_LOSS[config.task]

    def set_pca(self, components: Tensor, mean: Tensor) -> None:
        for m in self.members:
            m.set_pca(components, mean)

    def forward(self, x: Tensor, lengths: Tensor | None = None, static: Tensor | None = None) -> Tensor:
        outs = torch.stack([m(x, lengths, static) for m in self.members], 1)  # (B, K[, outputs])
        return outs if self.training else outs.mean(1)

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        from ..train.trainer import compute_loss

        one = y.dim() + (self.member_loss == "cross_entropy")  # the dims of one member's output
        if out.dim() == one:  # the averaged output (eval mode): scored as one model's
            return compute_loss(self.member_loss, out, y)
        return torch.stack([compute_loss(self.member_loss, out[:, k], y) for k in range(out.shape[1])]).mean()


def reverse_complement(x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Reverse complement of one-hot DNA/RNA ``(B, T, 4[+1])`` within each sequence's length
    (A<->T, C<->G; a soft-mask channel is carried along); padding stays in place."""
    B, T, _ = x.shape
    t = torch.arange(T, device=x.device)
    if lengths is None:
        src = (T - 1 - t).expand(B, T)
    else:
        n = torch.as_tensor(lengths, device=x.device).unsqueeze(1)
        src = torch.where(t < n, n - 1 - t, t)
    out = x.gather(1, src.unsqueeze(-1).expand_as(x))
    return torch.cat([out[..., [3, 2, 1, 0]], out[..., 4:]], -1)


@dataclass
class SequenceRegressorConfig(SequenceClassifierConfig):
    """A :class:`SequenceClassifierConfig` whose task is regression (one output per target)."""

    task: str = "regression"


class SequenceRegressor(SequenceClassifier):
    """The same architecture with a linear output per target ``(B,)`` or ``(B, num_outputs)``
    (``task='regression'``), trained with mse/mae/huber; ``predict_proba`` returns the values."""

    config_class = SequenceRegressorConfig

    def forward(self, x: Tensor, lengths: Tensor | None = None, static: Tensor | None = None) -> Tensor:
        out = super().forward(x, lengths, static)
        return out.squeeze(-1) if self.config.num_outputs == 1 else out
