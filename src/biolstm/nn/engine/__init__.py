"""The transparent engine: one recurrent layer, one direction, with a hand-written BPTT.

One module per cell, as in haste: :mod:`.lstm`, :mod:`.gru` and :mod:`.rnn`, each an
``torch.autograd.Function`` (a *scan*) whose forward runs the step loop, storing the gate
activations (which the backward pass and the gate trace both need), and whose backward runs the
loop backwards in time and forms the weight gradients as single matrix products after it.
Work that does not depend on the previous step is done outside the loop: the input projection
``x_t W_ih^T + b`` of all steps is one matrix product written into the gate buffer, and the
weight and input gradients are products over chunks of steps.

Each scan has three step loops that give the same values (:func:`.common.step_kernel` picks):

* on the CPU in float32, with the named activations the kernel knows, the loop runs in C
  (:mod:`biolstm.nn.native.scan`, ``kernels/scan.c``): per step one BLAS product and one fused
  element-wise pass, no Python between steps;
* on CUDA in float32 with those activations, where Triton is installed, the loop is one
  persistent Triton kernel forward and one backward (:mod:`.triton_scan`): no Python loop of
  small kernels per step;
* anywhere else (other dtypes, any other activation, an LSTM projection, or no kernel), the
  loop runs in PyTorch operations, a handful per step (``_torch_steps`` and
  ``_torch_backward_steps`` in each module).

Layout is time-major: ``(T, B, features)``, and inside the scans logical ``(T, features, B)``
buffers stored batch-major or feature-major (:func:`.common.batch_major`; the C loop always
batch-major). Variable lengths come as ``batch_sizes`` (as in a PackedSequence): the batch is
sorted by length, longest first, and at step t only the first ``batch_sizes[t]`` rows are
active; the state of the other rows is left untouched, their outputs stay zero. Reversed
directions are handled by the caller, which reverses each sequence within its length
(:func:`.common.reverse_padded`).

Under CUDA autocast the scans cast their inputs to float32 and run in float32: the state is
carried through every step, where half-precision rounding would accumulate.

Shape legend: T steps, B batch, H hidden units, P output size of the recurrent state
(P = proj_size for a projected LSTM, else H).
"""

from __future__ import annotations

from .common import release_workspace, reverse_padded, use_fast_tanh
from .gru import GRUScan
from .lstm import LSTMScan
from .rnn import RNNScan

__all__ = ["GRUScan", "LSTMScan", "RNNScan", "release_workspace", "reverse_padded", "use_fast_tanh"]
