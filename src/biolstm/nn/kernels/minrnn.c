/* MinLSTM / MinGRU forward and backward over a whole sequence, fused: gates, the linear
 * recurrence h_t = a_t h_{t-1} + (1 - a_t) g(h~_t) and, backward, the reverse recurrence of
 * the gradient and the gradient of the pre-activations, in one pass over time each.
 *
 * Layout: pre (B, T, G*H) float32, contiguous, G = 3 (MinLSTM: f | i | h~) or 2 (MinGRU:
 * z | h~); out and grad (B, T, H); h0 (B, H). For a small input (one-hot DNA: D = 4) the
 * pre-activations are instead projected inside the kernel from x (B, T, D), and their
 * gradient folded into the weight and input gradients there, which saves the largest tensors. Work is split into lanes (a batch row and a
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
 * reduction and a degree-6 polynomial, within 2.5e-7 relative on [-87, 0] (checked against
 * double exp at steps of 1e-4); below -87 it returns exp(-87); NaN stays NaN. */
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

/* The pre-activations of one step for a lane's units, bias added, into p (G rows of BLOCK).
 * Either read from pre (its row at this step) or, with a small input, projected here from the
 * input row xv (D values) and the transposed weight wt (D, G*H): the (B, T, G*H) tensor of
 * pre-activations is then never written to memory. */
static inline void step_pre(const float *restrict row, const float *restrict xv, const float *restrict wt,
                            const float *restrict bias, int64_t G, int64_t H, int64_t D, int64_t j0, int n,
                            float *restrict p) {
    for (int64_t r = 0; r < G; r++) {
        float *restrict q = p + r * BLOCK;
        const float *restrict c = bias + r * H + j0;
        if (row) {
            const float *restrict y = row + r * H;
            for (int j = 0; j < n; j++) q[j] = y[j] + c[j];
        } else {
            for (int j = 0; j < n; j++) q[j] = c[j];
            for (int64_t d = 0; d < D; d++) {
                const float xd = xv[d], *restrict w = wt + d * G * H + r * H + j0;
                for (int j = 0; j < n; j++) q[j] += xd * w[j];
            }
        }
    }
}

/* The operands of one lane: batch row b, hidden units [j0, j0 + n). pre is NULL when the
 * pre-activations are projected from x (B, T, D) and wt (D, G*H) inside the kernel. */
typedef struct {
    const float *pre, *x, *wt, *bias, *h0;
    int64_t T, H, D, G, b, j0;
    int n, lstm;
} lane_t;

/* One lane forward. A function of its own so that its restrict-qualified pointers survive
 * OpenMP outlining and the inner loops vectorise. */
static void forward_lane(const lane_t *L, float *restrict out) {
    const int64_t T = L->T, H = L->H, G = L->G, b = L->b, j0 = L->j0;
    const int n = L->n;
    float h[BLOCK], p[3 * BLOCK];
    const float *restrict pf = p, *restrict pi = p + BLOCK, *restrict pk = p + (G - 1) * BLOCK;
    memcpy(h, L->h0 + b * H + j0, n * sizeof(float));
    for (int64_t t = 0; t < T; t++) {
        const float *row = L->pre ? L->pre + (b * T + t) * G * H + j0 : NULL;
        if (row && t + AHEAD < T) prefetch(row + AHEAD * G * H, G, H, n);
        step_pre(row, L->x + (b * T + t) * L->D, L->wt, L->bias, G, H, L->D, j0, n, p);
        float *restrict o = out + (b * T + t) * H + j0;
        if (L->lstm) {
            for (int j = 0; j < n; j++) {
                float sf, si, dg;
                float a = lstm_decay(pf[j], pi[j], &sf, &si), g = g_act(pk[j], &dg);
                h[j] = a * h[j] + (1.0f - a) * g;
                o[j] = h[j];
            }
        } else {
            for (int j = 0; j < n; j++) {
                float dg;
                float a = gru_decay(pf[j]), g = g_act(pk[j], &dg);
                h[j] = a * h[j] + (1.0f - a) * g;
                o[j] = h[j];
            }
        }
    }
}

/* One lane backward. The gradient of the state runs backwards as its own linear recurrence:
 * dL/dh_t = grad_t + a_{t+1} dL/dh_{t+1}; the gates are recomputed. With pre given, the
 * gradient of the pre-activations goes to grad_pre; with x given, it is folded at once into
 * this lane's share of the weight gradient (grad_wt, D x G rows of H) and of the input
 * gradient (grad_x, T x D), so it is never stored either. */
static void backward_lane(const lane_t *L, const float *restrict out, const float *restrict grad,
                          float *restrict grad_pre, float *restrict grad_x, float *restrict grad_wt,
                          float *restrict grad_h0, float *restrict grad_bias) {
    const int64_t T = L->T, H = L->H, G = L->G, D = L->D, b = L->b, j0 = L->j0;
    const int n = L->n;
    float carry[BLOCK]; /* a_{t+1} dL/dh_{t+1} */
    float p[3 * BLOCK], gp[3 * BLOCK] = {0}, sum[3 * BLOCK] = {0};
    const float *restrict pf = p, *restrict pi = p + BLOCK, *restrict pk = p + (G - 1) * BLOCK;
    float *restrict gf = gp, *restrict gi = gp + BLOCK, *restrict gk = gp + (G - 1) * BLOCK;
    for (int j = 0; j < n; j++) carry[j] = 0.0f;
    for (int64_t t = T - 1; t >= 0; t--) {
        const float *row = L->pre ? L->pre + (b * T + t) * G * H + j0 : NULL;
        const float *restrict xv = L->x + (b * T + t) * D;
        const float *restrict gr = grad + (b * T + t) * H + j0;
        const float *restrict hp = t > 0 ? out + (b * T + t - 1) * H + j0 : L->h0 + b * H + j0;
        if (t >= AHEAD) {
            if (row) prefetch(row - AHEAD * G * H, G, H, n);
            prefetch(gr - AHEAD * H, 1, H, n);
            prefetch(hp - AHEAD * H, 1, H, n);
        }
        step_pre(row, xv, L->wt, L->bias, G, H, D, j0, n, p);
        if (L->lstm) {
            for (int j = 0; j < n; j++) {
                float sf, si, dg;
                float a = lstm_decay(pf[j], pi[j], &sf, &si), g = g_act(pk[j], &dg);
                float gh = gr[j] + carry[j];
                float du = gh * (hp[j] - g) * a * (1.0f - a); /* h = a h_prev + (1 - a) g; a = sigmoid(u) */
                gf[j] = du * sf;                               /* du/df = sigmoid(-f) */
                gi[j] = -du * si;                              /* du/di = -sigmoid(-i) */
                gk[j] = gh * (1.0f - a) * dg;
                carry[j] = a * gh;
            }
        } else {
            for (int j = 0; j < n; j++) {
                float dg;
                float a = gru_decay(pf[j]), g = g_act(pk[j], &dg);
                float gh = gr[j] + carry[j];
                gf[j] = -gh * (hp[j] - g) * a * (1.0f - a); /* da/dx = -a (1 - a) */
                gk[j] = gh * (1.0f - a) * dg;
                carry[j] = a * gh;
            }
        }
        for (int64_t r = 0; r < G; r++) {
            const float *restrict q = gp + r * BLOCK;
            float *restrict s = sum + r * BLOCK;
            for (int j = 0; j < n; j++) s[j] += q[j];
            if (row) {
                float *restrict y = grad_pre + (b * T + t) * G * H + r * H + j0;
                for (int j = 0; j < n; j++) y[j] = q[j];
            }
        }
        if (!row) {
            for (int64_t d = 0; d < D; d++) {
                const float xd = xv[d], *restrict w = L->wt + d * G * H + j0;
                float *restrict acc = grad_wt + d * G * H + j0;
                for (int64_t r = 0; r < G; r++) {
                    const float *restrict q = gp + r * BLOCK;
                    for (int j = 0; j < n; j++) acc[r * H + j] += xd * q[j];
                }
                if (grad_x) { /* sum_j,r q w: products in a vector loop, then eight running sums */
                    float prod[BLOCK], part[8] = {0};
                    for (int j = 0; j < n; j++) prod[j] = gf[j] * w[j] + gk[j] * w[(G - 1) * H + j];
                    if (L->lstm)
                        for (int j = 0; j < n; j++) prod[j] += gi[j] * w[H + j];
                    int j = 0;
                    for (; j + 8 <= n; j += 8)
                        for (int k = 0; k < 8; k++) part[k] += prod[j + k];
                    float dx = 0.0f;
                    for (; j < n; j++) dx += prod[j];
                    for (int k = 0; k < 8; k++) dx += part[k];
                    grad_x[t * D + d] = dx;
                }
            }
        }
    }
    memcpy(grad_h0 + b * H + j0, carry, n * sizeof(float));
    for (int64_t r = 0; r < G; r++) memcpy(grad_bias + b * G * H + r * H + j0, sum + r * BLOCK, n * sizeof(float));
}

static lane_t lane_of(const float *pre, const float *x, const float *wt, const float *bias, const float *h0,
                      int64_t T, int64_t H, int64_t D, int lstm, int64_t lane) {
    const int64_t blocks = (H + BLOCK - 1) / BLOCK, j0 = (lane % blocks) * BLOCK;
    lane_t L = {pre, x, wt, bias, h0, T, H, D, lstm ? 3 : 2, lane / blocks, j0,
                (int)(H - j0 < BLOCK ? H - j0 : BLOCK), lstm};
    return L;
}

/* Pre-activations (pre (B, T, G*H); or, pre NULL, x (B, T, D) times wt (D, G*H)) plus bias
 * (G*H) -> out (B, T, H), from h0 (B, H). */
void minrnn_forward(const float *pre, const float *x, const float *wt, const float *bias, const float *h0,
                    float *out, int64_t B, int64_t T, int64_t H, int64_t D, int lstm, int64_t lane0, int64_t lane1,
                    int threads) {
    (void)B; /* lanes carry the batch row */
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t lane = lane0; lane < lane1; lane++) {
        lane_t L = lane_of(pre, x, wt, bias, h0, T, H, D, lstm, lane);
        forward_lane(&L, out);
    }
}

/* grad: dL/d out. Writes dL/d h0 (grad_h0, (B, H)) and per batch row the bias gradient
 * (grad_bias, (B, G*H)); with pre, dL/d pre (grad_pre, its layout); with x, per lane the
 * input gradient (grad_x, (lanes, T, D); NULL when not needed) and the weight gradient (grad_wt,
 * (B, D, G*H), zeroed by the caller). The caller sums these over lanes and rows. */
void minrnn_backward(const float *pre, const float *x, const float *wt, const float *bias, const float *h0,
                     const float *out, const float *grad, float *grad_pre, float *grad_x, float *grad_wt,
                     float *grad_h0, float *grad_bias, int64_t B, int64_t T, int64_t H, int64_t D, int lstm,
                     int64_t lane0, int64_t lane1, int threads) {
    (void)B;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t lane = lane0; lane < lane1; lane++) {
        lane_t L = lane_of(pre, x, wt, bias, h0, T, H, D, lstm, lane);
        backward_lane(&L, out, grad, grad_pre, pre || !grad_x ? NULL : grad_x + lane * T * D,
                      pre ? NULL : grad_wt + L.b * D * L.G * H, grad_h0, grad_bias);
    }
}
