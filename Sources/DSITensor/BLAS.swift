import CDSIKernels
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
        if usesBFloat16(m: m, n: n, k: k) {
            bfloat16Product(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
                threads: 1)
            return
        }
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
        if parallel && usesBFloat16(m: m, n: n, k: k) {
            bfloat16Product(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
                threads: threads)
            return
        }
        let work = Double(m) * Double(n) * Double(k)
        if !parallel || threads == 1 || work < 262_144 || max(m, n) < 32 {
            sgemm(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let alongM = m >= n
        let extent = alongM ? m : n
        let parts = min(threads, (extent + 15) / 16)
        parallelFor(parts, threads: parts) { range in
            for part in range {
                let (lo, hi) = band(part, of: parts, extent: extent, tile: 16)
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

    /// Part `part` of `parts` contiguous bands of 0..<extent, cut at multiples of `tile`
    /// (the kernels' tile), as even as whole tiles allow.
    @inline(__always)
    static func band(_ part: Int, of parts: Int, extent: Int, tile: Int) -> (Int, Int) {
        let tiles = (extent + tile - 1) / tile
        return (min(extent, tiles * part / parts * tile), min(extent, tiles * (part + 1) / parts * tile))
    }

    // MARK: - bfloat16 products

    /// What the large products multiply (`--precision`). Process-wide, like the thread count.
    public enum Precision: String, Sendable, CaseIterable {
        /// float32 throughout: OpenBLAS's sgemm.
        case float32
        /// Products of at least `bfloat16MinimumWork` multiply-adds (m, n, k ≥ 16) round both
        /// operands to bfloat16 and accumulate in float32, in the project's AVX512-BF16
        /// kernel (`CDSIKernels/bf16.c`); smaller ones, and everything else, stay float32.
        case bfloat16
    }

    /// Whether this CPU has the AVX512-BF16 instructions `Precision.bfloat16` needs.
    public static let bfloat16Available: Bool = dsi_bf16_available() != 0

    public struct PrecisionUnavailable: Error, CustomStringConvertible {
        public var description: String {
            "bfloat16 products need a CPU with AVX512-BF16 (Intel Cooper Lake, Sapphire Rapids or later; AMD Zen 4 or later); this one has none: use --precision float32"
        }
    }

    nonisolated(unsafe) private static var _precision: Precision = .float32

    /// The precision of the large products (default float32).
    public static var precision: Precision { _precision }

    /// Sets the precision of the large products; bfloat16 only where the CPU has it.
    public static func setPrecision(_ p: Precision) throws(PrecisionUnavailable) {
        if p == .bfloat16 && !bfloat16Available { throw PrecisionUnavailable() }
        _precision = p
    }

    /// Products smaller than this (multiply-adds) stay float32 under bfloat16: packing
    /// costs more than it saves.
    public static let bfloat16MinimumWork = 1 << 20

    @inline(__always)
    static func usesBFloat16(m: Int, n: Int, k: Int) -> Bool {
        _precision == .bfloat16 && m >= 16 && n >= 16 && k >= 16 && m * n * k >= bfloat16MinimumWork
    }

    /// C = alpha op(A) op(B) + beta C with bfloat16 operands and float32 accumulation, on
    /// `threads` threads: B is packed in blocks of 32 columns and A in rows (or, transposed,
    /// in pairs of k), both split across the threads, then each thread multiplies its rows
    /// (multiples of the kernel's 14) against all of packed B.
    public static func bfloat16Product(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
    ) {
        precondition(bfloat16Available, "bfloat16 products need AVX512-BF16")
        let kp = (k + 1) / 2
        let blocks = (n + 31) / 32
        let bpack = UnsafeMutablePointer<UInt16>.allocate(capacity: blocks * kp * 64)
        let apack = UnsafeMutablePointer<UInt32>.allocate(capacity: m * kp)
        defer {
            bpack.deallocate()
            apack.deallocate()
        }
        let t = max(1, threads)
        let PB = min(t, blocks)
        parallelFor(PB, threads: PB) { parts in
            for part in parts {
                let (n0, n1) = band(part, of: PB, extent: n, tile: 32)
                if n0 >= n1 { continue }
                dsi_bf16_pack_b(transB ? b + n0 * ldb : b + n0, ldb, transB ? 1 : 0, k, n1 - n0, bpack + n0 / 32 * kp * 64)
            }
        }
        let P = min(t, (m + 13) / 14)
        parallelFor(P, threads: P) { parts in
            for part in parts {
                let (lo, hi) = band(part, of: P, extent: m, tile: 14)
                if lo >= hi { continue }
                if transA {
                    dsi_bf16_pack_a(a + lo, lda, 1, hi - lo, k, apack + lo, m)
                } else {
                    dsi_bf16_pack_a(a + lo * lda, lda, 0, hi - lo, k, apack + lo * kp, 0)
                }
            }
        }
        parallelFor(P, threads: P) { parts in
            for part in parts {
                let (lo, hi) = band(part, of: P, extent: m, tile: 14)
                if lo >= hi { continue }
                dsi_bf16_gemm_packed(
                    hi - lo, n, k, alpha, transA ? apack + lo : apack + lo * kp, transA ? 1 : kp, transA ? m : 1, bpack, beta,
                    c + lo * ldc, ldc)
            }
        }
    }
}
