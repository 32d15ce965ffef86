/* Vectors of VL floats (GCC / Clang vector extensions) and the few operations the kernels share:
 * broadcast, select, absolute value, partial loads and stores, and exp of a non-positive
 * argument. Define VL (floats per vector) before including; the compiler maps a vector onto the
 * registers the build's target has (one AVX-512 register holds 16, an AVX2 one 8). */
#ifndef BIOLSTM_SIMD_H
#define BIOLSTM_SIMD_H

#include <stdint.h>
#include <string.h>

typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(int32_t))));

static inline vf splat(float s) {
    vf v;
    for (int k = 0; k < VL; k++) v[k] = s;
    return v;
}
static inline vi splati(int32_t s) {
    vi v;
    for (int k = 0; k < VL; k++) v[k] = s;
    return v;
}
static inline vf sel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); } /* m ? a : b */
static inline vf vabs(vf x) { return (vf)((vi)x & splati(0x7fffffff)); }

/* c floats at p (c < VL: the rest 0, nothing read past p + c). */
static inline vf ld(const float *p, int64_t c) {
    vf v;
    if (c >= VL) {
        memcpy(&v, p, sizeof v);
    } else {
        v = splat(0.0f);
        for (int k = 0; k < c; k++) v[k] = p[k];
    }
    return v;
}

/* The first c of v to p (all VL when c >= VL). */
static inline void st(float *p, vf v, int64_t c) {
    if (c >= VL)
        memcpy(p, &v, sizeof v);
    else
        for (int k = 0; k < c; k++) p[k] = v[k];
}

/* exp(x) for x <= 0 (every caller passes minus an absolute value or a minimum with 0):
 * Cody-Waite range reduction and a degree-6 polynomial, within 2.5e-7 relative on [-87, 0];
 * below -87 it returns exp(-87); NaN stays NaN. */
static inline vf vexp_neg(vf x) {
    x = sel(x < splat(-87.0f), splat(-87.0f), x);
    vf n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest (1.5 * 2^23 trick) */
    vf r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-6f;
    vf p = splat(1.38888889e-3f);
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    vi e = (__builtin_convertvector(n, vi) + 127) << 23;
    return p * (vf)e;
}

#endif
