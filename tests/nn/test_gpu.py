"""CUDA paths: run only where a GPU is present (marker `gpu`)."""

from __future__ import annotations

import pytest
import torch

import biolstm.nn as bnn

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("cls", [bnn.LSTM, bnn.GRU, bnn.RNN], ids=["LSTM", "GRU", "RNN"])
def test_transparent_on_cuda_matches_cudnn(cls):
    torch.manual_seed(0)
    fused = cls(16, 32, num_layers=2, bidirectional=True, batch_first=True, engine="fused").cuda()
    mine = cls(16, 32, num_layers=2, bidirectional=True, batch_first=True, engine="transparent").cuda()
    mine.load_state_dict(fused.state_dict())
    x = torch.randn(8, 50, 16, device="cuda", requires_grad=True)
    lengths = torch.randint(1, 51, (8,))
    y_f, _ = fused(x, lengths=lengths)
    y_m, _, trace = mine(x, lengths=lengths, return_gates=True)
    torch.testing.assert_close(y_m, y_f, atol=1e-4, rtol=1e-4)
    g_f = torch.autograd.grad(y_f.sum(), [x, *fused.parameters()])
    g_m = torch.autograd.grad(y_m.sum(), [x, *mine.parameters()])
    for a, b in zip(g_m, g_f):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
    assert trace["h"].device.type == "cuda"


def test_float64_transparent_on_cuda_equals_torch():
    torch.manual_seed(1)
    ref = torch.nn.LSTM(5, 7, proj_size=3, dtype=torch.float64).cuda()
    mine = bnn.LSTM(5, 7, proj_size=3, dtype=torch.float64, engine="transparent").cuda()
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(9, 4, 5, dtype=torch.float64, device="cuda")
    torch.testing.assert_close(mine(x)[0], ref(x)[0], atol=1e-10, rtol=0)


def test_trainer_mixed_precision_on_cuda():
    from biolstm.train import Trainer, TrainerConfig

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = bnn.LSTM(3, 16, batch_first=True), torch.nn.Linear(16, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1]).squeeze(-1)

    x = torch.randn(256, 20, 3)
    y = (x.sum((1, 2)) > 0).float()
    cfg = TrainerConfig(epochs=3, batch_size=32, loss="bce_with_logits", amp=True, device="cuda", lr=0.01)
    hist = Trainer(Net(), cfg).fit(x, y)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_the_cuda_step_loops_are_the_triton_kernels():
    # no Python loop of small kernels per step on a GPU: one Triton launch forward, one backward
    pytest.importorskip("triton")
    from biolstm.nn.engine.common import step_kernel

    x = torch.randn(2, 3, device="cuda")
    act, rec = bnn.get_activation("tanh"), bnn.get_activation("sigmoid")
    assert step_kernel((x,), act, rec).__name__ == "biolstm.nn.engine.triton_scan"
    assert step_kernel((x.double(),), act, rec) is None  # float64: the PyTorch loop
