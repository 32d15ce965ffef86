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

Under CUDA autocast the scans cast their inputs to float32 and run in float32: the state is
carried through every step, where half-precision rounding would accumulate.

Shape legend: T steps, B batch, H hidden units, P output size of the recurrent state
(P = proj_size for a projected LSTM, else H).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import native
from .activations import Activation


def use_fast_tanh(device: torch.device) -> bool:
    """Whether the LSTM scan computes tanh as 2 sigmoid(2x) - 1 on this device.

    True on CPU, where torch's tanh kernel is about 3x slower than its sigmoid; the result
    differs from tanh by rounding only (about 1e-7 absolute in float32, 1e-16 in float64).
    False elsewhere (GPUs evaluate tanh as fast as sigmoid).
    """
    return torch.device(device).type == "cpu"


_WORKSPACE = threading.local()


def _workspace(name: str, like: Tensor, features: int | None = None) -> Tensor:
    """A scratch (T, F, B) tensor laid out like ``like``, reused across backward passes.

    The backward passes need large temporaries (the gate-gradient buffer is as large as all
    gates of all steps). A fresh buffer of that size costs page faults on first touch, about
    7 ms per 26 MB here, so the last one of each name is kept per thread and reused when the
    next call has the same shape. Contents are undefined: callers overwrite every element.
    ``features`` overrides F. :func:`release_workspace` frees them.
    """
    T, F, B = like.shape
    F = features or F
    bm = like.stride(1) == 1 and B > 1  # batch-major storage (T, B, F)
    opts = dict(dtype=like.dtype, device=like.device)
    key = (T, F, B, bm, like.dtype, like.device)
    cache = _WORKSPACE.__dict__
    hit = cache.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    t = torch.empty(T, B, F, **opts).transpose(1, 2) if bm else torch.empty(T, F, B, **opts)
    if t.numel() * t.element_size() <= native.WORKSPACE_MAX_BYTES:  # keep only moderate buffers
        cache[name] = (key, t)
    else:
        cache.pop(name, None)
    return t


def release_workspace() -> None:
    """Free the scratch buffers the backward passes keep for reuse (this thread's), and the
    buffers the native MinLSTM / MinGRU kernel keeps (those still in use live on with their
    tensors)."""
    _WORKSPACE.__dict__.clear()
    native._workspace.clear()


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
    elif act.name == "relu":  # 1 where y > 0; y >= 0, so that is sign(y)
        torch.sign(y, out=out)
    elif act.name == "linear":
        out.fill_(1)
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


def _project_inputs(x: Tensor, w_ih: Tensor, b: Tensor | None, out: Tensor) -> Tensor:
    """Write ``W_ih x_t + b`` for all steps into ``out``, logical (T, F, B), either storage."""
    T, B, D = x.shape
    F = w_ih.shape[0]
    if batch_major(B):  # storage (T, B, F): one (T*B, D) x (D, F) product
        flat = out.transpose(1, 2).view(T * B, F)
        X2 = x.reshape(T * B, D)
        torch.addmm(b, X2, w_ih.t(), out=flat) if b is not None else torch.mm(X2, w_ih.t(), out=flat)
    else:  # storage (T, F, B): one batched product
        wx = w_ih.expand(T, F, D)
        if b is not None:
            torch.baddbmm(b.view(1, F, 1).expand(T, F, B), wx, x.transpose(1, 2), out=out)
        else:
            torch.bmm(wx, x.transpose(1, 2), out=out)
    return out


def _chunks(T: int, per_step: int, budget: int = 1 << 20):
    """(t0, t1) ranges of steps, sized so a (features, steps*B) block holds about ``budget``
    numbers (1M by default)."""
    step = _chunk_steps(T, per_step, budget)
    return [(t0, min(T, t0 + step)) for t0 in range(0, T, step)]


def _prev_rows(Y: Tensor, h0: Tensor, mask: Tensor | None, t0: int, t1: int) -> Tensor:
    """h_{t-1} for steps t0:t1 as rows ordered (t, b), masked as the loop saw them."""
    hp = Y[t0 - 1 : t1 - 1] if t0 > 0 else torch.cat([h0.unsqueeze(0), Y[: t1 - 1]])  # (k, B, P)
    if mask is not None:
        hp = hp * mask
    return hp.reshape(-1, hp.shape[-1])


def _activate_(act: Activation, v: Tensor, fast: bool, pre: Tensor | None, t: int, n: int, two, one) -> None:
    """Apply ``act`` to step t's block in place, keeping the pre-activation if the backward
    pass needs it. ``fast``: act is tanh, computed as 2 sigmoid(2u) - 1 (see use_fast_tanh)."""
    if fast:
        v.add_(v).sigmoid_().mul_(two).sub_(one)
        return
    if pre is not None:
        pre[t, :, :n] = v
    act.apply_(v)


class _InputGrads:
    """Accumulates dx, dW_ih and the input-side bias gradient chunk by chunk.

    For narrow inputs (D < 64) the products are formed transposed, ``W_ih^T @ block`` and
    ``x^T @ block^T``: MKL is several times slower on products whose result has only a few
    columns than on the transposed ones with a few rows.
    """

    def __init__(self, need, x: Tensor, w_ih: Tensor, has_bias: bool) -> None:
        self.x, self.w_ih = x, w_ih
        self.narrow = x.shape[2] < 64
        self.dx = x.new_empty(x.shape) if need[0] else None  # contiguous (T, B, D)
        shape = (w_ih.shape[1], w_ih.shape[0]) if self.narrow else w_ih.shape
        self.dw = w_ih.new_zeros(shape) if need[1] else None  # (D, F) when narrow, else (F, D)
        self.db = w_ih.new_zeros(w_ih.shape[0]) if (has_bias and need[2]) else None

    def add(self, blk: Tensor, t0: int, t1: int) -> None:
        """Add one chunk's share from its gate-gradient block (F, k*B), steps t0:t1."""
        D = self.x.shape[2]
        if self.dx is not None:
            out = self.dx[t0:t1].view(-1, D)
            if self.narrow:
                out.copy_(torch.mm(self.w_ih.t(), blk).t())
            else:
                torch.mm(blk.t(), self.w_ih, out=out)
        if self.dw is not None:
            xs = self.x[t0:t1].reshape(-1, D)
            self.dw.addmm_(xs.t(), blk.t()) if self.narrow else self.dw.addmm_(blk, xs)
        if self.db is not None:
            self.db.add_(blk.sum(1))

    def result(self) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        dw = self.dw.t().contiguous() if (self.dw is not None and self.narrow) else self.dw
        return self.dx, dw, self.db


_fwd = torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
_bwd = torch.amp.custom_bwd(device_type="cuda")


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
    @_fwd
    def forward(ctx, x, w_ih, b, h0, c0, w_hh, w_hr, mask, batch_sizes, lengths, act, rec_act, fast_tanh=False):
        T, B, _ = x.shape
        H4, P = w_hh.shape
        H = H4 // 4
        full = batch_sizes is None
        opts = dict(dtype=x.dtype, device=x.device)
        buf = _step_buffers(T, B, batch_major(B), torch.empty if full else torch.zeros, opts)
        # Gate pre-activations, input side, all steps: one product  # (T, 4H, B)
        G = _project_inputs(x, w_ih, b, buf(H4, torch.empty))
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
    @_bwd
    def backward(ctx, dY, dh_n, dc_n, _dG, _dC):
        x, w_ih, h0, c0, w_hh, w_hr, mask, G, C, TC, Y, M, pre_if, pre_o, pre_g = ctx.saved_tensors
        act, rec_act = ctx.acts
        bs = ctx.batch_sizes
        T, H4, B = G.shape
        H = H4 // 4
        # Factors for all steps at once, written into the buffer that becomes dL/d(gates)
        # (T, 4H, B), layout i|f|g|o:
        #   dpre_i = dc * g * s'(i)      dpre_f = dc * c_{t-1} * s'(f)
        #   dpre_g = dc * i * act'(g)    dpre_o = dh * act(c) * s'(o)
        DG = _workspace("lstm_dg", G)  # same storage layout as G
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
        A = _deriv_into(act, TC, C, _workspace("lstm_a", TC)).mul_(o)  # dc += dh * o * act'(c)  # (T, H, B)

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
        ig = _InputGrads(need, x, w_ih, ctx.has_bias)
        dw_hh = torch.zeros_like(w_hh) if need[5] else None
        dw_hr = torch.zeros_like(w_hr) if (w_hr is not None and need[6]) else None
        for t0, t1 in _chunks(T, H4 * B):
            blk = _stepwise_columns(DG, t0, t1)  # (4H, k*B)
            ig.add(blk, t0, t1)
            if dw_hh is not None:
                dw_hh.addmm_(blk, _prev_rows(Y, h0, mask, t0, t1))
            if dw_hr is not None:
                dw_hr.addmm_(_stepwise_columns(DH, t0, t1), _stepwise_columns(M, t0, t1).t())
        dx, dw_ih, db = ig.result()
        return dx, dw_ih, db, dh.t(), dc.t(), dw_hh, dw_hr, None, None, None, None, None, None


class GRUScan(torch.autograd.Function):
    """GRU layer, one direction, torch's equations (reset gate applied after W_hn h).

    Same design as :class:`LSTMScan`: logical ``(features, B)`` blocks per step, the input
    projection written into the gate buffer, tanh through sigmoid on CPU.

    Inputs: x (T, B, D); w_ih (3H, D); b_ih (3H,) or None; h0 (B, H); w_hh (3H, H);
    b_hh (3H,) or None; mask (B, H) or None; batch_sizes, lengths, act, rec_act, fast_tanh.
    Outputs: Y (T, B, H), h_n (B, H), and, not differentiable, G (T, B, 3H) activations r|z|n.
    """

    @staticmethod
    @_fwd
    def forward(ctx, x, w_ih, b_ih, h0, w_hh, b_hh, mask, batch_sizes, lengths, act, rec_act, fast_tanh=False):
        T, B, _ = x.shape
        H3, H = w_hh.shape
        full = batch_sizes is None
        opts = dict(dtype=x.dtype, device=x.device)
        buf = _step_buffers(T, B, batch_major(B), torch.empty if full else torch.zeros, opts)
        G = _project_inputs(x, w_ih, b_ih, buf(H3, torch.empty))  # input side, then r|z|n
        HH = buf(H3)  # W_hh h_{t-1} + b_hh
        Y = buf(H)
        fast = fast_tanh and act.name == "tanh"
        pre_rz = buf(2 * H) if rec_act.needs_input else None
        pre_n = buf(H) if (act.needs_input and not fast) else None
        bias = (b_hh if b_hh is not None else x.new_zeros(H3)).unsqueeze(1)  # (3H, 1)
        two, one = torch.tensor(2.0, **opts), torch.tensor(1.0, **opts)
        maskT = mask.t() if mask is not None else None
        views = [G[:, : 2 * H], G[:, :H], G[:, H : 2 * H], G[:, 2 * H :], HH, HH[:, : 2 * H], HH[:, 2 * H :], Y]
        views = [v.unbind(0) for v in views]
        h_prev = h0.t()  # (H, B)
        for t in range(T):
            n = _active(batch_sizes, t, B)
            if n == 0:
                break
            g_rz, gr, gz, gn, hh, hh_rz, hh_n, y = _cols(views, t, n, B)
            hp = h_prev if n == B else h_prev[:, :n]
            h_in = hp if maskT is None else hp * maskT[:, :n]
            torch.addmm(bias, w_hh, h_in, out=hh)  # (3H, n)
            g_rz.add_(hh_rz)
            if pre_rz is not None:
                pre_rz[t, :, :n] = g_rz
            rec_act.apply_(g_rz)
            gn.addcmul_(gr, hh_n)  # x_n + r * (W_hn h + b_hn)
            _activate_(act, gn, fast, pre_n, t, n, two, one)
            torch.sub(hp, gn, out=y)
            torch.addcmul(gn, gz, y, out=y)  # h = n + z * (h_{t-1} - n)
            h_prev = views[7][t]
        if not full:
            G.masked_fill_(~_alive(lengths, T).unsqueeze(1), 0)
        Y_out = Y.transpose(1, 2).contiguous()  # (T, B, H)
        h_n = _final(Y_out, h0, lengths)
        G_out = G.transpose(1, 2)
        ctx.save_for_backward(x, w_ih, h0, w_hh, mask, G, HH, Y_out, pre_rz, pre_n)
        ctx.batch_sizes, ctx.lengths = batch_sizes, lengths
        ctx.acts = (act, rec_act)
        ctx.has_bias = (b_ih is not None, b_hh is not None)
        ctx.mark_non_differentiable(G_out)
        return Y_out, h_n, G_out

    @staticmethod
    @once_differentiable
    @_bwd
    def backward(ctx, dY, dh_n, _dG):
        x, w_ih, h0, w_hh, mask, G, HH, Y, pre_rz, pre_n = ctx.saved_tensors
        act, rec_act = ctx.acts
        bs = ctx.batch_sizes
        T, H3, B = G.shape
        H = H3 // 3
        r, z, n_ = G.split(H, dim=1)
        # Factors  # (T, 3H, B) = [Fr | Fz | Fn], turned in place into d(input side) [dr | dz | dn]:
        #   dn_pre = dh * (1 - z) * act'(n)            = dh * Fn
        #   dz_pre = dh * (h_{t-1} - n) * s'(z)        = dh * Fz
        #   dr_pre = dn_pre * (W_hn h + b_hn) * s'(r)  = dn_pre * Fr
        DX = _workspace("gru_dx", G)
        Fr, Fz, Fn = DX.split(H, dim=1)
        if pre_rz is None:
            _deriv_into(rec_act, G[:, : 2 * H], None, DX[:, : 2 * H])
        else:
            DX[:, : 2 * H] = rec_act.grad(G[:, : 2 * H], pre_rz)
        Fr.mul_(HH[:, 2 * H :])
        Yt = Y.transpose(1, 2)  # (T, H, B)
        Fz[1:].mul_(Yt[:-1] - n_[1:])
        Fz[0].mul_(h0.t() - n_[0])
        _deriv_into(act, n_, pre_n, Fn).mul_(1 - z)
        DHN = _workspace("gru_dhn", G, H)  # dn_pre * r  # (T, H, B)

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
            n = _active(bs, t, B)
            if n == 0:
                continue
            if added < n:
                dh[:, added:n].add_(dYT[t][:, added:n])
            d_zn, fr, dn, d_rz, dhn, rt, zt = _cols(views, t, n, B)
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
            dead = ~_alive(ctx.lengths, T).unsqueeze(1)
            DX.masked_fill_(dead, 0)
            DHN.masked_fill_(dead, 0)

        need = ctx.needs_input_grad
        ig = _InputGrads(need, x, w_ih, ctx.has_bias[0])
        dw_hh = torch.zeros_like(w_hh) if need[4] else None
        db_hh = DX.new_zeros(H3) if (ctx.has_bias[1] and need[5]) else None
        for t0, t1 in _chunks(T, H3 * B):
            blk = _stepwise_columns(DX, t0, t1)  # (3H, k*B)
            ig.add(blk, t0, t1)
            if dw_hh is not None or db_hh is not None:
                blk_n = _stepwise_columns(DHN, t0, t1)  # (H, k*B)
                if dw_hh is not None:
                    hp = _prev_rows(Y, h0, mask, t0, t1)
                    dw_hh[: 2 * H].addmm_(blk[: 2 * H], hp)
                    dw_hh[2 * H :].addmm_(blk_n, hp)
                if db_hh is not None:
                    db_hh[: 2 * H].add_(blk[: 2 * H].sum(1))
                    db_hh[2 * H :].add_(blk_n.sum(1))
        dx, dw_ih, db_ih = ig.result()
        return dx, dw_ih, db_ih, dh.t(), dw_hh, db_hh, None, None, None, None, None, None


class RNNScan(torch.autograd.Function):
    """Elman RNN layer, one direction: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    Inputs: x (T, B, D); w_ih (H, D); b (H,) = b_ih + b_hh or None; h0 (B, H); w_hh (H, H);
    mask (B, H) or None; batch_sizes, lengths, act, fast_tanh. Outputs: Y (T, B, H), h_n (B, H).
    """

    @staticmethod
    @_fwd
    def forward(ctx, x, w_ih, b, h0, w_hh, mask, batch_sizes, lengths, act, fast_tanh=False):
        T, B, _ = x.shape
        H = w_hh.shape[0]
        full = batch_sizes is None
        opts = dict(dtype=x.dtype, device=x.device)
        buf = _step_buffers(T, B, batch_major(B), torch.empty if full else torch.zeros, opts)
        Y = _project_inputs(x, w_ih, b, buf(H, torch.empty))  # input side, then h
        fast = fast_tanh and act.name == "tanh"
        pre = buf(H) if (act.needs_input and not fast) else None
        two, one = torch.tensor(2.0, **opts), torch.tensor(1.0, **opts)
        maskT = mask.t() if mask is not None else None
        Ys = Y.unbind(0)
        h_prev = h0.t()  # (H, B)
        for t in range(T):
            n = _active(batch_sizes, t, B)
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
            _activate_(act, y, fast, pre, t, n, two, one)
            h_prev = Ys[t]
        if not full:
            Y.masked_fill_(~_alive(lengths, T).unsqueeze(1), 0)
        Y_out = Y.transpose(1, 2).contiguous()  # (T, B, H)
        h_n = _final(Y_out, h0, lengths)
        ctx.save_for_backward(x, w_ih, h0, w_hh, mask, Y, Y_out, pre)
        ctx.batch_sizes, ctx.lengths = batch_sizes, lengths
        ctx.act = act
        ctx.has_bias = b is not None
        return Y_out, h_n

    @staticmethod
    @once_differentiable
    @_bwd
    def backward(ctx, dY, dh_n):
        x, w_ih, h0, w_hh, mask, Y, Y_out, pre = ctx.saved_tensors
        bs = ctx.batch_sizes
        T, H, B = Y.shape
        DP = _deriv_into(ctx.act, Y, pre, _workspace("rnn_dp", Y))  # act'(pre), then d pre  # (T, H, B)
        bm = batch_major(B)
        dh = dh_n.clone().t() if bm else dh_n.t().contiguous()  # (H, B)
        maskT = mask.t() if mask is not None else None
        w_hh_t = w_hh.t().contiguous()
        DPs = DP.unbind(0)
        dYT = dY.transpose(1, 2)
        added = 0
        for t in range(T - 1, -1, -1):
            n = _active(bs, t, B)
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
            DP.masked_fill_(~_alive(ctx.lengths, T).unsqueeze(1), 0)
        need = ctx.needs_input_grad
        ig = _InputGrads(need, x, w_ih, ctx.has_bias)
        dw_hh = torch.zeros_like(w_hh) if need[4] else None
        for t0, t1 in _chunks(T, H * B):
            blk = _stepwise_columns(DP, t0, t1)  # (H, k*B)
            ig.add(blk, t0, t1)
            if dw_hh is not None:
                dw_hh.addmm_(blk, _prev_rows(Y_out, h0, mask, t0, t1))
        dx, dw_ih, db = ig.result()
        return dx, dw_ih, db, dh.t(), dw_hh, None, None, None, None, None


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
