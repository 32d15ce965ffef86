"""The transparent engine: one recurrent layer, one direction, with a hand-written BPTT.

Each scan is a ``torch.autograd.Function``. Its forward runs the step loop, storing the gate
activations (which the backward pass and the gate trace both need); its backward runs the
loop backwards in time and forms the weight gradients as single matrix products after the
loop. Work that does not depend on the previous step is done outside the loop:

* the input projection ``x_t W_ih^T + b`` for all steps is one matrix product, done by the
  caller under ordinary autograd (so ``dW_ih``, ``db`` and ``dx`` are single products too);
* the backward pass first computes, for all steps at once, the factors that multiply the
  incoming gradients (activation derivatives times partner values), so each backward step
  is a handful of element-wise operations and one matrix product.

Layout inside this module is time-major: ``(T, B, features)``. Variable lengths are given as
``batch_sizes`` (as in a PackedSequence): the batch is sorted by length, longest first, and
at step t only the first ``batch_sizes[t]`` rows are active; the state of the other rows is
left untouched, their outputs stay zero. Reversed directions are handled by the caller,
which reverses each sequence within its length (see :func:`reverse_padded`).

Shape legend: T steps, B batch, H hidden units, P output size of the recurrent state
(P = proj_size for a projected LSTM, else H).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .activations import Activation


def use_fast_tanh(device: torch.device) -> bool:
    """Whether the LSTM scan computes tanh as 2 sigmoid(2x) - 1 on this device.

    True on CPU, where torch's tanh kernel is about 3x slower than its sigmoid; the result
    differs from tanh by rounding only (about 1e-7 absolute in float32, 1e-16 in float64).
    False elsewhere (GPUs evaluate tanh as fast as sigmoid).
    """
    return torch.device(device).type == "cpu"


def _active(batch_sizes: Sequence[int] | None, t: int, B: int) -> int:
    return B if batch_sizes is None else batch_sizes[t]


def _alive(lengths: Tensor, T: int) -> Tensor:
    """(T, B) bool: step t is within sequence b."""
    return torch.arange(T, device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)


def _final(Y: Tensor, h0: Tensor, lengths: Tensor | None) -> Tensor:
    """State after each row's last valid step: Y[len-1, b], or h0[b] when len == 0."""
    if lengths is None:
        return Y[-1].clone()
    rows = torch.arange(Y.shape[1], device=Y.device)
    last = Y[(lengths - 1).clamp(min=0), rows]  # (B, P)
    return torch.where((lengths > 0).unsqueeze(1), last, h0)


def _shifted(first: Tensor, seq: Tensor) -> Tensor:
    """The previous-step sequence: [first, seq[0], ..., seq[T-2]]  # (T, B, X)"""
    return torch.cat([first.unsqueeze(0), seq[:-1]], 0)


def _cols(views, t: int, n: int, B: int):
    """The active columns of each per-step view: all of them when n == B."""
    if n == B:
        return [v[t] for v in views]
    return [v[t][..., :n] for v in views]


def _deriv_into(act: Activation, y: Tensor, x: Tensor | None, out: Tensor) -> Tensor:
    """out = act'(x) where y = act(x), in place for sigmoid and tanh (no temporaries)."""
    if act.name == "sigmoid":  # y (1 - y)
        torch.neg(y, out=out).add_(1).mul_(y)
    elif act.name == "tanh":  # 1 - y^2
        torch.mul(y, y, out=out).neg_().add_(1)
    else:
        out.copy_(act.grad(y, x))
    return out


def batch_major(B: int) -> bool:
    """Storage layout of the LSTM scan's per-step buffers for batch size B.

    Per step, the scan works on logical ``(features, B)`` blocks. For B >= 32 they are stored
    feature-major (each gate a contiguous block; fastest element-wise work). For smaller
    batches they are stored batch-major ``(B, features)`` and used through transposed views:
    MKL's product with only a few columns is several times slower than with few rows.
    """
    return B < 32


def _step_buffers(T: int, B: int, bm: bool, alloc, opts):
    """Allocator of logical (T, F, B) buffers in the chosen storage layout."""

    def buf(F: int, how=None) -> Tensor:
        how = how or alloc
        return how(T, B, F, **opts).transpose(1, 2) if bm else how(T, F, B, **opts)

    return buf


def _chunk_steps(T: int, per_step: int, budget: int = 1 << 20) -> int:
    """Steps per chunk so that a (features, steps*B) block holds about ``budget`` numbers."""
    return max(1, min(T, budget // max(per_step, 1)))


def _stepwise_columns(X: Tensor, t0: int, t1: int) -> Tensor:
    """(T, F, B) steps t0:t1 as one (F, (t1-t0)*B) matrix, columns ordered (t, b)."""
    return X[t0:t1].permute(1, 0, 2).reshape(X.shape[1], -1)


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
    def forward(ctx, x, w_ih, b, h0, c0, w_hh, w_hr, mask, batch_sizes, lengths, act, rec_act, fast_tanh=False):
        T, B, D = x.shape
        H4, P = w_hh.shape
        H = H4 // 4
        full = batch_sizes is None
        opts = dict(dtype=x.dtype, device=x.device)
        buf = _step_buffers(T, B, batch_major(B), torch.empty if full else torch.zeros, opts)
        # Gate pre-activations, input side, all steps: one product  # (T, 4H, B)
        G = buf(H4, torch.empty)
        if batch_major(B):  # storage (T, B, 4H)
            Gs = G.transpose(1, 2).view(T * B, H4)
            X2 = x.reshape(T * B, D)
            torch.addmm(b, X2, w_ih.t(), out=Gs) if b is not None else torch.mm(X2, w_ih.t(), out=Gs)
        else:  # storage (T, 4H, B)
            wx = w_ih.expand(T, H4, D)
            if b is not None:
                torch.baddbmm(b.view(1, H4, 1).expand(T, H4, B), wx, x.transpose(1, 2), out=G)
            else:
                torch.bmm(wx, x.transpose(1, 2), out=G)
        C = buf(H)  # cell states (2c while the fast loop runs)
        TC = buf(H)  # act(c)
        Y = buf(P)  # h
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
            n = _active(batch_sizes, t, B)
            if n == 0:
                break
            g, g_if, gi, gf, gg, go, c, tc, y, *m = _cols(views, t, n, B)
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
        if not full:  # columns past each length hold input projections: clear them
            G.masked_fill_(~_alive(lengths, T).unsqueeze(1), 0)
        Y_out = Y.transpose(1, 2).contiguous()  # (T, B, P)
        h_n = _final(Y_out, h0, lengths)
        c_n = _final(C.transpose(1, 2), c0, lengths)
        G_out, C_out = G.transpose(1, 2), C.transpose(1, 2)
        ctx.save_for_backward(x, w_ih, h0, c0, w_hh, w_hr, mask, G, C, TC, Y_out, M, pre_if, pre_o, pre_g)
        ctx.batch_sizes, ctx.lengths = batch_sizes, lengths
        ctx.acts = (act, rec_act)
        ctx.has_bias = b is not None
        ctx.mark_non_differentiable(G_out, C_out)
        return Y_out, h_n, c_n, G_out, C_out

    @staticmethod
    @once_differentiable
    def backward(ctx, dY, dh_n, dc_n, _dG, _dC):
        x, w_ih, h0, c0, w_hh, w_hr, mask, G, C, TC, Y, M, pre_if, pre_o, pre_g = ctx.saved_tensors
        act, rec_act = ctx.acts
        bs = ctx.batch_sizes
        T, H4, B = G.shape
        H, P, D = H4 // 4, w_hh.shape[1], x.shape[2]
        # Factors for all steps at once, written into the buffer that becomes dL/d(gates)
        # (T, 4H, B), layout i|f|g|o:
        #   dpre_i = dc * g * s'(i)      dpre_f = dc * c_{t-1} * s'(f)
        #   dpre_g = dc * i * act'(g)    dpre_o = dh * act(c) * s'(o)
        DG = torch.empty_like(G)  # same storage layout as G
        i, f, g, o = G.split(H, dim=1)
        Fi, Ff, Fg, Fo = DG.split(H, dim=1)
        if pre_if is None:
            _deriv_into(rec_act, G[:, : 2 * H], None, DG[:, : 2 * H])
            _deriv_into(rec_act, o, None, Fo)
        else:
            DG[:, : 2 * H] = rec_act.grad(G[:, : 2 * H], pre_if)
            Fo.copy_(rec_act.grad(o, pre_o))
        _deriv_into(act, g, pre_g, Fg)
        Fi.mul_(g)
        Ff[1:].mul_(C[:-1])
        Ff[0].mul_(c0.t())
        Fg.mul_(i)
        Fo.mul_(TC)
        A = _deriv_into(act, TC, C, torch.empty_like(TC)).mul_(o)  # dc += dh * o * act'(c)  # (T, H, B)

        DH = torch.zeros_like(Y.transpose(1, 2)) if w_hr is not None else None  # dh_t, for dW_hr  # (T, P, B)
        bm = batch_major(B)
        dh = dh_n.clone().t() if bm else dh_n.t().contiguous()  # running dL/dh_t  # (P, B)
        dc = dc_n.clone().t() if bm else dc_n.t().contiguous()  # running dL/dc_t  # (H, B)
        maskT = mask.t() if mask is not None else None
        views = [DG, DG[:, : 3 * H].unflatten(1, (3, H)), Fo, A, f]
        views = [v.unbind(0) for v in views]
        dYT = dY.transpose(1, 2)  # (T, P, B) view; rows are read as strided blocks
        w_hh_t = w_hh.t()
        added = 0  # rows of dY[t] already in dh (folded into the previous step's product)
        for t in range(T - 1, -1, -1):
            n = _active(bs, t, B)
            if n == 0:
                continue
            if added < n:
                dh[:, added:n].add_(dYT[t][:, added:n])
            dg, dg3, fo, a, ft = _cols(views, t, n, B)
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
            DG.masked_fill_(~_alive(ctx.lengths, T).unsqueeze(1), 0)

        # Weight gradients: sums over steps of products with the step inputs, done in
        # chunks of steps so each product is large and the reordering copy stays small.
        need = ctx.needs_input_grad
        dx = x.new_empty(x.shape) if need[0] else None  # contiguous (T, B, D)
        dw_ih = torch.zeros_like(w_ih) if need[1] else None
        db = DG.new_zeros(H4) if (ctx.has_bias and need[2]) else None
        dw_hh = torch.zeros_like(w_hh) if need[5] else None
        dw_hr = torch.zeros_like(w_hr) if (w_hr is not None and need[6]) else None
        step = _chunk_steps(T, H4 * B)
        for t0 in range(0, T, step):
            t1 = min(T, t0 + step)
            blk = _stepwise_columns(DG, t0, t1)  # (4H, k*B)
            if dx is not None:
                torch.mm(blk.t(), w_ih, out=dx[t0:t1].view(-1, D))
            if dw_ih is not None:
                dw_ih.addmm_(blk, x[t0:t1].reshape(-1, D))
            if db is not None:
                db.add_(blk.sum(1))
            if dw_hh is not None:
                hp = Y[t0 - 1 : t1 - 1] if t0 > 0 else torch.cat([h0.unsqueeze(0), Y[: t1 - 1]])  # (k, B, P)
                if mask is not None:
                    hp = hp * mask
                dw_hh.addmm_(blk, hp.reshape(-1, P))
            if dw_hr is not None:
                dw_hr.addmm_(_stepwise_columns(DH, t0, t1), _stepwise_columns(M, t0, t1).t())
        return dx, dw_ih, db, dh.t(), dc.t(), dw_hh, dw_hr, None, None, None, None, None, None


class GRUScan(torch.autograd.Function):
    """GRU layer, one direction, torch's equations (reset gate applied after W_hn h).

    Inputs: xp (T, B, 3H) = x W_ih^T + b_ih (layout r|z|n); h0 (B, H); w_hh (3H, H);
    b_hh (3H,) or None; mask (B, H) recurrent-dropout mask or None.
    Outputs: Y (T, B, H), h_n (B, H), and, not differentiable, G (T, B, 3H) activations r|z|n.
    """

    @staticmethod
    def forward(ctx, xp, h0, w_hh, b_hh, mask, batch_sizes, lengths, act, rec_act):
        T, B, H3 = xp.shape
        H = H3 // 3
        full = batch_sizes is None
        alloc = torch.empty if full else torch.zeros
        opts = dict(dtype=xp.dtype, device=xp.device)
        G = alloc(T, B, 3 * H, **opts)  # r|z|n activations
        HH = alloc(T, B, 3 * H, **opts)  # h_{t-1} W_hh^T + b_hh
        Y = alloc(T, B, H, **opts)
        pre_rz = alloc(T, B, 2 * H, **opts) if rec_act.needs_input else None
        pre_n = alloc(T, B, H, **opts) if act.needs_input else None
        bias = b_hh if b_hh is not None else xp.new_zeros(3 * H)
        w_hh_t = w_hh.t()
        h_prev = h0
        for t in range(T):
            n = _active(batch_sizes, t, B)
            if n == 0:
                break
            h_in = h_prev[:n] if mask is None else h_prev[:n] * mask[:n]
            hh, g = HH[t, :n], G[t, :n]
            torch.addmm(bias, h_in, w_hh_t, out=hh)
            torch.add(xp[t, :n, : 2 * H], hh[:, : 2 * H], out=g[:, : 2 * H])
            if pre_rz is not None:
                pre_rz[t, :n] = g[:, : 2 * H]
            rec_act.apply_(g[:, : 2 * H])
            nn_ = g[:, 2 * H :]
            torch.addcmul(xp[t, :n, 2 * H :], g[:, :H], hh[:, 2 * H :], out=nn_)  # x_n + r*(W_hn h + b_hn)
            if pre_n is not None:
                pre_n[t, :n] = nn_
            act.apply_(nn_)
            y = Y[t, :n]
            torch.sub(h_prev[:n], nn_, out=y)
            torch.addcmul(nn_, g[:, H : 2 * H], y, out=y)  # h = n + z * (h_{t-1} - n)
            h_prev = Y[t]
        h_n = _final(Y, h0, lengths)
        ctx.save_for_backward(h0, w_hh, b_hh, mask, G, HH, Y, pre_rz, pre_n)
        ctx.batch_sizes = batch_sizes
        ctx.acts = (act, rec_act)
        ctx.mark_non_differentiable(G)
        return Y, h_n, G

    @staticmethod
    @once_differentiable
    def backward(ctx, dY, dh_n, _dG):
        h0, w_hh, b_hh, mask, G, HH, Y, pre_rz, pre_n = ctx.saved_tensors
        act, rec_act = ctx.acts
        batch_sizes = ctx.batch_sizes
        T, B, H3 = G.shape
        H = H3 // 3
        dY = dY.contiguous()
        _r, z, n_ = G.split(H, dim=-1)
        H_prev = _shifted(h0, Y)  # (T, B, H)
        d_rz = rec_act.grad(G[..., : 2 * H], pre_rz)
        # Factors  # (T, B, 3H), layout [Fr | Fz | Fn]:
        #   dn_pre = dh * (1 - z) * act'(n)        = dh * Fn
        #   dz_pre = dh * (h_{t-1} - n) * s'(z)    = dh * Fz
        #   dr_pre = dn_pre * (W_hn h + b_hn) * s'(r) = dn_pre * Fr
        Fk = torch.empty_like(G)
        torch.mul(HH[..., 2 * H :], d_rz[..., :H], out=Fk[..., :H])
        torch.mul(H_prev - n_, d_rz[..., H:], out=Fk[..., H : 2 * H])
        torch.mul(1 - z, act.grad(n_, pre_n), out=Fk[..., 2 * H :])
        del d_rz

        DX = torch.zeros_like(G)  # d xp  (r|z|n pre-activations on the input side)
        DHH = torch.zeros_like(G)  # d (h W_hh^T + b_hh)
        dh = dh_n.clone()
        tmp = torch.empty_like(dh)
        for t in range(T - 1, -1, -1):
            n = _active(batch_sizes, t, B)
            if n == 0:
                continue
            dh_a, dx, dhh = dh[:n], DX[t, :n], DHH[t, :n]
            dh_a.add_(dY[t, :n])
            torch.mul(Fk[t, :n, H:].view(n, 2, H), dh_a.unsqueeze(1), out=dx[:, H:].view(n, 2, H))
            torch.mul(dx[:, 2 * H :], Fk[t, :n, :H], out=dx[:, :H])  # dr_pre
            dhh[:, : 2 * H] = dx[:, : 2 * H]
            torch.mul(dx[:, 2 * H :], G[t, :n, :H], out=dhh[:, 2 * H :])  # dn_pre * r
            torch.mm(dhh, w_hh, out=tmp[:n])
            if mask is not None:
                tmp[:n].mul_(mask[:n])
            torch.addcmul(tmp[:n], dh_a, G[t, :n, H : 2 * H], out=dh_a)  # + dh * z

        dw_hh = db_hh = None
        if ctx.needs_input_grad[2]:
            Hm = H_prev * mask if mask is not None else H_prev
            dw_hh = DHH.reshape(-1, 3 * H).t().mm(Hm.reshape(-1, H))
        if b_hh is not None and ctx.needs_input_grad[3]:
            db_hh = DHH.sum((0, 1))
        return DX, dh, dw_hh, db_hh, None, None, None, None, None


class RNNScan(torch.autograd.Function):
    """Elman RNN layer, one direction: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

    Inputs: xp (T, B, H) input projection incl. both biases; h0 (B, H); w_hh (H, H);
    mask (B, H) or None. Outputs: Y (T, B, H), h_n (B, H).
    """

    @staticmethod
    def forward(ctx, xp, h0, w_hh, mask, batch_sizes, lengths, act):
        T, B, H = xp.shape
        alloc = torch.empty if batch_sizes is None else torch.zeros
        Y = alloc(T, B, H, dtype=xp.dtype, device=xp.device)
        pre = alloc(T, B, H, dtype=xp.dtype, device=xp.device) if act.needs_input else None
        w_hh_t = w_hh.t()
        h_prev = h0
        for t in range(T):
            n = _active(batch_sizes, t, B)
            if n == 0:
                break
            h_in = h_prev[:n] if mask is None else h_prev[:n] * mask[:n]
            y = Y[t, :n]
            torch.addmm(xp[t, :n], h_in, w_hh_t, out=y)
            if pre is not None:
                pre[t, :n] = y
            act.apply_(y)
            h_prev = Y[t]
        h_n = _final(Y, h0, lengths)
        ctx.save_for_backward(h0, w_hh, mask, Y, pre)
        ctx.batch_sizes = batch_sizes
        ctx.act = act
        return Y, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, dY, dh_n):
        h0, w_hh, mask, Y, pre = ctx.saved_tensors
        batch_sizes = ctx.batch_sizes
        T, B, H = Y.shape
        dY = dY.contiguous()
        Fk = ctx.act.grad(Y, pre)  # act'(pre)  # (T, B, H)
        DP = torch.zeros_like(Y)
        dh = dh_n.clone()
        for t in range(T - 1, -1, -1):
            n = _active(batch_sizes, t, B)
            if n == 0:
                continue
            dh_a = dh[:n]
            dh_a.add_(dY[t, :n])
            torch.mul(dh_a, Fk[t, :n], out=DP[t, :n])
            torch.mm(DP[t, :n], w_hh, out=dh_a)
            if mask is not None:
                dh_a.mul_(mask[:n])
        dw_hh = None
        if ctx.needs_input_grad[2]:
            H_prev = _shifted(h0, Y)
            if mask is not None:
                H_prev = H_prev * mask
            dw_hh = DP.reshape(-1, H).t().mm(H_prev.reshape(-1, H))
        return DP, dh, dw_hh, None, None, None, None


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of a time-major batch within its own length.

    Positions past a sequence's length stay where they are. The map is its own inverse, so
    the same call turns a reversed direction's outputs back into input order.  # (T, B, X)
    """
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    L = lengths.to(x.device).unsqueeze(0)  # (1, B)
    idx = torch.where(t < L, L - 1 - t, t)  # (T, B)
    return x.gather(0, idx.unsqueeze(-1).expand_as(x))
