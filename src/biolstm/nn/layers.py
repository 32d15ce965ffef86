"""LSTM, GRU and RNN: drop-in replacements for torch.nn's, with gates you can see.

The modules keep torch's constructor arguments, parameter names, gate order, input and
output conventions (batched, unbatched, PackedSequence, optional initial state), so a
``torch.nn.LSTM`` state_dict loads unchanged in both directions. On top of that they offer
recorded gates, any activation, forget-bias and chrono initialisation, recurrent dropout,
layer normalisation and a ``lengths=`` argument.

Engines (``engine=``):

* ``'fused'``: torch's own kernels (oneDNN on CPU, cuDNN on GPU). Only for configurations
  they support: tanh/sigmoid activations, no layer norm, no recurrent dropout while
  training, no recorded gates.
* ``'transparent'``: biolstm's implementation of the equations with a hand-written
  backward pass through time (:mod:`biolstm.nn.engine`). Supports everything. With
  ``layer_norm=True`` it runs the step loop under autograd.
* ``'autograd'``: the same equations as a step loop under autograd; slow, for reference,
  debugging and double backward.
* ``'auto'`` (default): 'fused' when it gives the same result, else 'transparent'; and
  'transparent' when training an LSTM or GRU on the CPU in float32 at batches of 16 or more,
  where its C step loop is faster than oneDNN (see ``_c_loop_trains_faster``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..validation import BiolstmWarning, check_choice, check_positive_int, check_probability, check_type
from ._heap import release_free_memory
from .activations import Activation, get_activation
from .cells import LayerNormParams, gru_step, lstm_step, project_input, rnn_step
from .engine import GRUScan, LSTMScan, RNNScan, reverse_padded, use_fast_tanh
from .init import chrono_init_, forget_bias_
from .trace import GATE_NAMES, Trace

ENGINES = ("auto", "fused", "transparent", "autograd")
# Checkpointing through time returns the heap's free pages to the system every this many
# segment calls: at every call resident memory is lowest, but each segment's workspace is
# faulted in afresh (about 35% more time at T=10,000, B=8, H=128); every 16th keeps nearly
# all of the saving (51 against 46 MiB; 87 without) at no measurable cost.
_TRIM_EVERY = 16
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
_FUSED = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


class _WriteSlice(torch.autograd.Function):
    """``out[:, lo:lo+n] = seg`` in place, with a backward that hands each segment its slice of
    the gradient and passes the rest on uncopied (every slice is written once, and what it
    overwrote never needs a gradient), unlike autograd's copy-slices, which clones the whole
    gradient at every segment."""

    @staticmethod
    def forward(ctx, out, seg, lo):
        out[:, lo : lo + seg.shape[1]].copy_(seg)
        ctx.mark_dirty(out)
        ctx.span = (lo, lo + seg.shape[1])
        return out

    @staticmethod
    def backward(ctx, grad):
        lo, hi = ctx.span
        return grad, grad[:, lo:hi], None


class RNNBase(nn.Module):
    """Parameter creation, validation, engine choice and input handling for all three.

    Parameters are created in torch's order with torch's names and initialisation, so with
    the same seed a biolstm layer starts from the same weights as its torch.nn namesake.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        activation: str | Callable | None = "tanh",
        recurrent_activation: str | Callable = "sigmoid",
        forget_bias: float | None = None,
        chrono_init: int | None = None,
        recurrent_dropout: float = 0.0,
        layer_norm: bool = False,
        engine: str = "auto",
        checkpoint: bool | int = False,
    ) -> None:
        super().__init__()
        check_choice(mode, tuple(_GATES), "mode")
        check_positive_int(input_size, "input_size")
        check_positive_int(hidden_size, "hidden_size")
        check_positive_int(num_layers, "num_layers")
        check_type(bias, bool, "bias")
        check_type(batch_first, bool, "batch_first")
        check_type(bidirectional, bool, "bidirectional")
        check_type(layer_norm, bool, "layer_norm")
        check_type(proj_size, int, "proj_size")
        dropout = check_probability(dropout, "dropout")
        recurrent_dropout = check_probability(recurrent_dropout, "recurrent_dropout")
        check_choice(engine, ENGINES, "engine")
        if not isinstance(checkpoint, (bool, int)) or (not isinstance(checkpoint, bool) and checkpoint < 2):
            raise ValueError(f"checkpoint: expected True, False or a segment length >= 2, got {checkpoint!r}")
        if checkpoint and bidirectional:
            raise ValueError("checkpoint: segments run forward in time; expected bidirectional=False")
        if proj_size < 0:
            raise ValueError(f"proj_size: expected an int >= 0 (0 disables projection), got {proj_size}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"proj_size: only LSTM supports projections, got proj_size={proj_size} for {mode}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size: expected an int smaller than hidden_size={hidden_size}, got {proj_size}")
        if forget_bias is not None and chrono_init is not None:
            raise ValueError("forget_bias, chrono_init: expected at most one of them, got both")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout: applies between stacked layers, so it expects num_layers > 1, got "
                f"dropout={dropout} and num_layers=1 (use recurrent_dropout for a single layer)",
                BiolstmWarning,
                stacklevel=3,
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.recurrent_dropout = recurrent_dropout
        self.layer_norm = layer_norm
        self.engine = engine
        self.checkpoint = checkpoint  # True: segments of ceil(sqrt(T)) steps; an int: that many steps
        self._in_segment = False
        self.activation: Activation = get_activation(activation, "activation")
        self.recurrent_activation: Activation = get_activation(recurrent_activation, "recurrent_activation")
        self.forget_bias = forget_bias
        self.chrono_init = chrono_init
        self._trace_sinks: list[tuple[str, Any]] = []
        self._carry: dict | None = None  # set by carry_state(): the last final state, detached

        factory = {"device": device, "dtype": dtype}
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        num_dir = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(num_dir):
                layer_input = input_size if layer == 0 else real_hidden * num_dir
                sfx = f"_l{layer}{'_reverse' if direction else ''}"
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                names = []
                for base, shape in shapes:
                    setattr(self, base + sfx, nn.Parameter(torch.empty(shape, **factory)))
                    names.append(base + sfx)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        if layer_norm:
            for layer in range(num_layers):
                for direction in range(num_dir):
                    sfx = f"_l{layer}{'_reverse' if direction else ''}"
                    setattr(self, "ln_ih_weight" + sfx, nn.Parameter(torch.empty(gate_size, **factory)))
                    setattr(self, "ln_hh_weight" + sfx, nn.Parameter(torch.empty(gate_size, **factory)))
                    if mode == "LSTM":
                        setattr(self, "ln_cell_weight" + sfx, nn.Parameter(torch.empty(hidden_size, **factory)))
                        setattr(self, "ln_cell_bias" + sfx, nn.Parameter(torch.empty(hidden_size, **factory)))
        self.reset_parameters()

    # ------------------------------------------------------------------ parameters
    def reset_parameters(self) -> None:
        """torch's init (U(-1/sqrt(H), 1/sqrt(H)) in torch's order), LN gains 1 and shifts 0,
        then the forget-bias or chrono initialisation if one was asked for."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for name in self._flat_weights_names:
            nn.init.uniform_(getattr(self, name), -stdv, stdv)
        for name, p in self.named_parameters(recurse=False):
            if name.startswith("ln_"):
                nn.init.zeros_(p) if "bias" in name else nn.init.ones_(p)
        if self.forget_bias is not None:
            forget_bias_(self, self.forget_bias)
        if self.chrono_init is not None:
            chrono_init_(self, self.chrono_init)

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Kept for drop-in compatibility with torch.nn; the engines need no flat buffer."""

    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    def _params(self, layer: int, direction: int) -> dict[str, Tensor | None]:
        sfx = f"_l{layer}{'_reverse' if direction else ''}"
        keys = (
            "weight_ih",
            "weight_hh",
            "bias_ih",
            "bias_hh",
            "weight_hr",
            "ln_ih_weight",
            "ln_hh_weight",
            "ln_cell_weight",
            "ln_cell_bias",
        )
        return {k: getattr(self, k + sfx, None) for k in keys}

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features per step of the output: (proj_size or hidden_size) * directions."""
        return (self.proj_size or self.hidden_size) * self.num_directions

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = dict(
            proj_size=0,
            num_layers=1,
            bias=True,
            batch_first=False,
            dropout=0.0,
            bidirectional=False,
            recurrent_dropout=0.0,
            layer_norm=False,
            engine="auto",
        )
        for key, default in defaults.items():
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)!r}"
        default_act = {"RNN_RELU": "relu"}.get(self.mode, "tanh")
        if self.activation.name != default_act:
            s += f", activation={self.activation.name!r}"
        if self.mode in ("LSTM", "GRU") and self.recurrent_activation.name != "sigmoid":
            s += f", recurrent_activation={self.recurrent_activation.name!r}"
        return s

    # ------------------------------------------------------------------ engine choice
    def fused_blocker(self) -> str | None:
        """Why torch's fused kernel cannot run this configuration now, or None if it can."""
        act = self.activation.name
        if self.layer_norm:
            return "layer_norm=True"
        if self.mode in ("LSTM", "GRU"):
            if act != "tanh":
                return f"activation={act!r} (fused needs 'tanh')"
            if self.recurrent_activation.name != "sigmoid":
                return f"recurrent_activation={self.recurrent_activation.name!r} (fused needs 'sigmoid')"
        elif act not in ("tanh", "relu"):
            return f"activation={act!r} (fused needs 'tanh' or 'relu')"
        if self.recurrent_dropout > 0 and self.training:
            return f"recurrent_dropout={self.recurrent_dropout} in training mode"
        return None

    def _choose_engine(self, need_trace: bool, data: Tensor | None = None) -> str:
        blocker = self.fused_blocker()
        if self.engine == "fused":
            if blocker:
                raise ValueError(f"engine: 'fused' cannot run {blocker}; use engine='transparent' or 'auto'")
            if need_trace:
                raise ValueError(
                    "return_gates: torch's fused kernels do not expose gates; use engine='transparent' or 'auto'"
                )
            return "fused"
        if self.engine == "auto":
            return "transparent" if (blocker or need_trace or self._c_loop_trains_faster(data)) else "fused"
        return self.engine

    def _c_loop_trains_faster(self, data: Tensor | None) -> bool:
        """Whether 'auto' trains on the transparent engine's C step loop rather than oneDNN: an
        LSTM or GRU on the CPU in float32 with gradients on, a batch of 16 or more, and the
        kernel available. There it measured as fast or faster (benchmarks/engines.py: an LSTM
        step at 0.74-0.98x oneDNN's at B=32-64, a GRU at 0.6-0.9x; at B=8, T=200 the LSTM is
        about 13% slower, so small batches stay on oneDNN)."""
        if data is None or data.dim() != 3 or self.mode not in ("LSTM", "GRU") or self.proj_size:
            return False
        B = data.shape[0] if self.batch_first else data.shape[1]
        if not (torch.is_grad_enabled() and data.device.type == "cpu" and data.dtype == torch.float32 and B >= 16):
            return False
        if torch.is_autocast_enabled("cpu"):  # the kernel runs float32 only: oneDNN takes bfloat16
            return False
        from .native import scan

        return scan.kernel() is not None

    # ------------------------------------------------------------------ forward
    def forward(self, input, hx=None, *, lengths=None, return_gates: bool = False):
        """Run the stack. See the subclass docstrings for shapes.

        Args:
            input: ``(B, T, D)`` if batch_first else ``(T, B, D)``; ``(T, D)`` unbatched; or a
                PackedSequence.
            hx: initial state (LSTM: ``(h_0, c_0)``), zeros if None.
            lengths: optional valid length of each sequence ``(B,)``: outputs past a length are
                zero and the final state is the one after the last valid step (0 keeps hx).
            return_gates: also return a :class:`~biolstm.nn.trace.Trace` of every gate.
        """
        packed = isinstance(input, PackedSequence)
        if (
            self.checkpoint
            and not self._in_segment
            and torch.is_grad_enabled()
            and not packed
            and isinstance(input, Tensor)
            and input.dim() == 3
            and not return_gates
            and not self._trace_sinks
        ):
            return self._forward_checkpointed(input, hx, lengths)
        if not packed and not isinstance(input, Tensor):
            raise TypeError(f"input: expected a Tensor or PackedSequence, got {type(input).__name__}")
        check_type(return_gates, bool, "return_gates")
        if packed and lengths is not None:
            raise ValueError("lengths: a PackedSequence input carries its own lengths; expected lengths=None")
        data = input.data if packed else input
        batched = packed or data.dim() == 3
        self._check_input(data, packed)
        if not batched:
            data = data.unsqueeze(0 if self.batch_first else 1)
        if packed:
            B = int(input.batch_sizes[0])
            T = len(input.batch_sizes)
        else:
            B, T = (data.shape[0], data.shape[1]) if self.batch_first else (data.shape[1], data.shape[0])
        if hx is None and self._carry is not None and self._carry.get("state") is not None:
            hx = self._carried(B)
        h0, c0 = self._initial_state(hx, batched, B, data)
        if lengths is not None:
            lengths = self._check_lengths(lengths, B, T)
        need_trace = return_gates or bool(self._trace_sinks)
        engine = self._choose_engine(need_trace, None if packed else data)

        if engine == "fused":
            out, h_n, c_n = self._forward_fused(input if packed else data, h0, c0, lengths)
            trace = None
        else:
            out, h_n, c_n, trace = self._forward_transparent(
                input if packed else data, h0, c0, lengths, need_trace, engine
            )
        if not batched:
            out = out.squeeze(0 if self.batch_first else 1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
            if trace is not None:
                trace = Trace(
                    trace.mode,
                    [[{k: v.squeeze(0) for k, v in rec.items()} for rec in layer] for layer in trace.layers],
                    None,
                )
        for name, sink in self._trace_sinks:
            sink.add(name, trace)
        hidden = (h_n, c_n) if self.mode == "LSTM" else h_n
        if self._carry is not None:  # truncated BPTT / streaming: the next call starts here
            self._carry["state"] = tuple(s.detach() for s in hidden) if isinstance(hidden, tuple) else hidden.detach()
        return (out, hidden, trace) if return_gates else (out, hidden)

    def _forward_checkpointed(self, input: Tensor, hx, lengths):
        """Gradient checkpointing through time: the sequence runs in segments whose internals
        are recomputed during backward (torch.utils.checkpoint), so only the state at each
        segment boundary and one segment's workspace are held: memory grows as about sqrt(T)
        for segments of sqrt(T) steps, and the gradients are exact. On the CPU every 16th segment
        call first returns the heap's free pages to the system (glibc's malloc_trim), or the
        freed workspaces of earlier segments would stay resident."""
        from torch.utils.checkpoint import checkpoint as run_checkpointed

        x = input if self.batch_first else input.transpose(0, 1)  # (B, T, D)
        B, T = x.shape[0], x.shape[1]
        seg = self.checkpoint if not isinstance(self.checkpoint, bool) else max(2, math.ceil(math.sqrt(T)))
        if hx is None and self._carry is not None and self._carry.get("state") is not None:
            hx = self._carried(B)
        h_size = self.proj_size or self.hidden_size
        if hx is None:
            h = x.new_zeros(self.num_layers, B, h_size)
            c = x.new_zeros(self.num_layers, B, self.hidden_size) if self.mode == "LSTM" else None
        else:
            h, c = (hx[0], hx[1]) if self.mode == "LSTM" else (hx, None)
        n = None if lengths is None else self._check_lengths(lengths, B, T)

        calls = [0]

        def segment(xs, h, c, ns):
            calls[0] += 1
            if xs.device.type == "cpu" and calls[0] % _TRIM_EVERY == 0:  # freed workspaces back to the system
                release_free_memory()
            self._in_segment = True
            try:
                out, state = self.forward(
                    xs if self.batch_first else xs.transpose(0, 1), (h, c) if c is not None else h, lengths=ns
                )
            finally:
                self._in_segment = False
            out = out if self.batch_first else out.transpose(0, 1)
            return (out, *state) if isinstance(state, tuple) else (out, state)

        out = None
        for lo in range(0, T, seg):
            xs = x[:, lo : lo + seg]
            ns = None if n is None else (n - lo).clamp(0, xs.shape[1])
            res = run_checkpointed(segment, xs, h, c, ns, use_reentrant=False)
            if out is None:
                out = res[0].new_empty(B, T, res[0].shape[-1])
            out = _WriteSlice.apply(out, res[0], lo)  # in place: no second copy of the output
            h, c = (res[1], res[2]) if self.mode == "LSTM" else (res[1], None)
            del res
        hidden = (h, c) if self.mode == "LSTM" else h
        if self._carry is not None:
            self._carry["state"] = tuple(s.detach() for s in hidden) if isinstance(hidden, tuple) else hidden.detach()
        return (out if self.batch_first else out.transpose(0, 1)), hidden

    def _carried(self, B: int):
        state = self._carry["state"]
        first = state[0] if isinstance(state, tuple) else state
        if first.shape[-2] != B:
            raise ValueError(
                f"input: carry_state expected the same batch size as the previous chunk ({first.shape[-2]}), got {B}"
            )
        return state

    # ------------------------------------------------------------------ checks
    def _check_input(self, data: Tensor, packed: bool) -> None:
        layout = "(batch, seq, feature)" if self.batch_first else "(seq, batch, feature)"
        if packed:
            if data.dim() != 2:
                raise ValueError(f"input: expected PackedSequence data of 2-D (N, feature), got {data.dim()}-D")
        elif data.dim() not in (2, 3):
            raise ValueError(
                f"input: expected 3-D {layout} or 2-D unbatched (seq, feature), got {data.dim()}-D "
                f"of shape {tuple(data.shape)}"
            )
        if data.shape[-1] != self.input_size:
            raise ValueError(f"input: expected last dimension input_size={self.input_size}, got {data.shape[-1]}")
        w = self.weight_ih_l0
        if data.dtype != w.dtype and not torch.is_autocast_enabled(data.device.type):
            raise ValueError(
                f"input: expected dtype {w.dtype} (the weights' dtype), got {data.dtype}; "
                f"convert with input.to({w.dtype}) or the model with .to({data.dtype})"
            )
        if not packed and data.shape[-2 if data.dim() == 2 else (1 if self.batch_first else 0)] == 0:
            raise ValueError("input: expected at least one time step, got a sequence length of 0")

    def _initial_state(self, hx, batched: bool, B: int, data: Tensor) -> tuple[Tensor, Tensor | None]:
        L = self.num_layers * self.num_directions
        P = self.proj_size or self.hidden_size
        opts = {"dtype": data.dtype, "device": data.device}
        if hx is None:
            h0 = torch.zeros(L, B, P, **opts)
            c0 = torch.zeros(L, B, self.hidden_size, **opts) if self.mode == "LSTM" else None
            return h0, c0
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx: expected a tuple (h_0, c_0) for LSTM, got {type(hx).__name__}")
            h0, c0 = hx
            specs = [(h0, "h_0", P), (c0, "c_0", self.hidden_size)]
        else:
            if not isinstance(hx, Tensor):
                raise TypeError(f"hx: expected a Tensor h_0 for {self.mode}, got {type(hx).__name__}")
            h0, c0 = hx, None
            specs = [(h0, "h_0", P)]
        out = []
        for t, name, size in specs:
            want = (L, B, size) if batched else (L, size)
            if not isinstance(t, Tensor) or tuple(t.shape) != want:
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"hx: expected {name} of shape {want}, got {got}")
            out.append(t if batched else t.unsqueeze(1))
        return out[0], (out[1] if len(out) > 1 else None)

    def _check_lengths(self, lengths, B: int, T: int) -> Tensor:
        if not isinstance(lengths, Tensor):
            try:
                lengths = torch.as_tensor(lengths)
            except (TypeError, ValueError, RuntimeError) as err:
                raise TypeError(f"lengths: expected a 1-D integer tensor of size {B}, got {lengths!r}") from err
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
            raise TypeError(f"lengths: expected an integer tensor, got dtype {lengths.dtype}")
        lengths = lengths.reshape(-1) if lengths.dim() == 0 else lengths
        if lengths.dim() != 1 or lengths.numel() != B:
            raise ValueError(f"lengths: expected a 1-D tensor of size batch={B}, got shape {tuple(lengths.shape)}")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 0 or hi > T:
            raise ValueError(f"lengths: expected values in [0, {T}] (the sequence length), got min {lo}, max {hi}")
        return lengths.to(torch.long)

    # ------------------------------------------------------------------ fused engine
    def _forward_fused(self, input, h0, c0, lengths):
        if lengths is not None and not isinstance(input, PackedSequence):
            T = input.shape[1] if self.batch_first else input.shape[0]
            if not bool((lengths < T).any()):  # every row runs all steps: nothing to pack
                lengths = None
            else:
                return self._fused_with_lengths(input, h0, c0, lengths)
        hx = (h0, c0) if self.mode == "LSTM" else h0
        fn = (
            _FUSED[self.mode]
            if self.mode in ("LSTM", "GRU")
            else _FUSED["RNN_RELU" if self.activation.name == "relu" else "RNN_TANH"]
        )
        flat = self._flat_weights()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
            if isinstance(input, PackedSequence):
                data, batch_sizes, sorted_idx, unsorted_idx = input
                if sorted_idx is not None:
                    hx = (
                        tuple(s.index_select(1, sorted_idx) for s in hx)
                        if self.mode == "LSTM"
                        else hx.index_select(1, sorted_idx)
                    )
                result = fn(
                    data,
                    batch_sizes,
                    hx,
                    flat,
                    self.bias,
                    self.num_layers,
                    self.dropout,
                    self.training,
                    self.bidirectional,
                )
                out = PackedSequence(result[0], batch_sizes, sorted_idx, unsorted_idx)
                states = [s if unsorted_idx is None else s.index_select(1, unsorted_idx) for s in result[1:]]
            else:
                result = fn(
                    input,
                    hx,
                    flat,
                    self.bias,
                    self.num_layers,
                    self.dropout,
                    self.training,
                    self.bidirectional,
                    self.batch_first,
                )
                out, states = result[0], list(result[1:])
        return out, states[0], (states[1] if len(states) > 1 else None)

    def _fused_with_lengths(self, x, h0, c0, lengths):
        # torch's kernels take lengths as a PackedSequence, which cannot hold empty sequences:
        # run the non-empty rows packed, and give the empty ones their initial state.
        T = x.shape[1] if self.batch_first else x.shape[0]
        bdim = 0 if self.batch_first else 1
        keep = (lengths > 0).nonzero().squeeze(1)
        out = x.new_zeros(*x.shape[:-1], self.output_size)
        h_n, c_n = h0.clone(), (c0.clone() if c0 is not None else None)
        if keep.numel():
            xs = x.index_select(bdim, keep.to(x.device))
            kd = keep.to(h0.device)
            packed = pack_padded_sequence(xs, lengths[keep].cpu(), batch_first=self.batch_first, enforce_sorted=False)
            o, h, c = self._forward_fused(
                packed, h0.index_select(1, kd), c0.index_select(1, kd) if c0 is not None else None, None
            )
            o, _ = pad_packed_sequence(o, batch_first=self.batch_first, total_length=T)
            out = out.index_copy(bdim, keep.to(x.device), o)
            h_n = h_n.index_copy(1, kd, h)
            c_n = c_n.index_copy(1, kd, c) if c is not None else None
        return out, h_n, c_n

    # ------------------------------------------------------------------ transparent engine
    def _forward_transparent(self, input, h0, c0, lengths, need_trace: bool, engine: str):
        packed = isinstance(input, PackedSequence)
        order = None  # sorted position -> caller's batch index
        if packed:
            x, lens = pad_packed_sequence(PackedSequence(input.data, input.batch_sizes), batch_first=False)
            order = input.sorted_indices
            lens = lens.to(x.device)
        else:
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, D)
            lens = lengths
            if lens is not None:
                lens = lens.to(x.device)
                sorted_lens, perm = lens.sort(descending=True, stable=True)
                if not torch.equal(sorted_lens, lens):
                    order, lens = perm, sorted_lens
                    x = x.index_select(1, order)
        if order is not None:
            h0 = h0.index_select(1, order.to(h0.device))
            c0 = c0.index_select(1, order.to(c0.device)) if c0 is not None else None
        T, B = x.shape[:2]
        batch_sizes = None
        if lens is not None and bool((lens < T).any()):
            steps = torch.arange(T, device=lens.device).unsqueeze(1)  # (T, 1)
            batch_sizes = (lens.unsqueeze(0) > steps).sum(1).tolist()
        else:
            lens = None

        layer_in = x
        h_n, c_n, records = [], [], []
        for layer in range(self.num_layers):
            outs, recs = [], []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                xin = layer_in if d == 0 else reverse_padded(layer_in, lens)
                y, hn, cn, rec = self._run_direction(
                    layer, d, xin, h0[k], c0[k] if c0 is not None else None, lens, batch_sizes, need_trace, engine
                )
                if d == 1:
                    y = reverse_padded(y, lens)
                    rec = {key: reverse_padded(v, lens) for key, v in rec.items()}
                outs.append(y)
                recs.append(rec)
                h_n.append(hn)
                if cn is not None:
                    c_n.append(cn)
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (T, B, dirs*P)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
            records.append(recs)
        out = layer_in
        h_n = torch.stack(h_n)  # (L*dirs, B, P)
        c_n = torch.stack(c_n) if c_n else None

        if packed:
            full_lens = lens if lens is not None else torch.full((B,), T, dtype=torch.long)
            out = PackedSequence(
                pack_padded_sequence(out, full_lens.cpu()).data,
                input.batch_sizes,
                input.sorted_indices,
                input.unsorted_indices,
            )
        inverse = None
        if order is not None:
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(order.numel(), device=order.device)
            h_n = h_n.index_select(1, inverse.to(h_n.device))
            c_n = c_n.index_select(1, inverse.to(c_n.device)) if c_n is not None else None
            if not packed:
                out = out.index_select(1, inverse.to(out.device))
        if not packed and self.batch_first:
            out = out.transpose(0, 1)
        trace = None
        if need_trace:

            def fmt(v: Tensor) -> Tensor:  # (T, B, H) sorted -> (B, T, H) caller's order
                v = v.transpose(0, 1)
                return v.index_select(0, inverse.to(v.device)) if inverse is not None else v

            trace_lens = None
            if lens is not None:
                trace_lens = lens if inverse is None else lens.index_select(0, inverse.to(lens.device))
            trace = Trace(
                self.mode, [[{k: fmt(v) for k, v in rec.items()} for rec in layer] for layer in records], trace_lens
            )
        return out, h_n, c_n, trace

    def _recurrent_mask(self, B: int, like: Tensor) -> Tensor | None:
        p = self.recurrent_dropout
        if not self.training or p == 0:
            return None
        P = self.proj_size or self.hidden_size
        if p == 1:
            return like.new_zeros(B, P)
        return like.new_empty(B, P).bernoulli_(1 - p).div_(1 - p)  # one mask per sequence

    def _run_direction(self, layer, d, x, h0, c0, lens, batch_sizes, need_trace, engine):
        """One layer and direction, time-major: returns (Y, h_n, c_n, records)."""
        p = self._params(layer, d)
        mask = self._recurrent_mask(x.shape[1], x)
        if self.layer_norm or engine == "autograd":
            return self._run_autograd(p, x, h0, c0, lens, mask, need_trace)
        act, rec_act = self.activation, self.recurrent_activation
        H = self.hidden_size
        b_ih, b_hh = p["bias_ih"], p["bias_hh"]
        if self.mode == "LSTM":
            b = b_ih + b_hh if b_ih is not None else None
            y, hn, cn, G, C = LSTMScan.apply(
                x,
                p["weight_ih"],
                b,
                h0,
                c0,
                p["weight_hh"],
                p["weight_hr"],
                mask,
                batch_sizes,
                lens,
                act,
                rec_act,
                use_fast_tanh(x.device),
            )
            rec = {}
            if need_trace:
                rec = dict(zip("ifgo", G.split(H, dim=-1)), c=C, h=y)
            return y, hn, cn, rec
        fast = use_fast_tanh(x.device)
        if self.mode == "GRU":
            y, hn, G = GRUScan.apply(
                x, p["weight_ih"], b_ih, h0, p["weight_hh"], b_hh, mask, batch_sizes, lens, act, rec_act, fast
            )
            rec = {"r": G[..., :H], "z": G[..., H : 2 * H], "n": G[..., 2 * H :], "h": y} if need_trace else {}
            return y, hn, None, rec
        b = b_ih + b_hh if b_ih is not None else None
        y, hn = RNNScan.apply(x, p["weight_ih"], b, h0, p["weight_hh"], mask, batch_sizes, lens, act, fast)
        return y, hn, None, ({"h": y} if need_trace else {})

    def _run_autograd(self, p, x, h, c, lens, mask, need_trace):
        """The step loop under autograd (layer norm, engine='autograd')."""
        ln = None
        if self.layer_norm:
            ln = LayerNormParams(p["ln_ih_weight"], p["ln_hh_weight"], p["ln_cell_weight"], p["ln_cell_bias"])
        act, rec_act = self.activation, self.recurrent_activation
        b_ih, b_hh = p["bias_ih"], p["bias_hh"]
        if self.mode == "GRU":
            xp = project_input(x, p["weight_ih"], b_ih, ln)
        else:
            xp = project_input(x, p["weight_ih"], None if b_ih is None else b_ih + b_hh, ln)
        names = GATE_NAMES[self.mode]
        T = x.shape[0]
        ys, recs = [], {k: [] for k in names}
        for t in range(T):
            if self.mode == "LSTM":
                h_new, c_new, gates = lstm_step(xp[t], h, c, p["weight_hh"], p["weight_hr"], act, rec_act, ln, mask)
                step = dict(zip("ifgo", gates), c=c_new, h=h_new)
            elif self.mode == "GRU":
                h_new, gates = gru_step(xp[t], h, p["weight_hh"], b_hh, act, rec_act, ln, mask)
                step = dict(zip("rzn", gates), h=h_new)
            else:
                h_new = rnn_step(xp[t], h, p["weight_hh"], act, ln, mask)
                step = {"h": h_new}
            if lens is not None:
                alive = (t < lens).unsqueeze(1)  # (B, 1)
                h = torch.where(alive, h_new, h)
                if self.mode == "LSTM":
                    c = torch.where(alive, c_new, c)
                step = {k: torch.where(alive, v, torch.zeros_like(v)) for k, v in step.items()}
            else:
                h = h_new
                c = c_new if self.mode == "LSTM" else None
            ys.append(step["h"])
            if need_trace:
                for k in names:
                    recs[k].append(step[k])
        y = torch.stack(ys)  # (T, B, P)
        rec = {k: torch.stack(v) for k, v in recs.items()} if need_trace else {}
        return y, h, (c if self.mode == "LSTM" else None), rec


class LSTM(RNNBase):
    r"""Multi-layer LSTM; a drop-in for :class:`torch.nn.LSTM` with visible gates.

    For each step t and layer (the seed's equations 3.1 and 3.2)::

        i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
        f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
        g_t = phi  (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)      candidate
        o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
        c_t = f_t * c_{t-1} + i_t * g_t                          cell state
        h_t = o_t * phi(c_t)        (with proj_size: h_t = W_hr (o_t * phi(c_t)))

    sigma = ``recurrent_activation`` (default sigmoid), phi = ``activation`` (default tanh).
    Layer l > 0 reads the outputs of layer l-1 (both directions concatenated), with
    ``dropout`` on them while training.

    Args:
        input_size (D), hidden_size (H), num_layers (L), bias, batch_first, dropout,
        bidirectional, proj_size (P), device, dtype: exactly as torch.nn.LSTM.
        activation: phi, a Keras name ('tanh', 'relu', 'sigmoid', 'hard_sigmoid', 'linear',
            'elu', ...) or any element-wise callable.
        recurrent_activation: sigma, likewise.
        forget_bias: start the forget gate's bias at this value (Keras ``unit_forget_bias``
            is 1.0); default None keeps torch's initialisation.
        chrono_init: T_max for chrono initialisation (Tallec & Ollivier 2018).
        recurrent_dropout: rate of one dropout mask per sequence on h_{t-1} (Gal &
            Ghahramani), in every layer and direction, while training.
        layer_norm: LayerNorm-LSTM as in haste: ``gates = LN(W_i x) + LN(W_h h) + b``,
            ``h_t = o_t * phi(LN(c_t))``; adds ln_* parameters.
        engine: 'auto' | 'fused' | 'transparent' | 'autograd' (see module docstring).

    Shapes (N batch, T steps, D_out = dirs * (P or H)):
        input: (N, T, D) if batch_first else (T, N, D); (T, D) unbatched; or PackedSequence.
        h_0: (dirs * L, N, P or H); c_0: (dirs * L, N, H); 2-D when unbatched.
        output: like input with D_out features; h_n, c_n like h_0, c_0.

    Parameters (torch's names; gate order i|f|g|o):
        weight_ih_l{k}: (4H, D or D_out), weight_hh_l{k}: (4H, P or H), bias_ih_l{k},
        bias_hh_l{k}: (4H,), weight_hr_l{k}: (P, H); suffix _reverse for the backward
        direction. All initialised U(-1/sqrt(H), 1/sqrt(H)) as in torch.

    Returns ``output, (h_n, c_n)``, and a :class:`~biolstm.nn.trace.Trace` with i, f, g, o,
    c, h of every layer and direction, each (N, T, H), when ``return_gates=True``.

    Reference loop, one layer, one direction::

        h, c = h0, c0
        for t in range(T):
            i, f, g, o = (x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, -1)
            i, f, g, o = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
            c = f * c + i * g
            h = o * tanh(c)
            out[t] = h
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        **options,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
            **options,
        )


class GRU(RNNBase):
    r"""Multi-layer GRU; a drop-in for :class:`torch.nn.GRU` with visible gates.

    For each step (gate order r|z|n, torch's equations)::

        r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)             reset gate
        z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)             update gate
        n_t = phi  (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))     candidate
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    Args: as :class:`LSTM` without proj_size; ``forget_bias`` and ``chrono_init`` set the
    update gate z (which keeps the old state). Layer norm normalises ``W_i x`` and ``W_h h``.
    Shapes: as torch.nn.GRU. Returns ``output, h_n`` (+ Trace with r, z, n, h).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        **options,
    ) -> None:
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
            **options,
        )


class RNN(RNNBase):
    r"""Multi-layer Elman RNN; a drop-in for :class:`torch.nn.RNN`.

    ``h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` with phi = ``nonlinearity``
    ('tanh' | 'relu', as torch) or any ``activation`` (name or callable), which takes
    precedence when given. Shapes and parameters as torch.nn.RNN. Returns ``output, h_n``
    (+ Trace with h).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        activation=None,
        **options,
    ) -> None:
        check_choice(nonlinearity, ("tanh", "relu"), "nonlinearity")
        if "recurrent_activation" in options:
            raise TypeError("recurrent_activation: an RNN has no gates; use activation=")
        mode = "RNN_RELU" if nonlinearity == "relu" else "RNN_TANH"
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
            activation=activation if activation is not None else nonlinearity,
            **options,
        )
        self.nonlinearity = nonlinearity
