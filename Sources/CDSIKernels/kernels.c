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

DSI_CLONES void dsi_bias_gelu_forward(float *hidden, float *activated, const float *bias, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        float *h = hidden + r * cols;
        float *a = activated + r * cols;
        // Per element: h = h + b is stored, then a = gelu(h); with a == h the second
        // store wins, which is what inference (no backward) wants.
#pragma clang loop vectorize(assume_safety)
        for (long c = 0; c < cols; c++) {
            float x = h[c] + bias[c];
            h[c] = x;
            float t = rational_tanh(gelu_k * (x + 0.044715f * x * x * x));
            a[c] = 0.5f * x * (1.0f + t);
        }
    }
}

// Row sums are reassociated (vectorised): the order depends only on C, not on threads.
DSI_CLONES void dsi_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                      const float *bias, long rows, long C, float eps) {
#pragma clang fp reassociate(on)
    for (long n = 0; n < rows; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        float m = 0;
        for (long c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        float var = 0;
        for (long c = 0; c < C; c++) {
            float d = x[c] - m;
            var += d * d;
        }
        var /= (float)C;
        float s = 1.0f / __builtin_sqrtf(var + eps);
#pragma clang loop vectorize(assume_safety)
        for (long c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

DSI_CLONES void dsi_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                       const float *weight, const float *mean, const float *rstd, long rows, long C) {
#pragma clang fp reassociate(on)
    for (long n = 0; n < rows; n++) {
        const float *x = inp + n * C;
        const float *g = dout + n * C;
        float *d = dinp + n * C;
        float m = mean[n], s = rstd[n];
        float sum_g = 0, sum_gx = 0;
#pragma clang loop vectorize(assume_safety)
        for (long c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            float gw = g[c] * weight[c];
            sum_g += gw;
            sum_gx += gw * xhat;
            dweight[c] += g[c] * xhat;
            dbias[c] += g[c];
        }
        sum_g /= (float)C;
        sum_gx /= (float)C;
#pragma clang loop vectorize(assume_safety)
        for (long c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            d[c] += (g[c] * weight[c] - sum_g - xhat * sum_gx) * s;
        }
    }
}

DSI_CLONES void dsi_adamw(float *p, const float *g, float *m, float *v, long n, float lr, float grad_scale, float b1,
                          float b2, float eps, float wd, float c1, float c2) {
#pragma clang loop vectorize(assume_safety)
    for (long i = 0; i < n; i++) {
        float grad = g[i] * grad_scale;
        float mi = b1 * m[i] + (1.0f - b1) * grad;
        float vi = b2 * v[i] + (1.0f - b2) * grad * grad;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / c1, vhat = vi / c2;
        p[i] -= lr * (mhat / (__builtin_sqrtf(vhat) + eps) + wd * p[i]);
    }
}

// exp(x) for x <= 0 (softmax arguments, x - max), Cephes's expf: x = n ln2 + r with
// |r| <= ln2 / 2 (ln2 split in two for exactness), a degree-5 polynomial for e^r, and
// 2^n put into the exponent bits. Below -87 the result is the smallest normal instead of
// a denormal or 0 (e^-87 = 1.6e-38; such a weight is already 0 against the row's 1).
// Relative error about 2 ulp; plain arithmetic, so clang vectorises it.
static inline float softmax_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int bits = ((int)n + 127) << 23;
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// The largest of row[j], j < n, with keymask[j] != 0 (all j when keymask is NULL); -inf
// when there is none. Sixteen running maxima, so the loop is vector compares and maxes.
static inline float masked_row_max(const float *row, const float *keymask, long n) {
    float m[16];
    for (int k = 0; k < 16; k++) m[k] = -__builtin_inff();
    long j = 0;
    if (keymask) {
        for (; j + 16 <= n; j += 16)
            for (int k = 0; k < 16; k++) {
                float v = keymask[j + k] != 0 ? row[j + k] : -__builtin_inff();
                m[k] = v > m[k] ? v : m[k];
            }
    } else {
        for (; j + 16 <= n; j += 16)
            for (int k = 0; k < 16; k++) m[k] = row[j + k] > m[k] ? row[j + k] : m[k];
    }
    float mx = -__builtin_inff();
    for (; j < n; j++) {
        float v = (!keymask || keymask[j] != 0) ? row[j] : -__builtin_inff();
        mx = v > mx ? v : mx;
    }
    for (int k = 0; k < 16; k++) mx = m[k] > mx ? m[k] : mx;
    return mx;
}

DSI_CLONES void dsi_softmax_rows(float *P, long rows, long cols, long ld, const float *keymask, int causal) {
#pragma clang fp reassociate(on)
    for (long t = 0; t < rows; t++) {
        float *row = P + t * ld;
        long visible = causal ? (t + 1 < cols ? t + 1 : cols) : cols;
        float mx = masked_row_max(row, keymask, visible);
        if (mx == -__builtin_inff()) {
            // No key to attend to (all padding): the row attends to nothing.
            for (long j = 0; j < cols; j++) row[j] = 0;
            continue;
        }
        float sum = 0;
        if (keymask) {
#pragma clang loop vectorize(assume_safety)
            for (long j = 0; j < visible; j++) {
                float e = keymask[j] != 0 ? softmax_exp(row[j] - mx) : 0.0f;
                row[j] = e;
                sum += e;
            }
        } else {
#pragma clang loop vectorize(assume_safety)
            for (long j = 0; j < visible; j++) {
                float e = softmax_exp(row[j] - mx);
                row[j] = e;
                sum += e;
            }
        }
        float inv = 1.0f / sum;
#pragma clang loop vectorize(assume_safety)
        for (long j = 0; j < visible; j++) row[j] *= inv;
        for (long j = visible; j < cols; j++) row[j] = 0;
    }
}

DSI_CLONES void dsi_softmax_backward_rows(float *G, const float *P, long rows, long cols, float scale) {
#pragma clang fp reassociate(on)
    for (long t = 0; t < rows; t++) {
        float *g = G + t * cols;
        const float *p = P + t * cols;
        float dot = 0;
        for (long j = 0; j < cols; j++) dot += p[j] * g[j];
#pragma clang loop vectorize(assume_safety)
        for (long j = 0; j < cols; j++) g[j] = p[j] * (g[j] - dot) * scale;
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
