// Chooses OpenBLAS's AVX-512 kernels on AMD processors that have AVX-512.
//
// OpenBLAS 0.3.21 (Debian 12) does not recognise AMD Zen 4/5 and falls back to its AVX2
// "Haswell" kernels; on this project's machine (Zen 5) its "SkylakeX" AVX-512 kernels
// run sgemm about 1.9x faster and a training step about 1.5x faster (see
// docs/ARCHITECTURE.md). OpenBLAS reads OPENBLAS_CORETYPE once, in its library
// constructor, before main() runs. Setting it from the executable's .preinit_array does
// not work: glibc's own initialiser, which runs after it, resets environ. So main() sets
// the variable and re-executes the program once (a few milliseconds).
//
// Nothing is changed when OPENBLAS_CORETYPE is already set (the user's choice wins; set
// it to Haswell to opt out), on Intel processors (OpenBLAS detects those itself), or
// when the CPU or the OS lacks AVX-512 F/DQ/BW/VL with ZMM state enabled.
#include "DSIStartup.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MARK "DSI_OPENBLAS_CORETYPE_SET"

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>

static int amd_with_avx512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = 0;
    if (strcmp(vendor, "AuthenticAMD") != 0) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 27))) return 0;  // OSXSAVE: XGETBV is usable
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    // XMM, YMM, opmask, ZMM_Hi256 and Hi16_ZMM state enabled by the OS.
    if ((xlo & 0xE6u) != 0xE6u) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    return f && dq && bw && vl;
}

void dsi_select_blas_kernels(char *const argv[]) {
    if (getenv("OPENBLAS_CORETYPE") != NULL || getenv(MARK) != NULL) return;
    if (!amd_with_avx512()) return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv(MARK, "1", 1);
    execv("/proc/self/exe", argv);
    // exec failed: carry on with the kernels OpenBLAS chose.
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(MARK);
}

#else
void dsi_select_blas_kernels(char *const argv[]) { (void)argv; }
#endif

int dsi_blas_kernels_forced(void) { return getenv(MARK) != NULL; }
