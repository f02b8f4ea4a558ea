#ifndef DSI_COPENBLAS_SHIM_H
#define DSI_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
