import DSIIndex
import DSIModel
import Foundation

/// Batches searches: requests that arrive while a batch runs, or within `window` of the
/// first one (and no more than `gap` after the one before), are searched together (up to `maxBatch`, grouped by beam and k), on one
/// dedicated thread, so the HTTP event loops never run a model and concurrent clients
/// share the decoder's products. Each batch takes the service's current snapshot, so
/// searches never wait for an add.
final class SearchBatcher: @unchecked Sendable {
    struct Job {
        var tokens: [Int32]
        var beam: Int
        var k: Int
        var enqueued: ContinuousClock.Instant
        var done: @Sendable (Result<(ServiceSnapshot, [ConstrainedBeamSearch.Hit]), any Error>) -> Void
    }

    struct TimedOut: Error, CustomStringConvertible {
        let seconds: Double
        var description: String { String(format: "the search waited more than %.1f s for its turn (the server is overloaded)", seconds) }
    }

    let maxBatch: Int
    let window: Duration
    let gap: Duration
    let timeout: Duration
    // Released when the loop ends (`stop`), which breaks the cycle with the service.
    private var snapshot: (@Sendable () -> ServiceSnapshot)?
    private var onBatch: (@Sendable (Int, Double) -> Void)?
    private let cond = NSCondition()
    private var queue: [Job] = []
    private var stopping = false
    private var thread: Thread?
    /// The search thread's decoding buffers, kept across batches and snapshots.
    private let buffers = SearchBuffers()

    init(
        maxBatch: Int, window: Duration, gap: Duration, timeout: Duration, snapshot: @escaping @Sendable () -> ServiceSnapshot,
        onBatch: @escaping @Sendable (Int, Double) -> Void
    ) {
        self.maxBatch = max(1, maxBatch)
        self.window = window
        self.gap = gap
        self.timeout = timeout
        self.snapshot = snapshot
        self.onBatch = onBatch
        // The thread keeps the batcher alive until its loop ends.
        let t = Thread { self.loop() }
        t.name = "dsi-search"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    func search(tokens: [Int32], beam: Int, k: Int) async throws -> (ServiceSnapshot, [ConstrainedBeamSearch.Hit]) {
        try await withCheckedThrowingContinuation { c in
            let job = Job(tokens: tokens, beam: beam, k: k, enqueued: .now) { c.resume(with: $0) }
            cond.lock()
            if stopping {
                cond.unlock()
                c.resume(throwing: CancellationError())
                return
            }
            queue.append(job)
            cond.signal()
            cond.unlock()
        }
    }

    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
    }

    private func loop() {
        let clock = ContinuousClock()
        while true {
            cond.lock()
            while queue.isEmpty && !stopping { cond.wait() }
            if stopping && queue.isEmpty {
                snapshot = nil
                onBatch = nil
                cond.unlock()
                return
            }
            // A short window for more queries to join, unless the batch is already full. It
            // closes early once `gap` passes with no new arrival: clients answered together
            // send their next queries together, and once that burst is in, waiting out the
            // rest of the window only idles the cores.
            let deadline = Date().addingTimeInterval(window.seconds)
            var arrived = queue.count
            while queue.count < maxBatch && !stopping {
                let quiet = Date().addingTimeInterval(gap.seconds)
                let signalled = cond.wait(until: min(deadline, quiet))
                if Date() >= deadline || (!signalled && queue.count == arrived) { break }
                arrived = queue.count
            }
            let take = Array(queue.prefix(maxBatch))
            queue.removeFirst(take.count)
            cond.unlock()

            let now = clock.now
            var live: [Job] = []
            for j in take {
                if now - j.enqueued > timeout {
                    j.done(.failure(TimedOut(seconds: timeout.seconds)))
                } else {
                    live.append(j)
                }
            }
            if live.isEmpty { continue }
            let snap = snapshot!()
            let t0 = clock.now
            var groups: [[Int]: [Int]] = [:]
            for (i, j) in live.enumerated() { groups[[j.beam, j.k], default: []].append(i) }
            for (key, members) in groups.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                do {
                    let hits = try snap.index.search(
                        tokens: members.map { live[$0].tokens }, beam: key[0], topK: key[1], batch: maxBatch, buffers: buffers)
                    for (m, h) in zip(members, hits) { live[m].done(.success((snap, h))) }
                } catch {
                    for m in members { live[m].done(.failure(error)) }
                }
            }
            onBatch?(live.count, (clock.now - t0).seconds)
        }
    }
}
