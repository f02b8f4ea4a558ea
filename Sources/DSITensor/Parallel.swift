import Foundation

/// The project's own parallel loops, and the one thread setting.
///
/// Work is split into `Threads.count` contiguous chunks run by a `ThreadPool`; the split
/// depends only on the sizes and the thread count, so results are repeatable for a given
/// thread count.
public enum Threads {
    nonisolated(unsafe) private static var _count = ProcessInfo.processInfo.activeProcessorCount
    nonisolated(unsafe) private static var _pool: ThreadPool?
    private static let poolLock = NSLock()

    /// The pool for the current thread count (created on first use).
    static var pool: ThreadPool {
        poolLock.lock()
        defer { poolLock.unlock() }
        if let p = _pool, p.threads == _count { return p }
        _pool?.shutdown()
        let p = ThreadPool(threads: _count)
        _pool = p
        return p
    }

    /// OpenBLAS starts with a pool of its own; the first use of this type turns it down to
    /// one thread (see `set`).
    static let configured: Void = BLAS.setThreads(1)

    /// Threads the project computes with (`parallelFor` and split products).
    public static var count: Int {
        _ = configured
        return _count
    }

    /// Sets the threads the project computes with: its parallel loops and the products
    /// `BLAS.sgemm(..., parallel: true)` splits across them. OpenBLAS's own pool is set to
    /// one thread so that a single pool owns the cores (see `BLAS.setThreads`).
    public static func set(_ n: Int) {
        precondition(n >= 1, "thread count must be at least 1, got \(n)")
        _count = n
        BLAS.setThreads(1)
    }

    /// The calling thread's own limit (0: none), a pthread key so that reading it costs a
    /// load, not a lookup.
    private static let capKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// Limits the parallel loops and split products started on the calling thread to `n`
    /// threads (nil: no limit of its own), whatever `count` is. For background work that
    /// shares the cores with latency-bound work: a service's document adds run on one
    /// thread and leave the pool to searches. Results do not depend on it: splits change
    /// which thread computes an element, not how.
    public static func limitCurrentThread(to n: Int?) {
        precondition(n.map { $0 >= 1 } ?? true, "thread limit must be at least 1")
        pthread_setspecific(capKey, n.flatMap { UnsafeRawPointer(bitPattern: $0) })
    }

    /// The calling thread's own limit (`limitCurrentThread`), nil when it has none.
    public static var currentThreadLimit: Int? {
        let cap = Int(bitPattern: pthread_getspecific(capKey))
        return cap > 0 ? cap : nil
    }

    /// Threads work started on the calling thread uses: `count`, or less when the thread
    /// has a limit (`limitCurrentThread`).
    public static var current: Int {
        let cap = Int(bitPattern: pthread_getspecific(capKey))
        return cap > 0 ? min(cap, count) : count
    }

    /// Cores the OS reports as available to this process.
    public static var available: Int { ProcessInfo.processInfo.activeProcessorCount }
}

/// Runs `body` over `0..<n` split into at most `threads` (default `Threads.current`)
/// contiguous ranges, each at least `grain` long. Ranges are disjoint: bodies may write to
/// disjoint outputs freely. The split depends only on n, grain and the thread count.
@inline(__always)
public func parallelFor(_ n: Int, grain: Int = 1, threads: Int? = nil, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let chunks = max(1, min(threads ?? Threads.current, n / max(1, grain)))
    if chunks == 1 {
        body(0..<n)
        return
    }
    Threads.pool.run(chunks) { c in
        let lo = n * c / chunks
        let hi = n * (c + 1) / chunks
        if lo < hi { body(lo..<hi) }
    }
}

/// A deterministic sum over `0..<n`: the range is cut into a fixed number of blocks that
/// does not depend on the thread count, each block is summed in Double, and the block sums
/// are added in order. Same inputs, same bits, whatever the thread count.
public func deterministicSum(_ n: Int, blocks: Int = 64, threads: Int? = nil, _ term: (Range<Int>) -> Double) -> Double {
    if n <= 0 { return 0 }
    let b = max(1, min(blocks, n))
    var partial = [Double](repeating: 0, count: b)
    partial.withUnsafeMutableBufferPointer { p in
        let out = p.baseAddress!
        parallelFor(b, threads: threads) { r in
            for i in r { out[i] = term((n * i / b)..<(n * (i + 1) / b)) }
        }
    }
    return partial.reduce(0, +)
}
