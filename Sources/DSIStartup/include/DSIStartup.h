#ifndef DSI_STARTUP_H
#define DSI_STARTUP_H

/// Vector tiers of x86 CPUs as OpenBLAS's kernels use them.
enum dsi_simd_tier {
    DSI_TIER_BASE = 0,    ///< SSE only (or not x86): OpenBLAS's generic kernels
    DSI_TIER_AVX = 1,     ///< AVX without FMA/AVX2 (SandyBridge, Bulldozer family)
    DSI_TIER_AVX2 = 2,    ///< AVX2 + FMA with YMM state enabled (Haswell kernels)
    DSI_TIER_AVX512 = 3,  ///< AVX-512 F/DQ/BW/VL with ZMM state enabled (SkylakeX kernels)
};

/// What this CPU and OS support (CPUID and XGETBV).
int dsi_cpu_simd_tier(void);

/// The tier of the kernels behind an OpenBLAS core name (`openblas_get_corename()`,
/// any case): SkylakeX/Cooperlake/SapphireRapids 3; Haswell/Zen 2; SandyBridge and the
/// Bulldozer family 1; anything else (Prescott, Core2, Nehalem, unknown) 0.
int dsi_core_simd_tier(const char *corename);

/// The OPENBLAS_CORETYPE to re-execute with, or NULL to keep what runs: the best core
/// the CPU supports ("SkylakeX" for tier 3, "Haswell" for tier 2) when OpenBLAS chose
/// kernels of a lower tier. A pure function of its two arguments.
const char *dsi_preferred_coretype(int cpu_tier, const char *corename);

/// At start-up (first thing in main): when OPENBLAS_CORETYPE is not set and OpenBLAS
/// chose less than the CPU supports, sets OPENBLAS_CORETYPE and re-executes the program
/// once. Returns when nothing is to be done (or the exec failed).
void dsi_select_blas_kernels(char *const argv[]);

/// 1 when this process runs with kernels chosen by dsi_select_blas_kernels.
int dsi_blas_kernels_forced(void);

/// One thread's floating-point rate in GFLOP/s over `iterations` steps of 12 independent
/// fused multiply-add chains on the widest vectors of `tier` (AVX-512: 16 floats, AVX2:
/// 8; below AVX2, SSE multiply + add), counting 2 flops per element and step. Run it on
/// every core at once for the machine's peak. Returns -1 if the result was not finite.
double dsi_fma_chains_gflops(int tier, long iterations);

#endif
