import CDSISystem
import DSITensor
import Foundation

/// A serial queue with a thread of its own: the service's writer. Adds and the steps of a
/// consolidation run on it in order. It runs at a lower CPU priority (`nice`) and its
/// parallel loops and products use at most `threads` threads, so that on a machine with
/// few cores the searches keep the compute pool and the cores while an add is applied
/// (DispatchQueue threads come from a shared pool, whose priority cannot be lowered
/// for one queue alone).
final class WriterThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var next = 0
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    init(name: String, nice: Int32, threads: Int) {
        let thread = Thread { [self] in
            _ = dsi_set_thread_nice(nice)
            Threads.limitCurrentThread(to: threads)
            while let job = take() { job() }
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    private func take() -> (@Sendable () -> Void)? {
        condition.lock()
        defer { condition.unlock() }
        while next == jobs.count && !stopped { condition.wait() }
        if next == jobs.count { return nil }
        let job = jobs[next]
        next += 1
        if next > 64 && next * 2 > jobs.count {
            jobs.removeFirst(next)
            next = 0
        }
        return job
    }

    /// Queues `job` after every job queued before it. After `stop`, jobs are dropped (a
    /// consolidation that finishes while the service shuts down: its checkpoint is
    /// written; the next start picks it up).
    func async(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        if stopped {
            condition.unlock()
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the queued jobs finish, then ends the thread.
    func stop() {
        condition.lock()
        let already = stopped
        stopped = true
        condition.signal()
        condition.unlock()
        if !already { done.wait() }
    }
}
