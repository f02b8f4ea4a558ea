import DSITensor

/// All parameters in one allocation, with named views into it; gradients and the AdamW
/// moments are flat arrays of the same length beside it (after llm.c). Zeroing, clipping,
/// the update and saving are each one loop over flat memory.
public final class ParameterArena: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        /// Weight decay applies to matrices (linear weights, embeddings), not to norms and biases.
        public var decays: Bool { shape.count >= 2 }
    }

    public let entries: [Entry]
    public let count: Int
    public let values: Tensor
    public let grads: Tensor
    /// AdamW first and second moments.
    public let m: Tensor
    public let v: Tensor
    private let index: [String: Int]

    /// Lays out `specs` (name, shape) in order.
    public init(_ specs: [(String, [Int])]) {
        var entries: [Entry] = []
        var offset = 0
        for (name, shape) in specs {
            // Keep every view 16-float (64-byte) aligned.
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += (shape.reduce(1, *) + 15) / 16 * 16
        }
        self.entries = entries
        self.count = offset
        self.values = Tensor(zeros: [offset])
        self.grads = Tensor(zeros: [offset])
        self.m = Tensor(zeros: [offset])
        self.v = Tensor(zeros: [offset])
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() {
            precondition(index[e.name] == nil, "duplicate parameter name \(e.name)")
            index[e.name] = i
        }
        self.index = index
    }

    /// Number of real parameters (without the alignment padding).
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.count } }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The parameter `name` as a tensor view (shares storage with the arena).
    public func tensor(_ name: String) -> Tensor {
        guard let e = entry(name) else { preconditionFailure("no parameter named \(name)") }
        return Tensor(viewing: values.data + e.offset, shape: e.shape, owner: values)
    }

    public func gradTensor(_ name: String) -> Tensor {
        guard let e = entry(name) else { preconditionFailure("no parameter named \(name)") }
        return Tensor(viewing: grads.data + e.offset, shape: e.shape, owner: grads)
    }

    public func zeroGrads() { grads.zero() }

    /// Global L2 norm of the gradients (deterministic for any thread count).
    public func gradNorm() -> Float {
        let g = grads.data
        let sq = deterministicSum(count) { r in
            var s: Double = 0
            for i in r { s += Double(g[i]) * Double(g[i]) }
            return s
        }
        return Float(sq.squareRoot())
    }
}
