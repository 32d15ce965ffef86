"""Engine benchmark: biolstm's engines against torch.nn.LSTM, as ratios measured in one run.

Each case times one training step (forward, sum of outputs, backward) at float32, after
warm-up, and reports the median of the timed runs. Every ratio divides by torch.nn.LSTM with
oneDNN on the same shape, measured in the same process. Timings never enter the tests; this
module is run by ``benchmarks/engines.py`` and ``biolstm bench``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .nn import GRU, LSTM

SHAPES = [(64, 200, 4, 128), (64, 100, 512, 512), (8, 2000, 64, 256)]


class LoopLSTM(nn.Module):
    """The baseline a user writes first: the seed's equations as a Python loop under autograd."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)  # only for its parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, T, D)
        c = self.cell
        h = x.new_zeros(x.shape[0], c.hidden_size)
        s = h
        outs = []
        for t in range(x.shape[1]):
            pre = x[:, t] @ c.weight_ih.t() + c.bias_ih + h @ c.weight_hh.t() + c.bias_hh
            i, f, g, o = pre.chunk(4, dim=1)
            s = torch.sigmoid(f) * s + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(s)
            outs.append(h)
        return torch.stack(outs, 1)


@dataclass
class Case:
    name: str
    build: Callable[[int, int], nn.Module]
    call: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


def _out(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m(x)[0]


def _out_gates(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m(x, return_gates=True)[0]


@contextlib.contextmanager
def _no_mkldnn():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


CASES = [
    Case("torch.nn.LSTM (oneDNN)", lambda d, h: nn.LSTM(d, h, batch_first=True), _out),
    Case("torch.nn.LSTM (oneDNN off)", lambda d, h: nn.LSTM(d, h, batch_first=True), _out, _no_mkldnn),
    Case("Python loop under autograd", lambda d, h: LoopLSTM(d, h), lambda m, x: m(x)),
    Case("biolstm fused", lambda d, h: LSTM(d, h, batch_first=True, engine="fused"), _out),
    Case("biolstm transparent", lambda d, h: LSTM(d, h, batch_first=True, engine="transparent"), _out),
    Case(
        "biolstm transparent + return_gates",
        lambda d, h: LSTM(d, h, batch_first=True, engine="transparent"),
        _out_gates,
    ),
    Case(
        "biolstm transparent, activation='relu'",
        lambda d, h: LSTM(d, h, batch_first=True, activation="relu", engine="transparent"),
        _out,
    ),
    Case("torch.nn.GRU (oneDNN)", lambda d, h: nn.GRU(d, h, batch_first=True), _out),
    Case("biolstm GRU transparent", lambda d, h: GRU(d, h, batch_first=True, engine="transparent"), _out),
]


def _one_step(model: nn.Module, call, x: torch.Tensor) -> float:
    model.zero_grad(set_to_none=True)
    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    call(model, x).sum().backward()
    if cuda:  # the kernels run asynchronously: wait for them
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def time_cases(
    cases: list[Case],
    models: list[nn.Module],
    x: torch.Tensor,
    repeats: int,
    warmup: int = 2,
    slow_budget_s: float = 60.0,
) -> list[tuple[float, int]]:
    """Median seconds of one forward+backward step per case, and the number of timed runs.

    Runs are interleaved (round robin over the cases), so a slow drift of the machine (other
    tenants, frequency, memory state) reaches every case alike instead of biasing the ones
    measured last. A case whose timed runs exceed ``slow_budget_s`` stops after 3 runs.
    """
    for case, model in zip(cases, models):
        with case.context():
            for _ in range(warmup if not case.name.startswith("Python loop") else 1):
                _one_step(model, case.call, x)
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for k, (case, model) in enumerate(zip(cases, models)):
            if len(times[k]) >= 3 and sum(times[k]) > slow_budget_s:
                continue
            with case.context():
                times[k].append(_one_step(model, case.call, x))
    return [(statistics.median(t), len(t)) for t in times]


@contextlib.contextmanager
def _no_cudnn():
    with torch.backends.cudnn.flags(enabled=False):
        yield


def _on_cuda(case: Case) -> Case:
    """The case as it reads on a GPU: cuDNN in place of oneDNN."""
    name = case.name.replace("oneDNN", "cuDNN")
    return dataclasses.replace(case, name=name, context=_no_cudnn if case.context is _no_mkldnn else case.context)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_engine_benchmark(
    quick: bool = False,
    repeats: int = 20,
    threads: int = 2,
    shapes: list[tuple[int, int, int, int]] | None = None,
    print_fn=print,
    device: str = "cpu",
) -> list[dict]:
    """Time every case at every shape; print a Markdown table of ratios; return the rows. On
    ``device='cuda'`` torch's kernels are cuDNN's (the "oneDNN off" case becomes "cuDNN off")
    and the transparent LSTM runs its Triton kernels where Triton is installed."""
    torch.set_num_threads(threads)
    shapes = shapes or (SHAPES[:1] if quick else SHAPES)
    repeats = min(repeats, 5) if quick else repeats
    where = torch.cuda.get_device_name(0) if device == "cuda" else f"{cpu_name()}, {threads} threads"
    print_fn(
        f"# biolstm engine benchmark: {where}, torch {torch.__version__}, "
        f"float32, forward+backward, median of up to {repeats} runs after warm-up"
    )
    cases = CASES if device == "cpu" else [_on_cuda(c) for c in CASES]
    rows = []
    for B, T, D, H in shapes:
        torch.manual_seed(0)
        x = torch.randn(B, T, D, device=device, requires_grad=True)
        base_model = nn.LSTM(D, H, batch_first=True)
        models = []
        for case in cases:
            model = case.build(D, H)
            if isinstance(model, (nn.LSTM, LSTM)):
                model.load_state_dict(base_model.state_dict())
            models.append(model.to(device))
        results = dict(zip([c.name for c in cases], time_cases(cases, models, x, repeats)))
        base = results[cases[0].name][0]
        print_fn(f"\n## B={B}, T={T}, D={D}, H={H}\n")
        print_fn(f"| case | ms per step | ratio to {cases[0].name} | runs |")
        print_fn("|---|---:|---:|---:|")
        for name, (sec, n) in results.items():
            print_fn(f"| {name} | {sec * 1e3:.1f} | {sec / base:.2f} | {n} |")
            rows.append(dict(shape=(B, T, D, H), case=name, ms=sec * 1e3, ratio=sec / base, runs=n))
        loop = results["Python loop under autograd"][0]
        mine = results["biolstm transparent"][0]
        print_fn(f"\nbiolstm transparent is {loop / mine:.1f}x faster than the Python loop.")
    return rows
