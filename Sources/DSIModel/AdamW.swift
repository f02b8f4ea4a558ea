import CDSIKernels
import DSITensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// AdamW (Loshchilov & Hutter) with decoupled weight decay, applied to matrices only.
/// The one Adam of the project: the model's update and `dsi add`'s row fit both run
/// `apply`.
public struct AdamW: Sendable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    public var weightDecay: Float = 0.01
    /// Completed updates; bias correction uses it. Saved with the optimizer state.
    public var step: Int = 0

    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    /// One update of every parameter from `arena.grads`, scaled by `gradScale` first
    /// (clipping folds into it).
    ///
    /// Row-sparse entries are updated lazily while the arena knows their dirty rows (as
    /// PyTorch's SparseAdam and TensorFlow's LazyAdam do): only rows a step touched move,
    /// and their moments and weights change exactly as the dense rule would change them;
    /// every other row keeps its weights and moments bit for bit (its moments do not
    /// decay, its weight does not decay). Bias correction uses the global step count, so
    /// a row touched after a pause takes a normal-sized step.
    public mutating func update(_ arena: ParameterArena, lr: Float, gradScale: Float = 1) {
        OpProfile.shared.enter(.optimizer)
        defer { OpProfile.shared.exit() }
        step += 1
        let p = arena.values.data
        let g = arena.grads.data
        let m = arena.m.data
        let v = arena.v.data
        let dirty = arena.dirtyRows
        for (i, e) in arena.entries.enumerated() {
            let base = e.offset
            let decay = e.decays
            if let dirty, arena.rowSparse.contains(i) {
                let w = e.rowWidth
                let rows = dirty[i] ?? []
                parallelFor(rows.count, grain: max(1, 32768 / max(1, w))) { r in
                    for k in r {
                        let o = base + Int(rows[k]) * w
                        self.apply(p + o, grads: g + o, m: m + o, v: v + o, range: 0..<w, lr: lr, gradScale: gradScale, decay: decay)
                    }
                }
                continue
            }
            parallelFor(e.count, grain: 32768) { r in
                self.apply(p + base, grads: g + base, m: m + base, v: v + base, range: r, lr: lr, gradScale: gradScale, decay: decay)
            }
        }
    }

    /// One update of a single vector (its own moments), without weight decay.
    public mutating func update(_ values: inout [Float], grads: [Float], m: inout [Float], v: inout [Float], lr: Float) {
        precondition(values.count == grads.count && m.count == values.count && v.count == values.count)
        step += 1
        let n = values.count
        values.withUnsafeMutableBufferPointer { p in
            grads.withUnsafeBufferPointer { g in
                m.withUnsafeMutableBufferPointer { mm in
                    v.withUnsafeMutableBufferPointer { vv in
                        apply(
                            p.baseAddress!, grads: g.baseAddress!, m: mm.baseAddress!, v: vv.baseAddress!, range: 0..<n, lr: lr,
                            gradScale: 1, decay: false)
                    }
                }
            }
        }
    }

    /// The update rule on elements `range` of one buffer, at the current `step`.
    @inline(__always)
    func apply(
        _ p: UnsafeMutablePointer<Float>, grads g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
        range: Range<Int>, lr: Float, gradScale: Float, decay: Bool
    ) {
        let b1 = beta1
        let b2 = beta2
        let eps = eps
        let wd = decay ? weightDecay : 0
        let c1 = 1 - powf(b1, Float(step))
        let c2 = 1 - powf(b2, Float(step))
        // The rule, vectorised for this CPU (Sources/CDSIKernels).
        let o = range.lowerBound
        dsi_adamw(p + o, g + o, m + o, v + o, range.count, lr, gradScale, b1, b2, eps, wd, c1, c2)
    }
}
