/* MinLSTM / MinGRU forward and backward over a whole sequence, fused: gates, the linear
 * recurrence h_t = a_t h_{t-1} + (1 - a_t) g(h~_t) and, backward, the reverse recurrence of
 * the gradient and the gradient of the pre-activations, in one pass over time each.
 *
 * Layout: pre (B, T, G*H) float32, contiguous, G = 3 (MinLSTM: f | i | h~) or 2 (MinGRU:
 * z | h~); x (B, T, D), out and grad (B, T, H) and h0 (B, H) with the strides a call is given
 * (see minrnn_forward); a call may cover a time chunk of the sequence. For a small input (one-hot DNA: D = 4) the
 * pre-activations are instead projected inside the kernel from x (B, T, D), and their
 * gradient folded into the weight and input gradients there, which saves the largest tensors;
 * the zero entries of x are skipped (one-hot input: a quarter of the work), unless a weight is
 * not finite (0 * inf must still give NaN). Work is split into lanes (a batch row and a block
 * of hidden units); a call handles lanes [lane0, lane1). Built with -fopenmp, a call runs its
 * lanes on `threads` OpenMP threads: loaded into a process where torch has loaded its
 * libgomp.so.1, that is torch's own thread pool, so the two never compete for cores. Built
 * without, a call is sequential and callers run several calls on threads. A lane's sums run
 * over time in order, on whichever thread; the matrix products of a wide layer and the sums
 * over lanes and batch rows are at the end of this file, each in one order too: a result does
 * not depend on the number of threads.
 *
 * The arithmetic is written on vectors of 8 floats (GCC / Clang vector extensions: AVX on
 * x86-64 with -march=native, pairs of 4-wide registers elsewhere), the units of a lane in
 * 16 such vectors; the products on 16 where the CPU has AVX-512. */
#include <stdint.h>
#include <string.h>

#define BLOCK 128 /* hidden units per lane */
#define VL 8      /* floats per vector */
#define NV (BLOCK / VL)
#define MAXD 32 /* widest input projected here (native.PROJECT_MAX) */
#define AHEAD 4 /* steps ahead to prefetch: the gate maths leaves the hardware prefetcher behind */

#include "simd.h"

/* 1 when built with OpenMP: one call may use several threads. */
/* The hash of the source this library was built from (biolstm.nn.native.build.source_hash):
 * a build left over from an older source is not loaded. */
#ifndef BIOLSTM_SOURCE
#define BIOLSTM_SOURCE "unknown"
#endif
const char *minrnn_source(void) { return BIOLSTM_SOURCE; }

int minrnn_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

static inline float hsum(vf v) {
    float s = 0.0f;
    for (int k = 0; k < VL; k++) s += v[k];
    return s;
}

/* Ask for the cache lines of n floats at p, G rows H apart, before they are needed. */
static inline void prefetch(const float *p, int64_t G, int64_t H, int n) {
    for (int64_t r = 0; r < G; r++)
        for (int j = 0; j < n; j += 16) __builtin_prefetch(p + r * H + j);
}

/* MinLSTM: with m = min(f, i, 0), E0 = e^m, Ef = e^(m - f), Ei = e^(m - i) (one of the three
 * is 1, so two exponentials, and none overflows):
 *   sigmoid(f) = E0 / (E0 + Ef), so a = sigmoid(f) / (sigmoid(f) + sigmoid(i)) = (E0 + Ei) / den,
 *   1 - a = (E0 + Ef) / den, den = 2 E0 + Ef + Ei >= 1 (exact when both gates underflow),
 *   da/df = Ef (E0 + Ei) / den^2, da/di = -Ei (E0 + Ef) / den^2. */
static inline void lstm_terms(vf f, vf i, vf *e0, vf *ef, vf *ei) {
    const vf one = splat(1.0f), zero = splat(0.0f);
    vi pos = (f >= zero) & (i >= zero), fmin = f <= i; /* m = 0; else m = f where f <= i, else i */
    vf x1 = vexp_neg(sel(pos, -f, sel(fmin, f, i)));
    vf x2 = vexp_neg(sel(pos, -i, -vabs(f - i)));
    *e0 = sel(pos, one, x1);
    *ef = sel(pos, x1, sel(fmin, one, x2));
    *ei = sel(pos | fmin, x2, one);
}

/* MinGRU decay a = 1 - z = sigmoid(-x), from e = exp(-|x|). */
static inline vf gru_decay(vf x, vf e, vf r1e) { return sel(x >= splat(0.0f), e, splat(1.0f)) * r1e; }

/* The operands of one lane: batch row b, hidden units [j0, j0 + n). pre is NULL when the
 * pre-activations are projected from x (B, T, D) and wt (D, G*H) inside the kernel; dense: use
 * every input entry, zeros included (a weight is not finite). */
typedef struct {
    const float *pre, *x, *wt, *bias, *h0;
    int64_t T, H, D, G, b, j0, xsb, hsb, osb; /* batch strides of x, h0 and out */
    int n, lstm, dense;
} lane_t;

/* Step t's input entries that take part in the projection: their positions into idx. */
static inline int nonzero(const lane_t *L, const float *xv, int *idx) {
    int nz = 0;
    for (int d = 0; d < L->D; d++)
        if (L->dense || xv[d] != 0.0f) idx[nz++] = d;
    return nz;
}

/* The pre-activations of one step for a lane's units, bias added, into z (G rows of NV
 * vectors): from the row of pre at this step, or projected from the input's entries listed in
 * idx (nz of them) through wt (D, G*H). */
static inline void step_pre(const float *row, const float *xv, const int *idx, int nz, const float *wt,
                            const float *bias, int64_t G, int64_t H, int64_t j0, int n, vf z[][NV]) {
    const int nv = (n + VL - 1) / VL;
    for (int64_t r = 0; r < G; r++) {
        const int64_t off = r * H + j0;
        for (int v = 0; v < nv; v++) z[r][v] = ld(bias + off + v * VL, n - v * VL);
        if (row)
            for (int v = 0; v < nv; v++) z[r][v] += ld(row + off + v * VL, n - v * VL);
        for (int k = 0; k < nz; k++) {
            const vf xd = splat(xv[idx[k]]);
            const float *w = wt + idx[k] * G * H + off;
            for (int v = 0; v < nv; v++) z[r][v] += xd * ld(w + v * VL, n - v * VL);
        }
    }
}

/* One lane forward. */
static void forward_lane(const lane_t *L, float *out) {
    const int64_t T = L->T, H = L->H, G = L->G, GH = G * H, b = L->b, j0 = L->j0;
    const int n = L->n, nv = (n + VL - 1) / VL;
    vf h[NV], z[3][NV];
    int idx[MAXD];
    for (int v = 0; v < nv; v++) h[v] = ld(L->h0 + b * L->hsb + j0 + v * VL, n - v * VL);
    for (int64_t t = 0; t < T; t++) {
        const float *row = L->pre ? L->pre + (b * T + t) * GH : NULL;
        const float *xv = L->x + b * L->xsb + t * L->D;
        if (row && t + AHEAD < T) prefetch(row + AHEAD * GH + j0, G, H, n);
        const int nz = row ? 0 : nonzero(L, xv, idx);
        step_pre(row, xv, idx, nz, L->wt, L->bias, G, H, j0, n, z);
        float *o = out + b * L->osb + t * H + j0;
        if (L->lstm) {
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) {
                vf zf = z[0][v], zi = z[1][v], zk = z[2][v], e0, ef, ei;
                vf ek = vexp_neg(-vabs(zk));
                lstm_terms(zf, zi, &e0, &ef, &ei);
                vf den = e0 + e0 + ef + ei, one_e = 1.0f + ek;
                vf r = 1.0f / (den * one_e); /* one division for a and for g's sigmoid */
                vf a = (e0 + ei) * one_e * r, s = ek * den * r;
                vf g = sel(zk >= splat(0.0f), zk + 0.5f, s); /* g(x) = x + 0.5 for x >= 0, sigmoid(x) below */
                h[v] = a * h[v] + (1.0f - a) * g;
            }
        } else {
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) {
                vf zf = z[0][v], zk = z[1][v];
                vf ek = vexp_neg(-vabs(zk)), ef = vexp_neg(-vabs(zf)), one_e = 1.0f + ef, one_k = 1.0f + ek;
                vf r = 1.0f / (one_e * one_k);
                vf a = gru_decay(zf, ef, one_k * r), s = ek * one_e * r;
                vf g = sel(zk >= splat(0.0f), zk + 0.5f, s);
                h[v] = a * h[v] + (1.0f - a) * g;
            }
        }
        for (int v = 0; v < nv; v++) st(o + v * VL, h[v], n - v * VL);
    }
}

/* One lane backward. The gradient of the state runs backwards as its own linear recurrence:
 * dL/dh_t = grad_t + a_{t+1} dL/dh_{t+1}; the gates are recomputed. With pre given, the
 * gradient of the pre-activations goes to grad_pre; with x given, it is folded at once into
 * this lane's share of the weight gradient (grad_wt, D x G rows of H) and of the input
 * gradient (grad_x, T x D), so it is never stored either. */
static void backward_lane(const lane_t *L, const float *out, const float *grad, const int64_t *gs, float *grad_pre,
                          float *grad_x, float *grad_wt, float *carry_io, float *grad_bias) {
    const int64_t T = L->T, H = L->H, G = L->G, GH = G * H, D = L->D, b = L->b, j0 = L->j0;
    const int n = L->n, nv = (n + VL - 1) / VL;
    vf carry[NV], sum[3][NV], z[3][NV], gp[3][NV]; /* a_{t+1} dL/dh_{t+1}; bias gradient; gates; their gradient */
    int idx[MAXD];
    for (int v = 0; v < nv; v++) {
        carry[v] = ld(carry_io + b * H + j0 + v * VL, n - v * VL);
        sum[0][v] = sum[1][v] = sum[2][v] = splat(0.0f);
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        const float *row = L->pre ? L->pre + (b * T + t) * GH : NULL;
        const float *xv = L->x + b * L->xsb + t * D;
        const float *gr = grad + b * gs[0] + t * gs[1] + j0 * gs[2];
        const float *hp = t > 0 ? out + b * L->osb + (t - 1) * H + j0 : L->h0 + b * L->hsb + j0;
        if (t >= AHEAD) {
            if (row) prefetch(row - AHEAD * GH + j0, G, H, n);
            if (gs[2]) prefetch(gr - AHEAD * gs[1], 1, H, n);
            prefetch(hp - AHEAD * H, 1, H, n);
        }
        const int nz = row ? 0 : nonzero(L, xv, idx);
        step_pre(row, xv, idx, nz, L->wt, L->bias, G, H, j0, n, z);
        if (L->lstm) {
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) {
                const int c = n - v * VL;
                vf zf = z[0][v], zi = z[1][v], zk = z[2][v], e0, ef, ei;
                vf gh = (gs[2] ? ld(gr + v * VL, c) : splat(*gr)) + carry[v], ek = vexp_neg(-vabs(zk));
                vi pos = zk >= splat(0.0f);
                lstm_terms(zf, zi, &e0, &ef, &ei);
                vf den = e0 + e0 + ef + ei, one_e = 1.0f + ek;
                vf rd = 1.0f / den, rs = 1.0f / one_e, s = ek * rs;
                vf g = sel(pos, zk + 0.5f, s);
                vf dh = gh * (ld(hp + v * VL, c) - g) * rd * rd; /* dL/da / den^2 */
                gp[0][v] = dh * ef * (e0 + ei);
                gp[1][v] = -dh * ei * (e0 + ef);
                gp[2][v] = gh * (e0 + ef) * rd * sel(pos, splat(1.0f), s * rs); /* g' = s (1 - s) below 0 */
                carry[v] = (e0 + ei) * rd * gh;
            }
        } else {
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) {
                const int c = n - v * VL;
                vf zf = z[0][v], zk = z[1][v];
                vf gh = (gs[2] ? ld(gr + v * VL, c) : splat(*gr)) + carry[v];
                vf ek = vexp_neg(-vabs(zk)), ef = vexp_neg(-vabs(zf));
                vi pos = zk >= splat(0.0f);
                vf re = 1.0f / (1.0f + ef), rs = 1.0f / (1.0f + ek), s = ek * rs;
                vf a = gru_decay(zf, ef, re), g = sel(pos, zk + 0.5f, s);
                gp[0][v] = -gh * (ld(hp + v * VL, c) - g) * a * (1.0f - a); /* da/dx = -a (1 - a) */
                gp[1][v] = gh * (1.0f - a) * sel(pos, splat(1.0f), s * rs);
                carry[v] = a * gh;
            }
        }
        for (int64_t q = 0; q < G; q++)
            for (int v = 0; v < nv; v++) sum[q][v] += gp[q][v];
        if (row) {
            for (int64_t q = 0; q < G; q++) {
                float *y = grad_pre + (b * T + t) * GH + q * H + j0;
                for (int v = 0; v < nv; v++) st(y + v * VL, gp[q][v], n - v * VL);
            }
            continue;
        }
        for (int k = 0; k < nz; k++) { /* weight gradient: x_d times the gate gradient */
            const vf xd = splat(xv[idx[k]]);
            for (int64_t q = 0; q < G; q++) {
                float *w = grad_wt + idx[k] * GH + q * H + j0;
                for (int v = 0; v < nv; v++) st(w + v * VL, ld(w + v * VL, n - v * VL) + xd * gp[q][v], n - v * VL);
            }
        }
        if (grad_x) /* input gradient: the gate gradients through each input's weights */
            for (int64_t d = 0; d < D; d++) {
                vf acc = splat(0.0f);
                for (int64_t q = 0; q < G; q++) {
                    const float *w = L->wt + d * GH + q * H + j0;
                    for (int v = 0; v < nv; v++) acc += gp[q][v] * ld(w + v * VL, n - v * VL);
                }
                grad_x[t * D + d] = hsum(acc);
            }
    }
    for (int v = 0; v < nv; v++) {
        st(carry_io + b * H + j0 + v * VL, carry[v], n - v * VL);
        for (int64_t q = 0; q < G; q++) {
            float *y = grad_bias + b * GH + q * H + j0 + v * VL;
            st(y, ld(y, n - v * VL) + sum[q][v], n - v * VL);
        }
    }
}

/* 1 when every weight is finite: then zero inputs may be skipped. */
static int finite(const float *wt, int64_t count) {
    for (int64_t k = 0; k < count; k++)
        if (!(wt[k] - wt[k] == 0.0f)) return 0; /* inf - inf and NaN - NaN are NaN */
    return 1;
}

static lane_t lane_of(const float *pre, const float *x, const float *wt, const float *bias, const float *h0,
                      const int64_t *st, int64_t T, int64_t H, int64_t D, int lstm, int dense, int64_t lane) {
    const int64_t blocks = (H + BLOCK - 1) / BLOCK, j0 = (lane % blocks) * BLOCK;
    lane_t L = {pre, x, wt, bias, h0, T, H, D, lstm ? 3 : 2, lane / blocks, j0, st[0], st[1], st[2],
                (int)(H - j0 < BLOCK ? H - j0 : BLOCK), lstm, dense};
    return L;
}

/* A call covers T steps: a whole sequence, or one chunk of it (then x, out and grad point at the
 * chunk's first step, and h0 at the state before it: h0, or the row of out before the chunk).
 * st (in floats): the batch strides of x, h0 and out, then the three strides of grad (its last
 * 1, or 0 for a gradient broadcast along the units, as the sum of the output gives). pre, when
 * given, is the chunk's own (B, T, G*H), contiguous. */

/* Pre-activations (pre; or, pre NULL, x (B, T, D) times wt (D, G*H), D <= MAXD) plus bias
 * (G*H) -> out (B, T, H), from h0 (B, H). */
void minrnn_forward(const float *pre, const float *x, const float *wt, const float *bias, const float *h0,
                    float *out, const int64_t *st, int64_t B, int64_t T, int64_t H, int64_t D, int lstm, int64_t lane0,
                    int64_t lane1, int threads) {
    (void)B; /* lanes carry the batch row */
    const int dense = pre || !finite(wt, D * (lstm ? 3 : 2) * H);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t lane = lane0; lane < lane1; lane++) {
        lane_t L = lane_of(pre, x, wt, bias, h0, st, T, H, D, lstm, dense, lane);
        forward_lane(&L, out);
    }
}

/* grad: dL/d out. carry (B, H): on entry dL/dh at the chunk's last step from the steps after it
 * (zero for the whole sequence), on return dL/dh0. Adds per batch row the bias gradient to
 * grad_bias ((B, G*H)); with pre, writes dL/d pre (grad_pre, its layout); with x, per lane the
 * input gradient (grad_x, (lanes, T, D); NULL when not needed) and adds the weight gradient
 * (grad_wt, (B, D, G*H)). The caller zeroes what is added to and sums over lanes and rows
 * (minrnn_sum). */
void minrnn_backward(const float *pre, const float *x, const float *wt, const float *bias, const float *h0,
                     const float *out, const float *grad, const int64_t *st, float *grad_pre, float *grad_x,
                     float *grad_wt, float *carry, float *grad_bias, int64_t B, int64_t T, int64_t H, int64_t D,
                     int lstm, int64_t lane0, int64_t lane1, int threads) {
    (void)B;
    const int dense = pre || !finite(wt, D * (lstm ? 3 : 2) * H);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t lane = lane0; lane < lane1; lane++) {
        lane_t L = lane_of(pre, x, wt, bias, h0, st, T, H, D, lstm, dense, lane);
        backward_lane(&L, out, grad, st + 3, grad_pre, pre || !grad_x ? NULL : grad_x + lane * T * D,
                      pre ? NULL : grad_wt + L.b * D * L.G * H, carry, grad_bias);
    }
}

/* ---- Products and sums in a fixed order ----
 * A wide layer's projection x W^T, the input gradient dL/d pre W and the weight gradient
 * dL/d pre^T x, and the sums over batch rows and lanes of the narrow path's gradients. A BLAS
 * splits a long reduction between its threads when the output is small, and adds the parts in
 * an order that depends on how many there are (MKL does at 2 threads on Intel, for each of the
 * three products at some shapes). Here every element of a product is one chain of fused
 * multiply-adds over k = 0, 1, ..., K-1 in that order, from its previous value or 0, and every
 * sum adds its rows in order: how the output is cut into tiles, and which thread runs which
 * tile, does not change a bit. An MR x NR block of C is held in registers; B's columns are
 * copied NR at a time for KC steps of k into a contiguous panel; A is read where it lies (one of
 * its sides is small here, so a packed copy of A would cost as much as the product). */
#ifdef __AVX512F__
#define GW 16 /* floats per vector of the products */
#define NB 4  /* vectors per row of a register block: 6 x 4 of the 32 registers */
#else
#define GW 8
#define NB 2 /* 6 x 2 of the 16 registers */
#endif
#define MR 6          /* rows of C per register block */
#define NR (NB * GW)  /* columns of C per register block */
#define KC 128        /* steps of k per panel of B */
#define MC (32 * MR)  /* rows of C per tile at most */

typedef float vg __attribute__((vector_size(GW * sizeof(float))));

static inline vg splatg(float s) { /* one broadcast (0 + s would be an addition first) */
#if GW == 16
    return (vg){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
#else
    return (vg){s, s, s, s, s, s, s, s};
#endif
}

/* An index x -> (x / n) * outer + (x % n) * inner (in floats): a row (b, t) of a time chunk of n
 * steps of a (B, T, ...) tensor, or plain x * outer with n = 1 and inner 0. */
typedef struct {
    int64_t n, outer, inner;
} map_t;

static inline int64_t at(map_t m, int64_t x) { return x / m.n * m.outer + x % m.n * m.inner; }

/* C (M x N) = C (or 0) + A (M x K) B (K x N), with A(i, k) = a[ai(i) + k * ak],
 * B(k, j) = b[bk(k) + j], C(i, j) = c[ci(i) + j]. */
typedef struct {
    const float *a, *b;
    float *c;
    map_t ai, bk, ci;
    int64_t ak, M, N, K;
    int accumulate;
} gemm_t;

/* An MR x NR block of C, its rows at crow[r], plus A's rows at arow[r] (k steps ak apart) times
 * the panel bp (kc x NR); from 0 instead of C when !load. */
static inline void block(const float *const *arow, int64_t ak, const float *bp, int64_t kc, float *const *crow,
                         int load) {
    vg acc[MR][NB];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
        __builtin_prefetch(crow[r], 1); /* C's lines on their way while the k loop runs */
        __builtin_prefetch(crow[r] + NR - 1, 1);
#pragma GCC unroll 4
        for (int v = 0; v < NB; v++) {
            if (load)
                memcpy(&acc[r][v], crow[r] + v * GW, sizeof(vg));
            else
                acc[r][v] = (vg){0};
        }
    }
    for (int64_t k = 0; k < kc; k++) {
        vg bv[NB];
#pragma GCC unroll 4
        for (int v = 0; v < NB; v++) memcpy(&bv[v], bp + k * NR + v * GW, sizeof(vg));
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            const vg a = splatg(arow[r][k * ak]);
#pragma GCC unroll 4
            for (int v = 0; v < NB; v++) acc[r][v] += a * bv[v];
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NB; v++) memcpy(crow[r] + v * GW, &acc[r][v], sizeof(vg));
}

/* Rows [i0, i1) of C (i1 - i0 <= MC), all of k. Past the last row, A's first row stands in and
 * past the last column 0; what they give is not stored. */
static void gemm_tile(const gemm_t *g, int64_t i0, int64_t i1) {
    float bp[KC * NR] __attribute__((aligned(64))), edge[MR * NR] = {0};
    int64_t arow[MC], crow[MC];
    for (int64_t i = i0; i < i1; i++) {
        arow[i - i0] = at(g->ai, i);
        crow[i - i0] = at(g->ci, i);
    }
    for (int64_t k0 = 0; k0 < g->K; k0 += KC) {
        const int64_t kc = g->K - k0 < KC ? g->K - k0 : KC;
        const int load = g->accumulate || k0 > 0;
        for (int64_t j = 0; j < g->N; j += NR) {
            const int64_t n = g->N - j < NR ? g->N - j : NR;
            for (int64_t k = 0; k < kc; k++) { /* B's columns j..j+n for these k, 0 past n */
                const float *src = g->b + at(g->bk, k0 + k) + j;
                float *dst = bp + k * NR;
                if (n == NR) {
                    memcpy(dst, src, sizeof(float) * NR);
                } else {
                    for (int64_t q = 0; q < NR; q++) dst[q] = q < n ? src[q] : 0.0f;
                }
            }
            for (int64_t p = i0; p < i1; p += MR) {
                const int64_t m = i1 - p < MR ? i1 - p : MR;
                const float *ar[MR];
                float *cr[MR];
                for (int r = 0; r < MR; r++) {
                    ar[r] = g->a + arow[r < m ? p - i0 + r : p - i0] + k0 * g->ak;
                    cr[r] = m < MR || n < NR ? edge + r * NR : g->c + crow[p - i0 + r] + j;
                }
                if (m < MR || n < NR) /* a block at the edge of C goes through edge */
                    for (int r = 0; r < m; r++)
                        for (int64_t q = 0; q < n && load; q++) edge[r * NR + q] = g->c[crow[p - i0 + r] + j + q];
                block(ar, g->ak, bp, kc, cr, load);
                if (m < MR || n < NR)
                    for (int r = 0; r < m; r++)
                        for (int64_t q = 0; q < n; q++) g->c[crow[p - i0 + r] + j + q] = edge[r * NR + q];
            }
        }
    }
}

/* Rows of C per tile (at most MC, a multiple of MR): about as many tiles for each of `parts`
 * threads. The tiles change which thread computes an element, never how. */
static int64_t tile_rows(int64_t M, int64_t parts) {
    const int64_t tiles = ((M + MC - 1) / MC + parts - 1) / parts * parts, rows = (M + tiles - 1) / tiles;
    return (rows + MR - 1) / MR * MR;
}

/* Tiles of a product with M rows, for `parts` threads (callers split [0, tiles) between them). */
int64_t minrnn_gemm_tiles(int64_t M, int64_t parts) {
    const int64_t rows = tile_rows(M, parts);
    return (M + rows - 1) / rows;
}

/* maps: ai, bk, ci (three int64 each, see map_t), then ak. Runs tiles [tile0, tile1) of
 * minrnn_gemm_tiles(M, parts). */
void minrnn_gemm(const float *a, const float *b, float *c, const int64_t *maps, int64_t M, int64_t N, int64_t K,
                 int accumulate, int64_t parts, int64_t tile0, int64_t tile1, int threads) {
    const map_t ai = {maps[0], maps[1], maps[2]}, bk = {maps[3], maps[4], maps[5]}, ci = {maps[6], maps[7], maps[8]};
    const gemm_t g = {a, b, c, ai, bk, ci, maps[9], M, N, K, accumulate};
    const int64_t rows = tile_rows(M, parts);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t tile = tile0; tile < tile1; tile++)
        gemm_tile(&g, tile * rows, (tile + 1) * rows < M ? (tile + 1) * rows : M);
}

#define SUMC 1024 /* columns per part of a sum */

/* Parts of a sum of (outer, rows, cols) over its rows. */
int64_t minrnn_sum_parts(int64_t outer, int64_t cols) { return outer * ((cols + SUMC - 1) / SUMC); }

/* dst (outer, cols), contiguous = the sum over r of src + o * os + r * rs (cols floats each), rows
 * added in order. Runs parts [part0, part1). */
void minrnn_sum(const float *src, float *dst, int64_t rows, int64_t cols, int64_t os, int64_t rs, int64_t part0,
                int64_t part1, int threads) {
    const int64_t across = (cols + SUMC - 1) / SUMC;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t part = part0; part < part1; part++) {
        const int64_t o = part / across, j0 = part % across * SUMC, n = cols - j0 < SUMC ? cols - j0 : SUMC;
        float *d = dst + o * cols + j0;
        const float *s = src + o * os + j0;
        memcpy(d, s, n * sizeof *d);
        for (int64_t r = 1; r < rows; r++)
            for (int64_t j = 0; j < n; j++) d[j] += s[r * rs + j];
    }
}
