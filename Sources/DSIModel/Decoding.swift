import DSITensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The mutable side of inference (whisper.cpp's split): for Q queries, the encoder
/// memory's cross-attention keys/values per decoder layer (computed once per query and
/// shared by all of its rows), and a self-attention key/value cache per decoder row.
///
/// Rows are grouped by query: with `rows = Q · g`, rows q·g ..< (q+1)·g belong to query q
/// (g = 1 before the first beam expansion). `reorder` gathers rows between steps.
///
/// A state is reusable: `Seq2Seq.beginDecoding(..., reusing:)` starts a new search in it,
/// growing a buffer only when the new search needs more than it holds, so a searcher
/// that keeps its state allocates nothing per search or per step once warm (fresh
/// buffers of this size are page faults on every touched page: about 50 MB at 32 queries
/// and beam 10).
public final class DecodingState: @unchecked Sendable {
    public private(set) var queries: Int
    public private(set) var sourceLength: Int
    public private(set) var maxRows: Int
    public let maxSteps: Int
    /// Rows decoded now (a multiple of `queries`).
    public private(set) var rows: Int
    /// Positions decoded so far.
    public private(set) var steps: Int = 0

    let dModel: Int, heads: Int, ff: Int, layers: Int
    private(set) var sourceMask: Tensor  // (Q, S)
    private(set) var crossKV: [Tensor]  // per layer (Q, S, 2C)
    private(set) var selfK: [Tensor], selfV: [Tensor]  // per layer (maxRows, maxSteps, C)
    private var spareK: [Tensor], spareV: [Tensor]  // the same, for gathering in `reorder`
    // Step scratch.
    private(set) var x: Tensor, ln: Tensor, att: Tensor, branch: Tensor, crossQ: Tensor  // (maxRows, C)
    private(set) var mean: Tensor, rstd: Tensor  // (maxRows)
    private(set) var qkv: Tensor  // (maxRows, 3C)
    private(set) var ffn: Tensor  // (maxRows, F)
    private(set) var probs: Tensor  // (maxRows, H, max(S, maxSteps))
    private(set) var groupScores: Tensor  // (maxRows, H, maxRows / Q · maxSteps): self-attention of a query's rows at once
    /// (maxRows, V), allocated by the first full-vocabulary step.
    private var logitsStore: Tensor?
    let vocabulary: Int

    init(model: Seq2Seq, queries Q: Int, sourceLength S: Int, maxRows: Int) {
        let c = model.config
        dModel = c.dModel
        heads = c.heads
        ff = c.ff
        layers = c.decoderLayers
        maxSteps = c.targetLength
        vocabulary = c.targetVocab
        queries = Q
        sourceLength = S
        self.maxRows = maxRows
        rows = Q
        let empty = Tensor(zeros: [0])
        sourceMask = empty
        crossKV = []
        selfK = []
        selfV = []
        spareK = []
        spareV = []
        (x, ln, att, branch, crossQ, mean, rstd, qkv, ffn, probs, groupScores) = (
            empty, empty, empty, empty, empty, empty, empty, empty, empty, empty, empty
        )
        reset(queries: Q, sourceLength: S, maxRows: maxRows)
    }

    /// Starts a new search of Q queries in this state, growing what is too small.
    func reset(queries Q: Int, sourceLength S: Int, maxRows: Int) {
        let C = dModel
        queries = Q
        sourceLength = S
        self.maxRows = maxRows
        rows = Q
        steps = 0
        // A buffer is replaced only when too small; contents are not cleared. Grouped
        // self-attention multiplies whole cache blocks (unused positions by zero weights),
        // so every element must be finite: fresh buffers are zero, reused ones hold
        // earlier finite keys and values, and zero times a finite value is zero.
        func fit(_ t: inout Tensor, _ shape: [Int]) {
            if t.count < shape.reduce(1, *) { t = Tensor(zeros: shape) }
        }
        func fitAll(_ ts: inout [Tensor], _ shape: [Int]) {
            if ts.count != layers { ts = (0..<layers).map { _ in Tensor(zeros: [0]) } }
            for i in ts.indices { fit(&ts[i], shape) }
        }
        fit(&sourceMask, [Q, S])
        fitAll(&crossKV, [Q, S, 2 * C])
        fitAll(&selfK, [maxRows, maxSteps, C])
        fitAll(&selfV, [maxRows, maxSteps, C])
        fitAll(&spareK, [maxRows, maxSteps, C])
        fitAll(&spareV, [maxRows, maxSteps, C])
        for keyPath in [\DecodingState.x, \.ln, \.att, \.branch, \.crossQ] { fit(&self[keyPath: keyPath], [maxRows, C]) }
        fit(&mean, [maxRows])
        fit(&rstd, [maxRows])
        fit(&qkv, [maxRows, 3 * C])
        fit(&ffn, [maxRows, ff])
        fit(&probs, [maxRows, heads, max(S, maxSteps)])
        fit(&groupScores, [maxRows, heads, (maxRows / max(1, Q)) * maxSteps])
    }

    /// (maxRows, V) logits of a full-vocabulary step.
    var logits: Tensor {
        if let l = logitsStore, l.count >= maxRows * vocabulary { return l }
        let l = Tensor(zeros: [maxRows, vocabulary])
        logitsStore = l
        return l
    }

    /// Rows per query now.
    public var group: Int { rows / queries }

    /// Makes new row i a copy of old row `parents[i]` (its cache up to `steps`). Parents
    /// must keep the grouping: the rows of query q come from query q's rows.
    public func reorder(_ parents: [Int]) {
        let newRows = parents.count
        precondition(newRows % queries == 0 && newRows <= maxRows, "reorder to \(newRows) rows for \(queries) queries (max \(maxRows))")
        let oldGroup = group
        let newGroup = newRows / queries
        for (i, p) in parents.enumerated() {
            precondition(p >= 0 && p < rows && p / oldGroup == i / newGroup, "row \(i) of query \(i / newGroup) cannot come from row \(p)")
        }
        let C = dModel
        let span = steps * C
        let stride = maxSteps * C
        for l in 0..<selfK.count {
            let k = selfK[l].data
            let v = selfV[l].data
            let k2 = spareK[l].data
            let v2 = spareV[l].data
            for (i, p) in parents.enumerated() {
                (k2 + i * stride).update(from: k + p * stride, count: span)
                (v2 + i * stride).update(from: v + p * stride, count: span)
            }
        }
        swap(&selfK, &spareK)
        swap(&selfV, &spareV)
        rows = newRows
    }

    func advance() { steps += 1 }
}

extension Seq2Seq {
    /// Encodes Q sources (right-padded to S, `sourceMask` 1 for real tokens) and computes
    /// each decoder layer's cross-attention keys/values once. `maxRows` bounds the rows
    /// (queries × beams) that decoding may use.
    /// `workspace` holds the encoder's activations; passing the same one to every call
    /// (one per thread) spares reallocating and zeroing them per batch. `reusing` starts
    /// the search in an earlier state's buffers (which that state gives up), growing only
    /// what is too small.
    public func beginDecoding(
        source: [Int32], sourceMask: [Float], queries Q: Int, sourceLength S: Int, maxRows: Int? = nil, workspace: Workspace? = nil,
        reusing: DecodingState? = nil
    ) throws(ModelError) -> DecodingState {
        let c = config
        let C = c.dModel
        let T = 1
        let batch = Seq2SeqBatch(
            B: Q, S: S, T: T, source: source, sourceMask: sourceMask,
            targetIn: [Int32](repeating: 0, count: Q * T), targetOut: [Int32](repeating: Self.ignoreIndex, count: Q * T))
        try checkBatch(batch)
        let rows = maxRows ?? Q
        let state: DecodingState
        if let reusing, reusing.dModel == C, reusing.layers == c.decoderLayers, reusing.maxSteps == c.targetLength,
            reusing.vocabulary == c.targetVocab, reusing.heads == c.heads, reusing.ff == c.ff
        {
            reusing.reset(queries: Q, sourceLength: S, maxRows: rows)
            state = reusing
        } else {
            state = DecodingState(model: self, queries: Q, sourceLength: S, maxRows: rows)
        }
        sourceMask.withUnsafeBufferPointer { state.sourceMask.data.update(from: $0.baseAddress!, count: Q * S) }
        let ws = workspace ?? Workspace()
        ws.prepare(for: batch, model: self)
        var rng = SeededRNG(seed: 0)  // unused: no dropout at inference
        encoderForward(ws, source: ws.source.baseAddress!, mask: ws.sourceMask.baseAddress!, B: Q, S: S, training: false, rng: &rng)
        for (l, L) in decoder.enumerated() {
            linearForward(
                out: state.crossKV[l].data, inp: ws.memory.data, weight: w(L.crossKV.w), bias: w(L.crossKV.b), N: Q * S, IC: C, OC: 2 * C)
        }
        return state
    }

    /// Feeds one token per row (`tokens.count == state.rows`) at the next position and
    /// returns the logits (rows, V) for the following token. The buffer is valid until
    /// the next call on `state`.
    public func decodeStep(_ state: DecodingState, tokens: [Int32]) -> UnsafeBufferPointer<Float> {
        let V = config.targetVocab
        let N = state.rows
        let ln = decodeStates(state, tokens: tokens)
        linearForward(
            out: state.logits.data, inp: UnsafeMutablePointer(mutating: ln.baseAddress!), weight: w(head.w), bias: w(head.b), N: N,
            IC: config.dModel, OC: V)
        return UnsafeBufferPointer(start: state.logits.data, count: N * V)
    }

    /// Feeds one token per row, as `decodeStep`, and returns the final decoder states
    /// (rows, C) before the output head, so a caller can score only the tokens it may
    /// emit (`headLogits`). The buffer is valid until the next call on `state`.
    public func decodeStates(_ state: DecodingState, tokens: [Int32]) -> UnsafeBufferPointer<Float> {
        let c = config
        let C = c.dModel
        let H = c.heads
        let N = state.rows
        let t = state.steps
        let Q = state.queries
        let g = state.group
        let S = state.sourceLength
        precondition(tokens.count == N, "\(tokens.count) tokens for \(N) rows")
        precondition(t < state.maxSteps, "decoded past the target length \(state.maxSteps)")
        let x = state.x.data
        tokens.withUnsafeBufferPointer { tk in
            embeddingForward(
                out: x, tokens: tk.baseAddress!, table: w(tgtEmbed), positions: w(tgtPos) + t * C, scale: embedScale, B: N, T: 1, C: C)
        }
        let stride = state.maxSteps * C
        let selfShape = AttentionShape(
            B: N, T: 1, S: t + 1, C: C, H: H, ldq: 3 * C, ldk: C, ldv: C, qBatch: 3 * C, kBatch: stride, vBatch: stride)
        let crossShape = AttentionShape(B: Q, T: g, S: S, C: C, H: H, ldq: C, ldk: 2 * C, ldv: 2 * C)
        let ln = state.ln.data
        let br = state.branch.data
        let mean = state.mean.data
        let rstd = state.rstd.data
        let norm = NormActs(out: ln, mean: mean, rstd: rstd)
        for (l, L) in decoder.enumerated() {
            // causal self-attention over the cache
            normedLinearForward(out: state.qkv.data, x: x, norm: L.ln1, lin: L.qkv, ln: norm, N: N)
            let k = state.selfK[l].data
            let v = state.selfV[l].data
            for n in 0..<N {
                (k + n * stride + t * C).update(from: state.qkv.data + n * 3 * C + C, count: C)
                (v + n * stride + t * C).update(from: state.qkv.data + n * 3 * C + 2 * C, count: C)
            }
            if g > 1 {
                groupedSelfAttention(state, k: k, v: v, t: t)
            } else {
                attentionForward(out: state.att.data, probs: state.probs.data, q: state.qkv.data, k: k, v: v, keyMask: nil, selfShape)
            }
            linearForward(out: br, inp: state.att.data, weight: w(L.proj.w), bias: w(L.proj.b), N: N, IC: C, OC: C)
            residualForward(out: x, a: x, b: br, n: N * C)
            // cross-attention: the g rows of a query share its keys/values
            crossAttentionForward(
                branch: br, x: x, norm: L.ln2, qLin: L.crossQ, proj: L.crossProj, ln: norm, q: state.crossQ.data, kv: state.crossKV[l].data,
                att: state.att.data, probs: state.probs.data, keyMask: state.sourceMask.data, shape: crossShape, N: N)
            residualForward(out: x, a: x, b: br, n: N * C)
            // feed-forward
            feedForwardForward(
                branch: br, x: x, norm: L.ln3, fc1: L.fc1, fc2: L.fc2, ln: norm, hidden: state.ffn.data, activated: state.ffn.data, N: N)
            residualForward(out: x, a: x, b: br, n: N * C)
        }
        layerNormForward(out: ln, mean: mean, rstd: rstd, inp: x, weight: w(decNorm.w), bias: w(decNorm.b), N: N, C: C)
        state.advance()
        return UnsafeBufferPointer(start: ln, count: N * C)
    }

    /// Self-attention of one decoding step with g > 1 rows per query, two sgemm calls per
    /// (query, head) instead of two per (row, head): the g rows' queries against all g
    /// rows' caches (g × g·maxSteps scores, of which row i uses its own block's first
    /// t + 1), a masked softmax that zeroes every other score, then the weights times all
    /// g caches' values. The extra multiply-adds on zero weights cost less than the calls
    /// they replace at the sizes beam search uses.
    func groupedSelfAttention(_ state: DecodingState, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, t: Int) {
        OpProfile.shared.enter(.attention)
        defer { OpProfile.shared.exit() }
        let c = config
        let C = c.dModel
        let H = c.heads
        let dh = C / H
        let Q = state.queries
        let g = state.group
        let L = state.maxSteps
        let span = g * L
        let stride = L * C
        let scale = 1 / Float(dh).squareRoot()
        let qkv = state.qkv.data
        let out = state.att.data
        let scores = state.groupScores.data
        parallelFor(Q * H) { pairs in
            for pair in pairs {
                let q = pair / H
                let h = pair % H
                let r0 = q * g
                let P = scores + pair * g * span
                BLAS.sgemm(
                    transB: true, m: g, n: span, k: dh, alpha: scale, a: qkv + r0 * 3 * C + h * dh, lda: 3 * C,
                    b: k + r0 * stride + h * dh, ldb: C, c: P, ldc: span)
                for i in 0..<g {
                    let row = P + i * span
                    let own = row + i * L
                    var mx = -Float.infinity
                    for j in 0...t { mx = max(mx, own[j]) }
                    var sum: Float = 0
                    for j in 0...t {
                        own[j] = expf(own[j] - mx)
                        sum += own[j]
                    }
                    let inv = 1 / sum
                    for j in 0...t { own[j] *= inv }
                    if i > 0 { row.update(repeating: 0, count: i * L) }
                    if t + 1 < span - i * L { (own + t + 1).update(repeating: 0, count: span - i * L - t - 1) }
                }
                BLAS.sgemm(
                    m: g, n: dh, k: span, a: P, lda: span, b: v + r0 * stride + h * dh, ldb: C,
                    c: out + r0 * C + h * dh, ldc: C)
            }
        }
    }

    /// Greedy decoding of `steps` tokens after `bos` for each query, through the cache.
    /// `allowed` may mask tokens (return false to forbid); returns (Q, steps) tokens.
    public func greedyDecode(_ state: DecodingState, bos: Int32, steps: Int, allowed: ((Int, Int32) -> Bool)? = nil) -> [[Int32]] {
        let V = config.targetVocab
        var out = [[Int32]](repeating: [], count: state.queries)
        var tokens = [Int32](repeating: bos, count: state.rows)
        for _ in 0..<steps {
            let logits = decodeStep(state, tokens: tokens)
            for r in 0..<state.rows {
                var best: Int32 = -1
                var bestScore = -Float.infinity
                for j in 0..<V where allowed?(r, Int32(j)) ?? true {
                    let s = logits[r * V + j]
                    if s > bestScore {
                        bestScore = s
                        best = Int32(j)
                    }
                }
                tokens[r] = max(best, 0)
                out[r].append(tokens[r])
            }
        }
        return out
    }
}
