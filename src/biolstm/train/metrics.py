"""Metrics over a set of predictions, by Keras name: accuracy, auc, precision, recall, mae, mse.

``out`` is what the model returns (probabilities for the Keras losses, logits for
'bce_with_logits' and 'cross_entropy'); the loss name tells which, so thresholds and
argmaxes are taken on the right scale. auROC comes from scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

METRICS = ("accuracy", "acc", "auc", "precision", "recall", "mae", "mse")
_LOGITS = ("bce_with_logits", "cross_entropy")


def _binary_scores(out: Tensor, loss: str) -> Tensor:
    return torch.sigmoid(out) if loss == "bce_with_logits" else out


def _is_multiclass(loss: str) -> bool:
    return loss in ("categorical_crossentropy", "sparse_categorical_crossentropy", "cross_entropy")


def _class_ids(y: Tensor, loss: str) -> Tensor:
    return y.argmax(-1) if loss == "categorical_crossentropy" else y.long().view(-1)


def compute_metric(name: str, out: Tensor, y: Tensor, loss: str) -> float:
    """One metric over all predictions ``out`` (N, ...) and targets ``y``."""
    out, y = out.detach().float().cpu(), y.detach().cpu()
    if name in ("mae", "mse"):
        d = out - y.to(out.dtype).view_as(out)
        return float(d.abs().mean() if name == "mae" else (d * d).mean())
    if _is_multiclass(loss):
        pred, true = out.argmax(-1), _class_ids(y, loss)
        if true.numel() == pred.numel():
            true = true.reshape(pred.shape)  # one class per step: (B, T) against (B, T, V)
        if name in ("accuracy", "acc"):
            return float((pred == true).double().mean())
        if name == "auc":
            from sklearn.metrics import roc_auc_score

            probs = torch.softmax(out, -1) if loss == "cross_entropy" else out
            try:
                return float(roc_auc_score(true.numpy(), probs.numpy(), multi_class="ovr"))
            except ValueError:
                return float("nan")  # a class is absent from these targets
        raise ValueError(f"metrics: {name!r} is defined here for binary outputs only, got loss {loss!r}")
    scores = _binary_scores(out, loss).reshape(len(out), -1)
    truth = y.reshape(len(y), -1).to(scores.dtype)
    pred = (scores > 0.5).to(scores.dtype)
    if name in ("accuracy", "acc"):
        return float((pred == truth).double().mean())
    if name == "auc":
        from sklearn.metrics import roc_auc_score

        t, s = truth.numpy(), scores.numpy()
        if len(np.unique(t)) < 2 or not np.isin(t, (0, 1)).all():
            return float("nan")  # auROC needs both classes and 0/1 targets
        try:
            return float(roc_auc_score(t, s, average="macro"))
        except ValueError:
            return float("nan")  # a label with one value only in these targets
    tp = float((pred * truth).sum())
    if name == "precision":
        return tp / max(float(pred.sum()), 1e-12)
    if name == "recall":
        return tp / max(float(truth.sum()), 1e-12)
    raise ValueError(f"metrics: expected one of {', '.join(METRICS)}, got {name!r}")
