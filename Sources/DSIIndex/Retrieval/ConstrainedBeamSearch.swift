import DSIModel
import DSITensor
import Foundation

/// Beam search over the docid trie (GENRE-style constrained decoding): at each step the
/// log-softmax over the whole decoder vocabulary is taken, tokens the trie does not allow
/// from a beam's node get −∞, and the best `beam` extensions by cumulative
/// log-probability survive (ties broken by beam, then token, so runs repeat). A beam that
/// emits EOS is a finished docid. Normalising over all tokens (not only the allowed ones)
/// keeps a beam's score the model's own probability of that docid.
public struct ConstrainedBeamSearch {
    public let model: Seq2Seq
    public let trie: DocIDTrie
    public var beam: Int
    public var topK: Int
    public var normalization: Normalization
    /// Output rows scored per block with `.allowed` (bounds the scratch memory of a node
    /// with very many children).
    public var scanBlock = 4096
    /// Encoder activations, the decoding state and the scorer's buffers, reused by every
    /// search of this value (so one searcher per thread): once warm, a search allocates no
    /// tensor. A caller that makes a new searcher per batch (a service, whose model changes
    /// with adds) passes the same buffers to each.
    private let scratch: SearchBuffers

    /// What each step's softmax is taken over.
    public enum Normalization: String, Sendable, Codable, CaseIterable {
        /// Every token of the decoder vocabulary (the model's own probability, as trained).
        case all
        /// Only the tokens the trie allows from the beam's node (a distribution over the
        /// children, as in a hierarchical softmax).
        case allowed
    }

    public init(
        model: Seq2Seq, trie: DocIDTrie, beam: Int = 10, topK: Int = 10, normalization: Normalization = .all,
        buffers: SearchBuffers = SearchBuffers()
    ) {
        precondition(beam >= 1 && topK >= 1 && topK <= beam, "need 1 ≤ top-k ≤ beam")
        self.scratch = buffers
        self.model = model
        self.trie = trie
        self.beam = beam
        self.topK = topK
        self.normalization = normalization
    }

    public struct Hit: Sendable, Equatable {
        public var document: Int
        public var score: Float
    }

    /// Ranked documents for each source (token ids, truncated to the model's length).
    public func search(_ sources: [[Int32]]) throws -> [[Hit]] {
        let Q = sources.count
        if Q == 0 { return [] }
        let (src, mask, S) = Self.pack(sources, maxLength: model.config.sourceLength)
        let state = try model.beginDecoding(
            source: src, sourceMask: mask, queries: Q, sourceLength: S, maxRows: Q * beam, workspace: scratch.workspace,
            reusing: scratch.state)
        scratch.state = state
        let V = model.config.targetVocab
        // Live beams per query: trie node (−1: a padding row) and cumulative score.
        // Row r of the state holds beam r % g of query r / g.
        var nodes = [[Int]](repeating: [0], count: Q)
        var scores = [[Float]](repeating: [0], count: Q)
        var finished = [[Hit]](repeating: [], count: Q)
        var tokens = [Int32](repeating: TargetVocabulary.bos, count: Q)
        let scorer = scratch.scorer(model: model, rows: Q * beam, keep: beam + 1, block: scanBlock)
        while state.steps < model.config.targetLength {
            let g = state.group
            // Per live row: (log-probability of the next token, token) for the tokens it
            // may emit (with `.allowed`, only its best beam + 1, which is all that can
            // survive: at most one of them is EOS).
            var rowCands = [[(logp: Float, token: Int32)]](repeating: [], count: Q * g)
            switch normalization {
            case .all:
                let logits = model.decodeStep(state, tokens: tokens)
                for q in 0..<Q {
                    for b in 0..<nodes[q].count where nodes[q][b] >= 0 {
                        let row = logits.baseAddress! + (q * g + b) * V
                        var mx = -Float.infinity
                        var sum: Float = 0
                        for j in 0..<V { mx = max(mx, row[j]) }
                        for j in 0..<V { sum += expf(row[j] - mx) }
                        let lse = mx + logf(sum)
                        rowCands[q * g + b] = trie.allowed(at: nodes[q][b]).filter { Int($0) < V }.map { (row[Int($0)] - lse, $0) }
                    }
                }
            case .allowed:
                let states = model.decodeStates(state, tokens: tokens)
                var rowsByNode: [Int: [Int]] = [:]
                for q in 0..<Q {
                    for b in 0..<nodes[q].count where nodes[q][b] >= 0 { rowsByNode[nodes[q][b], default: []].append(q * g + b) }
                }
                for node in rowsByNode.keys.sorted() {
                    let rows = rowsByNode[node]!
                    let out = scorer.score(states: states.baseAddress!, rows: rows, node: node, trie: trie)
                    for (i, r) in rows.enumerated() { rowCands[r] = out[i] }
                }
            }
            var live = [[(score: Float, beam: Int, token: Int32)]](repeating: [], count: Q)
            for q in 0..<Q {
                var cands: [(score: Float, beam: Int, token: Int32)] = []
                for b in 0..<nodes[q].count where nodes[q][b] >= 0 {
                    for c in rowCands[q * g + b] { cands.append((scores[q][b] + c.logp, b, c.token)) }
                }
                cands.sort { $0.score != $1.score ? $0.score > $1.score : ($0.beam != $1.beam ? $0.beam < $1.beam : $0.token < $1.token) }
                for c in cands {
                    if c.token == TargetVocabulary.eos {
                        if let d = trie.document(at: nodes[q][c.beam]) { finished[q].append(Hit(document: d, score: c.score)) }
                    } else if live[q].count < beam {
                        live[q].append(c)
                    }
                }
                finished[q].sort { $0.score != $1.score ? $0.score > $1.score : $0.document < $1.document }
                if finished[q].count > topK { finished[q].removeLast(finished[q].count - topK) }
                // Scores only fall as a beam grows: once the k-th finished hit beats every
                // live beam, this query is done.
                if finished[q].count == topK, let best = live[q].first, finished[q][topK - 1].score >= best.score {
                    live[q] = []
                }
            }
            let width = live.map(\.count).max() ?? 0
            if width == 0 { break }
            // Every query keeps `width` rows; missing ones are padding (node −1).
            var parents: [Int] = []
            var next: [Int32] = []
            for q in 0..<Q {
                var qNodes: [Int] = []
                var qScores: [Float] = []
                for b in 0..<width {
                    if b < live[q].count {
                        let c = live[q][b]
                        parents.append(q * g + c.beam)
                        next.append(c.token)
                        qNodes.append(trie.step(nodes[q][c.beam], c.token)!)
                        qScores.append(c.score)
                    } else {
                        parents.append(q * g)
                        next.append(TargetVocabulary.eos)
                        qNodes.append(-1)
                        qScores.append(-.infinity)
                    }
                }
                nodes[q] = qNodes
                scores[q] = qScores
            }
            state.reorder(parents)
            tokens = next
        }
        return finished
    }
}

extension ConstrainedBeamSearch {
    /// Sources as one padded batch: tokens and mask (Q × S, row-major) and S, the longest
    /// source cut to `maxLength` (at least 1).
    static func pack(_ sources: [[Int32]], maxLength: Int) -> (tokens: [Int32], mask: [Float], length: Int) {
        let S = max(1, min(maxLength, sources.map(\.count).max() ?? 1))
        var src = [Int32](repeating: 0, count: sources.count * S)
        var mask = [Float](repeating: 0, count: sources.count * S)
        for (q, s) in sources.enumerated() {
            for (i, t) in s.prefix(S).enumerated() {
                src[q * S + i] = t
                mask[q * S + i] = 1
            }
        }
        return (src, mask, S)
    }
}

/// What a searcher keeps between searches: the encoder's activations, the decoding state
/// and the scorer's buffers, grown to the largest search so far. Fresh buffers are page
/// faults on every page they touch (about 50 MB at 32 queries and beam 10), so a thread
/// that searches again and again keeps one of these and hands it to each searcher it
/// makes. One thread at a time: a search writes into them.
public final class SearchBuffers: @unchecked Sendable {
    let workspace = Workspace()
    var state: DecodingState?
    private var lanes: [SearchBuffers] = []

    /// Fewest queries per lane when `TrainedIndex.search` decodes a batch in lanes, one
    /// per thread.
    public static let laneQueries = 4

    public init() {}

    /// The buffers of lane `i` of a search decoded in lanes: these for lane 0, others
    /// made on first use (call it before the lanes start).
    func lane(_ i: Int) -> SearchBuffers {
        if i == 0 { return self }
        while lanes.count < i { lanes.append(SearchBuffers()) }
        return lanes[i - 1]
    }

    private var allowed: AllowedScorer?

    /// A scorer for at most `rows` rows, this one's if it is large enough.
    func scorer(model: Seq2Seq, rows: Int, keep: Int, block: Int) -> AllowedScorer {
        if let a = allowed, a.model === model, a.keep == keep, a.block == max(1, block), a.rowCapacity >= rows { return a }
        let a = AllowedScorer(model: model, rows: rows, keep: keep, block: block)
        allowed = a
        return a
    }
}

/// Scores the tokens a trie node allows for the decoder states of the rows at that node,
/// normalised over those tokens only (the hierarchical softmax the tree implies), and
/// keeps each row's best `keep`. The output rows are read through `Seq2Seq.headLogits`:
/// in place when the node's children are consecutive tokens (atomic docids), else
/// gathered; in blocks of `block` tokens with a running log-sum-exp, so a node with a
/// million children (atomic docids at the root) is an exact scan in bounded memory.
final class AllowedScorer {
    let model: Seq2Seq
    let keep: Int
    let block: Int
    let x: Tensor  // (rows, C)
    let out: Tensor  // (rows, block)
    let gathered: Tensor  // (block, C)
    let rowCapacity: Int

    init(model: Seq2Seq, rows: Int, keep: Int, block: Int) {
        self.model = model
        self.rowCapacity = rows
        self.block = max(1, block)
        self.keep = keep
        let C = model.config.dModel
        x = Tensor(uninitialized: [rows, C])
        out = Tensor(uninitialized: [rows, block])
        gathered = Tensor(uninitialized: [block, C])
    }

    /// For each of `rows` (rows of `states`, at trie node `node`): its best `keep`
    /// (log-probability, token), best first, ties to the smaller token.
    func score(states: UnsafePointer<Float>, rows: [Int], node: Int, trie: DocIDTrie) -> [[(logp: Float, token: Int32)]] {
        let C = model.config.dModel
        let children = trie.childTokens(at: node)
        if children.isEmpty { return rows.map { _ in trie.isTerminal(node) ? [(Float(0), TargetVocabulary.eos)] : [] } }
        let tokens = trie.isTerminal(node) ? [TargetVocabulary.eos] + children : children
        let R = rows.count
        for (i, r) in rows.enumerated() { (x.data + i * C).update(from: states + r * C, count: C) }
        var mx = [Float](repeating: -.infinity, count: R)
        var sum = [Float](repeating: 0, count: R)
        var top = [[(logp: Float, token: Int32)]](repeating: [], count: R)
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + block)
            let K = end - start
            if tokens[end - 1] - tokens[start] == Int32(K - 1) {
                model.headLogits(states: x.data, ld: C, rows: R, first: Int(tokens[start]), count: K, out: out.data)
            } else {
                tokens.withUnsafeBufferPointer { tb in
                    model.headLogits(
                        states: x.data, ld: C, rows: R, tokens: UnsafeBufferPointer(rebasing: tb[start..<end]), scratch: gathered.data,
                        out: out.data)
                }
            }
            for i in 0..<R {
                let z = out.data + i * K
                var bm = -Float.infinity
                for k in 0..<K { bm = max(bm, z[k]) }
                if bm > mx[i] {
                    sum[i] *= expf(mx[i] - bm)
                    mx[i] = bm
                }
                var s: Float = 0
                let m = mx[i]
                for k in 0..<K { s += expf(z[k] - m) }
                sum[i] += s
                for k in 0..<K {
                    let v = z[k]
                    if top[i].count == keep, v <= top[i][keep - 1].logp { continue }
                    var pos = top[i].count
                    while pos > 0, top[i][pos - 1].logp < v { pos -= 1 }
                    top[i].insert((v, tokens[start + k]), at: pos)
                    if top[i].count > keep { top[i].removeLast() }
                }
            }
            start = end
        }
        for i in 0..<R {
            let lse = mx[i] + logf(sum[i])
            for j in top[i].indices { top[i][j].logp -= lse }
        }
        return top
    }
}
