#ifndef DSI_CSYSTEM_H
#define DSI_CSYSTEM_H

/// Atomically exchanges two paths (Linux renameat2 with RENAME_EXCHANGE).
/// Returns 0 on success, -1 (errno set) on failure or where unsupported.
int dsi_rename_exchange(const char *a, const char *b);

/// Sets the calling thread's nice value (Linux: threads have their own). Returns 0 on
/// success, -1 (errno set) on failure or where unsupported.
int dsi_set_thread_nice(int nice);

/// Returns the C heap's free memory at the top of the heap and in whole free pages to the
/// OS (glibc malloc_trim(0)), so memory freed after a large temporary phase stops counting
/// in the resident set. Returns 1 if memory was released, 0 if not or where unsupported.
int dsi_release_free_memory(void);

#endif
