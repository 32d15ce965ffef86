"""SequenceClassifier: shapes, padding invariance, config errors, and learning a motif task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from biolstm.data import one_hot
from biolstm.models import ForecasterConfig, SequenceClassifier, SequenceClassifierConfig, SequenceRegressor
from biolstm.train import Trainer, TrainerConfig, seed_everything

from ..motifs import motif_sequences


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
    with pytest.raises(ValueError, match=r"x: expected \(batch, length, 4\) input"):
        m(torch.randn(2, 30, 5))


def test_learns_a_motif_task():
    seqs, labels = motif_sequences(600, 60)
    x = torch.from_numpy(one_hot(seqs)[0])
    y = torch.tensor(labels, dtype=torch.float32)
    seed_everything(0)
    model = SequenceClassifier(conv_filters=16, conv_kernel=9, pool=2, hidden_size=8)
    cfg = TrainerConfig(epochs=8, batch_size=32, lr=0.01, loss="bce_with_logits", metrics=("auc",))
    Trainer(model, cfg).fit(x[:500], y[:500])
    auc = roc_auc_score(y[500:].numpy(), model.predict_proba(x[500:]).numpy())
    assert auc > 0.95


def test_reverse_complement_matches_the_numpy_encoder_and_rc_average_is_strand_symmetric():
    from biolstm.data import reverse_complement as rc_numpy
    from biolstm.models import reverse_complement

    x, n = one_hot(["ACGTTGCA", "AACCG"], soft_mask="channel")
    want = rc_numpy(x, n)
    got = reverse_complement(torch.from_numpy(x), torch.from_numpy(n))
    torch.testing.assert_close(got, torch.from_numpy(want))
    torch.manual_seed(0)
    model = SequenceClassifier(conv_filters=8, conv_kernel=5, hidden_size=4, rc_average=True, input_channels=5).eval()
    xs, ns = torch.from_numpy(x), torch.from_numpy(n)
    torch.testing.assert_close(model(xs, ns), model(got, ns), atol=1e-6, rtol=0)
    plain = SequenceClassifier(model.config.merged(rc_average=False)).eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain(xs, ns), plain(got, ns))  # the symmetry comes from averaging
    with pytest.raises(ValueError, match="rc_average: expected one-hot DNA/RNA input"):
        SequenceClassifierConfig(input_channels=20, rc_average=True)


def test_token_inputs_projection_and_static_covariates():
    torch.manual_seed(0)
    text = SequenceClassifier(vocab_size=50, embedding_dim=8, conv_filters=0, hidden_size=4, pooling="mean").eval()
    tokens = torch.tensor([[5, 9, 3, 0, 0], [7, 1, 2, 4, 8]])
    out = text(tokens, torch.tensor([3, 5]))
    torch.testing.assert_close(out[:1], text(tokens[:1, :3], torch.tensor([3])), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"token ids in \[0, 50\)"):
        text(torch.tensor([[60, 1]]))
    # PCA projection: fixed weights (not trained), equal to (x - mean) @ components.T
    m = SequenceClassifier(
        input_channels=30, projection="pca", projection_size=3, conv_filters=0, hidden_size=4, static_size=2,
        task="multiclass", num_outputs=4,
    )  # fmt: skip
    comp, mean = torch.randn(3, 30), torch.randn(30)
    m.set_pca(comp, mean)
    x = torch.randn(2, 1, 30)
    torch.testing.assert_close(m.project(x), (x - mean) @ comp.T, atol=1e-5, rtol=0)
    assert not m.project.weight.requires_grad
    assert m(x, static=torch.randn(2, 2)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"static: expected \(batch, 2\)"):
        m(x)
    with pytest.raises(ValueError, match=r"components: expected shape \(3, 30\)"):
        m.set_pca(torch.randn(2, 30), mean)


def test_regressor_learns_gc_content():
    from biolstm.models import SequenceRegressor

    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), 40, p=[a, 0.5 - a, 0.5 - a, a])) for a in rng.uniform(0.05, 0.45, 400)]
    gc = torch.tensor([(s.count("G") + s.count("C")) / len(s) for s in seqs])
    x = torch.from_numpy(one_hot(seqs)[0])
    seed_everything(0)
    model = SequenceRegressor(conv_filters=0, hidden_size=8, pooling="mean")
    assert model.config.task == "regression"
    Trainer(model, TrainerConfig(epochs=15, batch_size=32, lr=0.01, loss="mse")).fit(x[:300], gc[:300])
    model.eval()
    with torch.no_grad():
        pred = model(x[300:])
    assert pred.shape == (100,)
    r = np.corrcoef(pred.numpy(), gc[300:].numpy())[0, 1]
    assert r > 0.9, r


def test_grud_input_decay():
    m = SequenceClassifier(input_channels=7, decay_variables=2, conv_filters=0, hidden_size=3)
    # one step: values (1.5, -2), masks (1, 0), times since observed (0, 4), a gap channel
    x = torch.tensor([[[1.5, -2.0, 1.0, 0.0, 0.0, 4.0, 9.0]]])
    with torch.no_grad():
        m.decay_weight.zero_()
    torch.testing.assert_close(m.decay(x), x)  # gamma = 1: carried forward unchanged
    with torch.no_grad():
        m.decay_weight.fill_(0.5)
    out = m.decay(x)
    assert out[0, 0, 0] == 1.5  # observed: unchanged
    torch.testing.assert_close(out[0, 0, 1], torch.tensor(-2.0 * float(np.exp(-2.0))))  # missing: pulled toward 0
    torch.testing.assert_close(out[0, 0, 2:], x[0, 0, 2:])
    out.sum().backward()  # the decay is learned: its weight gets a gradient from missing values
    assert m.decay_weight.grad[1] != 0 and m.decay_weight.grad[0] == 0
    with pytest.raises(ValueError, match=r"decay_variables: expected 3 x 3 <= input_channels \(7\)"):
        SequenceClassifierConfig(input_channels=7, decay_variables=3)


@pytest.mark.parametrize("cls", [SequenceClassifier, SequenceRegressor])
def test_a_config_that_is_not_one_is_a_type_error(cls):
    with pytest.raises(TypeError, match=rf"config: expected a {cls.__name__}Config or None .*got 4 \(int\)"):
        cls(4)
    with pytest.raises(TypeError, match=r"got a ForecasterConfig"):
        cls(ForecasterConfig())
    # a regressor takes the classifier's config (the pipeline builds it from one with task='regression')
    assert SequenceRegressor(SequenceClassifierConfig(task="regression", hidden_size=3)).rnn.hidden_size == 3
