import COpenBLAS

/// The one way this project multiplies matrices: `cblas_sgemm`, row-major, with the
/// transposes passed as flags (no transposing copies, ever).
public enum BLAS {
    /// C[m,n] = alpha * op(A)[m,k] · op(B)[k,n] + beta * C[m,n].
    ///
    /// `op(A)` is A (stored m×k, leading dimension `lda`) or, with `transA`, Aᵀ where A is
    /// stored k×m. Likewise B. Leading dimensions let callers address a head's column
    /// block inside a wider matrix without copying it.
    @inline(__always)
    public static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS leaves C scaled by beta; do the same so callers need no special case.
            if beta == 0 {
                for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            } else if beta != 1 {
                for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor,
            transA ? CblasTrans : CblasNoTrans,
            transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb),
            beta, c, Int32(ldc))
    }

    /// Sets OpenBLAS's thread count (global to the process).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The OpenBLAS build string (version, kernel, threading).
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The kernel family OpenBLAS picked for this CPU.
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
