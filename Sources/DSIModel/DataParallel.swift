import DSITensor

/// The collective operations data-parallel training needs. `DSIDistributed` implements
/// them over MPI; the model and the training loop know only this protocol, so the
/// libraries stay free of MPI. Every rank must make the same calls in the same order.
public protocol Collective: AnyObject {
    /// This process's rank, 0 ..< size.
    var rank: Int { get }
    var size: Int { get }
    /// Sums `count` floats element-wise across all ranks, in place; every rank receives
    /// the same sums.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws
    /// The smallest and largest of one value across ranks.
    func allreduceMinMax(_ value: UInt64) throws -> (min: UInt64, max: UInt64)
    /// Every rank's `values`, concatenated in rank order (the lists may differ in length).
    func allgather(_ values: [Int32]) throws -> [[Int32]]
    /// Rank `root`'s `count` doubles, copied into `buffer` on every rank.
    func broadcast(_ buffer: UnsafeMutablePointer<Double>, count: Int, root: Int) throws
}

/// The weights differ between ranks: they were meant to stay identical.
public struct RanksDiverged: Error, CustomStringConvertible {
    public let step: Int
    public let ranks: Int
    public init(step: Int, ranks: Int) {
        self.step = step
        self.ranks = ranks
    }
    public var description: String {
        "the weights of the \(ranks) ranks differ after step \(step) (checksums disagree): data-parallel training lost sync; "
            + "this is a bug or a faulty node; rerun from the last checkpoint (--resume)"
    }
}

/// What a data-parallel step spent exchanging gradients.
public struct ExchangeStats: Sendable {
    public var seconds: Double = 0
    public var bytes: Int = 0
    public var calls: Int = 0
    public init() {}
}

extension Seq2SeqBatch {
    /// Rank `rank`'s share of this (global) batch: examples
    /// `rank·B/size ..< (rank+1)·B/size`, a deterministic function of the rank, with the
    /// same padded lengths and candidate sets, and `firstExample` set so dropout draws what the
    /// whole batch would at those rows.
    public func share(rank: Int, of size: Int) -> Seq2SeqBatch {
        precondition(size >= 1 && rank >= 0 && rank < size)
        if size == 1 { return self }
        let lo = rank * B / size
        let hi = (rank + 1) * B / size  // empty when B < size
        var s = Seq2SeqBatch(
            B: hi - lo, S: S, T: T, source: Array(source[lo * S..<hi * S]), sourceMask: Array(sourceMask[lo * S..<hi * S]),
            targetIn: Array(targetIn[lo * T..<hi * T]), targetOut: Array(targetOut[lo * T..<hi * T]))
        if let c = candidates {
            s.candidates = OutputCandidates(sets: c.sets, setOfPosition: Array(c.setOfPosition[lo * T..<hi * T]))
        }
        s.firstExample = firstExample + lo
        return s
    }

    /// Positions with a label (scored by the loss).
    public var labelledPositions: Int { targetOut.reduce(0) { $0 + ($1 == Seq2Seq.ignoreIndex ? 0 : 1) } }
}

extension Seq2Seq {
    /// One data-parallel optimisation step: this rank trains on its share of the global
    /// `batch`; the gradient of the global batch's mean loss is summed across ranks
    /// (`ParameterArena.allreduceGradients`); every rank then clips and applies the same
    /// AdamW update to the same weights, so they stay identical. The loss and gradient
    /// norm returned are the global batch's, on every rank. A non-finite step throws on
    /// every rank before anything is updated.
    @discardableResult
    public func trainStep(
        _ batch: Seq2SeqBatch, collective c: Collective, workspace: Workspace, optimizer: inout AdamW, lr: Float,
        clipNorm: Float? = 1, smoothing: Float = 0, rng: inout SeededRNG, stats: inout ExchangeStats
    ) throws -> StepResult {
        // A share may be empty (the last batch of an epoch can be smaller than the number
        // of ranks): that rank contributes a zero gradient but still takes part in every
        // exchange.
        let local = batch.share(rank: c.rank, of: c.size)
        params.zeroGrads()
        var totals: [Double] = [0, 0]
        if local.B > 0 {
            _ = try forward(local, workspace: workspace, smoothing: smoothing, training: true, rng: &rng)
            totals = [workspace.lossSum, Double(workspace.counted)]
        }
        let clock = ContinuousClock()
        let t0 = clock.now
        try totals.withUnsafeMutableBufferPointer { try c.allreduceSum($0.baseAddress!, count: 2) }
        stats.seconds += (clock.now - t0).seconds
        let globalCounted = Int(totals[1])
        if local.B > 0 { backward(workspace: workspace, denominator: max(1, globalCounted)) }
        let t1 = clock.now
        let bytes = try params.allreduceGradients(c)
        stats.seconds += (clock.now - t1).seconds
        stats.bytes += bytes + 16
        stats.calls += 1
        let loss = globalCounted == 0 ? 0 : Float(totals[0] / Double(globalCounted))
        let norm = params.gradNorm()
        guard loss.isFinite, norm.isFinite else { throw ModelError.nonFinite(loss: loss, gradNorm: norm) }
        var scale: Float = 1
        if let clipNorm, norm > clipNorm { scale = clipNorm / norm }
        optimizer.update(params, lr: lr, gradScale: scale)
        return StepResult(loss: loss, gradNorm: norm, learningRate: lr)
    }
}

extension ParameterArena {
    /// Sums every rank's gradients, in place, so each rank holds the global gradient.
    /// Dense entries go in one allreduce per contiguous span; a row-sparse entry whose
    /// dirty rows are known goes as rows: the ranks' row lists are gathered, and only the
    /// union's rows are summed (not the whole table). Afterwards the dirty rows are that
    /// union on every rank. Returns the bytes this rank contributed.
    public func allreduceGradients(_ c: Collective) throws -> Int {
        let g = grads
        var bytes = 0
        let dirty = dirtyRows
        // One gather of every rank's touched rows: per row-sparse entry, its row count and
        // rows; a rank whose rows are unknown (a dense backward ran) sends -1 alone.
        var unions: [Int: [Int32]] = [:]
        var known = true
        if !rowSparse.isEmpty {
            var mine: [Int32] = []
            if let dirty {
                for i in rowSparse {
                    let rows = dirty[i] ?? []
                    mine.append(Int32(rows.count))
                    mine += rows
                }
            } else {
                mine = [-1]
            }
            bytes += 4 * mine.count
            let all = try c.allgather(mine)
            known = !all.contains { $0.first == -1 }
            if known {
                var sets = [Int: Set<Int32>]()
                for list in all {
                    var k = 0
                    for i in rowSparse {
                        let n = Int(list[k])
                        sets[i, default: []].formUnion(list[k + 1..<k + 1 + n])
                        k += 1 + n
                    }
                }
                for (i, set) in sets { unions[i] = set.sorted() }
            }
        }
        guard known, !rowSparse.isEmpty else {
            // Dense: the whole arena in one sum (rows no rank touched are zero everywhere).
            try c.allreduceSum(g.data, count: count)
            if !rowSparse.isEmpty { dirtyRows = nil }
            return bytes + 4 * count
        }
        for span in denseSpans() {
            try c.allreduceSum(g.data + span.lowerBound, count: span.count)
            bytes += 4 * span.count
        }
        var merged: [Int: [Int32]] = [:]
        for i in rowSparse {
            let e = entries[i]
            let w = e.rowWidth
            let rows = unions[i] ?? []
            merged[i] = rows
            if rows.isEmpty { continue }
            let packed = Tensor(uninitialized: [rows.count * w])
            for (k, r) in rows.enumerated() { (packed.data + k * w).update(from: g.data + e.offset + Int(r) * w, count: w) }
            try c.allreduceSum(packed.data, count: rows.count * w)
            bytes += 4 * rows.count * w
            for (k, r) in rows.enumerated() { (g.data + e.offset + Int(r) * w).update(from: packed.data + k * w, count: w) }
        }
        dirtyRows = merged
        return bytes
    }

    /// A 64-bit checksum of the weights' bytes (FNV-1a over 64-bit words, combined per
    /// fixed-size block in order): equal on every rank while the weights are identical.
    public func valuesChecksum() -> UInt64 {
        let words = count / 2
        let raw = UnsafeRawPointer(values.data).assumingMemoryBound(to: UInt64.self)
        let block = 1 << 16
        let blocks = (words + block - 1) / block
        let sums = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, blocks))
        defer { sums.deallocate() }
        parallelFor(blocks, grain: 1) { r in
            for b in r {
                var h: UInt64 = 0xCBF2_9CE4_8422_2325
                for i in b * block..<min(words, (b + 1) * block) { h = (h ^ raw[i]) &* 0x0000_0100_0000_01B3 }
                sums[b] = h
            }
        }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(count)
        for b in 0..<blocks { h = (h ^ sums[b]) &* 0x0000_0100_0000_01B3 }
        if count % 2 == 1 { h = (h ^ UInt64(values.data[count - 1].bitPattern)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
