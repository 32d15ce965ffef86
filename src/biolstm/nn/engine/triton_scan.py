"""The LSTM, GRU and RNN step loops on CUDA as Triton kernels: one launch forward, one backward.

On a GPU the PyTorch step loop launches a handful of small kernels per step from Python, and
at small batches the launches, not the arithmetic, set the time. Here each kernel is
*persistent* over time, as in FlashRNN and haste: a program owns a block of batch rows and
every hidden unit of them, and walks all T steps itself. Per step it forms the recurrent
product ``h_{t-1} W_hh^T`` tile by tile with ``tl.dot`` (in IEEE float32, not TF32: the state
is carried through every step), adds the step's input side, applies the gates and the cell
update, and stores the gate activations, the cell state, act(c) and h, which the gate trace
and the backward kernel read. The state goes through global memory between steps (a barrier
orders the program's own writes and reads); the rows of different programs never meet, so no
program waits for another. Backward walks the steps in reverse the same way, writing the
gradients of the gate pre-activations; the weight and input gradients remain single large
products after the loop (:mod:`.lstm`).

Layouts and functions as in ``kernels/scan.c`` and :mod:`biolstm.nn.native.scan`: for the
LSTM, G (T, B, 4H) gates i | f | g | o, input side in and activations out, C, TC, Y (T, B, H);
for the GRU, G (T, B, 3H) r | z | n and HH (T, B, 3H) = W_hh h + b_hh; for the RNN, Y (T, B, H)
input side in, outputs out; h0, c0, mask, dh, dc (B, H); all contiguous. Variable lengths come
as the non-increasing batch sizes per step (int32, T). The activations are those the C kernel
knows (:data:`biolstm.nn.native.scan.ACTIVATIONS`).

Without a GPU the kernels run in Triton's interpreter (``TRITON_INTERPRET=1``, set before
this module is imported), which is how the tests check them against the float64 PyTorch loop.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..native.scan import ACTIVATIONS


@triton.jit
def _act(x, A: tl.constexpr):
    if A == 0:  # sigmoid
        return tl.sigmoid(x)
    elif A == 1:  # tanh
        return 2.0 * tl.sigmoid(2.0 * x) - 1.0
    elif A == 2:  # relu
        return tl.where(x > 0.0, x, 0.0)
    elif A == 4:  # hard sigmoid: relu6(x + 3) / 6
        return tl.minimum(tl.maximum(x + 3.0, 0.0), 6.0) / 6.0
    else:  # linear
        return x


@triton.jit
def _deriv(y, A: tl.constexpr):
    """The derivative of activation A at the input that gave output y."""
    if A == 0:
        return y * (1.0 - y)
    elif A == 1:
        return 1.0 - y * y
    elif A == 2:
        return tl.where(y > 0.0, 1.0, 0.0)
    elif A == 4:
        return tl.where((y > 0.0) & (y < 1.0), 1.0 / 6.0, 0.0)
    else:
        return y * 0.0 + 1.0


@triton.jit
def _live_rows(rows, BS, t, B, HAS_BS: tl.constexpr):
    """Which of ``rows`` step t runs: those below its batch size."""
    n = B
    if HAS_BS:
        n = tl.load(BS + t)
    return rows < n


@triton.jit
def _dh_in(dh, dY, t, sdt, sdb, sdj, rows, j, tile, H):
    """dL/dh_t at (rows, j): what came back from step t + 1 plus the output's own gradient."""
    d_h = tl.load(dh + rows[:, None] * H + j[None, :], mask=tile, other=0.0)
    return d_h + tl.load(dY + tl.cast(t, tl.int64) * sdt + rows[:, None] * sdb + j[None, :] * sdj, mask=tile, other=0.0)


@triton.jit
def _times_w(A, K, W, rows, j, live, H, BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr):
    """A (rows of K, contiguous) W (K x H) at columns j: dL/dh_{t-1} from the gate gradients."""
    ks = tl.arange(0, BK)
    acc = tl.zeros((BB, BH), dtype=tl.float32)
    for k0 in range(0, K, BK):
        k = k0 + ks
        a = tl.load(A + rows[:, None] * K + k[None, :], mask=live[:, None] & (k[None, :] < K), other=0.0)
        w = tl.load(W + k[:, None] * H + j[None, :], mask=(k[:, None] < K) & (j[None, :] < H), other=0.0)
        acc += tl.dot(a, w, input_precision="ieee")
    return acc


@triton.jit
def _lstm_forward(G, C, TC, Y, h0, c0, W, M, BS, T, B, H, HAS_MASK: tl.constexpr, HAS_BS: tl.constexpr,
                  ACT: tl.constexpr, REC: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr):
    rows = tl.program_id(0) * BB + tl.arange(0, BB)  # (BB,)
    cols = tl.arange(0, BH)
    ks = tl.arange(0, BK)
    for t32 in range(0, T):
        t = tl.cast(t32, tl.int64)  # offsets t * B * H pass 2^31 in large buffers
        live = _live_rows(rows, BS, t, B, HAS_BS)
        for j0 in range(0, H, BH):
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            g_at = G + t * B * 4 * H + rows[:, None] * (4 * H) + j[None, :]
            ai = tl.load(g_at, mask=tile, other=0.0)
            af = tl.load(g_at + H, mask=tile, other=0.0)
            ag = tl.load(g_at + 2 * H, mask=tile, other=0.0)
            ao = tl.load(g_at + 3 * H, mask=tile, other=0.0)
            for k0 in range(0, H, BK):  # + h_{t-1} W_hh^T, one k tile at a time
                k = k0 + ks
                hk = live[:, None] & (k[None, :] < H)
                if t == 0:
                    hp = tl.load(h0 + rows[:, None] * H + k[None, :], mask=hk, other=0.0)
                else:
                    hp = tl.load(Y + (t - 1) * B * H + rows[:, None] * H + k[None, :], mask=hk, other=0.0)
                if HAS_MASK:
                    hp = hp * tl.load(M + rows[:, None] * H + k[None, :], mask=hk, other=0.0)
                wk = (k[:, None] < H) & (j[None, :] < H)
                w_at = W + j[None, :] * H + k[:, None]  # W_hh[gate * H + j, k], as (k, j)
                ai += tl.dot(hp, tl.load(w_at, mask=wk, other=0.0), input_precision="ieee")
                af += tl.dot(hp, tl.load(w_at + H * H, mask=wk, other=0.0), input_precision="ieee")
                ag += tl.dot(hp, tl.load(w_at + 2 * H * H, mask=wk, other=0.0), input_precision="ieee")
                ao += tl.dot(hp, tl.load(w_at + 3 * H * H, mask=wk, other=0.0), input_precision="ieee")
            i = _act(ai, REC)
            f = _act(af, REC)
            g = _act(ag, ACT)
            o = _act(ao, REC)
            s_at = rows[:, None] * H + j[None, :]
            if t == 0:
                cp = tl.load(c0 + s_at, mask=tile, other=0.0)
            else:
                cp = tl.load(C + (t - 1) * B * H + s_at, mask=tile, other=0.0)
            c = f * cp + i * g
            tc = _act(c, ACT)
            tl.store(g_at, i, mask=tile)
            tl.store(g_at + H, f, mask=tile)
            tl.store(g_at + 2 * H, g, mask=tile)
            tl.store(g_at + 3 * H, o, mask=tile)
            tl.store(C + t * B * H + s_at, c, mask=tile)
            tl.store(TC + t * B * H + s_at, tc, mask=tile)
            tl.store(Y + t * B * H + s_at, o * tc, mask=tile)
        tl.debug_barrier()  # step t's h and c are stored before step t + 1 reads them


@triton.jit
def _lstm_backward(G, C, TC, c0, W, M, BS, dY, sdt, sdb, sdj, DG, dh, dc, T, B, H, HAS_MASK: tl.constexpr,
                   HAS_BS: tl.constexpr, ACT: tl.constexpr, REC: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr,
                   BK: tl.constexpr):
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    cols = tl.arange(0, BH)
    inside = rows < B
    for s in range(0, T):
        t = tl.cast(T - 1 - s, tl.int64)  # offsets t * B * H pass 2^31 in large buffers
        live = _live_rows(rows, BS, t, B, HAS_BS)
        # element-wise: the gate gradients of step t, and dc_{t-1}
        for j0 in range(0, H, BH):
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            dead = (inside & ~live)[:, None] & (j[None, :] < H)
            s_at = rows[:, None] * H + j[None, :]
            g_at = t * B * 4 * H + rows[:, None] * (4 * H) + j[None, :]
            d_h = _dh_in(dh, dY, t, sdt, sdb, sdj, rows, j, tile, H)
            i = tl.load(G + g_at, mask=tile, other=0.0)
            f = tl.load(G + g_at + H, mask=tile, other=0.0)
            g = tl.load(G + g_at + 2 * H, mask=tile, other=0.0)
            o = tl.load(G + g_at + 3 * H, mask=tile, other=0.0)
            tc = tl.load(TC + t * B * H + s_at, mask=tile, other=0.0)
            if t == 0:
                cp = tl.load(c0 + s_at, mask=tile, other=0.0)
            else:
                cp = tl.load(C + (t - 1) * B * H + s_at, mask=tile, other=0.0)
            d_c = tl.load(dc + s_at, mask=tile, other=0.0) + d_h * o * _deriv(tc, ACT)
            tl.store(DG + g_at, d_c * g * _deriv(i, REC), mask=tile)
            tl.store(DG + g_at + H, d_c * cp * _deriv(f, REC), mask=tile)
            tl.store(DG + g_at + 2 * H, d_c * i * _deriv(g, ACT), mask=tile)
            tl.store(DG + g_at + 3 * H, d_h * tc * _deriv(o, REC), mask=tile)
            zero = tl.zeros((BB, BH), dtype=tl.float32)
            for q in range(0, 4):  # rows past their length: zero gradients
                tl.store(DG + g_at + q * H, zero, mask=dead)
            tl.store(dc + s_at, d_c * f, mask=tile)
        tl.debug_barrier()
        # dh_{t-1} = dG_t W_hh (through the mask), tile by tile over the 4H gate columns
        for j0 in range(0, H, BH):
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            acc = _times_w(DG + t * B * 4 * H, 4 * H, W, rows, j, live, H, BB, BH, BK)
            s_at = rows[:, None] * H + j[None, :]
            if HAS_MASK:
                acc = acc * tl.load(M + s_at, mask=tile, other=0.0)
            tl.store(dh + s_at, acc, mask=tile)
        tl.debug_barrier()


@triton.jit
def _state_tile(Y, h0, t, B, H, rows, cols, live):
    """h_{t-1} at (rows, cols): h0 at t = 0, else step t - 1 of Y (one return: inlined into loops)."""
    at = rows[:, None] * H + cols[None, :]
    m = live[:, None] & (cols[None, :] < H)
    if t == 0:
        h = tl.load(h0 + at, mask=m, other=0.0)
    else:
        h = tl.load(Y + (tl.cast(t, tl.int64) - 1) * B * H + at, mask=m, other=0.0)
    return h


@triton.jit
def _gru_forward(G, HH, Y, h0, W, bhh, M, BS, T, B, H, HAS_BIAS: tl.constexpr, HAS_MASK: tl.constexpr,
                 HAS_BS: tl.constexpr, ACT: tl.constexpr, REC: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr,
                 BK: tl.constexpr):
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    cols = tl.arange(0, BH)
    ks = tl.arange(0, BK)
    for t32 in range(0, T):
        t = tl.cast(t32, tl.int64)  # offsets t * B * H pass 2^31 in large buffers
        live = _live_rows(rows, BS, t, B, HAS_BS)
        for j0 in range(0, H, BH):
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            hr = tl.zeros((BB, BH), dtype=tl.float32)
            hz = tl.zeros((BB, BH), dtype=tl.float32)
            hn = tl.zeros((BB, BH), dtype=tl.float32)
            for k0 in range(0, H, BK):  # W_hh h_{t-1}, its three row blocks
                k = k0 + ks
                hp = _state_tile(Y, h0, t, B, H, rows, k, live)
                if HAS_MASK:
                    hp = hp * tl.load(M + rows[:, None] * H + k[None, :], mask=live[:, None] & (k[None, :] < H),
                                      other=0.0)  # fmt: skip
                wk = (k[:, None] < H) & (j[None, :] < H)
                w_at = W + j[None, :] * H + k[:, None]
                hr += tl.dot(hp, tl.load(w_at, mask=wk, other=0.0), input_precision="ieee")
                hz += tl.dot(hp, tl.load(w_at + H * H, mask=wk, other=0.0), input_precision="ieee")
                hn += tl.dot(hp, tl.load(w_at + 2 * H * H, mask=wk, other=0.0), input_precision="ieee")
            if HAS_BIAS:
                hr += tl.load(bhh + j, mask=j < H, other=0.0)[None, :]
                hz += tl.load(bhh + H + j, mask=j < H, other=0.0)[None, :]
                hn += tl.load(bhh + 2 * H + j, mask=j < H, other=0.0)[None, :]
            g_at = t * B * 3 * H + rows[:, None] * (3 * H) + j[None, :]
            r = _act(tl.load(G + g_at, mask=tile, other=0.0) + hr, REC)
            z = _act(tl.load(G + g_at + H, mask=tile, other=0.0) + hz, REC)
            n = _act(tl.load(G + g_at + 2 * H, mask=tile, other=0.0) + r * hn, ACT)
            h = _state_tile(Y, h0, t, B, H, rows, j, live)
            tl.store(G + g_at, r, mask=tile)
            tl.store(G + g_at + H, z, mask=tile)
            tl.store(G + g_at + 2 * H, n, mask=tile)
            tl.store(HH + g_at, hr, mask=tile)
            tl.store(HH + g_at + H, hz, mask=tile)
            tl.store(HH + g_at + 2 * H, hn, mask=tile)
            tl.store(Y + t * B * H + rows[:, None] * H + j[None, :], n + z * (h - n), mask=tile)
        tl.debug_barrier()


@triton.jit
def _gru_backward(G, HH, Y, h0, W, M, BS, dY, sdt, sdb, sdj, DX, DHN, dh, T, B, H, HAS_MASK: tl.constexpr,
                  HAS_BS: tl.constexpr, ACT: tl.constexpr, REC: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr,
                  BK: tl.constexpr):
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    cols = tl.arange(0, BH)
    ks = tl.arange(0, BK)
    inside = rows < B
    for s in range(0, T):
        t = tl.cast(T - 1 - s, tl.int64)  # offsets t * B * H pass 2^31 in large buffers
        live = _live_rows(rows, BS, t, B, HAS_BS)
        for j0 in range(0, H, BH):  # element-wise: dr, dz, dn, d(W_hn h + b_hn), and dh z
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            dead = (inside & ~live)[:, None] & (j[None, :] < H)
            s_at = rows[:, None] * H + j[None, :]
            g_at = t * B * 3 * H + rows[:, None] * (3 * H) + j[None, :]
            d_h = _dh_in(dh, dY, t, sdt, sdb, sdj, rows, j, tile, H)
            r = tl.load(G + g_at, mask=tile, other=0.0)
            z = tl.load(G + g_at + H, mask=tile, other=0.0)
            n = tl.load(G + g_at + 2 * H, mask=tile, other=0.0)
            hp = _state_tile(Y, h0, t, B, H, rows, j, live)
            dn = d_h * (1.0 - z) * _deriv(n, ACT)
            dz = d_h * (hp - n) * _deriv(z, REC)
            dr = dn * tl.load(HH + g_at + 2 * H, mask=tile, other=0.0) * _deriv(r, REC)
            tl.store(DX + g_at, dr, mask=tile)
            tl.store(DX + g_at + H, dz, mask=tile)
            tl.store(DX + g_at + 2 * H, dn, mask=tile)
            tl.store(DHN + t * B * H + s_at, dn * r, mask=tile)
            tl.store(dh + s_at, d_h * z, mask=tile)
            zero = tl.zeros((BB, BH), dtype=tl.float32)
            for q in range(0, 3):
                tl.store(DX + g_at + q * H, zero, mask=dead)
            tl.store(DHN + t * B * H + s_at, zero, mask=dead)
        tl.debug_barrier()
        for j0 in range(0, H, BH):  # dh_{t-1} = dh z + [dr | dz | dhn] W_hh (through the mask)
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            acc = tl.zeros((BB, BH), dtype=tl.float32)
            for k0 in range(0, 3 * H, BK):
                k = k0 + ks
                rz = live[:, None] & (k[None, :] < 2 * H)
                nk = live[:, None] & (k[None, :] >= 2 * H) & (k[None, :] < 3 * H)
                a = tl.load(DX + t * B * 3 * H + rows[:, None] * (3 * H) + k[None, :], mask=rz, other=0.0)
                a += tl.load(DHN + t * B * H + rows[:, None] * H + (k[None, :] - 2 * H), mask=nk, other=0.0)
                w = tl.load(W + k[:, None] * H + j[None, :], mask=(k[:, None] < 3 * H) & (j[None, :] < H), other=0.0)
                acc += tl.dot(a, w, input_precision="ieee")
            s_at = rows[:, None] * H + j[None, :]
            if HAS_MASK:
                acc = acc * tl.load(M + s_at, mask=tile, other=0.0)
            tl.store(dh + s_at, tl.load(dh + s_at, mask=tile, other=0.0) + acc, mask=tile)
        tl.debug_barrier()


@triton.jit
def _rnn_forward(Y, h0, W, M, BS, T, B, H, HAS_MASK: tl.constexpr, HAS_BS: tl.constexpr, ACT: tl.constexpr,
                 BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr):
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    cols = tl.arange(0, BH)
    ks = tl.arange(0, BK)
    for t32 in range(0, T):
        t = tl.cast(t32, tl.int64)  # offsets t * B * H pass 2^31 in large buffers
        live = _live_rows(rows, BS, t, B, HAS_BS)
        for j0 in range(0, H, BH):
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            y_at = Y + t * B * H + rows[:, None] * H + j[None, :]
            acc = tl.load(y_at, mask=tile, other=0.0)
            for k0 in range(0, H, BK):
                k = k0 + ks
                hp = _state_tile(Y, h0, t, B, H, rows, k, live)
                if HAS_MASK:
                    hp = hp * tl.load(M + rows[:, None] * H + k[None, :], mask=live[:, None] & (k[None, :] < H),
                                      other=0.0)  # fmt: skip
                w = tl.load(W + j[None, :] * H + k[:, None], mask=(k[:, None] < H) & (j[None, :] < H), other=0.0)
                acc += tl.dot(hp, w, input_precision="ieee")
            tl.store(y_at, _act(acc, ACT), mask=tile)
        tl.debug_barrier()


@triton.jit
def _rnn_backward(Y, W, M, BS, dY, sdt, sdb, sdj, DP, dh, T, B, H, HAS_MASK: tl.constexpr, HAS_BS: tl.constexpr,
                  ACT: tl.constexpr, BB: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr):
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    cols = tl.arange(0, BH)
    inside = rows < B
    for s in range(0, T):
        t = tl.cast(T - 1 - s, tl.int64)  # offsets t * B * H pass 2^31 in large buffers
        live = _live_rows(rows, BS, t, B, HAS_BS)
        for j0 in range(0, H, BH):
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            dead = (inside & ~live)[:, None] & (j[None, :] < H)
            s_at = rows[:, None] * H + j[None, :]
            d_h = _dh_in(dh, dY, t, sdt, sdb, sdj, rows, j, tile, H)
            y = tl.load(Y + t * B * H + s_at, mask=tile, other=0.0)
            tl.store(DP + t * B * H + s_at, d_h * _deriv(y, ACT), mask=tile)
            tl.store(DP + t * B * H + s_at, tl.zeros((BB, BH), dtype=tl.float32), mask=dead)
        tl.debug_barrier()
        for j0 in range(0, H, BH):
            j = j0 + cols
            tile = live[:, None] & (j[None, :] < H)
            acc = _times_w(DP + t * B * H, H, W, rows, j, live, H, BB, BH, BK)
            s_at = rows[:, None] * H + j[None, :]
            if HAS_MASK:
                acc = acc * tl.load(M + s_at, mask=tile, other=0.0)
            tl.store(dh + s_at, acc, mask=tile)
        tl.debug_barrier()


def _blocks(B: int, H: int) -> tuple[int, int, int]:
    bb = 16 if B <= 16 else 32
    bh = min(64, max(16, triton.next_power_of_2(H)))
    return bb, bh, 32 if H >= 32 else 16


def _sizes(batch_sizes, device) -> torch.Tensor | None:
    return None if batch_sizes is None else torch.tensor(batch_sizes, dtype=torch.int32, device=device)


def lstm_forward(G, C, TC, Y, h0, c0, w_hh, mask, batch_sizes, act, rec) -> None:
    """As :func:`biolstm.nn.native.scan.lstm_forward`, on the tensors' device."""
    T, B, H = C.shape
    _launch(_lstm_forward, B, H, G, C, TC, Y, h0.contiguous(), c0.contiguous(), w_hh.contiguous(), T, B, H,
            mask=None if mask is None else mask.contiguous(), bs=_sizes(batch_sizes, G.device),
            ACT=ACTIVATIONS[act.name], REC=ACTIVATIONS[rec.name])  # fmt: skip


def lstm_backward(G, C, TC, c0, w_hh, mask, batch_sizes, dY, DG, dh, dc, act, rec) -> None:
    """As :func:`biolstm.nn.native.scan.lstm_backward`, on the tensors' device."""
    T, B, H = C.shape
    bb, bh, bk = _blocks(B, H)
    bs = _sizes(batch_sizes, G.device)
    c0, w_hh = c0.contiguous(), w_hh.contiguous()
    m = mask.contiguous() if mask is not None else c0
    _lstm_backward[(triton.cdiv(B, bb),)](G, C, TC, c0, w_hh, m, bs if bs is not None else c0, dY, *dY.stride(), DG,
                                          dh, dc, T, B, H, HAS_MASK=mask is not None, HAS_BS=bs is not None,
                                          ACT=ACTIVATIONS[act.name], REC=ACTIVATIONS[rec.name], BB=bb, BH=bh,
                                          BK=bk)  # fmt: skip


def _launch(kernel, B: int, H: int, *args, mask=None, bs=None, **consts):
    bb, bh, bk = _blocks(B, H)
    first = args[0]
    kernel[(triton.cdiv(B, bb),)](*args[:-3], mask if mask is not None else first, bs if bs is not None else first,
                                  *args[-3:], HAS_MASK=mask is not None, HAS_BS=bs is not None, BB=bb, BH=bh, BK=bk,
                                  **consts)  # fmt: skip


def gru_forward(G, HH, Y, h0, w_hh, b_hh, mask, batch_sizes, act, rec) -> None:
    """As :func:`biolstm.nn.native.scan.gru_forward`, on the tensors' device."""
    T, B, H = Y.shape
    b = b_hh.contiguous() if b_hh is not None else h0
    _launch(_gru_forward, B, H, G, HH, Y, h0.contiguous(), w_hh.contiguous(), b, T, B, H,
            mask=None if mask is None else mask.contiguous(), bs=_sizes(batch_sizes, G.device),
            HAS_BIAS=b_hh is not None, ACT=ACTIVATIONS[act.name], REC=ACTIVATIONS[rec.name])  # fmt: skip


def gru_backward(G, HH, Y, h0, w_hh, mask, batch_sizes, dY, DX, DHN, dh, act, rec) -> None:
    """As :func:`biolstm.nn.native.scan.gru_backward`, on the tensors' device."""
    T, B, H = Y.shape
    bb, bh, bk = _blocks(B, H)
    bs = _sizes(batch_sizes, G.device)
    h0, w_hh = h0.contiguous(), w_hh.contiguous()
    m = mask.contiguous() if mask is not None else h0
    _gru_backward[(triton.cdiv(B, bb),)](G, HH, Y, h0, w_hh, m, bs if bs is not None else h0, dY, *dY.stride(), DX,
                                         DHN, dh, T, B, H, HAS_MASK=mask is not None, HAS_BS=bs is not None,
                                         ACT=ACTIVATIONS[act.name], REC=ACTIVATIONS[rec.name], BB=bb, BH=bh,
                                         BK=bk)  # fmt: skip


def rnn_forward(Y, h0, w_hh, mask, batch_sizes, act) -> None:
    """As :func:`biolstm.nn.native.scan.rnn_forward`, on the tensors' device."""
    T, B, H = Y.shape
    _launch(_rnn_forward, B, H, Y, h0.contiguous(), w_hh.contiguous(), T, B, H,
            mask=None if mask is None else mask.contiguous(), bs=_sizes(batch_sizes, Y.device),
            ACT=ACTIVATIONS[act.name])  # fmt: skip


def rnn_backward(Y, w_hh, mask, batch_sizes, dY, DP, dh, act) -> None:
    """As :func:`biolstm.nn.native.scan.rnn_backward`, on the tensors' device."""
    T, B, H = Y.shape
    bb, bh, bk = _blocks(B, H)
    bs = _sizes(batch_sizes, Y.device)
    w_hh = w_hh.contiguous()
    m = mask.contiguous() if mask is not None else w_hh
    _rnn_backward[(triton.cdiv(B, bb),)](Y, w_hh, m, bs if bs is not None else w_hh, dY, *dY.stride(), DP, dh, T, B,
                                         H, HAS_MASK=mask is not None, HAS_BS=bs is not None,
                                         ACT=ACTIVATIONS[act.name], BB=bb, BH=bh, BK=bk)  # fmt: skip
