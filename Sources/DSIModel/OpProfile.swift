import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The kinds of work a training or decoding step spends its time on (`OpProfile`).
public enum OpFamily: String, CaseIterable, Sendable, Codable {
    /// The linear layers' products (inputs × weights, and their gradients), the output
    /// head's products included.
    case products
    /// Layer norms, forward and backward.
    case normalisation
    /// GELU, forward and backward.
    case activation
    /// Attention's core: per-head scores, masks, softmax and the weighted sums (the
    /// products inside it included).
    case attention
    /// Log-softmax and cross-entropy over the output tokens, and their gradient.
    case loss
    /// Gradient norm, clipping and AdamW.
    case optimizer
    /// Everything else: embeddings, residual adds, dropout, copies, thread hand-offs.
    case other
}

/// Wall time per `OpFamily`, exclusive (time inside a nested family is charged to it, not
/// to the caller), measured on the thread that started the profile; calls from other
/// threads (workers of a parallel loop) are ignored, so their time counts where the
/// calling thread waits. Off unless `start` was called: then each instrumented function
/// costs one load and branch. For benchmarks (`dsi bench ops`, `dsi bench query`).
public final class OpProfile: @unchecked Sendable {
    public static let shared = OpProfile()

    private var enabled = false
    private var owner = pthread_self()
    private var seconds = [Double](repeating: 0, count: OpFamily.allCases.count)
    private var stack: [Int] = []
    private var last: UInt64 = 0
    private static let index = Dictionary(uniqueKeysWithValues: OpFamily.allCases.enumerated().map { ($1, $0) })

    @inline(__always) private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Starts (or restarts) the profile on the calling thread; time outside any
    /// instrumented function counts as `other`.
    public func start() {
        owner = pthread_self()
        seconds = [Double](repeating: 0, count: OpFamily.allCases.count)
        stack = [Self.index[.other]!]
        last = Self.now()
        enabled = true
    }

    /// Stops the profile and returns the seconds per family since `start`.
    @discardableResult
    public func stop() -> [OpFamily: Double] {
        if enabled { charge() }
        enabled = false
        return Dictionary(uniqueKeysWithValues: OpFamily.allCases.enumerated().map { ($1, seconds[$0]) })
    }

    @inline(__always) private var active: Bool { enabled && pthread_equal(owner, pthread_self()) != 0 }

    private func charge() {
        let t = Self.now()
        seconds[stack.last!] += Double(t &- last) * 1e-9
        last = t
    }

    /// Time from here to the matching `exit` is `family`'s.
    @inline(__always) public func enter(_ family: OpFamily) {
        guard active else { return }
        charge()
        stack.append(Self.index[family]!)
    }

    @inline(__always) public func exit() {
        guard active, stack.count > 1 else { return }
        charge()
        stack.removeLast()
    }
}
