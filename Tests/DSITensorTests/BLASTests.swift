import DSITensor
import Foundation
import Testing

@Suite("sgemm wrapper")
struct BLASTests {
    /// C = alpha·op(A)·op(B) + beta·C by the definition, in Double.
    func naive(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float,
        c: [Float], ldc: Int
    ) -> [Float] {
        var out = c
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                out[i * ldc + j] = Float(Double(alpha) * s + Double(beta) * Double(c[i * ldc + j]))
            }
        }
        return out
    }

    @Test(
        "matches a naive loop for every transpose combination, with padded leading dimensions",
        arguments: [(false, false), (false, true), (true, false), (true, true)])
    func transposes(transA: Bool, transB: Bool) {
        var rng = SeededRNG(seed: 3)
        let m = 7
        let n = 5
        let k = 9
        // Leading dimensions wider than the rows, so strided access is exercised.
        let lda = (transA ? m : k) + 3
        let ldb = (transB ? k : n) + 2
        let ldc = n + 4
        let aRows = transA ? k : m
        let bRows = transB ? n : k
        let a = (0..<(aRows * lda)).map { _ in rng.normal() }
        let b = (0..<(bRows * ldb)).map { _ in rng.normal() }
        let c = (0..<(m * ldc)).map { _ in rng.normal() }
        for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
            let want = naive(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            var got = c
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    got.withUnsafeMutableBufferPointer { cp in
                        BLAS.sgemm(
                            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: lda,
                            b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
                    }
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    // BLAS sums in another order than the loop: a stated tolerance.
                    #expect(abs(got[i * ldc + j] - want[i * ldc + j]) <= 1e-4 * (1 + abs(want[i * ldc + j])))
                }
                // Padding columns of C are never touched.
                for j in n..<ldc { #expect(got[i * ldc + j] == c[i * ldc + j]) }
            }
        }
    }

    @Test(
        "a product split across threads equals the single call, for every transpose and split direction",
        arguments: [(false, false), (false, true), (true, false), (true, true)])
    func splitProduct(transA: Bool, transB: Bool) {
        var rng = SeededRNG(seed: 4)
        // m ≥ n splits rows of C, n > m splits columns; sizes not multiples of 16.
        for (m, n, k) in [(203, 37, 65), (29, 301, 70)] {
            let lda = transA ? m : k
            let ldb = transB ? k : n
            let a = (0..<(m * k)).map { _ in rng.normal() }
            let b = (0..<(k * n)).map { _ in rng.normal() }
            let c0 = (0..<(m * n)).map { _ in rng.normal() }
            func run(threads: Int, parallel: Bool) -> [Float] {
                var c = c0
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.sgemm(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 1,
                        c: cp.baseAddress!, ldc: n, parallel: parallel, threads: threads)
                }
                return c
            }
            let single = run(threads: 1, parallel: false)
            let want = naive(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: c0, ldc: n)
            for i in 0..<(m * n) { #expect(abs(single[i] - want[i]) <= 1e-4 * (1 + abs(want[i]))) }
            for t in [2, 3, 5] {
                let split = run(threads: t, parallel: true)
                for i in 0..<(m * n) { #expect(abs(split[i] - single[i]) <= 1e-5 * (1 + abs(single[i])), "threads \(t) element \(i)") }
            }
        }
    }

    @Test("k = 0 leaves beta·C, as BLAS defines it")
    func emptyInner() {
        let a: [Float] = [1]
        let b: [Float] = [1]
        var c: [Float] = [1, 2, 3, 4]
        c.withUnsafeMutableBufferPointer { cp in
            BLAS.sgemm(m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, beta: 0.5, c: cp.baseAddress!, ldc: 2)
        }
        #expect(c == [0.5, 1, 1.5, 2])
    }
}

@Suite("parallel loops, RNG, threads")
struct RuntimeTests {
    @Test("parallelFor visits every index exactly once")
    func coverage() {
        for n in [0, 1, 3, 17, 1000] {
            let hits = Tensor(zeros: [max(1, n)])
            parallelFor(n, grain: 2) { r in for i in r { hits[i] += 1 } }
            for i in 0..<n { #expect(hits[i] == 1) }
        }
    }

    // These tests never change the global thread count: other tests running at the same
    // time rely on it staying put (results are bit-identical for a fixed thread count).

    @Test("pools of any size run every chunk once; nested regions run serially; concurrent callers share")
    func poolStress() async {
        for round in 0..<100 {
            let pool = ThreadPool(threads: 1 + round % 4)
            let out = Tensor(zeros: [64])
            pool.run(8) { o in
                // Nested: the pool is busy, so this runs on the caller; same results.
                pool.run(8) { i in out[o * 8 + i] += Float(o * 8 + i) }
            }
            #expect((0..<64).allSatisfy { out[$0] == Float($0) }, "round \(round)")
            pool.shutdown()
        }
        let shared = ThreadPool(threads: 3)
        defer { shared.shutdown() }
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let out = Tensor(zeros: [1000])
                    for _ in 0..<50 { shared.run(10) { c in for i in (c * 100)..<((c + 1) * 100) { out[i] += 1 } } }
                    return (0..<1000).allSatisfy { out[$0] == 50 }
                }
            }
            for await ok in group { #expect(ok) }
        }
    }

    @Test("a thread's own limit caps its parallel loops and split products; other threads keep theirs")
    func threadLimit() {
        final class Chunks: @unchecked Sendable {
            let lock = NSLock()
            var count = 0
            func run(_ n: Int) -> Int {
                lock.withLock { count = 0 }
                parallelFor(n) { _ in self.lock.withLock { self.count += 1 } }
                return lock.withLock { count }
            }
        }
        let seen = Chunks()
        final class Box: @unchecked Sendable { var limited = 0, afterReset = 0, current = 0 }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            Threads.limitCurrentThread(to: 1)
            box.current = Threads.current
            box.limited = seen.run(1000)
            Threads.limitCurrentThread(to: nil)
            box.afterReset = Threads.current
            done.signal()
        }
        done.wait()
        #expect(box.current == 1 && box.limited == 1)
        #expect(box.afterReset == Threads.count)
        // The limit belonged to that thread alone.
        #expect(Threads.current == Threads.count)
        // A product split from a limited thread gives the same bits as a split one.
        var rng = SeededRNG(seed: 3)
        let a = (0..<(96 * 64)).map { _ in rng.normal() }
        let b = (0..<(64 * 80)).map { _ in rng.normal() }
        var split = [Float](repeating: 0, count: 96 * 80)
        BLAS.sgemm(m: 96, n: 80, k: 64, a: a, lda: 64, b: b, ldb: 80, c: &split, ldc: 80, parallel: true, threads: 2)
        final class Out: @unchecked Sendable { var c = [Float](repeating: 0, count: 96 * 80) }
        let one = Out()
        Thread.detachNewThread {
            Threads.limitCurrentThread(to: 1)
            BLAS.sgemm(m: 96, n: 80, k: 64, a: a, lda: 64, b: b, ldb: 80, c: &one.c, ldc: 80, parallel: true)
            done.signal()
        }
        done.wait()
        #expect(one.c == split)
    }

    @Test("deterministicSum gives the same bits for any thread count")
    func deterministicAcrossThreads() {
        var rng = SeededRNG(seed: 1)
        let xs = (0..<100_003).map { _ in Double(rng.normal()) * 1e3 }
        var sums: [Double] = []
        for t in [1, 2, 3] {
            sums.append(xs.withUnsafeBufferPointer { p in deterministicSum(p.count, threads: t) { r in r.reduce(0) { $0 + p[$1] } } })
        }
        #expect(sums[0] == sums[1] && sums[1] == sums[2])
        #expect(abs(sums[0] - xs.reduce(0, +)) < 1e-6 * xs.map(abs).reduce(0, +))
    }

    @Test("the RNG is reproducible and its normals have mean 0, variance 1")
    func rng() {
        var a = SeededRNG(seed: 42)
        var b = SeededRNG(seed: 42)
        var c = SeededRNG(seed: 43)
        let xa = (0..<100).map { _ in a.next() }
        let xb = (0..<100).map { _ in b.next() }
        let xc = (0..<100).map { _ in c.next() }
        #expect(xa == xb)
        #expect(xa != xc)
        var r = SeededRNG(seed: 5)
        let zs = (0..<200_000).map { _ in Double(r.normal()) }
        let mean = zs.reduce(0, +) / Double(zs.count)
        let variance = zs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(zs.count)
        #expect(abs(mean) < 0.01)
        #expect(abs(variance - 1) < 0.02)
        let us = (0..<10_000).map { _ in r.uniform() }
        #expect(us.allSatisfy { $0 >= 0 && $0 < 1 })
        let ints = (0..<10_000).map { _ in r.int(below: 7) }
        #expect(Set(ints) == Set(0..<7))
    }

    @Test("Threads.set keeps OpenBLAS's own pool at one thread")
    func threadSetting() {
        // Set to the value it has: the global must not change under other tests.
        Threads.set(Threads.count)
        #expect(BLAS.threads == 1 && Threads.count >= 1)
    }
}

@Suite("LAPACK through OpenBLAS")
struct LAPACKTests {
    @Test("symmetric eigen-decomposition: A v = λ v, decreasing, orthonormal")
    func eigen() {
        let n = 5
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { a[i * n + j] = 1 / Double(i + j + 1) + (i == j ? Double(i) : 0) } }
        let (w, v) = LAPACK.symmetricEigen(a, n: n)
        #expect(zip(w, w.dropFirst()).allSatisfy { $0 >= $1 })
        for k in 0..<n {
            for i in 0..<n {
                let av = (0..<n).reduce(0.0) { $0 + a[i * n + $1] * v[$1 * n + k] }
                #expect(abs(av - w[k] * v[i * n + k]) < 1e-10)
            }
            for l in 0..<n {
                let dot = (0..<n).reduce(0.0) { $0 + v[$1 * n + k] * v[$1 * n + l] }
                #expect(abs(dot - (k == l ? 1 : 0)) < 1e-10)
            }
        }
    }

    @Test("Cholesky: L Lᵀ = G, lower-triangular; nil when not positive definite; the triangular solve inverts Lᵀ")
    func cholesky() throws {
        let g: [Double] = [4, 2, 0.4, 2, 5, 1, 0.4, 1, 3]
        let l = try #require(LAPACK.cholesky(g, n: 3))
        for i in 0..<3 {
            for j in 0..<3 {
                if j > i { #expect(l[i * 3 + j] == 0) }
                let s = (0..<3).reduce(0.0) { $0 + l[i * 3 + $1] * l[j * 3 + $1] }
                #expect(abs(s - g[i * 3 + j]) < 1e-12)
            }
        }
        #expect(LAPACK.cholesky([1, 2, 2, 1], n: 2) == nil)
        // X = B Lᵀ, then solving recovers B.
        let b: [Double] = [1, 2, 3, -1, 0.5, 2]
        var x = [Double](repeating: 0, count: 6)
        for r in 0..<2 { for j in 0..<3 { x[r * 3 + j] = (0..<3).reduce(0.0) { $0 + b[r * 3 + $1] * l[j * 3 + $1] } } }
        LAPACK.solveRightLowerTransposed(&x, rows: 2, l: l, n: 3)
        for i in 0..<6 { #expect(abs(x[i] - b[i]) < 1e-12) }
    }
}

@Suite("bfloat16 products (AVX512-BF16)", .enabled(if: BLAS.bfloat16Available, "the CPU has no AVX512-BF16"))
struct BFloat16ProductTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [(16, 16, 16), (29, 45, 33), (50, 70, 7), (14, 32, 64), (100, 3, 40), (3, 97, 18)]

    /// op(A) op(B) for one shape and transpose pair, by the kernel on `threads` threads and
    /// by a Double loop; inputs from `value`.
    func run(
        transA: Bool, transB: Bool, _ s: (m: Int, n: Int, k: Int), threads: Int, value: (inout SeededRNG) -> Float
    ) -> (got: [Float], want: [Float], bound: [Float]) {
        var rng = SeededRNG(seed: UInt64(s.m * 1000 + s.n * 10 + s.k))
        let lda = (transA ? s.m : s.k) + 3
        let ldb = (transB ? s.k : s.n) + 5
        let ldc = s.n + 2
        let a = (0..<((transA ? s.k : s.m) * lda)).map { _ in value(&rng) }
        let b = (0..<((transB ? s.n : s.k) * ldb)).map { _ in value(&rng) }
        let c0 = (0..<(s.m * ldc)).map { _ in value(&rng) }
        var got = c0
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                got.withUnsafeMutableBufferPointer { cp in
                    BLAS.bfloat16Product(
                        transA: transA, transB: transB, m: s.m, n: s.n, k: s.k, alpha: 0.5, a: ap.baseAddress!, lda: lda,
                        b: bp.baseAddress!, ldb: ldb, beta: 0.75, c: cp.baseAddress!, ldc: ldc, threads: threads)
                }
            }
        }
        var want = c0
        var bound = [Float](repeating: 0, count: c0.count)
        for i in 0..<s.m {
            for j in 0..<s.n {
                var sum: Double = 0
                var abs: Double = 0
                for p in 0..<s.k {
                    let x = Double(transA ? a[p * lda + i] : a[i * lda + p])
                    let y = Double(transB ? b[j * ldb + p] : b[p * ldb + j])
                    sum += x * y
                    abs += Swift.abs(x * y)
                }
                want[i * ldc + j] = Float(0.5 * sum + 0.75 * Double(c0[i * ldc + j]))
                bound[i * ldc + j] = Float(0.5 * abs)
            }
        }
        return (got, want, bound)
    }

    @Test(
        "inputs that bfloat16 holds exactly give the exact product, for every transpose pair, odd sizes and 1 or 2 threads",
        arguments: [(false, false), (false, true), (true, false), (true, true)], [1, 2])
    func exact(transposes: (Bool, Bool), threads: Int) {
        for s in Self.shapes {
            // Multiples of 1/16 up to 4 in magnitude: 7 significant bits, exact in bfloat16.
            let r = run(transA: transposes.0, transB: transposes.1, s, threads: threads) { Float($0.int(below: 129) - 64) / 16 }
            for i in r.got.indices {
                #expect(abs(r.got[i] - r.want[i]) <= 1e-5 * max(1, r.bound[i]), "\(s) element \(i): \(r.got[i]) vs \(r.want[i])")
            }
        }
    }

    @Test("general inputs are within bfloat16's rounding of the product (2 × 2⁻⁸ of Σ|a·b| per element)")
    func rounding() {
        for s in Self.shapes {
            for t in [(false, true), (true, false)] {
                let r = run(transA: t.0, transB: t.1, s, threads: 2) { $0.uniform() * 2 - 1 }
                for i in r.got.indices {
                    #expect(abs(r.got[i] - r.want[i]) <= 2 * 0.00390625 * r.bound[i] + 1e-5, "\(s) \(t) element \(i)")
                }
            }
        }
    }
}
