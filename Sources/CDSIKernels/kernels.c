// See include/DSIKernels.h. The tanh is the clamped rational minimax approximation Eigen
// uses for float (the same coefficients as the Swift version it replaces, Layers.swift's
// fastTanh), written as plain loops that clang vectorises for each target clone.
#include "DSIKernels.h"

#if defined(__x86_64__) && defined(__clang__)
#define DSI_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define DSI_CLONES
#endif

static inline float rational_tanh(float v) {
    const float bound = 7.90531110763549805f;
    float x = v < -bound ? -bound : (v > bound ? bound : v);
    float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

static const float gelu_k = 0.7978845608028654f;  // sqrt(2 / pi)

DSI_CLONES void dsi_gelu_forward(float *out, const float *inp, long n) {
    // Each iteration reads and writes only index i, so out == inp is safe to vectorise.
#pragma clang loop vectorize(assume_safety)
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float t = rational_tanh(gelu_k * (x + 0.044715f * x * x * x));
        out[i] = 0.5f * x * (1.0f + t);
    }
}

DSI_CLONES void dsi_gelu_backward(float *dinp, const float *inp, const float *dout, long n, int accumulate) {
    if (accumulate) {
#pragma clang loop vectorize(assume_safety)
        for (long i = 0; i < n; i++) {
            float x = inp[i], x2 = x * x;
            float t = rational_tanh(gelu_k * (x + 0.044715f * x2 * x));
            float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * gelu_k * (1.0f + 3.0f * 0.044715f * x2);
            dinp[i] += d * dout[i];
        }
    } else {
#pragma clang loop vectorize(assume_safety)
        for (long i = 0; i < n; i++) {
            float x = inp[i], x2 = x * x;
            float t = rational_tanh(gelu_k * (x + 0.044715f * x2 * x));
            float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * gelu_k * (1.0f + 3.0f * 0.044715f * x2);
            dinp[i] = d * dout[i];
        }
    }
}

const char *dsi_kernels_isa(void) {
#if defined(__x86_64__) && defined(__clang__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
#endif
    return "baseline";
}
