#ifndef DSI_KERNELS_H
#define DSI_KERNELS_H

// Element-wise kernels that Swift, compiled for baseline x86-64 (SSE2, no FMA), runs at a
// quarter of the vector width the CPU has: compiled here once per instruction set
// (AVX-512, AVX2 + FMA, baseline) and chosen at load time by the CPU (clang's
// target_clones). docs/ARCHITECTURE.md, "Kernels".

// out[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), x = inp[i]; out may be inp.
void dsi_gelu_forward(float *out, const float *inp, long n);

// dinp[i] (+)= gelu'(inp[i]) * dout[i]; dinp may be dout.
void dsi_gelu_backward(float *dinp, const float *inp, const float *dout, long n, int accumulate);

// Which instruction set the kernels run with on this CPU: "avx512f", "avx2" or "baseline".
const char *dsi_kernels_isa(void);

#endif
