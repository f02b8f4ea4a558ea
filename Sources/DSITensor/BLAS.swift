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
        _ = Threads.configured
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

    /// y[m] = alpha · A[m,n] · x[n] + beta · y (A row-major with leading dimension `lda`):
    /// `cblas_sgemv`. For a product with a single row on one side, where sgemm would
    /// spend more time packing the large operand than multiplying it.
    @inline(__always)
    public static func sgemv(
        m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>, beta: Float = 0,
        y: UnsafeMutablePointer<Float>
    ) {
        if m == 0 { return }
        _ = Threads.configured
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }

    /// Sets OpenBLAS's own thread count (global to the process). The project keeps it at
    /// 1 and partitions large products across its own threads instead (`parallel: true`):
    /// two thread pools spinning on two cores cost 15-20% of a training step.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

    /// `sgemm` split across `Threads.current` threads: the larger of m and n is cut into
    /// contiguous blocks (multiples of 16, the kernels' tile), each a single-threaded
    /// OpenBLAS call on its own block of C. Small products run in one call.
    @inline(__always)
    public static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        parallel: Bool, threads: Int? = nil
    ) {
        let threads = threads ?? Threads.current
        let work = Double(m) * Double(n) * Double(k)
        if !parallel || threads == 1 || work < 262_144 || max(m, n) < 32 {
            sgemm(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let alongM = m >= n
        let extent = alongM ? m : n
        let tiles = (extent + 15) / 16
        let parts = min(threads, tiles)
        parallelFor(parts, threads: parts) { range in
            for part in range {
                let lo = min(extent, tiles * part / parts * 16)
                let hi = min(extent, tiles * (part + 1) / parts * 16)
                if lo >= hi { continue }
                if alongM {
                    let aBlock = transA ? a + lo : a + lo * lda
                    sgemm(
                        transA: transA, transB: transB, m: hi - lo, n: n, k: k, alpha: alpha, a: aBlock, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c + lo * ldc, ldc: ldc)
                } else {
                    let bBlock = transB ? b + lo * ldb : b + lo
                    sgemm(
                        transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha, a: a, lda: lda, b: bBlock, ldb: ldb,
                        beta: beta, c: c + lo, ldc: ldc)
                }
            }
        }
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The OpenBLAS build string (version, kernel, threading).
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The kernel family OpenBLAS picked for this CPU.
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
