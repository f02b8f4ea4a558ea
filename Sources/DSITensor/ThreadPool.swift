import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fork-join pool of persistent workers, in OpenMP's manner: after a region a worker
/// spins for a short while on the next region's generation counter, then parks on a
/// condition variable. Dispatch's `concurrentPerform` woke its workers too late for the
/// 1–5 ms regions of a training step (a 2048×256×256 product split in two ran no faster
/// than one thread); spinning briefly makes short regions scale.
///
/// The calling thread takes part, so a pool for n threads has n − 1 workers. One region
/// runs at a time: a call made while the pool is busy (nested, or from another thread)
/// runs serially on its caller, which gives the same results.
public final class ThreadPool: @unchecked Sendable {
    /// One fork-join region: its own chunk counter and completion count, so a worker that
    /// wakes late can only find an exhausted region, never disturb the next one.
    final class Region: @unchecked Sendable {
        var job: ((Int) -> Void)?
        let chunks: Int
        let next = Atomic<Int>(0)
        let remaining: Atomic<Int>

        init(_ job: @escaping (Int) -> Void, chunks: Int) {
            self.job = job
            self.chunks = chunks
            self.remaining = Atomic<Int>(chunks)
        }

        /// Claims and runs chunks until none are left.
        func work() {
            while true {
                let i = next.wrappingAdd(1, ordering: .acquiring).oldValue
                if i >= chunks { return }
                job!(i)
                remaining.wrappingSubtract(1, ordering: .releasing)
            }
        }
    }

    public let threads: Int
    private let generation = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    // Guarded by `mutex`: the region workers should join, parked workers, shutdown.
    private var current: Region?
    private var sleepers = 0
    private var stopping = false
    // Allocated, not stored inline: pthread objects need a stable address, which an
    // inout reference to a class property does not promise.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var handles: [pthread_t] = []
    /// Spin iterations before parking (a few hundred microseconds).
    private let spinLimit = 200_000

    public init(threads: Int) {
        self.threads = max(1, threads)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for _ in 0..<(self.threads - 1) {
            let box = Unmanaged.passRetained(self)
            var handle = pthread_t()
            let rc = pthread_create(
                &handle, nil,
                { raw in
                    #if canImport(Glibc)
                        let pool = Unmanaged<ThreadPool>.fromOpaque(raw!).takeRetainedValue()
                    #else
                        let pool = Unmanaged<ThreadPool>.fromOpaque(raw).takeRetainedValue()
                    #endif
                    pool.workerLoop()
                    return nil
                }, box.toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            handles.append(handle)
        }
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Stops and joins the workers.
    public func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        for h in handles { pthread_join(h, nil) }
        handles = []
    }

    /// Runs `body(i)` for i in 0..<count across the pool; returns when all are done.
    public func run(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        guard count > 1, threads > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let region = Region(escapable, chunks: count)
            pthread_mutex_lock(mutex)
            current = region
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if sleepers > 0 { pthread_cond_broadcast(cond) }
            pthread_mutex_unlock(mutex)
            region.work()
            while region.remaining.load(ordering: .acquiring) > 0 {}
            pthread_mutex_lock(mutex)
            if current === region { current = nil }
            pthread_mutex_unlock(mutex)
            // Every chunk is done: no worker can call the job again.
            region.job = nil
        }
        busy.store(false, ordering: .releasing)
    }

    private func workerLoop() {
        // Start from the pool's first generation, not from whatever it is when this
        // thread first runs: a region or a shutdown may already have happened.
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .sequentiallyConsistent) == seen && spins < spinLimit { spins += 1 }
            pthread_mutex_lock(mutex)
            while generation.load(ordering: .sequentiallyConsistent) == seen && !stopping {
                sleepers += 1
                pthread_cond_wait(cond, mutex)
                sleepers -= 1
            }
            seen = generation.load(ordering: .sequentiallyConsistent)
            let region = current
            let stop = stopping
            pthread_mutex_unlock(mutex)
            if stop { return }
            region?.work()
        }
    }
}
