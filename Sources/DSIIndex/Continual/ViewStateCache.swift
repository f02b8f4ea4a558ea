import Foundation

/// The decoder states of old documents' competing views (their title, or lead), kept
/// between fast adds. RowFit encodes up to `AddOptions.competitors` old titles per add;
/// their states depend only on the encoder and decoder weights and on the document's own
/// docid prefix, which a fast add never changes (it fits new output rows and grows the
/// vocabulary), so a running service encodes each old title once, not once per add.
/// Anything that changes the weights (replay, consolidation, training, loading) starts
/// from an empty cache: `ContinualIndexer.add` hands the cache on only in fast mode.
public final class ViewStateCache: @unchecked Sendable {
    private let lock = NSLock()
    private var states: [Int: [Float]] = [:]
    /// Documents it holds at most (1 KiB each at width 256: 256 MiB at the default).
    public let capacity: Int
    /// States served from the cache and computed, since it was made (for tests and logs).
    public private(set) var hits = 0, misses = 0

    public init(capacity: Int = 262_144) { self.capacity = capacity }

    public var count: Int { lock.withLock { states.count } }

    func state(of document: Int) -> [Float]? {
        lock.withLock {
            let s = states[document]
            if s == nil { misses += 1 } else { hits += 1 }
            return s
        }
    }

    func store(_ state: [Float], of document: Int) {
        lock.withLock {
            if states.count < capacity { states[document] = state }
        }
    }
}
