"""The LSTM layer's scan, one direction (see :mod:`biolstm.nn.engine`)."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .common import (
    InputGrads,
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


class LSTMScan(torch.autograd.Function):
    """LSTM layer, one direction, input projection included.

    Inside the scan every per-step tensor is feature-major, ``(features, B)``: the gates of
    step t are one contiguous ``(4H, B)`` block in torch's order i | f | g | o, so each gate
    is a contiguous ``(H, B)`` slice and element-wise work runs on contiguous memory. The
    input projection for all steps is written straight into the gate buffer by one batched
    product, and the recurrent product of each step is added in place. Large buffers are
    kept few because each fresh one costs page faults on first touch.

    Inputs: x (T, B, D); w_ih (4H, D); b (4H,) = b_ih + b_hh or None; h0 (B, P); c0 (B, H);
    w_hh (4H, P); w_hr (P, H) or None; mask (B, P) recurrent-dropout mask or None;
    batch_sizes/lengths (see module docstring); act, rec_act; fast_tanh (see
    :func:`use_fast_tanh`).
    Outputs: Y (T, B, P), h_n (B, P), c_n (B, H), and, not differentiable, views for the
    trace: G (T, B, 4H) gate activations i|f|g|o and C (T, B, H) cell states.
    """

    @staticmethod
    @custom_fwd
    def forward(ctx, x, w_ih, b, h0, c0, w_hh, w_hr, mask, batch_sizes, lengths, act, rec_act, fast_tanh=False):
        T, B, _ = x.shape
        H4, P = w_hh.shape
        H = H4 // 4
        full = batch_sizes is None
        opts = dict(dtype=x.dtype, device=x.device)
        kernel = step_kernel((x, w_ih, b, h0, c0, w_hh, mask), act, rec_act) if w_hr is None else None
        buf = step_buffers(T, B, kernel is not None or batch_major(B), torch.empty if full else torch.zeros, opts)
        # Gate pre-activations, input side, all steps: one product  # (T, 4H, B)
        G = project_inputs(x, w_ih, b, buf(H4, torch.empty))
        C = buf(H)  # cell states (2c while the fast loop runs)
        TC = buf(H)  # act(c)
        Y = buf(P)  # h
        M = pre_if = pre_o = pre_g = None
        if kernel is None or not run_steps(kernel, "lstm_forward", G.transpose(1, 2), C.transpose(1, 2),
                                           TC.transpose(1, 2), Y.transpose(1, 2), h0, c0, w_hh, mask, batch_sizes,
                                           act, rec_act):  # fmt: skip
            kernel = None  # the step loop in PyTorch (any storage)
            M, pre_if, pre_o, pre_g = _torch_steps(G, C, TC, Y, h0, c0, w_hh, w_hr, mask, batch_sizes, act, rec_act,
                                                   fast_tanh, buf)  # fmt: skip
        if not full:  # columns past each length hold input projections: clear them
            G.masked_fill_(~alive(lengths, T).unsqueeze(1), 0)
        Y_out = Y.transpose(1, 2).contiguous()  # (T, B, P)
        h_n = final_state(Y_out, h0, lengths)
        c_n = final_state(C.transpose(1, 2), c0, lengths)
        G_out, C_out = G.transpose(1, 2), C.transpose(1, 2)
        ctx.save_for_backward(x, w_ih, h0, c0, w_hh, w_hr, mask, G, C, TC, Y_out, M, pre_if, pre_o, pre_g)
        ctx.batch_sizes, ctx.lengths = batch_sizes, lengths
        ctx.acts = (act, rec_act)
        ctx.has_bias = b is not None
        ctx.kernel = kernel
        ctx.mark_non_differentiable(G_out, C_out)
        return Y_out, h_n, c_n, G_out, C_out

    @staticmethod
    @once_differentiable
    @custom_bwd
    @subnormals_flushed_on_the_cpu
    def backward(ctx, dY, dh_n, dc_n, _dG, _dC):
        x, w_ih, h0, c0, w_hh, w_hr, mask, G, C, TC, Y, M, pre_if, pre_o, pre_g = ctx.saved_tensors
        act, rec_act = ctx.acts
        bs = ctx.batch_sizes
        T, H4, B = G.shape
        ran = False
        if ctx.kernel is not None:  # the backward step loop in C or Triton; storage (T, B, F)
            DG, DH = workspace("lstm_dg", G), None
            dh, dc = dh_n.contiguous().clone(), dc_n.contiguous().clone()  # (B, H); end as dL/dh0, dL/dc0
            ran = run_steps(ctx.kernel, "lstm_backward", G.transpose(1, 2), C.transpose(1, 2), TC.transpose(1, 2), c0,
                            w_hh, mask, bs, dY, DG.transpose(1, 2), dh, dc, act, rec_act)  # fmt: skip
        if not ran:
            DG, DH, dh, dc = _torch_backward_steps(ctx, dY, dh_n, dc_n, G, C, TC, Y, c0, w_hh, w_hr, mask, pre_if,
                                                   pre_o, pre_g)  # fmt: skip
            dh, dc = dh.t(), dc.t()

        # Weight gradients: sums over steps of products with the step inputs, done in
        # chunks of steps so each product is large and the reordering copy stays small.
        need = ctx.needs_input_grad
        ig = InputGrads(need, x, w_ih, ctx.has_bias)
        dw_hh = torch.zeros_like(w_hh) if need[5] else None
        dw_hr = torch.zeros_like(w_hr) if (w_hr is not None and need[6]) else None
        for t0, t1 in chunks(T, H4 * B):
            blk = stepwise_columns(DG, t0, t1)  # (4H, k*B)
            ig.add(blk, t0, t1)
            if dw_hh is not None:
                dw_hh.addmm_(blk, prev_rows(Y, h0, mask, t0, t1))
            if dw_hr is not None:
                dw_hr.addmm_(stepwise_columns(DH, t0, t1), stepwise_columns(M, t0, t1).t())
        dx, dw_ih, db = ig.result()
        return dx, dw_ih, db, dh, dc, dw_hh, dw_hr, None, None, None, None, None, None


def _torch_steps(G, C, TC, Y, h0, c0, w_hh, w_hr, mask, batch_sizes, act, rec_act, fast_tanh, buf):
    """The LSTM step loop in PyTorch operations, on logical (T, F, B) buffers in either storage:
    fills G (activations), C, TC and Y; returns M (o * act(c) before the projection) and the
    kept pre-activations the backward pass needs (None where it does not)."""
    T, H4, B = G.shape
    H = H4 // 4
    opts = dict(dtype=G.dtype, device=G.device)
    M = buf(H) if w_hr is not None else None  # o * act(c) before projection
    fast = fast_tanh and act.name == "tanh" and rec_act.name == "sigmoid"
    pre_if = buf(2 * H) if (rec_act.needs_input and not fast) else None
    pre_o = buf(H) if (rec_act.needs_input and not fast) else None
    pre_g = buf(H) if (act.needs_input and not fast) else None
    two = torch.tensor(2.0, **opts)  # tensor constants: cheaper per call than Python numbers
    one = torch.tensor(1.0, **opts)
    maskT = mask.t() if mask is not None else None  # (P, B)
    views = [G, G[:, : 2 * H], G[:, :H], G[:, H : 2 * H], G[:, 2 * H : 3 * H], G[:, 3 * H :], C, TC, Y]
    if M is not None:
        views.append(M)
    views = [v.unbind(0) for v in views]
    h_prev = h0.t()  # (P, B)
    c_prev = (c0 * 2 if fast else c0).t()  # (H, B)
    for t in range(T):
        n = active(batch_sizes, t, B)
        if n == 0:
            break
        g, g_if, gi, gf, gg, go, c, tc, y, *m = cols(views, t, n, B)
        hp, cp = (h_prev, c_prev) if n == B else (h_prev[:, :n], c_prev[:, :n])
        if maskT is not None:
            hp = hp * maskT[:, :n]
        if n == B:
            g.addmm_(w_hh, hp)  # + W_hh h_{t-1}  # (4H, B)
        else:
            g.copy_(torch.addmm(g, w_hh, hp))
        if fast:
            # tanh(x) = 2 sigmoid(2x) - 1. On CPU torch's tanh costs ~3x its sigmoid, so
            # the four gates take one sigmoid call, and the cell is kept doubled (2c) so
            # that tanh(c) is one more: 2c = f * 2c' + 4 i s_g - 2 i, with s_g = (g+1)/2.
            gg.add_(gg)
            g.sigmoid_()
            torch.mul(gf, cp, out=c)
            c.addcmul_(gi, gg, value=4).sub_(gi, alpha=2)
            torch.sigmoid(c, out=tc)
            tc.mul_(two).sub_(one)
        else:
            if pre_if is not None:
                pre_if[t, :, :n] = g_if
                pre_o[t, :, :n] = go
            if pre_g is not None:
                pre_g[t, :, :n] = gg
            rec_act.apply_(g_if)
            rec_act.apply_(go)
            act.apply_(gg)
            torch.mul(gf, cp, out=c)  # f * c_{t-1}
            c.addcmul_(gi, gg)  # + i * g
            act.into(c, tc)
        if M is None:
            torch.mul(go, tc, out=y)  # h = o * act(c)
        else:
            torch.mul(go, tc, out=m[0])
            torch.mm(w_hr, m[0], out=y)  # h = W_hr (o * act(c))
        h_prev, c_prev = views[8][t], views[6][t]
    if fast:  # back to the true g and c
        G[:, 2 * H : 3 * H].mul_(two).sub_(one)
        C.mul_(0.5)
    return M, pre_if, pre_o, pre_g


def _torch_backward_steps(ctx, dY, dh_n, dc_n, G, C, TC, Y, c0, w_hh, w_hr, mask, pre_if, pre_o, pre_g):
    """The LSTM's backward step loop in PyTorch operations: returns DG (T, 4H, B) dL/d(gate
    pre-activations), DH (T, P, B) dL/dh_t when projected (else None), and (P, B) dL/dh0,
    (H, B) dL/dc0."""
    act, rec_act = ctx.acts
    bs = ctx.batch_sizes
    T, H4, B = G.shape
    H = H4 // 4
    # Factors for all steps at once, written into the buffer that becomes dL/d(gates)
    # (T, 4H, B), layout i|f|g|o:
    #   dpre_i = dc * g * s'(i)      dpre_f = dc * c_{t-1} * s'(f)
    #   dpre_g = dc * i * act'(g)    dpre_o = dh * act(c) * s'(o)
    DG = workspace("lstm_dg", G)  # same storage layout as G
    i, f, g, o = G.split(H, dim=1)
    Fi, Ff, Fg, Fo = DG.split(H, dim=1)
    if pre_if is None:
        deriv_into(rec_act, G[:, : 2 * H], None, DG[:, : 2 * H])
        deriv_into(rec_act, o, None, Fo)
    else:
        DG[:, : 2 * H] = rec_act.grad(G[:, : 2 * H], pre_if)
        Fo.copy_(rec_act.grad(o, pre_o))
    deriv_into(act, g, pre_g, Fg)
    Fi.mul_(g)
    Ff[1:].mul_(C[:-1])
    Ff[0].mul_(c0.t())
    Fg.mul_(i)
    Fo.mul_(TC)
    A = deriv_into(act, TC, C, workspace("lstm_a", TC)).mul_(o)  # dc += dh * o * act'(c)  # (T, H, B)

    DH = torch.zeros_like(Y.transpose(1, 2)) if w_hr is not None else None  # dh_t, for dW_hr  # (T, P, B)
    bm = batch_major(B)
    dh = dh_n.clone().t() if bm else dh_n.t().contiguous()  # running dL/dh_t  # (P, B)
    dc = dc_n.clone().t() if bm else dc_n.t().contiguous()  # running dL/dc_t  # (H, B)
    maskT = mask.t() if mask is not None else None
    views = [DG, DG[:, : 3 * H].unflatten(1, (3, H)), Fo, A, f]
    views = [v.unbind(0) for v in views]
    dYT = dY.transpose(1, 2)  # (T, P, B) view; rows are read as strided blocks
    w_hh_t = w_hh.t().contiguous()  # a contiguous W^T makes the per-step product ~8% faster
    added = 0  # rows of dY[t] already in dh (folded into the previous step's product)
    for t in range(T - 1, -1, -1):
        n = active(bs, t, B)
        if n == 0:
            continue
        if added < n:
            dh[:, added:n].add_(dYT[t][:, added:n])
        dg, dg3, fo, a, ft = cols(views, t, n, B)
        dh_a, dc_a = (dh, dc) if n == B else (dh[:, :n], dc[:, :n])
        if w_hr is None:
            dm = dh_a
        else:
            DH[t, :, :n] = dh_a
            dm = torch.mm(w_hr.t(), dh_a)  # (H, n)
        dc_a.addcmul_(dm, a)
        dg3.mul_(dc_a)  # i, f, g from dc  # (3, H, n)
        fo.mul_(dm)  # o from dh
        dc_a.mul_(ft)  # dc_{t-1} = dc_t * f_t
        if t > 0 and maskT is None and n == B:
            torch.addmm(dYT[t - 1], w_hh_t, dg, out=dh_a)  # dh_{t-1} incl. its output grad
        else:
            dh_a.copy_(torch.mm(w_hh_t, dg))
            if maskT is not None:
                dh_a.mul_(maskT[:, :n])
            if t > 0:
                dh_a.add_(dYT[t - 1][:, :n])
        added = n
    if bs is not None:  # factors past each length were never multiplied: clear them
        DG.masked_fill_(~alive(ctx.lengths, T).unsqueeze(1), 0)
    return DG, DH, dh, dc
