/* MinLSTM / MinGRU forward and backward over a whole sequence, fused: gates, the linear
 * recurrence h_t = a_t h_{t-1} + (1 - a_t) g(h~_t) and, backward, the reverse recurrence of
 * the gradient and the gradient of the pre-activations, in one pass over time each.
 *
 * Layout: pre (B, T, G*H) float32, contiguous, G = 3 (MinLSTM: f | i | h~) or 2 (MinGRU:
 * z | h~); out and grad (B, T, H); h0 (B, H). Work is split into lanes (a batch row and a
 * block of hidden units); a call handles lanes [lane0, lane1). Built with -fopenmp, a call
 * runs its lanes on `threads` OpenMP threads: loaded into a process where torch has loaded
 * its libgomp.so.1, that is torch's own thread pool, so the two never compete for cores.
 * Built without, a call is sequential and callers run several calls on threads. The inner
 * loops over hidden units vectorise. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 128

/* 1 when built with OpenMP: one call may use several threads. */
int minrnn_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
#define AHEAD 4 /* steps ahead to prefetch: the gate maths leaves the hardware prefetcher behind */

/* Ask for the cache lines of n floats at p, G rows H apart, before they are needed. */
static inline void prefetch(const float *p, int64_t G, int64_t H, int n) {
    for (int64_t r = 0; r < G; r++)
        for (int j = 0; j < n; j += 16) __builtin_prefetch(p + r * H + j);
}

/* exp(x) for x <= 0 (every exponent below is minus an absolute value): Cody-Waite range
 * reduction and a degree-6 polynomial, within 2e-7 relative; below -87 it returns exp(-87). */
static inline float exp_neg(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest (1.5 * 2^23 trick) */
    float r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-6f;
    float p = 1.38888889e-3f;
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return p * scale;
}

/* MinLSTM decay a = sigmoid(f) / (sigmoid(f) + sigmoid(i)), written as Ai Bf / (Ai Bf + Af Bi)
 * with 1 / sigmoid(x) = A / B, A = 1 + exp(-|x|), B = exp(min(x, 0)), Bf and Bi divided by the
 * larger of them so that the denominator is at least 1 (no 0/0 when both gates underflow).
 * sf, si: sigmoid(-f), sigmoid(-i), which the backward pass needs. */
static inline float lstm_decay(float f, float i, float *sf, float *si) {
    float p = exp_neg(-fabsf(f)), q = exp_neg(-fabsf(i));
    float mf = f < 0.0f ? f : 0.0f, mi = i < 0.0f ? i : 0.0f;
    float r = exp_neg(-fabsf(mf - mi));
    float bf = mf >= mi ? 1.0f : r, bi = mf >= mi ? r : 1.0f;
    float af = 1.0f + p, ai = 1.0f + q;
    float num = ai * bf;
    float ra = 1.0f / af, ri = 1.0f / ai;
    *sf = f >= 0.0f ? p * ra : ra;
    *si = i >= 0.0f ? q * ri : ri;
    return num / (num + af * bi);
}

/* g(x) = x + 0.5 for x >= 0, sigmoid(x) below; dg: its derivative. */
static inline float g_act(float x, float *dg) {
    float e = exp_neg(-fabsf(x));
    float s = e / (1.0f + e);
    *dg = x >= 0.0f ? 1.0f : s * (1.0f - s);
    return x >= 0.0f ? x + 0.5f : s;
}

/* MinGRU decay a = 1 - z = sigmoid(-x). */
static inline float gru_decay(float x) {
    float e = exp_neg(-fabsf(x));
    return (x >= 0.0f ? e : 1.0f) / (1.0f + e);
}

/* One lane forward: batch row b, hidden units [j0, j0 + n). A function of its own so that its
 * restrict-qualified pointers survive OpenMP outlining and the inner loops vectorise. */
static void forward_lane(const float *restrict pre, const float *restrict bias, const float *restrict h0,
                         float *restrict out, int64_t T, int64_t H, int lstm, int64_t b, int64_t j0, int n) {
    const int64_t G = lstm ? 3 : 2;
    float h[BLOCK];
    memcpy(h, h0 + b * H + j0, n * sizeof(float));
    const float *restrict c = bias + j0, *restrict ck = c + (G - 1) * H;
    for (int64_t t = 0; t < T; t++) {
        const float *restrict x = pre + (b * T + t) * G * H + j0;
        const float *restrict k = x + (G - 1) * H;
        float *restrict o = out + (b * T + t) * H + j0;
        if (t + AHEAD < T) prefetch(x + AHEAD * G * H, G, H, n);
        if (lstm) {
            for (int j = 0; j < n; j++) {
                float sf, si, dg;
                float a = lstm_decay(x[j] + c[j], x[H + j] + c[H + j], &sf, &si), g = g_act(k[j] + ck[j], &dg);
                h[j] = a * h[j] + (1.0f - a) * g;
                o[j] = h[j];
            }
        } else {
            for (int j = 0; j < n; j++) {
                float dg;
                float a = gru_decay(x[j] + c[j]), g = g_act(k[j] + ck[j], &dg);
                h[j] = a * h[j] + (1.0f - a) * g;
                o[j] = h[j];
            }
        }
    }
}

/* One lane backward. The gradient of the state runs backwards as its own linear recurrence:
 * dL/dh_t = grad_t + a_{t+1} dL/dh_{t+1}; the gates are recomputed from pre. */
static void backward_lane(const float *restrict pre, const float *restrict bias, const float *restrict h0,
                          const float *restrict out, const float *restrict grad, float *restrict grad_pre,
                          float *restrict grad_h0, float *restrict grad_bias, int64_t T, int64_t H, int lstm,
                          int64_t b, int64_t j0, int n) {
    const int64_t G = lstm ? 3 : 2;
    float carry[BLOCK];                          /* a_{t+1} dL/dh_{t+1} */
    float sum0[BLOCK], sum1[BLOCK], sum2[BLOCK]; /* this lane's bias gradients */
    const float *restrict c = bias + j0, *restrict ck = c + (G - 1) * H;
    for (int j = 0; j < n; j++) carry[j] = sum0[j] = sum1[j] = sum2[j] = 0.0f;
    for (int64_t t = T - 1; t >= 0; t--) {
        const int64_t row = (b * T + t) * G * H + j0;
        const float *restrict x = pre + row, *restrict k = x + (G - 1) * H;
        const float *restrict gr = grad + (b * T + t) * H + j0;
        const float *restrict hp = t > 0 ? out + (b * T + t - 1) * H + j0 : h0 + b * H + j0;
        float *restrict gx = grad_pre + row;
        float *restrict gk = gx + (G - 1) * H;
        if (t >= AHEAD) {
            prefetch(x - AHEAD * G * H, G, H, n);
            prefetch(gr - AHEAD * H, 1, H, n);
            prefetch(hp - AHEAD * H, 1, H, n);
        }
        if (lstm) {
            for (int j = 0; j < n; j++) {
                float sf, si, dg;
                float a = lstm_decay(x[j] + c[j], x[H + j] + c[H + j], &sf, &si), g = g_act(k[j] + ck[j], &dg);
                float gh = gr[j] + carry[j];
                float du = gh * (hp[j] - g) * a * (1.0f - a); /* h = a h_prev + (1 - a) g; a = sigmoid(u) */
                float g0 = du * sf, g1 = -du * si;             /* du/df = sigmoid(-f), du/di = -sigmoid(-i) */
                float g2 = gh * (1.0f - a) * dg;
                gx[j] = g0;
                gx[H + j] = g1;
                gk[j] = g2;
                sum0[j] += g0;
                sum1[j] += g1;
                sum2[j] += g2;
                carry[j] = a * gh;
            }
        } else {
            for (int j = 0; j < n; j++) {
                float dg;
                float a = gru_decay(x[j] + c[j]), g = g_act(k[j] + ck[j], &dg);
                float gh = gr[j] + carry[j];
                float g0 = -gh * (hp[j] - g) * a * (1.0f - a), g2 = gh * (1.0f - a) * dg; /* da/dx = -a (1 - a) */
                gx[j] = g0;
                gk[j] = g2;
                sum0[j] += g0;
                sum2[j] += g2;
                carry[j] = a * gh;
            }
        }
    }
    memcpy(grad_h0 + b * H + j0, carry, n * sizeof(float));
    float *gb = grad_bias + b * G * H + j0;
    memcpy(gb, sum0, n * sizeof(float));
    if (lstm) memcpy(gb + H, sum1, n * sizeof(float));
    memcpy(gb + (G - 1) * H, sum2, n * sizeof(float));
}

/* pre (B, T, G*H) with bias (G*H) added -> out (B, T, H), from h0 (B, H). */
void minrnn_forward(const float *pre, const float *bias, const float *h0, float *out, int64_t B, int64_t T,
                    int64_t H, int lstm, int64_t lane0, int64_t lane1, int threads) {
    const int64_t blocks = (H + BLOCK - 1) / BLOCK;
    (void)B; /* lanes carry the batch row */
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t lane = lane0; lane < lane1; lane++) {
        const int64_t j0 = (lane % blocks) * BLOCK;
        forward_lane(pre, bias, h0, out, T, H, lstm, lane / blocks, j0, (int)(H - j0 < BLOCK ? H - j0 : BLOCK));
    }
}

/* grad: dL/d out; writes dL/d pre (grad_pre, same layout as pre), dL/d h0 (grad_h0) and, per
 * batch row, the sum over time of dL/d pre (grad_bias, (B, G*H): summed over rows by the
 * caller). */
void minrnn_backward(const float *pre, const float *bias, const float *h0, const float *out, const float *grad,
                     float *grad_pre, float *grad_h0, float *grad_bias, int64_t B, int64_t T, int64_t H, int lstm,
                     int64_t lane0, int64_t lane1, int threads) {
    const int64_t blocks = (H + BLOCK - 1) / BLOCK;
    (void)B;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t lane = lane0; lane < lane1; lane++) {
        const int64_t j0 = (lane % blocks) * BLOCK;
        backward_lane(pre, bias, h0, out, grad, grad_pre, grad_h0, grad_bias, T, H, lstm, lane / blocks, j0,
                      (int)(H - j0 < BLOCK ? H - j0 : BLOCK));
    }
}
