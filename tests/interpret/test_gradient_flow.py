"""model_gradient_flow: the gradient of each example's own loss with respect to the input of a
trained model's recurrent layer, step by step: equal to plain autograd, independent of the
batch, moved by the weights, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biolstm.interpret import model_gradient_flow
from biolstm.models import Forecaster, SequenceClassifier
from biolstm.train.trainer import per_sample_loss


def _data(B=6, T=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (B, T), generator=g), 4).float()
    lengths = torch.tensor([T, T - 4, T, 9, T - 1, 15][:B])
    y = torch.randint(0, 2, (B,), generator=g).float()
    return x, lengths, y


def _model(**kw):
    torch.manual_seed(0)  # no front end: the recurrent layer reads x itself (masked past each length)
    return SequenceClassifier(input_channels=4, conv_filters=0, hidden_size=5, pooling="last", **kw).eval()


def _by_hand(model, x, lengths, y=None):
    """||d loss_b / d x_t|| by plain autograd on the model's input, mean over the live examples."""
    x = x.clone().requires_grad_(True)
    out = model(x, lengths)
    (out.sum() if y is None else per_sample_loss("bce_with_logits", out, y).sum()).backward()
    alive = torch.arange(x.shape[1]) < lengths[:, None]  # (B, T)
    return ((x.grad.norm(dim=-1) * alive).sum(0) / alive.sum(0)).numpy(), alive.sum(0).numpy()


def test_equals_autograd_on_the_input_with_lengths():
    model, (x, lengths, y) = _model(), _data()
    flow = model_gradient_flow(model, {"x": x, "lengths": lengths}, y, "bce_with_logits")
    norms, counts = _by_hand(model, x, lengths, y)
    assert (flow.layer, flow.target, flow.n, flow.calls, flow.bidirectional) == ("rnn", "loss", 6, 1, True)
    np.testing.assert_array_equal(flow.counts, counts)
    np.testing.assert_allclose(flow.norms, norms, rtol=1e-5)
    assert flow.ratio == pytest.approx(norms[0] / norms[-1])
    # without targets: the model's output
    out = model_gradient_flow(model, {"x": x, "lengths": lengths})
    assert out.target == "output"
    np.testing.assert_allclose(out.norms, _by_hand(model, x, lengths)[0], rtol=1e-5)


def test_each_example_counts_alone_whatever_the_batch():
    model, (x, _, y) = _model(), _data()
    whole = model_gradient_flow(model, x, y, "bce_with_logits")  # no lengths: every step of every example
    alone = [model_gradient_flow(model, x[b : b + 1], y[b : b + 1], "bce_with_logits").norms for b in range(len(x))]
    np.testing.assert_allclose(whole.norms, np.mean(alone, 0), rtol=1e-5)


def test_the_numbers_follow_the_weights():
    model, (x, lengths, y) = _model(bidirectional=False), _data()
    model.train()
    before = model_gradient_flow(model, {"x": x, "lengths": lengths}, y, "bce_with_logits")
    assert model.training  # the caller's mode is given back
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(3.0)  # a stronger recurrence carries the signal further back
    after = model_gradient_flow(model, {"x": x, "lengths": lengths}, y, "bce_with_logits")
    assert not before.bidirectional and np.abs(after.norms - before.norms).max() > 1e-3 * before.norms.max()
    assert after.ratio != pytest.approx(before.ratio, rel=1e-3)


def test_both_strands_forecasts_and_errors():
    model, (x, lengths, y) = _model(rc_average=True), _data()
    assert model_gradient_flow(model, {"x": x, "lengths": lengths}, y, "bce_with_logits").calls == 2
    torch.manual_seed(0)
    fc = Forecaster(input_size=2, hidden_size=4, horizon=3, output="quantile", quantiles=[0.1, 0.5, 0.9]).eval()
    xs, ys = torch.randn(5, 12, 2), torch.randn(5, 3, 1)
    flow = model_gradient_flow(fc, xs, ys, "model")  # the forecaster's own (pinball) loss
    assert flow.norms.shape == (12,) and (flow.counts == 5).all() and (flow.norms > 0).all()
    with pytest.raises(ValueError, match="expected a biolstm recurrent layer"):
        model_gradient_flow(torch.nn.Linear(4, 1), x)
    with pytest.raises(ValueError, match=r"layer: expected one of \['rnn'\], got 'lstm'"):
        model_gradient_flow(model, x, layer="lstm")
    with pytest.raises(ValueError, match="y, loss: expected both"):
        model_gradient_flow(model, x, y)


@pytest.mark.gpu
def test_on_cuda_in_eval_mode_as_on_cpu():
    """cuDNN refuses an RNN backward in eval mode; the transparent engine, forced here, does not."""
    model, (x, lengths, y) = _model(), _data()
    cpu = model_gradient_flow(model, {"x": x, "lengths": lengths}, y, "bce_with_logits")
    cuda = model_gradient_flow(model.cuda(), {"x": x, "lengths": lengths}, y.cuda(), "bce_with_logits")
    np.testing.assert_allclose(cuda.norms, cpu.norms, rtol=1e-4, atol=1e-8)
