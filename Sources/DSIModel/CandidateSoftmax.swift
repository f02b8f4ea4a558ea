import DSITensor

/// What the output softmax of each target position is taken over, when not the whole
/// decoder vocabulary: a hierarchical softmax over the tokens a docid trie allows after
/// the gold prefix, or a sampled softmax over a node with very many children.
///
/// `sets` are the distinct candidate sets of a batch (each sorted ascending, each
/// holding the label of every position scored over it); `setOfPosition` gives, for each
/// of the batch's B·T positions, the set it is scored over, or −1 for a position that is
/// not scored. One sgemm per set computes the logits of all positions that share it, so
/// a step's output cost is the sum over sets of positions × candidates, not B·T × V.
public struct OutputCandidates: Sendable, Equatable {
    public var sets: [[Int32]]
    public var setOfPosition: [Int32]

    public init(sets: [[Int32]], setOfPosition: [Int32]) {
        self.sets = sets
        self.setOfPosition = setOfPosition
    }
}

/// The saved activations of one candidate set in a training step.
final class CandidateSetActs {
    let positions: [Int]  // rows of the decoder output scored over this set
    let tokens: [Int32]
    let targets: [Int32]  // index of each position's label within `tokens`
    let x: Tensor  // (P, C) the positions' final decoder states
    let weights: Tensor  // (K, C) the tokens' output rows
    let logits, probs: Tensor  // (P, K)
    let losses: Tensor  // (P)

    init(positions: [Int], tokens: [Int32], targets: [Int32], C: Int) {
        self.positions = positions
        self.tokens = tokens
        self.targets = targets
        x = Tensor(uninitialized: [positions.count, C])
        weights = Tensor(uninitialized: [tokens.count, C])
        logits = Tensor(uninitialized: [positions.count, tokens.count])
        probs = Tensor(uninitialized: [positions.count, tokens.count])
        losses = Tensor(uninitialized: [positions.count])
    }
}

extension Seq2Seq {
    func checkCandidates(_ c: OutputCandidates, _ b: Seq2SeqBatch) throws(ModelError) {
        guard c.setOfPosition.count == b.B * b.T else {
            throw .invalidBatch("\(c.setOfPosition.count) candidate set indices for \(b.B * b.T) positions")
        }
        for (i, s) in c.sets.enumerated() {
            guard !s.isEmpty else { throw .invalidBatch("candidate set \(i) is empty") }
            for j in s.indices {
                guard s[j] >= 0, Int(s[j]) < config.targetVocab else {
                    throw .invalidBatch("candidate token \(s[j]) outside the vocabulary 0..<\(config.targetVocab)")
                }
                if j > 0, s[j] <= s[j - 1] { throw .invalidBatch("candidate set \(i) is not sorted and unique") }
            }
        }
        for (p, s) in c.setOfPosition.enumerated() where s >= 0 {
            guard Int(s) < c.sets.count else { throw .invalidBatch("position \(p) names candidate set \(s) of \(c.sets.count)") }
            let y = b.targetOut[p]
            guard y != Self.ignoreIndex, Self.position(of: y, in: c.sets[Int(s)]) != nil else {
                throw .invalidBatch("the label \(y) of position \(p) is not in its candidate set \(s)")
            }
        }
    }

    static func position(of t: Int32, in sorted: [Int32]) -> Int? {
        var lo = 0
        var hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] < t { lo = mid + 1 } else { hi = mid }
        }
        return lo < sorted.count && sorted[lo] == t ? lo : nil
    }

    /// The output head and loss over candidate sets: per set, gather the positions'
    /// states and the tokens' rows, one sgemm, bias, softmax cross-entropy (label
    /// smoothing spread over the set). Returns (sum of losses, positions scored).
    func candidateHeadForward(_ ws: Workspace, _ cands: OutputCandidates, smoothing: Float) -> (Double, Int) {
        OpProfile.shared.enter(.loss)
        defer { OpProfile.shared.exit() }
        let C = config.dModel
        var byset = [[Int]](repeating: [], count: cands.sets.count)
        for (p, s) in cands.setOfPosition.enumerated() where s >= 0 { byset[Int(s)].append(p) }
        var acts: [CandidateSetActs] = []
        var total: Double = 0
        var counted = 0
        let W = w(head.w)
        let bias = w(head.b)
        for (s, positions) in byset.enumerated() where !positions.isEmpty {
            let tokens = cands.sets[s]
            let targets = positions.map { Int32(Self.position(of: ws.targetOut[$0], in: tokens)!) }
            let a = CandidateSetActs(positions: positions, tokens: tokens, targets: targets, C: C)
            let P = positions.count
            let K = tokens.count
            for (i, p) in positions.enumerated() { (a.x.data + i * C).update(from: ws.decNorm.data + p * C, count: C) }
            for (k, t) in tokens.enumerated() { (a.weights.data + k * C).update(from: W + Int(t) * C, count: C) }
            for i in 0..<P {
                let row = a.logits.data + i * K
                for (k, t) in tokens.enumerated() { row[k] = bias[Int(t)] }
            }
            OpProfile.shared.enter(.products)
            BLAS.sgemm(
                transB: true, m: P, n: K, k: C, a: a.x.data, lda: C, b: a.weights.data, ldb: C, beta: 1, c: a.logits.data, ldc: K,
                parallel: true)
            OpProfile.shared.exit()
            a.targets.withUnsafeBufferPointer { tg in
                _ = crossEntropyForward(
                    losses: a.losses.data, probs: a.probs.data, logits: a.logits.data, targets: tg.baseAddress!, N: P, V: K,
                    smoothing: smoothing, ignoreIndex: Self.ignoreIndex)
            }
            for i in 0..<P { total += Double(a.losses[i]) }
            counted += P
            acts.append(a)
        }
        ws.candidateActs = acts
        return (total, counted)
    }

    /// The backward pass of `candidateHeadForward`: writes the states' gradient into
    /// `ws.dln` (zero at positions not scored), adds the head's gradient into the rows of
    /// the candidate tokens, and records those rows (and the decoder inputs' embedding
    /// rows) as the step's dirty rows.
    func candidateHeadBackward(_ ws: Workspace, dloss: Float) {
        OpProfile.shared.enter(.loss)
        defer { OpProfile.shared.exit() }
        let C = config.dModel
        let N = ws.B * ws.T
        let dln = ws.dln.data
        dln.update(repeating: 0, count: N * C)
        let gW = g(head.w)
        let gB = g(head.b)
        var touched = Set<Int32>()
        for a in ws.candidateActs {
            let P = a.positions.count
            let K = a.tokens.count
            let dlogits = Tensor(zeros: [P, K])
            a.targets.withUnsafeBufferPointer { tg in
                crossEntropyBackward(
                    dlogits: dlogits.data, probs: a.probs.data, targets: tg.baseAddress!, N: P, V: K, smoothing: ws.smoothing,
                    ignoreIndex: Self.ignoreIndex, dloss: dloss)
            }
            let dx = Tensor(uninitialized: [P, C])
            OpProfile.shared.enter(.products)
            BLAS.sgemm(m: P, n: C, k: K, a: dlogits.data, lda: K, b: a.weights.data, ldb: C, c: dx.data, ldc: C, parallel: true)
            OpProfile.shared.exit()
            for (i, p) in a.positions.enumerated() {
                let d = dln + p * C
                let s = dx.data + i * C
                for j in 0..<C { d[j] += s[j] }
            }
            let dw = Tensor(uninitialized: [K, C])
            OpProfile.shared.enter(.products)
            BLAS.sgemm(transA: true, m: K, n: C, k: P, a: dlogits.data, lda: K, b: a.x.data, ldb: C, c: dw.data, ldc: C, parallel: true)
            OpProfile.shared.exit()
            let db = Tensor(uninitialized: [K])
            OpProfile.shared.enter(.products)
            BLAS.sgemm(m: 1, n: K, k: P, a: Ones.pointer(P), lda: P, b: dlogits.data, ldb: K, c: db.data, ldc: K)
            OpProfile.shared.exit()
            for (k, t) in a.tokens.enumerated() {
                let d = gW + Int(t) * C
                let s = dw.data + k * C
                for j in 0..<C { d[j] += s[j] }
                gB[Int(t)] += db[k]
                touched.insert(t)
            }
        }
        let rows = touched.sorted()
        params.touch(entry: headWeightEntry, rows: rows)
        params.touch(entry: headBiasEntry, rows: rows)
        params.touch(entry: targetEmbedEntry, rows: Array(Set(UnsafeBufferPointer(start: ws.targetIn.baseAddress!, count: N))).sorted())
    }

    /// Logits of `rows` decoder states (row stride `ld`) for the `count` consecutive
    /// tokens from `first`: out (rows, count) = states · W[first ..< first + count]ᵀ + b.
    /// The head's rows are read in place (no gather): this is the blocked scan over a
    /// node whose children are numbered consecutively (atomic docids at the root).
    public func headLogits(
        states: UnsafePointer<Float>, ld: Int, rows: Int, first: Int, count: Int, out: UnsafeMutablePointer<Float>
    ) {
        OpProfile.shared.enter(.products)
        defer { OpProfile.shared.exit() }
        let C = config.dModel
        let bias = w(head.b) + first
        for r in 0..<rows { (out + r * count).update(from: bias, count: count) }
        if rows == 1 {
            // One state against many rows: a matrix-vector product reads the rows once.
            BLAS.sgemv(m: count, n: C, a: w(head.w) + first * C, lda: C, x: states, beta: 1, y: out)
            return
        }
        BLAS.sgemm(
            transB: true, m: rows, n: count, k: C, a: states, lda: ld, b: w(head.w) + first * C, ldb: C, beta: 1, c: out, ldc: count,
            parallel: true)
    }

    /// Logits of `rows` decoder states for the tokens `tokens` (any order): their output
    /// rows are gathered into `scratch` (at least tokens.count × C floats) and multiplied
    /// in one sgemm. out (rows, tokens.count).
    public func headLogits(
        states: UnsafePointer<Float>, ld: Int, rows: Int, tokens: UnsafeBufferPointer<Int32>, scratch: UnsafeMutablePointer<Float>,
        out: UnsafeMutablePointer<Float>
    ) {
        OpProfile.shared.enter(.products)
        defer { OpProfile.shared.exit() }
        let C = config.dModel
        let K = tokens.count
        let W = w(head.w)
        let bias = w(head.b)
        for (k, t) in tokens.enumerated() { (scratch + k * C).update(from: W + Int(t) * C, count: C) }
        for r in 0..<rows {
            let o = out + r * K
            for (k, t) in tokens.enumerated() { o[k] = bias[Int(t)] }
        }
        if rows == 1 {
            BLAS.sgemv(m: K, n: C, a: scratch, lda: C, x: states, beta: 1, y: out)
            return
        }
        BLAS.sgemm(transB: true, m: rows, n: K, k: C, a: states, lda: ld, b: scratch, ldb: C, beta: 1, c: out, ldc: K, parallel: true)
    }
}
