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
final class ThreadPool: @unchecked Sendable {
    let threads: Int
    private let generation = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var chunks = 0
    private var job: ((Int) -> Void)?
    // Allocated, not stored inline: pthread objects need a stable address, which an
    // inout reference to a class property does not promise.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var handles: [pthread_t] = []
    /// Spin iterations before parking (a few hundred microseconds).
    private let spinLimit = 200_000

    init(threads: Int) {
        self.threads = max(1, threads)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for _ in 0..<(self.threads - 1) {
            let box = Unmanaged.passRetained(self)
            var handle = pthread_t()
            let rc = pthread_create(&handle, nil, { raw in
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
    func shutdown() {
        stopping.store(true, ordering: .releasing)
        pthread_mutex_lock(mutex)
        generation.wrappingAdd(1, ordering: .releasing)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        for h in handles { pthread_join(h, nil) }
        handles = []
    }

    /// Runs `body(i)` for i in 0..<count across the pool; returns when all are done.
    func run(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        guard count > 1, threads > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            chunks = count
            nextChunk.store(0, ordering: .releasing)
            remaining.store(count, ordering: .relaxed)
            // Store-then-load against the worker's sleepers-then-generation: both sides
            // sequentially consistent, so a parking worker either sees the new generation
            // or is seen here and woken.
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(cond)
                pthread_mutex_unlock(mutex)
            }
            work()
            while remaining.load(ordering: .acquiring) > 0 {}
            job = nil
        }
        busy.store(false, ordering: .releasing)
    }

    private func work() {
        let body = job!
        let n = chunks
        while true {
            let i = nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= n { return }
            body(i)
            remaining.wrappingSubtract(1, ordering: .releasing)
        }
    }

    private func workerLoop() {
        // Start from the pool's first generation, not from whatever it is when this
        // thread first runs: a region or a shutdown may already have happened.
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < spinLimit { continue }
                pthread_mutex_lock(mutex)
                sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(cond, mutex)
                }
                sleepers.wrappingSubtract(1, ordering: .releasing)
                pthread_mutex_unlock(mutex)
            }
            seen = generation.load(ordering: .acquiring)
            if stopping.load(ordering: .acquiring) { return }
            // A region may have finished before this worker woke: then there is no chunk
            // left and `job` may already be gone, so claim before touching it.
            if remaining.load(ordering: .acquiring) > 0 { workIfAny() }
        }
    }

    private func workIfAny() {
        while true {
            let i = nextChunk.wrappingAdd(1, ordering: .acquiring).oldValue
            if i >= chunks { return }
            job!(i)
            remaining.wrappingSubtract(1, ordering: .releasing)
        }
    }
}
