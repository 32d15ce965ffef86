"""SequenceClassifier: shapes, padding invariance, config errors, and learning a motif task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from biolstm.data import one_hot
from biolstm.models import SequenceClassifier, SequenceClassifierConfig
from biolstm.train import Trainer, TrainerConfig, seed_everything


@pytest.mark.parametrize("pooling", ["attention", "max", "mean", "last"])
def test_padding_never_changes_a_prediction(pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(pooling=pooling, conv_kernel=5, conv_filters=8, hidden_size=6).eval()
    x, _ = one_hot(["ACGTACGTACGTTTGA", "GGGCCCAAAT"])
    x = torch.from_numpy(x)
    lengths = torch.tensor([16, 10])
    both = model(x, lengths)
    alone = model(x[1:2, :10], torch.tensor([10]))
    torch.testing.assert_close(both[1:2], alone, atol=1e-5, rtol=0)
    junk = x.clone()
    junk[1, 10:] = 1.0  # garbage in the padding
    torch.testing.assert_close(model(junk, lengths), both, atol=1e-6, rtol=0)


def test_outputs_and_config():
    m = SequenceClassifier(SequenceClassifierConfig(task="multiclass", num_outputs=3, cell="gru", conv_filters=0))
    out = m(torch.randn(2, 30, 4))
    assert out.shape == (2, 3)
    torch.testing.assert_close(m.predict_proba(torch.randn(2, 30, 4)).sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="model config: unknown key 'hiden_size'"):
        SequenceClassifier(hiden_size=3)
    with pytest.raises(ValueError, match="num_outputs: expected 1 for task='binary'"):
        SequenceClassifierConfig(num_outputs=2)
    with pytest.raises(ValueError, match=r"x: expected \(batch, length, 4\) one-hot input"):
        m(torch.randn(2, 30, 5))


def test_learns_a_motif_task():
    # positives carry TGACTCA (an AP-1/MARE-like site) at a random place; negatives do not
    rng = np.random.default_rng(0)
    seqs, labels = [], []
    for k in range(600):
        s = list(rng.choice(list("ACGT"), 60))
        if k % 2:
            p = rng.integers(0, 53)
            s[p : p + 7] = list("TGACTCA")
        seqs.append("".join(s))
        labels.append(k % 2)
    x = torch.from_numpy(one_hot(seqs)[0])
    y = torch.tensor(labels, dtype=torch.float32)
    seed_everything(0)
    model = SequenceClassifier(conv_filters=16, conv_kernel=9, pool=2, hidden_size=8)
    cfg = TrainerConfig(epochs=8, batch_size=32, lr=0.01, loss="bce_with_logits", metrics=("auc",))
    Trainer(model, cfg).fit(x[:500], y[:500])
    auc = roc_auc_score(y[500:].numpy(), model.predict_proba(x[500:]).numpy())
    assert auc > 0.95
