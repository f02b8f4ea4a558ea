#ifndef DSI_COPENBLAS_SHIM_H
#define DSI_COPENBLAS_SHIM_H
#include <stddef.h>
#include <cblas.h>

// LAPACK routines OpenBLAS ships (Debian builds it without LAPACKE, so these are the
// Fortran symbols; the trailing size_t arguments are gfortran's hidden string lengths).
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
#endif
