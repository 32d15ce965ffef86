"""Metrics by Keras name, class weights and per-sample losses."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import roc_auc_score

from biolstm.train.metrics import compute_metric
from biolstm.train.trainer import class_weights_for, compute_loss, per_sample_loss


def test_binary_metrics_against_hand_counts_and_sklearn():
    p = torch.tensor([0.9, 0.2, 0.7, 0.4, 0.6])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    # predictions > 0.5: 1, 0, 1, 0, 1 -> tp 2, fp 1, fn 1
    assert compute_metric("accuracy", p, y, "binary_crossentropy") == pytest.approx(3 / 5)
    assert compute_metric("precision", p, y, "binary_crossentropy") == pytest.approx(2 / 3)
    assert compute_metric("recall", p, y, "binary_crossentropy") == pytest.approx(2 / 3)
    assert compute_metric("auc", p, y, "binary_crossentropy") == pytest.approx(roc_auc_score(y, p))
    logits = torch.logit(p)  # the same predictions as logits
    assert compute_metric("auc", logits, y, "bce_with_logits") == pytest.approx(roc_auc_score(y, p))
    assert compute_metric("accuracy", logits, y, "bce_with_logits") == pytest.approx(3 / 5)
    assert math.isnan(compute_metric("auc", p, torch.ones(5), "binary_crossentropy"))


def test_multiclass_and_regression_metrics():
    logits = torch.tensor([[2.0, 0.1, 0.0], [0.0, 3.0, 0.1], [0.2, 0.1, 0.0], [0.0, 0.0, 1.0]])
    y = torch.tensor([0, 1, 2, 2])
    assert compute_metric("accuracy", logits, y, "cross_entropy") == pytest.approx(3 / 4)
    probs = torch.softmax(logits, -1)
    onehot = torch.nn.functional.one_hot(y, 3).float()
    assert compute_metric("acc", probs, onehot, "categorical_crossentropy") == pytest.approx(3 / 4)
    assert compute_metric("auc", logits, y, "cross_entropy") == pytest.approx(
        roc_auc_score(y, probs, multi_class="ovr")
    )
    out, t = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [4.0]])
    assert compute_metric("mae", out, t, "mse") == pytest.approx(1.5)
    assert compute_metric("mse", out, t, "mse") == pytest.approx(2.5)


def test_class_weights_scale_sample_losses():
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    w = class_weights_for(y, {0: 1.0, 1: 3.0}, "binary_crossentropy")
    assert w.tolist() == [1.0, 3.0, 3.0, 1.0]
    p = torch.tensor([0.3, 0.6, 0.8, 0.1])
    per = per_sample_loss("binary_crossentropy", p, y)
    torch.testing.assert_close(per, torch.nn.functional.binary_cross_entropy(p, y, reduction="none"))
    torch.testing.assert_close(compute_loss("binary_crossentropy", p, y, w), (per * w).mean())
    assert class_weights_for(y, None, "binary_crossentropy") is None
