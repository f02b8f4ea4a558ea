#ifndef DSI_KERNELS_H
#define DSI_KERNELS_H

// Element-wise kernels that Swift, compiled for baseline x86-64 (SSE2, no FMA), runs at a
// quarter of the vector width the CPU has: compiled here once per instruction set
// (AVX-512, AVX2 + FMA, baseline) and chosen at load time by the CPU (clang's
// target_clones). docs/ARCHITECTURE.md, "Kernels".

// out[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), x = inp[i]; out may be inp.
void dsi_gelu_forward(float *out, const float *inp, long n);

// The first layer's bias and the activation in one pass, rows of width cols:
// hidden[r][c] += bias[c] (kept for the backward pass), activated[r][c] = gelu(hidden[r][c]).
// activated may be hidden (inference).
void dsi_bias_gelu_forward(float *hidden, float *activated, const float *bias, long rows, long cols);

// dinp[i] (+)= gelu'(inp[i]) * dout[i]; dinp may be dout.
void dsi_gelu_backward(float *dinp, const float *inp, const float *dout, long n, int accumulate);

// Layer norm of rows [0, rows) of width C: out = (x - mean) * rstd * weight + bias, and
// each row's mean and rstd = 1 / sqrt(var + eps) saved for the backward pass.
void dsi_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                           long rows, long C, float eps);

// Backward of rows [0, rows): dinp += the input gradient; dweight += sum over the rows of
// dout * xhat; dbias += sum of dout (the caller's per-block partial sums).
void dsi_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, const float *mean, const float *rstd, long rows, long C);

// AdamW on n elements: g' = g * grad_scale; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
// p -= lr (m / c1 / (sqrt(v / c2) + eps) + wd p), c1 and c2 the bias corrections.
void dsi_adamw(float *p, const float *g, float *m, float *v, long n, float lr, float grad_scale, float b1, float b2,
               float eps, float wd, float c1, float c2);

// Softmax in place of rows t in [0, rows) of P (row stride ld): over the columns
// j < visible(t) (visible = min(cols, t + 1) when causal, else cols) whose keymask[j] != 0
// (keymask NULL: all), every other column of [0, cols) set to 0; a row with no such
// column becomes all 0. The exponential is a vectorised polynomial (about 2 ulp).
void dsi_softmax_rows(float *P, long rows, long cols, long ld, const float *keymask, int causal);

// Softmax backward in place, rows of width cols: g = p * (g - sum_j p_j g_j) * scale.
void dsi_softmax_backward_rows(float *G, const float *P, long rows, long cols, float scale);

// Which instruction set the kernels run with on this CPU: "avx512f", "avx2" or "baseline".
const char *dsi_kernels_isa(void);


// bfloat16 products (bf16.c): only where dsi_bf16_available() says the CPU has AVX512-BF16.
// Packed B: for each block of 32 columns of op(B) (K x N), for each pair of k, the 32
// columns' (k, k+1) values as bfloat16: ceil(N / 32) x ceil(K / 2) x 64 values, zero-padded.
// Packed A: op(A) (M x K) as 32-bit (k, k+1) pairs: pair p of row m at m * ceil(K / 2) + p
// (transA 0), or at p * ldo + m (transA 1; ldo is ignored otherwise). dsi_bf16_gemm_packed reads row r's pair p at
// apack[r * rs + p * ks] and computes C = alpha op(A) op(B) + beta C for its M rows.
#include <stdint.h>
int dsi_bf16_available(void);
void dsi_bf16_pack_b(const float *B, long ldb, long transB, long K, long N, uint16_t *out);
void dsi_bf16_pack_a(const float *A, long lda, long transA, long M, long K, uint32_t *out, long ldo);
void dsi_bf16_gemm_packed(long M, long N, long K, float alpha, const uint32_t *apack, long rs, long ks, const uint16_t *bpack,
                          float beta, float *C, long ldc);

#endif
