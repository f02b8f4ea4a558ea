import DSIModel
import DSITensor
import Foundation

extension ContinualIndexer {
    /// Fits the output rows of the new documents (`RowFit`), everything else frozen.
    static func fitRows(
        model: Seq2Seq, vocabulary: TargetVocabulary, trie: DocIDTrie, firstNew: Int, views: [[[Int32]]], memory: ReplayMemory,
        margin: Float, steps: Int, negatives: Int = 128
    ) throws {
        var fit = RowFit(model: model, vocabulary: vocabulary, trie: trie, firstNew: firstNew)
        fit.collectItems(views: views, memory: memory)
        try fit.encodeStates()
        fit.computeBestOldLogits()
        fit.fit(margin: margin, steps: steps, negatives: negatives)
    }
}

/// IncDSI-style fit of each new document's output row and bias (Kishore et al. 2023),
/// everything else frozen. For document t with views V_t (states h_v that predict its
/// token) and competing views N_t (title and lead of the documents it shares a trie node
/// with, and the other new documents' views), minimise
///   Σ_{v∈V_t} max(0, m_v + δ − s_v)² + Σ_{u∈N_t} max(0, s_u − (m_u − δ))² + λ‖w − w₀‖²
/// where s = w·h + b and m is the best logit of the other rows there. Starts from the
/// mean of its views' states at the old rows' typical norm; new documents are fitted in
/// rounds, each against the others' current rows.
struct RowFit {
    let model: Seq2Seq
    let vocabulary: TargetVocabulary
    let trie: DocIDTrie
    let firstNew: Int
    let C: Int
    /// Views to encode: the new documents' own (`ownRange[i]`), then titles and leads of
    /// old documents under the same trie nodes.
    var items: [(doc: Int, source: [Int32])] = []
    var ownRange: [Range<Int>] = []
    /// Trie node → old documents whose token hangs there.
    var oldSiblings: [Int: [Int]] = [:]
    /// Old document → its items.
    var oldViews: [Int: [Int]] = [:]
    /// (items, C): the decoder state that predicts each item's document token.
    var states: [Float] = []
    /// Per item, the best logit of the old rows competing at its node.
    var bestOld: [Float] = []
    /// Trie node → items (new and old) competing there.
    var itemsAt: [Int: [Int]] = [:]

    init(model: Seq2Seq, vocabulary: TargetVocabulary, trie: DocIDTrie, firstNew: Int) {
        self.model = model
        self.vocabulary = vocabulary
        self.trie = trie
        self.firstNew = firstNew
        self.C = model.config.dModel
    }

    var newCount: Int { ownRange.count }
    func ownToken(_ d: Int) -> Int { Int(vocabulary.tokens[d].last!) }
    func parent(_ d: Int) -> Int { trie.node(for: vocabulary.tokens[d].dropLast())! }

    mutating func collectItems(views: [[[Int32]]], memory: ReplayMemory) {
        let S = model.config.sourceLength
        for (i, vs) in views.enumerated() {
            let start = items.count
            for v in vs { items.append((firstNew + i, Array(v.prefix(S)))) }
            ownRange.append(start..<items.count)
        }
        for node in Set((0..<views.count).map { parent(firstNew + $0) }) {
            oldSiblings[node] = trie.allowed(at: node).compactMap { t -> Int? in
                guard t != TargetVocabulary.eos, let next = trie.step(node, t), let d = trie.document(at: next), d < firstNew else {
                    return nil
                }
                return d
            }
        }
        let wanted = Set(oldSiblings.values.joined())
        // Each old sibling's title (its lead when it has none) stands for its queries
        // (adding its train queries measured no better on SciFact, and slower).
        var hasTitle = Set<Int>()
        for v in memory.views where v.kind == .title && !v.tokens.isEmpty { hasTitle.insert(v.document) }
        for v in memory.views
        where wanted.contains(v.document) && (v.kind == .title || (v.kind == .lead && !hasTitle.contains(v.document))) && !v.tokens.isEmpty
        {
            oldViews[v.document, default: []].append(items.count)
            items.append((v.document, Array(v.tokens.prefix(S))))
        }
    }

    /// One batched forward pass per 128 items.
    mutating func encodeStates() throws {
        states = [Float](repeating: 0, count: items.count * C)
        let ws = Workspace()
        var j = 0
        while j < items.count {
            let chunk = Array(items[j..<min(items.count, j + 128)])
            let batch = Trainer.makeBatch(
                chunk.map { TrainingExample(source: $0.source, document: $0.doc) }, vocabulary: vocabulary, config: model.config)
            let h = try model.decoderStates(batch, workspace: ws)
            for (b, it) in chunk.enumerated() {
                let pos = vocabulary.tokens[it.doc].count - 1
                for x in 0..<C { states[(j + b) * C + x] = h[(b * batch.T + pos) * C + x] }
            }
            j += chunk.count
        }
    }

    /// The best old logit on every item, one sgemm per trie node.
    mutating func computeBestOldLogits() {
        let head = model.params.tensor("lm_head.weight")
        let bias = model.params.tensor("lm_head.bias")
        bestOld = [Float](repeating: -.infinity, count: items.count)
        for i in 0..<newCount { itemsAt[parent(firstNew + i), default: []] += Array(ownRange[i]) }
        for (node, docs) in oldSiblings { for d in docs { itemsAt[node, default: []] += oldViews[d] ?? [] } }
        for (node, its) in itemsAt {
            let rows = oldSiblings[node] ?? []
            if rows.isEmpty || its.isEmpty { continue }
            var H = [Float](repeating: 0, count: its.count * C)
            var W = [Float](repeating: 0, count: rows.count * C)
            for (r, it) in its.enumerated() { for x in 0..<C { H[r * C + x] = states[it * C + x] } }
            for (r, d) in rows.enumerated() {
                let t = ownToken(d)
                for x in 0..<C { W[r * C + x] = head[t * C + x] }
            }
            var Z = [Float](repeating: 0, count: its.count * rows.count)
            BLAS.sgemm(transB: true, m: its.count, n: rows.count, k: C, a: H, lda: C, b: W, ldb: C, c: &Z, ldc: rows.count)
            for (r, it) in its.enumerated() {
                for (q, d) in rows.enumerated() { bestOld[it] = max(bestOld[it], Z[r * rows.count + q] + bias[ownToken(d)]) }
            }
        }
    }

    /// The typical norm and bias of old document rows (the scale new rows start at).
    func oldRowScale() -> (norm: Float, bias: Float) {
        let head = model.params.tensor("lm_head.weight")
        let bias = model.params.tensor("lm_head.bias")
        guard firstNew > 0 else { return (1, 0) }
        var norm: Float = 0
        var b: Float = 0
        for d in 0..<firstNew {
            let t = ownToken(d)
            var n: Float = 0
            for x in 0..<C { n += head[t * C + x] * head[t * C + x] }
            norm += n.squareRoot()
            b += bias[t]
        }
        return (norm / Float(firstNew), b / Float(firstNew))
    }

    func dot(_ w: [Float], _ item: Int) -> Float {
        var z: Float = 0
        for x in 0..<C { z += w[x] * states[item * C + x] }
        return z
    }

    /// Starting rows, negatives, three rounds of per-document fits, then the rows
    /// written into the model's head.
    func fit(margin: Float, steps: Int, negatives: Int) {
        let N = newCount
        let (oldNorm, oldBias) = oldRowScale()
        var W = [[Float]]()
        var B = [Float]()
        for i in 0..<N {
            var w0 = [Float](repeating: 0, count: C)
            for it in ownRange[i] { for x in 0..<C { w0[x] += states[it * C + x] } }
            let n0 = w0.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let scale = n0 > 0 ? oldNorm / n0 : 0
            W.append(w0.map { $0 * scale })
            B.append(oldBias)
        }
        let W0 = W
        let newAt = Dictionary(grouping: 0..<N) { parent(firstNew + $0) }
        // Negatives per document: the competing items it scores highest on at the start.
        let negs: [[Int]] = (0..<N).map { i in
            let pool = (itemsAt[parent(firstNew + i)] ?? []).filter { items[$0].doc != firstNew + i }
            return Array(pool.sorted { dot(W0[i], $0) - bestOld[$0] > dot(W0[i], $1) - bestOld[$1] }.prefix(negatives))
        }
        for _ in 0..<3 {
            for i in 0..<N where !ownRange[i].isEmpty {
                // Positives must beat every other row (old best, or another new row's current logit).
                let pos = ownRange[i].map { it in
                    (it, (newAt[parent(firstNew + i)] ?? []).filter { $0 != i }.reduce(bestOld[it]) { max($0, dot(W[$1], it) + B[$1]) })
                }
                // A negative must stay below its own document's score (old: the best old logit).
                let neg = negs[i].map { it -> (Int, Float) in
                    let d = items[it].doc
                    return (it, d >= firstNew ? max(dot(W[d - firstNew], it) + B[d - firstNew], bestOld[it]) : bestOld[it])
                }
                (W[i], B[i]) = fitOne(
                    start: (W[i], B[i]), anchor: W0[i], positives: pos, negatives: neg, margin: margin, steps: steps,
                    lr: 0.02 * max(oldNorm, 0.1))
            }
        }
        let head = model.params.tensor("lm_head.weight")
        let bias = model.params.tensor("lm_head.bias")
        for i in 0..<N {
            let t = ownToken(firstNew + i)
            for x in 0..<C { head[t * C + x] = W[i][x] }
            bias[t] = B[i]
        }
    }

    /// One document's row: mean hinge² over positives plus mean over negatives plus
    /// λ‖w − anchor‖², minimised with Adam (the states share a large common component,
    /// which plain gradient descent crawls along), until no hinge is active.
    func fitOne(
        start: ([Float], Float), anchor: [Float], positives pos: [(Int, Float)], negatives neg: [(Int, Float)],
        margin: Float, steps: Int, lr: Float, lambda: Float = 0.01
    ) -> ([Float], Float) {
        let wp = 1 / Float(max(1, pos.count))
        let wn = 1 / Float(max(1, neg.count))
        var adam = AdamW(weightDecay: 0)
        var wb = start.0 + [start.1]
        var m1 = [Float](repeating: 0, count: C + 1)
        var m2 = m1
        for _ in 1...max(1, steps) {
            let w = Array(wb[0..<C])
            let b = wb[C]
            var g = [Float](repeating: 0, count: C + 1)
            var active = false
            for (it, m) in pos where m.isFinite {
                let gap = m + margin - (dot(w, it) + b)
                if gap > 0 {
                    active = true
                    for x in 0..<C { g[x] -= 2 * wp * gap * states[it * C + x] }
                    g[C] -= 2 * wp * gap
                }
            }
            for (it, m) in neg where m.isFinite {
                let over = dot(w, it) + b - (m - margin)
                if over > 0 {
                    active = true
                    for x in 0..<C { g[x] += 2 * wn * over * states[it * C + x] }
                    g[C] += 2 * wn * over
                }
            }
            if !active { break }
            for x in 0..<C { g[x] += 2 * lambda * (w[x] - anchor[x]) }
            adam.update(&wb, grads: g, m: &m1, v: &m2, lr: lr)
        }
        return (Array(wb[0..<C]), wb[C])
    }
}
