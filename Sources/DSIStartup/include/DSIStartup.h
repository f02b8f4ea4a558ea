#ifndef DSI_STARTUP_H
#define DSI_STARTUP_H

/// Chooses OpenBLAS's AVX-512 kernels on AMD processors with AVX-512 (see startup.c):
/// sets OPENBLAS_CORETYPE=SkylakeX and re-executes the program once. Returns only when
/// nothing is to be done (or the exec failed). Call first thing in main.
void dsi_select_blas_kernels(char *const argv[]);

/// 1 when this process runs with the kernels chosen by dsi_select_blas_kernels.
int dsi_blas_kernels_forced(void);

#endif
