/* The step loops of the transparent LSTM, GRU and Elman RNN layers on the CPU, forward and
 * backward, in one call per layer and direction: no Python runs between steps.
 *
 * Each step is one matrix product, by the BLAS torch itself uses (its Fortran sgemm_, whose
 * address the caller passes in), and one fused pass over the batch rows that does every
 * element-wise part of the step: the gate activations, the cell update and the output, storing
 * the gate activations and the cell states that the gate trace and the backward pass read;
 * backward, the gradients of the gate pre-activations, of the cell and of the state. The
 * products over all steps (the input projection, and backward the weight and input gradients)
 * are not here: the caller makes each one large BLAS product.
 *
 * Layout: batch-major and contiguous. G (T, B, 4H) for the LSTM's gates i | f | g | o, (T, B, 3H)
 * for the GRU's r | z | n; C, TC, Y (T, B, H); h0, c0, mask and the running gradients (B, H).
 * On entry G holds the input side of each step (x_t W_ih^T + b), on return the activations.
 * Variable lengths come as bs (T batch sizes, non-increasing; NULL when every row runs all T
 * steps): at step t rows b < bs[t] are active, the others are left as they are (forward) and
 * get zero gradients (backward). mask (NULL for none) multiplies the state where it enters the
 * recurrent product (recurrent dropout).
 *
 * The activations are those whose derivative follows from their output: sigmoid, tanh, relu,
 * linear (identity) and Keras' hard sigmoid relu6(x + 3) / 6. exp is a Cody-Waite reduction
 * and a degree-6 polynomial (2.5e-7 relative), so sigmoid and tanh are within a few float32
 * roundings of the exact values. The element-wise pass over rows runs on `threads` OpenMP
 * threads when built with -fopenmp (torch's own pool, as for minrnn.c); the rows are
 * independent, so the result does not depend on the thread count (the products are the BLAS's).
 *
 * Results are stored with subnormal values flushed to zero (see flush), so that a gradient
 * fading back through time does not slow every later product down. The flush-to-zero mode the
 * backward passes also run in (scan_flush_subnormals) covers the products, but it is set per
 * thread, and a pool thread it missed would keep a subnormal another flushes: storing flushed
 * values keeps every result the same whichever thread computes it.
 *
 * The arithmetic is written on vectors of 16 floats (GCC / Clang vector extensions): one
 * AVX-512 register, or two AVX2 ones, or four SSE ones, as the build's target allows. */
#define VL 16
#include "simd.h"

/* BLAS sgemm, Fortran interface, 32-bit integers (column-major). */
typedef void (*sgemm_t)(const char *, const char *, const int *, const int *, const int *, const float *,
                        const float *, const int *, const float *, const int *, const float *, float *, const int *);

enum { SIGMOID = 0, TANH = 1, RELU = 2, LINEAR = 3, HARD_SIGMOID = 4 };

#define PAR_MIN 8192 /* elements per step below which the element-wise pass stays on one thread */

/* Flush-to-zero and denormals-are-zero (x86 MXCSR) on the calling thread and on the OpenMP
 * pool's threads, which run these loops and the BLAS's products: on (on = 1) before a scan's
 * forward or backward, off after it (bits the calling thread had before are kept). Returns
 * whether it could (x86 only). See flush for why. */
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FTZ_DAZ 0x8040u
static void set_ftz(int on, unsigned keep) {
    unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? (csr | FTZ_DAZ) : ((csr & ~FTZ_DAZ) | keep));
}
int scan_flush_subnormals(int on, int threads, int keep) {
#pragma omp parallel num_threads(threads) if (threads > 1)
    set_ftz(on, (unsigned)keep & FTZ_DAZ);
    set_ftz(on, (unsigned)keep & FTZ_DAZ);
    return 1;
}
int scan_csr(void) { return (int)_mm_getcsr(); }
#else
int scan_flush_subnormals(int on, int threads, int keep) {
    (void)on, (void)threads, (void)keep;
    return 0;
}
int scan_csr(void) { return 0; }
#endif

/* The hash of the source this library was built from (biolstm.nn.native.build.source_hash):
 * a build left over from an older source is not loaded. */
#ifndef BIOLSTM_SOURCE
#define BIOLSTM_SOURCE "unknown"
#endif
const char *scan_source(void) { return BIOLSTM_SOURCE; }

int scan_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

static inline vf sign_of(vf x) { return (vf)((vi)x & splati((int32_t)0x80000000)); }

/* v with its subnormal entries set to zero (the sign kept). A gradient that fades over many
 * steps back from a loss on the last step becomes subnormal, and arithmetic on subnormals, in
 * these loops and in the BLAS products that read their results, runs many times slower on x86:
 * an LSTM step measured 7x slower with 5% of its gate gradients subnormal. They are below
 * 1.2e-38 in magnitude, so zero is within rounding of them. */
static inline vf flush(vf v) { return sel(vabs(v) < splat(1.17549435e-38f), sign_of(v), v); }

/* st of flush(v). */
static inline void stf(float *p, vf v, int64_t c) { st(p, flush(v), c); }

/* The same for n floats in place (a BLAS product's output). */
static void flush_all(float *p, int64_t n) {
    for (int64_t k = 0; k < n; k += VL) stf(p + k, ld(p + k, n - k), n - k);
}

/* c floats at p, s apart (s = 0: one value for all). */
static inline vf lds(const float *p, int64_t s, int64_t c) {
    if (s == 1) return ld(p, c);
    vf v = splat(0.0f);
    for (int k = 0; k < VL && k < c; k++) v[k] = p[k * s];
    return v;
}

static inline vf vsigmoid(vf x) {
    vf e = vexp_neg(-vabs(x)), r = 1.0f / (1.0f + e);
    return sel(x >= splat(0.0f), r, e * r);
}

static inline vf vtanh(vf x) {
    vf e = vexp_neg(-2.0f * vabs(x));
    vf t = (1.0f - e) / (1.0f + e);
    return (vf)((vi)t | (vi)sign_of(x)); /* NaN stays NaN */
}

static inline vf activate(vf x, int a) {
    switch (a) {
    case SIGMOID:
        return vsigmoid(x);
    case TANH:
        return vtanh(x);
    case RELU:
        return sel(x <= splat(0.0f), splat(0.0f), x); /* NaN stays NaN */
    case HARD_SIGMOID: {
        vf y = x + 3.0f;
        y = sel(y < splat(0.0f), splat(0.0f), y);
        y = sel(y > splat(6.0f), splat(6.0f), y);
        return y / 6.0f;
    }
    default:
        return x;
    }
}

/* The derivative of activation a at the input that gave output y. */
static inline vf deriv(vf y, int a) {
    const vf zero = splat(0.0f), one = splat(1.0f);
    switch (a) {
    case SIGMOID:
        return (1.0f - y) * y;
    case TANH:
        return 1.0f - y * y;
    case RELU:
        return sel(y > zero, one, zero);
    case HARD_SIGMOID:
        return sel((y > zero) & (y < one), splat(1.0f / 6.0f), zero);
    default:
        return one;
    }
}

static inline int threads_for(int64_t n, int64_t width, int threads) {
    return n * width >= PAR_MIN ? threads : 1;
}

/* rows [0, n) of a (B, H) state times the mask, into out; returns what the product reads. */
static const float *masked(const float *h, const float *mask, float *out, int64_t n, int64_t H) {
    if (!mask) return h;
    for (int64_t k = 0; k < n * H; k++) out[k] = h[k] * mask[k];
    return out;
}

/* C (m x n, column-major, ldc) = beta C + A^T-or-A B through the BLAS. */
static void gemm(sgemm_t f, const char *ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    const int M = (int)m, N = (int)n, K = (int)k, LDA = (int)lda, LDB = (int)ldb, LDC = (int)ldc;
    const float one = 1.0f;
    f(ta, "N", &M, &N, &K, &one, a, &LDA, b, &LDB, &beta, c, &LDC);
}

/* ---- LSTM ---- */

void scan_lstm_forward(sgemm_t f, float *G, float *C, float *TC, float *Y, const float *h0, const float *c0,
                       const float *w_hh, const float *mask, float *hm, const int64_t *bs, int64_t T, int64_t B,
                       int64_t H, int act, int rec, int threads) {
    const int64_t H4 = 4 * H;
    for (int64_t t = 0; t < T; t++) {
        const int64_t n = bs ? bs[t] : B;
        if (n == 0) break;
        const float *hp = t ? Y + (t - 1) * B * H : h0, *cp = t ? C + (t - 1) * B * H : c0;
        float *g = G + t * B * H4, *c = C + t * B * H, *tc = TC + t * B * H, *y = Y + t * B * H;
        /* gates (4H x n, column-major) += W_hh (4H x H) h_{t-1} (H x n) */
        gemm(f, "T", H4, n, H, w_hh, H, masked(hp, mask, hm, n, H), H, 1.0f, g, H4);
#pragma omp parallel for schedule(static) num_threads(threads_for(n, H4, threads)) if (threads > 1)
        for (int64_t b = 0; b < n; b++) {
            float *gb = g + b * H4;
            for (int64_t j = 0; j < H; j += VL) {
                const int64_t m = H - j;
                vf i = activate(ld(gb + j, m), rec), fg = activate(ld(gb + H + j, m), rec);
                vf gg = activate(ld(gb + 2 * H + j, m), act), o = activate(ld(gb + 3 * H + j, m), rec);
                vf cc = fg * ld(cp + b * H + j, m) + i * gg;
                vf tcv = activate(cc, act);
                stf(gb + j, i, m);
                stf(gb + H + j, fg, m);
                stf(gb + 2 * H + j, gg, m);
                stf(gb + 3 * H + j, o, m);
                stf(c + b * H + j, cc, m);
                stf(tc + b * H + j, tcv, m);
                stf(y + b * H + j, o * tcv, m);
            }
        }
    }
}

/* dY at (t, b, j) is dY[t * ds[0] + b * ds[1] + j * ds[2]]. dh, dc (B, H): on entry dL/dh_T and
 * dL/dc_T, on return dL/dh0 and dL/dc0. DG (T, B, 4H): dL/d(gate pre-activations). tmp (B, H):
 * scratch, used with a mask. */
void scan_lstm_backward(sgemm_t f, const float *G, const float *C, const float *TC, const float *c0,
                        const float *w_hh, const float *mask, const int64_t *bs, const float *dY, const int64_t *ds,
                        float *DG, float *dh, float *dc, float *tmp, int64_t T, int64_t B, int64_t H, int act, int rec,
                        int threads) {
    const int64_t H4 = 4 * H;
    for (int64_t t = T - 1; t >= 0; t--) {
        const int64_t n = bs ? bs[t] : B;
        float *dg = DG + t * B * H4;
        if (n < B) memset(dg + n * H4, 0, sizeof(float) * (B - n) * H4);
        if (n == 0) continue;
        const float *g = G + t * B * H4, *tc = TC + t * B * H, *cp = t ? C + (t - 1) * B * H : c0;
        const float *dy = dY + t * ds[0];
#pragma omp parallel for schedule(static) num_threads(threads_for(n, H4, threads)) if (threads > 1)
        for (int64_t b = 0; b < n; b++) {
            const float *gb = g + b * H4;
            float *dgb = dg + b * H4;
            for (int64_t j = 0; j < H; j += VL) {
                const int64_t m = H - j;
                vf d_h = ld(dh + b * H + j, m) + lds(dy + b * ds[1] + j * ds[2], ds[2], m);
                vf i = ld(gb + j, m), fg = ld(gb + H + j, m), gg = ld(gb + 2 * H + j, m), o = ld(gb + 3 * H + j, m);
                vf tcv = ld(tc + b * H + j, m);
                vf d_c = ld(dc + b * H + j, m) + d_h * o * deriv(tcv, act);
                stf(dgb + j, d_c * gg * deriv(i, rec), m);
                stf(dgb + H + j, d_c * ld(cp + b * H + j, m) * deriv(fg, rec), m);
                stf(dgb + 2 * H + j, d_c * i * deriv(gg, act), m);
                stf(dgb + 3 * H + j, d_h * tcv * deriv(o, rec), m);
                stf(dc + b * H + j, d_c * fg, m);
            }
        }
        /* dL/dh_{t-1} (H x n) = W_hh^T (H x 4H) dg (4H x n), through the mask */
        gemm(f, "N", H, n, H4, w_hh, H, dg, H4, 0.0f, mask ? tmp : dh, H);
        if (mask)
            for (int64_t k = 0; k < n * H; k++) dh[k] = tmp[k] * mask[k];
        flush_all(dh, n * H);
    }
}

/* ---- GRU (torch's equations: the reset gate multiplies W_hn h + b_hn) ---- */

/* HH (T, B, 3H): W_hh h_{t-1} + b_hh, kept for backward. b_hh (3H) or NULL. */
void scan_gru_forward(sgemm_t f, float *G, float *HH, float *Y, const float *h0, const float *w_hh,
                      const float *b_hh, const float *mask, float *hm, const int64_t *bs, int64_t T, int64_t B,
                      int64_t H, int act, int rec, int threads) {
    const int64_t H3 = 3 * H;
    for (int64_t t = 0; t < T; t++) {
        const int64_t n = bs ? bs[t] : B;
        if (n == 0) break;
        const float *hp = t ? Y + (t - 1) * B * H : h0;
        float *g = G + t * B * H3, *hh = HH + t * B * H3, *y = Y + t * B * H;
        gemm(f, "T", H3, n, H, w_hh, H, masked(hp, mask, hm, n, H), H, 0.0f, hh, H3);
#pragma omp parallel for schedule(static) num_threads(threads_for(n, H3, threads)) if (threads > 1)
        for (int64_t b = 0; b < n; b++) {
            float *gb = g + b * H3, *hb = hh + b * H3;
            for (int64_t j = 0; j < H; j += VL) {
                const int64_t m = H - j;
                vf hr = ld(hb + j, m), hz = ld(hb + H + j, m), hn = ld(hb + 2 * H + j, m);
                if (b_hh) {
                    hr += ld(b_hh + j, m);
                    hz += ld(b_hh + H + j, m);
                    hn += ld(b_hh + 2 * H + j, m);
                    stf(hb + j, hr, m);
                    stf(hb + H + j, hz, m);
                    stf(hb + 2 * H + j, hn, m);
                }
                vf r = activate(ld(gb + j, m) + hr, rec), z = activate(ld(gb + H + j, m) + hz, rec);
                vf nn = activate(ld(gb + 2 * H + j, m) + r * hn, act);
                vf h = ld(hp + b * H + j, m);
                stf(gb + j, r, m);
                stf(gb + H + j, z, m);
                stf(gb + 2 * H + j, nn, m);
                stf(y + b * H + j, nn + z * (h - nn), m);
            }
        }
    }
}

/* DX (T, B, 3H): dL/d(input side) r | z | n; DHN (T, B, H): dL/d(W_hn h + b_hn); DHH (B, 3H) and
 * tmp (B, H): scratch. dh (B, H): on entry dL/dh_T, on return dL/dh0. */
void scan_gru_backward(sgemm_t f, const float *G, const float *HH, const float *Y, const float *h0,
                       const float *w_hh, const float *mask, const int64_t *bs, const float *dY, const int64_t *ds,
                       float *DX, float *DHN, float *DHH, float *dh, float *tmp, int64_t T, int64_t B, int64_t H,
                       int act, int rec, int threads) {
    const int64_t H3 = 3 * H;
    for (int64_t t = T - 1; t >= 0; t--) {
        const int64_t n = bs ? bs[t] : B;
        float *dx = DX + t * B * H3, *dhn = DHN + t * B * H;
        if (n < B) {
            memset(dx + n * H3, 0, sizeof(float) * (B - n) * H3);
            memset(dhn + n * H, 0, sizeof(float) * (B - n) * H);
        }
        if (n == 0) continue;
        const float *g = G + t * B * H3, *hh = HH + t * B * H3, *hp = t ? Y + (t - 1) * B * H : h0;
        const float *dy = dY + t * ds[0];
#pragma omp parallel for schedule(static) num_threads(threads_for(n, H3, threads)) if (threads > 1)
        for (int64_t b = 0; b < n; b++) {
            const float *gb = g + b * H3;
            float *dxb = dx + b * H3, *dhh = DHH + b * H3;
            for (int64_t j = 0; j < H; j += VL) {
                const int64_t m = H - j;
                vf d_h = ld(dh + b * H + j, m) + lds(dy + b * ds[1] + j * ds[2], ds[2], m);
                vf r = ld(gb + j, m), z = ld(gb + H + j, m), nn = ld(gb + 2 * H + j, m);
                vf dn = d_h * (1.0f - z) * deriv(nn, act);
                vf dz = d_h * (ld(hp + b * H + j, m) - nn) * deriv(z, rec);
                vf dr = dn * ld(hh + b * H3 + 2 * H + j, m) * deriv(r, rec);
                vf dnh = dn * r;
                stf(dxb + j, dr, m);
                stf(dxb + H + j, dz, m);
                stf(dxb + 2 * H + j, dn, m);
                stf(dhn + b * H + j, dnh, m);
                stf(dhh + j, dr, m);
                stf(dhh + H + j, dz, m);
                stf(dhh + 2 * H + j, dnh, m);
                stf(dh + b * H + j, d_h * z, m);
            }
        }
        /* dL/dh_{t-1} = dh z + W_hh^T [dr | dz | dhn], the product through the mask */
        gemm(f, "N", H, n, H3, w_hh, H, DHH, H3, 0.0f, tmp, H);
        if (mask)
            for (int64_t k = 0; k < n * H; k++) dh[k] += tmp[k] * mask[k];
        else
            for (int64_t k = 0; k < n * H; k++) dh[k] += tmp[k];
        flush_all(dh, n * H);
    }
}

/* ---- Elman RNN: h_t = act(x_t W_ih^T + b + W_hh h_{t-1}); Y holds the input side on entry ---- */

void scan_rnn_forward(sgemm_t f, float *Y, const float *h0, const float *w_hh, const float *mask, float *hm,
                      const int64_t *bs, int64_t T, int64_t B, int64_t H, int act, int threads) {
    for (int64_t t = 0; t < T; t++) {
        const int64_t n = bs ? bs[t] : B;
        if (n == 0) break;
        const float *hp = t ? Y + (t - 1) * B * H : h0;
        float *y = Y + t * B * H;
        gemm(f, "T", H, n, H, w_hh, H, masked(hp, mask, hm, n, H), H, 1.0f, y, H);
#pragma omp parallel for schedule(static) num_threads(threads_for(n, H, threads)) if (threads > 1)
        for (int64_t b = 0; b < n; b++)
            for (int64_t j = 0; j < H; j += VL) stf(y + b * H + j, activate(ld(y + b * H + j, H - j), act), H - j);
    }
}

/* DP (T, B, H): dL/d(pre-activation). */
void scan_rnn_backward(sgemm_t f, const float *Y, const float *w_hh, const float *mask, const int64_t *bs,
                       const float *dY, const int64_t *ds, float *DP, float *dh, float *tmp, int64_t T, int64_t B,
                       int64_t H, int act, int threads) {
    for (int64_t t = T - 1; t >= 0; t--) {
        const int64_t n = bs ? bs[t] : B;
        float *dp = DP + t * B * H;
        if (n < B) memset(dp + n * H, 0, sizeof(float) * (B - n) * H);
        if (n == 0) continue;
        const float *y = Y + t * B * H, *dy = dY + t * ds[0];
#pragma omp parallel for schedule(static) num_threads(threads_for(n, H, threads)) if (threads > 1)
        for (int64_t b = 0; b < n; b++)
            for (int64_t j = 0; j < H; j += VL) {
                const int64_t m = H - j;
                vf d_h = ld(dh + b * H + j, m) + lds(dy + b * ds[1] + j * ds[2], ds[2], m);
                stf(dp + b * H + j, d_h * deriv(ld(y + b * H + j, m), act), m);
            }
        gemm(f, "N", H, n, H, w_hh, H, dp, H, 0.0f, mask ? tmp : dh, H);
        if (mask)
            for (int64_t k = 0; k < n * H; k++) dh[k] = tmp[k] * mask[k];
        flush_all(dh, n * H);
    }
}
