// The machine's floating-point peak, measured: 12 independent chains of fused
// multiply-adds per thread (enough to cover the FMA latency on the CPUs this project runs
// on: 4 cycles x 2 units), on the widest vectors the CPU and OS support. `dsi bench ops`
// reports it as fma_peak_gflops so achieved GFLOP/s can be read as a ratio taken in one run.
#include "DSIStartup.h"

#include <time.h>

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define CHAINS(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static double chains512(long n, float *sink) {
    const __m512 a = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-7f);
#define DECL(i) __m512 c##i = _mm512_set1_ps(1.0f + (float)(i));
    CHAINS(DECL)
#undef DECL
    for (long k = 0; k < n; k++) {
#define STEP(i) c##i = _mm512_fmadd_ps(c##i, a, b);
        CHAINS(STEP)
#undef STEP
    }
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, c##i);
    CHAINS(SUM)
#undef SUM
    *sink = _mm512_reduce_add_ps(s);
    return (double)n * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double chains256(long n, float *sink) {
    const __m256 a = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-7f);
#define DECL(i) __m256 c##i = _mm256_set1_ps(1.0f + (float)(i));
    CHAINS(DECL)
#undef DECL
    for (long k = 0; k < n; k++) {
#define STEP(i) c##i = _mm256_fmadd_ps(c##i, a, b);
        CHAINS(STEP)
#undef STEP
    }
    __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, c##i);
    CHAINS(SUM)
#undef SUM
    float v[8];
    _mm256_storeu_ps(v, s);
    *sink = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    return (double)n * 12 * 8 * 2;
}
#endif

// Without FMA: a multiply and an add per element and step (SSE, 4 floats).
static double chains_scalar(long n, float *sink) {
    typedef float v4 __attribute__((vector_size(16)));
    const v4 a = {0.9999999f, 0.9999999f, 0.9999999f, 0.9999999f}, b = {1e-7f, 1e-7f, 1e-7f, 1e-7f};
#define DECL(i) v4 c##i = {1.0f + (float)(i), 1.0f, 1.0f, 1.0f};
    CHAINS(DECL)
#undef DECL
    for (long k = 0; k < n; k++) {
#define STEP(i) c##i = c##i * a + b;
        CHAINS(STEP)
#undef STEP
    }
    v4 s = {0, 0, 0, 0};
#define SUM(i) s += c##i;
    CHAINS(SUM)
#undef SUM
    *sink = s[0] + s[1] + s[2] + s[3];
    return (double)n * 12 * 4 * 2;
}

double dsi_fma_chains_gflops(int tier, long iterations) {
    float sink = 0;
    double flops;
    double t0 = now_seconds();
#if defined(__x86_64__)
    if (tier >= DSI_TIER_AVX512) flops = chains512(iterations, &sink);
    else if (tier >= DSI_TIER_AVX2) flops = chains256(iterations, &sink);
    else flops = chains_scalar(iterations, &sink);
#else
    (void)tier;
    flops = chains_scalar(iterations, &sink);
#endif
    double t = now_seconds() - t0;
    // The sum is finite and positive; this keeps the compiler from removing the loop.
    if (!(sink > 0)) return -1;
    return flops / t / 1e9;
}
