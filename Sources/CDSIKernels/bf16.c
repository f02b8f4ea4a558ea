// Matrix products with bfloat16 inputs and float32 accumulation (`--precision bfloat16`),
// for CPUs with AVX512-BF16 (Intel Cooper Lake and Sapphire Rapids on, AMD Zen 4 and 5),
// whose OpenBLAS 0.3.21 has no sbgemm. See include/DSIKernels.h and docs/ARCHITECTURE.md,
// "Kernels".
//
// C = alpha op(A) op(B) + beta C, row-major. Both operands are rounded to bfloat16 (round to
// nearest even, VCVTNE2PS2BF16) while being packed in pairs along k, and the micro-kernel
// multiplies a 14-row by 32-column tile of C in 28 AVX-512 accumulators with VDPBF16PS
// (16 lanes x 2 products per instruction: twice the multiply-adds of an FMA), one pair of
// k per step: B's 32 columns as two vectors of (k, k+1) pairs, each row's (k, k+1) pair of A
// broadcast. The tile is stored with alpha and beta applied in float32.
#include "DSIKernels.h"

#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx512vl")))
#define MR 14
#define NR 32

int dsi_bf16_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

// bpack: for each 32-column block jb, for each k pair kp: 32 columns x (k, k+1) as bf16.
// size: ceil(N/32) * KP * 64 uint16.
BF16 void dsi_bf16_pack_b(const float *B, long ldb, long transB, long K, long N, uint16_t *out) {
    long KP = (K + 1) / 2;
    long NB = (N + NR - 1) / NR;
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                                         20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    if (!transB) {
        for (long jb = 0; jb < NB; jb++) {
            long n0 = jb * NR;
            for (long kp = 0; kp < KP; kp++) {
                long k = 2 * kp;
                uint16_t *dst = out + ((size_t)jb * KP + kp) * 64;
                for (long half = 0; half < 2; half++) {
                    long c0 = n0 + half * 16;
                    long cnt = N - c0;
                    __mmask16 m = cnt >= 16 ? 0xFFFF : (cnt <= 0 ? 0 : (__mmask16)((1u << cnt) - 1));
                    __m512 r0 = _mm512_maskz_loadu_ps(m, B + (size_t)k * ldb + c0);
                    __m512 r1 = k + 1 < K ? _mm512_maskz_loadu_ps(m, B + (size_t)(k + 1) * ldb + c0) : _mm512_setzero_ps();
                    __m512i v = (__m512i)_mm512_cvtne2ps_pbh(r1, r0);  // [r0 n0..15 | r1 n0..15]
                    v = _mm512_permutexvar_epi16(idx, v);
                    _mm512_storeu_si512(dst + half * 32, v);
                }
            }
        }
    } else {
        memset(out, 0, sizeof(uint16_t) * (size_t)NB * KP * 64);
        for (long n = 0; n < N; n++) {
            long jb = n / NR, c = n % NR;
            const float *row = B + (size_t)n * ldb;
            for (long kp = 0; kp < KP; kp++) {
                long k = 2 * kp;
                __m128 two = _mm_set_ps(0, 0, k + 1 < K ? row[k + 1] : 0, row[k]);
                __m128bh h = _mm_cvtneps_pbh(two);
                uint32_t pair = (uint32_t)_mm_cvtsi128_si32((__m128i)h);
                ((uint32_t *)(out + ((size_t)jb * KP + kp) * 64))[c] = pair;
            }
        }
    }
}

// A rows as bf16 pairs: apack[m * KP + kp] (uint32), op(A) is M x K.
BF16 void dsi_bf16_pack_a(const float *A, long lda, long transA, long M, long K, uint32_t *out, long ldo) {
    long KP = (K + 1) / 2;
    if (!transA) {
        for (long m = 0; m < M; m++) {
            const float *row = A + (size_t)m * lda;
            long k = 0;
            for (; k + 32 <= K; k += 32) {
                __m512 lo = _mm512_loadu_ps(row + k), hi = _mm512_loadu_ps(row + k + 16);
                _mm512_storeu_si512(out + (size_t)m * KP + k / 2, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            }
            for (; k < K; k += 2) {
                __m128 two = _mm_set_ps(0, 0, k + 1 < K ? row[k + 1] : 0, row[k]);
                out[(size_t)m * KP + k / 2] = (uint32_t)_mm_cvtsi128_si32((__m128i)_mm_cvtneps_pbh(two));
            }
        }
    } else {
    // A stored K x M: op(A)[m, k] = A[k, m].
        const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                                         20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        for (long kp = 0; kp < KP; kp++) {
            long k = 2 * kp;
            for (long m0 = 0; m0 < M; m0 += 16) {
                long cnt = M - m0;
                __mmask16 msk = cnt >= 16 ? 0xFFFF : (__mmask16)((1u << cnt) - 1);
                __m512 r0 = _mm512_maskz_loadu_ps(msk, A + (size_t)k * lda + m0);
                __m512 r1 = k + 1 < K ? _mm512_maskz_loadu_ps(msk, A + (size_t)(k + 1) * lda + m0) : _mm512_setzero_ps();
                __m512i v = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(r1, r0));
                _mm512_mask_storeu_epi32(out + (size_t)kp * ldo + m0, msk, v);
            }
        }
    }
}

// C[M x N] = alpha * op(A) * op(B) + beta * C, from packed A (rows m0..m0+M of apack) and packed B.
BF16 void dsi_bf16_gemm_packed(long M, long N, long K, float alpha, const uint32_t *apack, long rs, long ks,
                               const uint16_t *bpack, float beta, float *C, long ldc) {
    long KP = (K + 1) / 2;
    long NB = (N + NR - 1) / NR;
    // Columns in chunks of 16 blocks of B (512 columns; 256 KiB of packed B for k = 1024,
    // held in L2): every 14-row tile of A meets the chunk's blocks while it is in L1, and
    // writes 512 contiguous floats of each of its rows of C. Against streaming A past one
    // block of B at a time: 512 x 8195 x 256 (the output head) 290 -> 394 GFLOP/s, the
    // 2048-row shapes 423-432 -> 455-462, one thread (a GotoBLAS-style row chunk of A in
    // L2 measured slower than either).
    for (long jc = 0; jc < NB; jc += 16) {
        long jend = jc + 16 < NB ? jc + 16 : NB;
        for (long r0 = 0; r0 < M; r0 += MR) {
            for (long jb = jc; jb < jend; jb++) {
                const uint16_t *bp = bpack + (size_t)jb * KP * 64;
                long n0 = jb * NR;
                long cnt = N - n0;
                __mmask16 m0 = cnt >= 16 ? 0xFFFF : (__mmask16)((1u << cnt) - 1);
                __mmask16 m1 = cnt >= 32 ? 0xFFFF : (cnt <= 16 ? 0 : (__mmask16)((1u << (cnt - 16)) - 1));
                {
                    long rows = M - r0 < MR ? M - r0 : MR;
                    __m512 acc[MR][2];
                    for (long r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
                    const uint32_t *ap = apack + (size_t)r0 * rs;
                    if (rows == MR) {
                        for (long kp = 0; kp < KP; kp++) {
                            __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + (size_t)kp * 64);
                            __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + (size_t)kp * 64 + 32);
#pragma unroll
                            for (long r = 0; r < MR; r++) {
                                __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[r * rs + kp * ks]);
                                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
                                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
                            }
                        }
                    } else {
                        for (long kp = 0; kp < KP; kp++) {
                            __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + (size_t)kp * 64);
                            __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + (size_t)kp * 64 + 32);
                            for (long r = 0; r < rows; r++) {
                                __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[r * rs + kp * ks]);
                                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
                                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
                            }
                        }
                    }
                    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
                    for (long r = 0; r < rows; r++) {
                        float *c = C + (size_t)(r0 + r) * ldc + n0;
                        __m512 x0 = _mm512_mul_ps(acc[r][0], va), x1 = _mm512_mul_ps(acc[r][1], va);
                        if (beta != 0) {
                            x0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, c), vb, x0);
                            x1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, c + 16), vb, x1);
                        }
                        _mm512_mask_storeu_ps(c, m0, x0);
                        _mm512_mask_storeu_ps(c + 16, m1, x1);
                    }
                }
            }
        }
    }
}

#else

int dsi_bf16_available(void) { return 0; }
void dsi_bf16_pack_b(const float *B, long ldb, long transB, long K, long N, uint16_t *out) {}
void dsi_bf16_pack_a(const float *A, long lda, long transA, long M, long K, uint32_t *out, long ldo) {}
void dsi_bf16_gemm_packed(long M, long N, long K, float alpha, const uint32_t *apack, long rs, long ks, const uint16_t *bpack,
                          float beta, float *C, long ldc) {}

#endif
