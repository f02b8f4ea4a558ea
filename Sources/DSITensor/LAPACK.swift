import COpenBLAS

/// The LAPACK routines this project needs, from OpenBLAS, in Double (they factor small
/// Gram matrices, where Float's rounding would show).
public enum LAPACK {
    /// Eigen-decomposition of a symmetric (n, n) matrix (`dsyevd`, divide and conquer).
    /// Returns the eigenvalues in decreasing order and the eigenvectors as the columns of
    /// an (n, n) row-major matrix, in the same order.
    public static func symmetricEigen(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
        precondition(matrix.count == n * n, "symmetricEigen: \(matrix.count) entries for n = \(n)")
        if n == 0 { return ([], []) }
        var a = matrix  // symmetric: row-major and column-major are the same
        var w = [Double](repeating: 0, count: n)
        var N = Int32(n)
        var lda = Int32(n)
        var info: Int32 = 0
        var lwork: Int32 = -1
        var liwork: Int32 = -1
        var wq = [Double](repeating: 0, count: 1)
        var iq = [Int32](repeating: 0, count: 1)
        dsyevd_("V", "U", &N, &a, &lda, &w, &wq, &lwork, &iq, &liwork, &info, 1, 1)  // workspace query
        lwork = Int32(wq[0])
        liwork = iq[0]
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevd_("V", "U", &N, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        precondition(info == 0, "dsyevd failed (info \(info)) on a \(n)x\(n) symmetric matrix")
        // Column j of the column-major result (a[j * n ..< (j + 1) * n]) is the eigenvector
        // of w[j]; w is increasing.
        var vectors = [Double](repeating: 0, count: n * n)
        for (newCol, j) in (0..<n).reversed().enumerated() {
            for r in 0..<n { vectors[r * n + newCol] = a[j * n + r] }
        }
        return (w.reversed(), vectors)
    }

    /// The lower-triangular Cholesky factor L of a symmetric positive definite (n, n)
    /// matrix, G = L Lᵀ (`dpotrf`), row-major with zeros above the diagonal; nil when G
    /// is not positive definite.
    public static func cholesky(_ matrix: [Double], n: Int) -> [Double]? {
        precondition(matrix.count == n * n, "cholesky: \(matrix.count) entries for n = \(n)")
        if n == 0 { return [] }
        // Row-major lower = column-major upper.
        var a = matrix
        var N = Int32(n)
        var lda = Int32(n)
        var info: Int32 = 0
        dpotrf_("U", &N, &a, &lda, &info, 1)
        if info != 0 { return nil }
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { a[i * n + j] = 0 } }
        return a
    }

    /// X ← X L⁻ᵀ for a row-major (rows, n) X and a lower-triangular (n, n) L
    /// (`cblas_dtrsm`, right side): solves X_new Lᵀ = X.
    public static func solveRightLowerTransposed(_ x: inout [Double], rows: Int, l: [Double], n: Int) {
        precondition(x.count == rows * n && l.count == n * n)
        if rows == 0 || n == 0 { return }
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, Int32(rows), Int32(n), 1, l, Int32(n), &x, Int32(n))
    }
}
