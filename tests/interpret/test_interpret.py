"""biolstm.interpret: gate statistics, tracking cells, attributions (integrated gradients'
completeness), in-silico mutagenesis, and gradient flow through RNN, GRU and LSTM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biolstm.data import one_hot
from biolstm.interpret import (
    attribute,
    gate_statistics,
    gradient_flow,
    hidden_trajectories,
    in_silico_mutagenesis,
    tracking_cells,
)
from biolstm.models import SequenceClassifier
from biolstm.train import Trainer, TrainerConfig, seed_everything

from ..motifs import motif_sequences


@pytest.fixture(scope="module")
def motif_model():
    """A small conv-free BiLSTM trained to find TGACTCA, and held-out sequences."""
    seqs, labels = motif_sequences(500, 40)
    x = torch.from_numpy(one_hot(seqs)[0])
    y = torch.tensor(labels, dtype=torch.float32)
    seed_everything(0)
    model = SequenceClassifier(conv_filters=16, conv_kernel=7, pool=1, hidden_size=8, pooling="max")
    Trainer(model, TrainerConfig(epochs=6, batch_size=32, lr=0.01, loss="bce_with_logits")).fit(x[:450], y[:450])
    return model.eval(), x[450:], seqs[450:]


def test_gate_statistics_by_hand():
    from biolstm.nn import LSTM

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = LSTM(2, 3, batch_first=True)

        def forward(self, x, lengths=None):
            return self.lstm(x, lengths=lengths)[0][:, -1, 0]

    torch.manual_seed(0)
    m = Wrap()
    x = torch.randn(4, 6, 2)
    lengths = torch.tensor([6, 6, 3, 1])
    [st] = gate_statistics(m, {"x": x, "lengths": lengths})
    assert st.gates == ("i", "f", "g", "o") and st.steps == 16
    _, _, trace = m.lstm(x, lengths=lengths, return_gates=True)
    f = trace.gate("f").detach().numpy()
    valid = np.arange(6)[None] < lengths.numpy()[:, None]
    np.testing.assert_allclose(st.left["f"], (f[valid] < 0.1).mean(0))
    np.testing.assert_allclose(st.timescale, (-1 / np.log(f[valid])).mean(0), rtol=1e-5)
    g = trace.gate("g").detach().numpy()[valid]
    np.testing.assert_allclose(st.right["g"], (g > 0.8).mean(0))  # tanh: > 0.9 on the [0, 1] scale
    assert m.training  # the model's mode is restored


def test_tracking_cells_and_trajectories(motif_model):
    model, x, seqs = motif_model
    stats = gate_statistics(model, x)
    assert [s.layer for s in stats] == ["rnn", "rnn (reverse)"]
    assert all(0 <= v.min() and v.max() <= 1 for s in stats for v in s.left.values())
    # a cell following 'inside the motif' is found by correlation with that signal
    inside = np.zeros((len(seqs), 40))
    for i, s in enumerate(seqs):
        p = s.find("TGACTCA")
        if p >= 0:
            inside[i, p : p + 7] = 1
    found = tracking_cells(model, x, inside, top=3)
    assert len(found) == 2 and found[0].state == "c"
    assert np.abs(found[0].correlation[0]) >= np.abs(found[0].correlation[-1])
    noise = np.random.default_rng(1).normal(size=inside.shape)
    weak = tracking_cells(model, x, noise, top=1)
    assert max(abs(t.correlation[0]) for t in found) > max(abs(t.correlation[0]) for t in weak)
    by_position = tracking_cells(model, x, "position", top=2)
    by_base = tracking_cells(model, x, 3, top=2)  # the T channel of the one-hot input
    assert by_position[0].units.shape == (2,) and by_base[1].correlation.shape == (2,)
    with pytest.raises(ValueError, match=r"feature index in \[0, 4\)"):
        tracking_cells(model, x, 7)
    traj = hidden_trajectories(model, x[:5], units=[0, 3])
    assert traj.shape == (5, 40, 2)


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "integrated_gradients", "occlusion"])
def test_attributions_point_at_the_motif(motif_model, method):
    model, x, seqs = motif_model
    pos = [i for i, s in enumerate(seqs) if "TGACTCA" in s][:6]
    a = attribute(model, x[pos], method=method)
    assert a.values.shape == (6, 40, 4)
    score = np.abs(a.values).sum(-1)  # (6, 40)
    inside = np.zeros_like(score, dtype=bool)
    for k, i in enumerate(pos):
        p = seqs[i].find("TGACTCA")
        inside[k, p : p + 7] = True
    assert score[inside].mean() > 2 * score[~inside].mean(), method
    if method == "integrated_gradients":  # completeness: sum of attributions = f(x) - f(baseline) within 1%
        assert a.relative_error < 0.01
        with torch.no_grad():
            gap = model(x[pos]) - model(torch.zeros_like(x[pos]))
        np.testing.assert_allclose(a.values.sum((1, 2)), gap.numpy(), rtol=0.01, atol=1e-4)


def test_in_silico_mutagenesis_matches_single_substitutions(motif_model):
    model, x, _ = motif_model
    ism = in_silico_mutagenesis(model, x[:2], batch_size=50)
    assert ism.shape == (2, 40, 4)
    ref_base = x[:2].argmax(-1).numpy()
    assert np.all(ism[np.arange(2)[:, None], np.arange(40)[None], ref_base] == 0)
    with torch.no_grad():  # one substitution by hand
        m = x[1:2].clone()
        m[0, 7] = 0
        m[0, 7, 2] = 1
        want = float(model(m) - model(x[1:2]))
    assert ism[1, 7, 2] == pytest.approx(want, abs=1e-5)


def test_gradient_flow_vanishes_fastest_in_the_simple_rnn():
    flows = {c: gradient_flow(c, steps=60) for c in ("rnn", "gru", "lstm")}
    assert all(f.norms.shape == (60,) for f in flows.values())
    assert flows["lstm"].ratio > flows["gru"].ratio and flows["lstm"].ratio > flows["rnn"].ratio
    assert flows["rnn"].norms[0] < 1e-6 * flows["rnn"].norms[-1]
    with pytest.raises(ValueError, match="cell: expected one of"):
        gradient_flow("transformer")


@pytest.mark.gpu
def test_attributions_in_eval_mode_on_cuda(motif_model):
    """cuDNN refuses an RNN backward in eval mode; the transparent engine does not."""
    model, x, _ = motif_model
    cuda = SequenceClassifier(model.config).cuda().eval()
    cuda.load_state_dict(model.state_dict())
    a = attribute(cuda, x[:4].cuda(), method="integrated_gradients")
    b = attribute(model, x[:4], method="integrated_gradients")
    np.testing.assert_allclose(a.values, b.values, atol=1e-4)
    assert a.relative_error < 0.01
