// MPI (Open MPI 4.1, Debian's libopenmpi-dev) for Swift. Open MPI's handles
// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are macros over the addresses of global
// objects, which Swift cannot import: these inline functions hand them over.
#include <mpi.h>

static inline MPI_Comm dsi_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype dsi_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype dsi_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype dsi_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype dsi_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Op dsi_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op dsi_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op dsi_mpi_max(void) { return MPI_MAX; }
static inline void *dsi_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler dsi_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int dsi_mpi_success(void) { return MPI_SUCCESS; }
static inline int dsi_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int dsi_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
