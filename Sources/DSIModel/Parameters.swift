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

/// AdamW (Loshchilov & Hutter) with decoupled weight decay, applied to matrices only.
public struct AdamW: Sendable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    public var weightDecay: Float = 0.01
    /// Completed updates; bias correction uses it. Saved with the optimizer state.
    public var step: Int = 0

    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    /// One update of every parameter from `arena.grads`, scaled by `gradScale` first
    /// (clipping folds into it).
    public mutating func update(_ arena: ParameterArena, lr: Float, gradScale: Float = 1) {
        step += 1
        let b1 = beta1, b2 = beta2, eps = eps
        let c1 = 1 - powf(b1, Float(step)), c2 = 1 - powf(b2, Float(step))
        let p = arena.values.data, g = arena.grads.data, m = arena.m.data, v = arena.v.data
        for e in arena.entries {
            let wd = e.decays ? weightDecay : 0
            let base = e.offset
            parallelFor(e.count, grain: 32768) { r in
                for j in r {
                    let i = base + j
                    let grad = g[i] * gradScale
                    let mi = b1 * m[i] + (1 - b1) * grad
                    let vi = b2 * v[i] + (1 - b2) * grad * grad
                    m[i] = mi
                    v[i] = vi
                    let mhat = mi / c1, vhat = vi / c2
                    p[i] -= lr * (mhat / (vhat.squareRoot() + eps) + wd * p[i])
                }
            }
        }
    }
}

/// Linear warm-up to `peak`, then cosine decay to `peak · floor` at `totalSteps`.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var floor: Float

    public init(peak: Float, warmupSteps: Int, totalSteps: Int, floor: Float = 0.1) {
        self.peak = peak; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.floor = floor
    }

    /// The rate for update number `step` (0-based).
    public func callAsFunction(_ step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Float(step - warmupSteps) / Float(span))
        let cosine = 0.5 * (1 + cosf(Float.pi * progress))
        return peak * (floor + (1 - floor) * cosine)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
