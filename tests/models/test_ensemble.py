"""ClassifierEnsemble: members trained side by side from their own initial weights, each with
its own loss; the prediction is the mean of the members' logits."""

from __future__ import annotations

import pytest
import torch

from biolstm.models import SequenceClassifierConfig
from biolstm.models.classifier import ClassifierEnsemble
from biolstm.train.trainer import compute_loss

KINDS = [("binary", 1, "bce_with_logits"), ("multiclass", 3, "cross_entropy"), ("regression", 1, "mse")]


@pytest.mark.parametrize(("task", "outputs", "loss"), KINDS)
def test_members_have_their_own_weights_and_losses_and_predict_their_mean(task, outputs, loss):
    torch.manual_seed(0)
    cfg = SequenceClassifierConfig(input_channels=3, conv_filters=0, hidden_size=4, task=task, num_outputs=outputs,
                                   members=3, dropout=0.0)  # fmt: skip
    ens = ClassifierEnsemble(cfg)
    w = [m.head.weight for m in ens.members]
    assert not torch.equal(w[0], w[1])  # each from its own draw
    x = torch.randn(5, 7, 3)
    y = torch.randint(0, outputs, (5,)) if task == "multiclass" else torch.rand(5)
    ens.train()
    stacked = ens(x)
    assert stacked.shape[:2] == (5, 3)
    each = [compute_loss(loss, m(x), y) for m in ens.members]
    assert torch.allclose(ens.loss(stacked, y), torch.stack(each).mean())
    # each member's gradient is what its own loss gives: the members do not share gradients
    ens.zero_grad()
    ens.loss(stacked, y).backward()
    g0 = ens.members[0].head.weight.grad.clone()
    ens.zero_grad()
    (compute_loss(loss, ens.members[0](x), y) / 3).backward()
    assert torch.allclose(g0, ens.members[0].head.weight.grad, atol=1e-6)
    ens.eval()
    with torch.no_grad():
        mean = torch.stack([m(x) for m in ens.members]).mean(0)
        assert torch.allclose(ens(x), mean)
        assert torch.allclose(ens.loss(ens(x), y), compute_loss(loss, mean, y))  # validation: one model's loss
