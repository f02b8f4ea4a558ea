#define _GNU_SOURCE
#include "CDSISystem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
int dsi_rename_exchange(const char *a, const char *b) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    errno = ENOSYS;
    return -1;
#endif
}
#else
int dsi_rename_exchange(const char *a, const char *b) {
    (void)a;
    (void)b;
    errno = ENOSYS;
    return -1;
}
#endif

#if defined(__linux__)
#include <sys/resource.h>
int dsi_set_thread_nice(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}
#else
int dsi_set_thread_nice(int nice) {
    (void)nice;
    errno = ENOSYS;
    return -1;
}
#endif

#if defined(__GLIBC__)
#include <malloc.h>
int dsi_release_free_memory(void) { return malloc_trim(0); }
#else
int dsi_release_free_memory(void) { return 0; }
#endif
