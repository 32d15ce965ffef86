"""The GRU layer's scan, one direction (see :mod:`biolstm.nn.engine`)."""

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
    cols,
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


class GRUScan(torch.autograd.Function):
    """GRU layer, one direction, torch's equations (reset gate applied after W_hn h).

    Same design as :class:`LSTMScan`: logical ``(features, B)`` blocks per step, the input
    projection written into the gate buffer, tanh through sigmoid on CPU.

    Inputs: x (T, B, D); w_ih (3H, D); b_ih (3H,) or None; h0 (B, H); w_hh (3H, H);
    b_hh (3H,) or None; mask (B, H) or None; batch_sizes, lengths, act, rec_act, fast_tanh.
    Outputs: Y (T, B, H), h_n (B, H), and, not differentiable, G (T, B, 3H) activations r|z|n.
    """

    @staticmethod
    @custom_fwd
    def forward(ctx, x, w_ih, b_ih, h0, w_hh, b_hh, mask, batch_sizes, lengths, act, rec_act, fast_tanh=False):
        T, B, _ = x.shape
        H3, H = w_hh.shape
        full = batch_sizes is None
        opts = dict(dtype=x.dtype, device=x.device)
        kernel = step_kernel((x, w_ih, b_ih, h0, w_hh, b_hh, mask), act, rec_act)
        buf = step_buffers(T, B, kernel is not None or batch_major(B), torch.empty if full else torch.zeros, opts)
        G = project_inputs(x, w_ih, b_ih, buf(H3, torch.empty))  # input side, then r|z|n
        HH = buf(H3)  # W_hh h_{t-1} + b_hh
        Y = buf(H)
        pre_rz = pre_n = None
        if kernel is None or not run_steps(kernel, "gru_forward", G.transpose(1, 2), HH.transpose(1, 2),
                                           Y.transpose(1, 2), h0, w_hh, b_hh, mask, batch_sizes, act,
                                           rec_act):  # fmt: skip
            kernel = None  # the step loop in PyTorch (any storage)
            pre_rz, pre_n = _torch_steps(G, HH, Y, h0, w_hh, b_hh, mask, batch_sizes, act, rec_act, fast_tanh, buf)
        if not full:
            G.masked_fill_(~alive(lengths, T).unsqueeze(1), 0)
        Y_out = Y.transpose(1, 2).contiguous()  # (T, B, H)
        h_n = final_state(Y_out, h0, lengths)
        G_out = G.transpose(1, 2)
        ctx.save_for_backward(x, w_ih, h0, w_hh, mask, G, HH, Y_out, pre_rz, pre_n)
        ctx.batch_sizes, ctx.lengths = batch_sizes, lengths
        ctx.acts = (act, rec_act)
        ctx.has_bias = (b_ih is not None, b_hh is not None)
        ctx.kernel = kernel
        ctx.mark_non_differentiable(G_out)
        return Y_out, h_n, G_out

    @staticmethod
    @once_differentiable
    @custom_bwd
    @subnormals_flushed_on_the_cpu
    def backward(ctx, dY, dh_n, _dG):
        x, w_ih, h0, w_hh, mask, G, HH, Y, pre_rz, pre_n = ctx.saved_tensors
        act, rec_act = ctx.acts
        bs = ctx.batch_sizes
        T, H3, B = G.shape
        H = H3 // 3
        ran = False
        if ctx.kernel is not None:  # the backward step loop in C or Triton; storage (T, B, F)
            DX, DHN = workspace("gru_dx", G), workspace("gru_dhn", G, H)
            dh = dh_n.contiguous().clone()  # (B, H); ends as dL/dh0
            ran = run_steps(ctx.kernel, "gru_backward", G.transpose(1, 2), HH.transpose(1, 2), Y, h0, w_hh, mask, bs,
                            dY, DX.transpose(1, 2), DHN.transpose(1, 2), dh, act, rec_act)  # fmt: skip
        if not ran:
            DX, DHN, dh = _torch_backward_steps(ctx, dY, dh_n, G, HH, Y, h0, w_hh, mask, pre_rz, pre_n)
            dh = dh.t()

        need = ctx.needs_input_grad
        ig = InputGrads(need, x, w_ih, ctx.has_bias[0])
        dw_hh = torch.zeros_like(w_hh) if need[4] else None
        db_hh = DX.new_zeros(H3) if (ctx.has_bias[1] and need[5]) else None
        for t0, t1 in chunks(T, H3 * B):
            blk = stepwise_columns(DX, t0, t1)  # (3H, k*B)
            ig.add(blk, t0, t1)
            if dw_hh is not None or db_hh is not None:
                blk_n = stepwise_columns(DHN, t0, t1)  # (H, k*B)
                if dw_hh is not None:
                    hp = prev_rows(Y, h0, mask, t0, t1)
                    dw_hh[: 2 * H].addmm_(blk[: 2 * H], hp)
                    dw_hh[2 * H :].addmm_(blk_n, hp)
                if db_hh is not None:
                    db_hh[: 2 * H].add_(blk[: 2 * H].sum(1))
                    db_hh[2 * H :].add_(blk_n.sum(1))
        dx, dw_ih, db_ih = ig.result()
        return dx, dw_ih, db_ih, dh, dw_hh, db_hh, None, None, None, None, None, None


def _torch_steps(G, HH, Y, h0, w_hh, b_hh, mask, batch_sizes, act, rec_act, fast_tanh, buf):
    """The GRU step loop in PyTorch operations, on logical (T, F, B) buffers in either storage:
    fills G (activations r|z|n), HH and Y; returns the kept pre-activations the backward pass
    needs (None where it does not)."""
    T, H3, B = G.shape
    H = H3 // 3
    opts = dict(dtype=G.dtype, device=G.device)
    fast = fast_tanh and act.name == "tanh"
    pre_rz = buf(2 * H) if rec_act.needs_input else None
    pre_n = buf(H) if (act.needs_input and not fast) else None
    bias = (b_hh if b_hh is not None else G.new_zeros(H3)).unsqueeze(1)  # (3H, 1)
    two, one = torch.tensor(2.0, **opts), torch.tensor(1.0, **opts)
    maskT = mask.t() if mask is not None else None
    views = [G[:, : 2 * H], G[:, :H], G[:, H : 2 * H], G[:, 2 * H :], HH, HH[:, : 2 * H], HH[:, 2 * H :], Y]
    views = [v.unbind(0) for v in views]
    h_prev = h0.t()  # (H, B)
    for t in range(T):
        n = active(batch_sizes, t, B)
        if n == 0:
            break
        g_rz, gr, gz, gn, hh, hh_rz, hh_n, y = cols(views, t, n, B)
        hp = h_prev if n == B else h_prev[:, :n]
        h_in = hp if maskT is None else hp * maskT[:, :n]
        torch.addmm(bias, w_hh, h_in, out=hh)  # (3H, n)
        g_rz.add_(hh_rz)
        if pre_rz is not None:
            pre_rz[t, :, :n] = g_rz
        rec_act.apply_(g_rz)
        gn.addcmul_(gr, hh_n)  # x_n + r * (W_hn h + b_hn)
        activate_(act, gn, fast, pre_n, t, n, two, one)
        torch.sub(hp, gn, out=y)
        torch.addcmul(gn, gz, y, out=y)  # h = n + z * (h_{t-1} - n)
        h_prev = views[7][t]
    return pre_rz, pre_n


def _torch_backward_steps(ctx, dY, dh_n, G, HH, Y, h0, w_hh, mask, pre_rz, pre_n):
    """The GRU's backward step loop in PyTorch operations: returns DX (T, 3H, B) dL/d(input
    side), DHN (T, H, B) dL/d(W_hn h + b_hn) and (H, B) dL/dh0."""
    act, rec_act = ctx.acts
    bs = ctx.batch_sizes
    T, H3, B = G.shape
    H = H3 // 3
    r, z, n_ = G.split(H, dim=1)
    # Factors  # (T, 3H, B) = [Fr | Fz | Fn], turned in place into d(input side) [dr | dz | dn]:
    #   dn_pre = dh * (1 - z) * act'(n)            = dh * Fn
    #   dz_pre = dh * (h_{t-1} - n) * s'(z)        = dh * Fz
    #   dr_pre = dn_pre * (W_hn h + b_hn) * s'(r)  = dn_pre * Fr
    DX = workspace("gru_dx", G)
    Fr, Fz, Fn = DX.split(H, dim=1)
    if pre_rz is None:
        deriv_into(rec_act, G[:, : 2 * H], None, DX[:, : 2 * H])
    else:
        DX[:, : 2 * H] = rec_act.grad(G[:, : 2 * H], pre_rz)
    Fr.mul_(HH[:, 2 * H :])
    Yt = Y.transpose(1, 2)  # (T, H, B)
    Fz[1:].mul_(Yt[:-1] - n_[1:])
    Fz[0].mul_(h0.t() - n_[0])
    deriv_into(act, n_, pre_n, Fn).mul_(1 - z)
    DHN = workspace("gru_dhn", G, H)  # dn_pre * r  # (T, H, B)

    bm = batch_major(B)
    dh = dh_n.clone().t() if bm else dh_n.t().contiguous()  # (H, B)
    nxt = torch.empty_like(dh)
    maskT = mask.t() if mask is not None else None
    w_rz_t, w_n_t = w_hh[: 2 * H].t().contiguous(), w_hh[2 * H :].t().contiguous()
    views = [DX[:, H:].unflatten(1, (2, H)), Fr, Fn, DX[:, : 2 * H], DHN, r, z]
    views = [v.unbind(0) for v in views]
    dYT = dY.transpose(1, 2)  # (T, H, B)
    added = 0
    for t in range(T - 1, -1, -1):
        n = active(bs, t, B)
        if n == 0:
            continue
        if added < n:
            dh[:, added:n].add_(dYT[t][:, added:n])
        d_zn, fr, dn, d_rz, dhn, rt, zt = cols(views, t, n, B)
        dh_a, nx = (dh, nxt) if n == B else (dh[:, :n], nxt[:, :n])
        d_zn.mul_(dh_a)  # dz_pre, dn_pre
        fr.mul_(dn)  # dr_pre
        torch.mul(dn, rt, out=dhn)
        if t > 0:
            torch.addcmul(dYT[t - 1][:, :n], dh_a, zt, out=nx)  # dh_{t-1} = dh z + dY[t-1] + ...
        else:
            torch.mul(dh_a, zt, out=nx)
        if maskT is None:  # + W_hh^T d(W_hh h), accumulated in place  # (H, n)
            nx.addmm_(w_rz_t, d_rz).addmm_(w_n_t, dhn)
        else:
            nx.add_(torch.mm(w_rz_t, d_rz).addmm_(w_n_t, dhn).mul_(maskT[:, :n]))
        dh_a.copy_(nx)
        added = n if t > 0 else 0
    if bs is not None:
        dead = ~alive(ctx.lengths, T).unsqueeze(1)
        DX.masked_fill_(dead, 0)
        DHN.masked_fill_(dead, 0)
    return DX, DHN, dh
