"""The Elman RNN layer's scan, one direction (see :mod:`biolstm.nn.engine`)."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .common import (
    InputGrads,
    activate_,
    active,
    alive,
    batch_major,
    chunks,
    custom_bwd,
    custom_fwd,
    deriv_into,
    final_state,
    prev_rows,
    project_inputs,
    run_steps,
    step_buffers,
    step_kernel,
    stepwise_columns,
    subnormals_flushed_on_the_cpu,
    workspace,
)


class RNNScan(torch.autograd.Function):
    """Elman RNN layer, one direction: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    Inputs: x (T, B, D); w_ih (H, D); b (H,) = b_ih + b_hh or None; h0 (B, H); w_hh (H, H);
    mask (B, H) or None; batch_sizes, lengths, act, fast_tanh. Outputs: Y (T, B, H), h_n (B, H).
    """

    @staticmethod
    @custom_fwd
    def forward(ctx, x, w_ih, b, h0, w_hh, mask, batch_sizes, lengths, act, fast_tanh=False):
        T, B, _ = x.shape
        H = w_hh.shape[0]
        full = batch_sizes is None
        opts = dict(dtype=x.dtype, device=x.device)
        kernel = step_kernel((x, w_ih, b, h0, w_hh, mask), act)
        buf = step_buffers(T, B, kernel is not None or batch_major(B), torch.empty if full else torch.zeros, opts)
        Y = project_inputs(x, w_ih, b, buf(H, torch.empty))  # input side, then h
        pre = None
        if kernel is None or not run_steps(kernel, "rnn_forward", Y.transpose(1, 2), h0, w_hh, mask, batch_sizes,
                                           act):  # fmt: skip
            kernel = None  # the step loop in PyTorch (any storage)
            pre = _torch_steps(Y, h0, w_hh, mask, batch_sizes, act, fast_tanh, buf)
        if not full:
            Y.masked_fill_(~alive(lengths, T).unsqueeze(1), 0)
        Y_out = Y.transpose(1, 2).contiguous()  # (T, B, H)
        h_n = final_state(Y_out, h0, lengths)
        ctx.save_for_backward(x, w_ih, h0, w_hh, mask, Y, Y_out, pre)
        ctx.batch_sizes, ctx.lengths = batch_sizes, lengths
        ctx.act = act
        ctx.has_bias = b is not None
        ctx.kernel = kernel
        return Y_out, h_n

    @staticmethod
    @once_differentiable
    @custom_bwd
    @subnormals_flushed_on_the_cpu
    def backward(ctx, dY, dh_n):
        x, w_ih, h0, w_hh, mask, Y, Y_out, pre = ctx.saved_tensors
        bs = ctx.batch_sizes
        T, H, B = Y.shape
        ran = False
        if ctx.kernel is not None:  # the backward step loop in C or Triton; storage (T, B, H)
            DP = workspace("rnn_dp", Y)
            dh = dh_n.contiguous().clone()  # (B, H); ends as dL/dh0
            ran = run_steps(ctx.kernel, "rnn_backward", Y.transpose(1, 2), w_hh, mask, bs, dY, DP.transpose(1, 2), dh,
                            ctx.act)  # fmt: skip
        if not ran:
            DP, dh = _torch_backward_steps(ctx, dY, dh_n, Y, w_hh, mask, pre)
            dh = dh.t()
        need = ctx.needs_input_grad
        ig = InputGrads(need, x, w_ih, ctx.has_bias)
        dw_hh = torch.zeros_like(w_hh) if need[4] else None
        for t0, t1 in chunks(T, H * B):
            blk = stepwise_columns(DP, t0, t1)  # (H, k*B)
            ig.add(blk, t0, t1)
            if dw_hh is not None:
                dw_hh.addmm_(blk, prev_rows(Y_out, h0, mask, t0, t1))
        dx, dw_ih, db = ig.result()
        return dx, dw_ih, db, dh, dw_hh, None, None, None, None, None


def _torch_steps(Y, h0, w_hh, mask, batch_sizes, act, fast_tanh, buf):
    """The RNN step loop in PyTorch operations on the logical (T, H, B) buffer Y (input side
    in, outputs out); returns the kept pre-activations where the backward pass needs them."""
    T, H, B = Y.shape
    opts = dict(dtype=Y.dtype, device=Y.device)
    fast = fast_tanh and act.name == "tanh"
    pre = buf(H) if (act.needs_input and not fast) else None
    two, one = torch.tensor(2.0, **opts), torch.tensor(1.0, **opts)
    maskT = mask.t() if mask is not None else None
    Ys = Y.unbind(0)
    h_prev = h0.t()  # (H, B)
    for t in range(T):
        n = active(batch_sizes, t, B)
        if n == 0:
            break
        y = Ys[t] if n == B else Ys[t][:, :n]
        hp = h_prev if n == B else h_prev[:, :n]
        if maskT is not None:
            hp = hp * maskT[:, :n]
        if n == B:
            y.addmm_(w_hh, hp)
        else:
            y.copy_(torch.addmm(y, w_hh, hp))
        activate_(act, y, fast, pre, t, n, two, one)
        h_prev = Ys[t]
    return pre


def _torch_backward_steps(ctx, dY, dh_n, Y, w_hh, mask, pre):
    """The RNN's backward step loop in PyTorch operations: returns DP (T, H, B) dL/d(pre-activation)
    and (H, B) dL/dh0."""
    bs = ctx.batch_sizes
    T, _, B = Y.shape
    DP = deriv_into(ctx.act, Y, pre, workspace("rnn_dp", Y))  # act'(pre), then d pre  # (T, H, B)
    bm = batch_major(B)
    dh = dh_n.clone().t() if bm else dh_n.t().contiguous()  # (H, B)
    maskT = mask.t() if mask is not None else None
    w_hh_t = w_hh.t().contiguous()
    DPs = DP.unbind(0)
    dYT = dY.transpose(1, 2)
    added = 0
    for t in range(T - 1, -1, -1):
        n = active(bs, t, B)
        if n == 0:
            continue
        if added < n:
            dh[:, added:n].add_(dYT[t][:, added:n])
        dp = DPs[t] if n == B else DPs[t][:, :n]
        dh_a = dh if n == B else dh[:, :n]
        dp.mul_(dh_a)
        if t > 0 and maskT is None and n == B:
            torch.addmm(dYT[t - 1], w_hh_t, dp, out=dh_a)
        else:
            dh_a.copy_(torch.mm(w_hh_t, dp))
            if maskT is not None:
                dh_a.mul_(maskT[:, :n])
            if t > 0:
                dh_a.add_(dYT[t - 1][:, :n])
        added = n if t > 0 else 0
    if bs is not None:
        DP.masked_fill_(~alive(ctx.lengths, T).unsqueeze(1), 0)
    return DP, dh
