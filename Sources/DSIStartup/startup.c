// Chooses OpenBLAS's best kernels for this CPU, on any x86 vendor.
//
// OpenBLAS 0.3.21 (Debian 12) does not recognise recent CPUs: on AMD Zen 4/5 it runs its
// AVX2 "Haswell"/"Zen" kernels although AVX-512 is there, and on Intel Sapphire/Emerald
// Rapids it falls back to the SSE3 "Prescott" kernels (a training step 3.4x slower than
// with "SkylakeX"; see docs/ARCHITECTURE.md). OpenBLAS reads OPENBLAS_CORETYPE once, in
// its library constructor, before main() runs; setting it from .preinit_array does not
// work (glibc's initialiser resets environ afterwards). So main() asks OpenBLAS which
// core it chose, compares that with what CPUID and XGETBV say the CPU and OS support, and
// when OpenBLAS chose less, sets the variable and re-executes the program once (a few
// milliseconds). A set OPENBLAS_CORETYPE is always obeyed (the user's choice wins).
#include "DSIStartup.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MARK "DSI_OPENBLAS_CORETYPE_SET"

extern char *openblas_get_corename(void);

int dsi_core_simd_tier(const char *corename) {
    if (corename == NULL) return DSI_TIER_BASE;
    char name[32];
    size_t n = 0;
    for (; corename[n] && n < sizeof name - 1; n++) name[n] = (char)tolower((unsigned char)corename[n]);
    name[n] = 0;
    static const char *const avx512[] = {"skylakex", "cooperlake", "sapphirerapids"};
    static const char *const avx2[] = {"haswell", "zen"};
    static const char *const avx[] = {"sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"};
    for (size_t i = 0; i < sizeof avx512 / sizeof *avx512; i++) if (!strcmp(name, avx512[i])) return DSI_TIER_AVX512;
    for (size_t i = 0; i < sizeof avx2 / sizeof *avx2; i++) if (!strcmp(name, avx2[i])) return DSI_TIER_AVX2;
    for (size_t i = 0; i < sizeof avx / sizeof *avx; i++) if (!strcmp(name, avx[i])) return DSI_TIER_AVX;
    return DSI_TIER_BASE;
}

const char *dsi_preferred_coretype(int cpu_tier, const char *corename) {
    if (dsi_core_simd_tier(corename) >= cpu_tier) return NULL;
    switch (cpu_tier) {
    case DSI_TIER_AVX512: return "SkylakeX";
    case DSI_TIER_AVX2: return "Haswell";
    default: return NULL;  // nothing better that OpenBLAS would not pick itself
    }
}

#if defined(__x86_64__)
#include <cpuid.h>

int dsi_cpu_simd_tier(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return DSI_TIER_BASE;
    int fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!((c >> 27) & 1)) return DSI_TIER_BASE;  // OSXSAVE: XGETBV is usable
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & 0x6u) != 0x6u || !avx) return DSI_TIER_BASE;  // XMM and YMM state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return DSI_TIER_AVX;
    int avx2 = (b >> 5) & 1;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    // Opmask, ZMM_Hi256 and Hi16_ZMM state enabled by the OS.
    if (f && dq && bw && vl && fma && avx2 && (xlo & 0xE6u) == 0xE6u) return DSI_TIER_AVX512;
    if (avx2 && fma) return DSI_TIER_AVX2;
    return DSI_TIER_AVX;
}

#else
int dsi_cpu_simd_tier(void) { return DSI_TIER_BASE; }
#endif

void dsi_select_blas_kernels(char *const argv[]) {
#if defined(__x86_64__) && defined(__linux__)
    if (getenv("OPENBLAS_CORETYPE") != NULL || getenv(MARK) != NULL) return;
    const char *core = dsi_preferred_coretype(dsi_cpu_simd_tier(), openblas_get_corename());
    if (core == NULL) return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv(MARK, "1", 1);
    execv("/proc/self/exe", argv);
    // exec failed: carry on with the kernels OpenBLAS chose.
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(MARK);
#else
    (void)argv;
#endif
}

int dsi_blas_kernels_forced(void) { return getenv(MARK) != NULL; }
