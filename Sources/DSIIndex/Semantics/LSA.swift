import DSIModel
import DSITensor
import DSIText
import Foundation

/// Latent semantic analysis of a corpus (Deerwester et al. 1990), computed without any
/// pretrained model: TF-IDF weights of the corpus's own subword tokens, then a truncated
/// SVD by randomized range finding with power iterations (Halko, Martinsson & Tropp
/// 2011). The TF-IDF matrix (documents × vocabulary) is never held whole: it is built in
/// blocks of rows, each multiplied through sgemm, so memory grows with the block, not the
/// corpus.
public struct LSA: Sendable {
    /// (documents, k) document vectors U·Σ, rows in corpus order.
    public let documentVectors: Tensor
    /// (vocabulary, k) term vectors V (right singular vectors).
    public let termVectors: Tensor
    /// (k) singular values, largest first.
    public let singularValues: [Float]
    /// (vocabulary) inverse document frequencies used for the weights.
    public let idf: [Float]
    /// Where the first rows of `documentVectors` lie, page-aligned, in a file they are
    /// mapped from (nil: they are this LSA's own memory). `appending` maps them again
    /// instead of copying them.
    public var mappedRows: MappedRows? = nil
    public var dimensions: Int { singularValues.count }

    public struct MappedRows: Sendable, Equatable {
        public let path: String
        public let fileOffset: Int
        public let rows: Int
    }

    /// Sparse TF-IDF rows: per document, (token id, weight) with weights L2-normalised.
    public static func tfidf(_ docs: [[Int32]], vocabulary V: Int) -> (rows: [[(Int32, Float)]], idf: [Float]) {
        let idf = idf(documents: docs.count, vocabulary: V) { docs[$0] }
        return (docs.map { tfidfRow($0, idf: idf) }, idf)
    }

    /// The idf of each of V tokens over n documents, `tokens(d)` giving document d's:
    /// ln((1 + n) / (1 + df)) + 1. Two passes over the documents (`tfidfRow` then gives a
    /// document's row), so no per-document table is held: at a million documents the
    /// tables of all documents at once were gigabytes.
    public static func idf(documents n: Int, vocabulary V: Int, tokens: (Int) -> [Int32]) -> [Float] {
        var df = [Int](repeating: 0, count: V)
        for d in 0..<n {
            for (t, _) in termCounts(tokens(d), vocabulary: V) { df[Int(t)] += 1 }
        }
        let N = Float(n)
        return df.map { logf((1 + N) / Float(1 + $0)) + 1 }
    }

    /// One document's TF-IDF row under a given idf: (token, (1 + ln tf) · idf) sorted by
    /// token, L2-normalised. Specials and tokens beyond the idf are ignored.
    public static func tfidfRow(_ tokens: [Int32], idf: [Float]) -> [(Int32, Float)] {
        weights(termCounts(tokens, vocabulary: idf.count), idf: idf)
    }

    /// (token, count) for each distinct token below V that is not a special, by token.
    static func termCounts(_ tokens: [Int32], vocabulary V: Int) -> [(Int32, Int)] {
        let valid = tokens.filter { Int($0) < V && $0 >= Int32(Tokenizer.specials.count) }.sorted()
        var out: [(Int32, Int)] = []
        var i = 0
        while i < valid.count {
            var j = i + 1
            while j < valid.count && valid[j] == valid[i] { j += 1 }
            out.append((valid[i], j - i))
            i = j
        }
        return out
    }

    static func weights(_ counts: [(Int32, Int)], idf: [Float]) -> [(Int32, Float)] {
        var r = counts.map { (t, n) in (t, (1 + logf(Float(n))) * idf[Int(t)]) }
        let norm = r.reduce(Float(0)) { $0 + $1.1 * $1.1 }.squareRoot()
        if norm > 0 { r = r.map { ($0.0, $0.1 / norm) } }
        return r
    }

    /// The `k` strongest tokens of a TF-IDF row, strongest first (ties: lower token first).
    public static func keyTerms(_ row: [(Int32, Float)], _ k: Int) -> [Int32] {
        row.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(k).map(\.0)
    }

    /// Fits k dimensions to tokenized documents over a vocabulary of size V.
    public static func fit(
        documents docs: [[Int32]], vocabulary V: Int, dimensions k: Int, oversample: Int = 10, powerIterations: Int = 2, seed: UInt64 = 0,
        blockRows: Int = 1024
    ) -> LSA {
        let (rows, idf) = tfidf(docs, vocabulary: V)
        return fit(
            tfidf: rows, idf: idf, vocabulary: V, dimensions: k, oversample: oversample, powerIterations: powerIterations, seed: seed,
            blockRows: blockRows)
    }

    /// Fits k dimensions to TF-IDF rows already computed by `tfidf` (callers that need
    /// the rows themselves compute them once).
    public static func fit(
        tfidf rows: [[(Int32, Float)]], idf: [Float], vocabulary V: Int, dimensions k: Int, oversample: Int = 10, powerIterations: Int = 2,
        seed: UInt64 = 0, blockRows: Int = 1024
    ) -> LSA {
        let D = rows.count
        let l = min(k + oversample, min(D, V))
        var rng = SeededRNG(seed: seed)
        // Ω (V, l) Gaussian.
        let omega = Tensor(zeros: [V, l])
        for i in 0..<omega.count { omega[i] = rng.normal() }
        let block = Tensor(zeros: [min(blockRows, D), V])

        /// Dense rows lo..<hi of the TF-IDF matrix into `block`.
        func fill(_ lo: Int, _ hi: Int) {
            block.data.update(repeating: 0, count: (hi - lo) * V)
            for r in lo..<hi { for (t, w) in rows[r] { block[(r - lo) * V + Int(t)] = w } }
        }
        /// out (D, l) = A · m (V, l)
        func times(_ m: Tensor, _ out: Tensor) {
            var lo = 0
            while lo < D {
                let hi = min(D, lo + blockRows)
                fill(lo, hi)
                BLAS.sgemm(m: hi - lo, n: l, k: V, a: block.data, lda: V, b: m.data, ldb: l, c: out.data + lo * l, ldc: l, parallel: true)
                lo = hi
            }
        }
        /// out (V, l) = Aᵀ · m (D, l)
        func transposeTimes(_ m: Tensor, _ out: Tensor) {
            out.zero()
            var lo = 0
            while lo < D {
                let hi = min(D, lo + blockRows)
                fill(lo, hi)
                BLAS.sgemm(
                    transA: true, m: V, n: l, k: hi - lo, a: block.data, lda: V, b: m.data + lo * l, ldb: l, beta: 1, c: out.data, ldc: l,
                    parallel: true)
                lo = hi
            }
        }
        let Y = Tensor(zeros: [D, l])
        let Z = Tensor(zeros: [V, l])
        times(omega, Y)
        orthonormalizeColumns(Y)
        for _ in 0..<powerIterations {
            transposeTimes(Y, Z)
            orthonormalizeColumns(Z)
            times(Z, Y)
            orthonormalizeColumns(Y)
        }
        // B = Qᵀ A, kept as Bᵀ (V, l) = Aᵀ Q.
        transposeTimes(Y, Z)
        // B Bᵀ = Zᵀ Z (l, l) = W Λ Wᵀ; singular values √λ; U = Q W; V = Bᵀ W Σ⁻¹.
        let G = Tensor(zeros: [l, l])
        BLAS.sgemm(transA: true, m: l, n: l, k: V, a: Z.data, lda: l, b: Z.data, ldb: l, c: G.data, ldc: l, parallel: true)
        let (eigenvalues, W) = symmetricEigen(G, n: l)
        let kk = min(k, l)
        let Wk = Tensor(zeros: [l, kk])
        for i in 0..<l { for j in 0..<kk { Wk[i * kk + j] = W[i * l + j] } }
        let sigma = (0..<kk).map { max(0, eigenvalues[$0]).squareRoot() }
        let docVecs = Tensor(zeros: [D, kk])
        let termVecs = Tensor(zeros: [V, kk])
        BLAS.sgemm(m: D, n: kk, k: l, a: Y.data, lda: l, b: Wk.data, ldb: kk, c: docVecs.data, ldc: kk, parallel: true)
        BLAS.sgemm(m: V, n: kk, k: l, a: Z.data, lda: l, b: Wk.data, ldb: kk, c: termVecs.data, ldc: kk, parallel: true)
        for i in 0..<D { for j in 0..<kk { docVecs[i * kk + j] *= sigma[j] } }
        for i in 0..<V { for j in 0..<kk { termVecs[i * kk + j] /= max(sigma[j], 1e-12) } }
        return LSA(documentVectors: docVecs, termVectors: termVecs, singularValues: sigma, idf: idf)
    }

    /// Orthonormalises the columns of a (rows, cols) matrix in place: Cholesky QR, twice
    /// (CholeskyQR2), with the Gram matrix through sgemm and the factor and triangular
    /// solve through LAPACK/BLAS in Double. A rank-deficient Gram matrix is factored with
    /// a small diagonal shift (shifted CholeskyQR), so a degenerate column stays small
    /// instead of failing.
    static func orthonormalizeColumns(_ Y: Tensor) {
        let n = Y.shape[0]
        let c = Y.shape[1]
        for _ in 0..<2 {
            let G = Tensor(zeros: [c, c])
            BLAS.sgemm(transA: true, m: c, n: c, k: n, a: Y.data, lda: c, b: Y.data, ldb: c, c: G.data, ldc: c, parallel: true)
            var g = (0..<(c * c)).map { Double(G[$0]) }
            let trace = (0..<c).reduce(0.0) { $0 + g[$1 * c + $1] }
            var shift = 1e-12 * max(trace, 1e-30)
            var factor = LAPACK.cholesky(g, n: c)
            while factor == nil {
                for i in 0..<c { g[i * c + i] += shift }
                shift *= 100
                factor = LAPACK.cholesky(g, n: c)
            }
            var y = (0..<(n * c)).map { Double(Y[$0]) }
            LAPACK.solveRightLowerTransposed(&y, rows: n, l: factor!, n: c)
            for i in 0..<(n * c) { Y[i] = Float(y[i]) }
        }
    }

    /// Eigen-decomposition of a symmetric (n, n) matrix (LAPACK `dsyevd` in Double):
    /// eigenvalues in decreasing order, eigenvectors as the columns of an (n, n)
    /// row-major matrix.
    static func symmetricEigen(_ G: Tensor, n: Int) -> ([Float], [Float]) {
        let (values, vectors) = LAPACK.symmetricEigen((0..<(n * n)).map { Double(G[$0]) }, n: n)
        return (values.map { Float($0) }, vectors.map { Float($0) })
    }
}
