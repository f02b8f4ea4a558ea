import DSIModel
import DSITensor
import Foundation

extension ContinualIndexer {
    /// Fits the output rows of the new documents (`RowFit`), everything else frozen.
    static func fitRows(
        model: Seq2Seq, vocabulary: TargetVocabulary, trie: DocIDTrie, firstNew: Int, views: [[[Int32]]], memory: ReplayMemory,
        margin: Float, steps: Int, negatives: Int = 128, competitors: Int, cache: ViewStateCache? = nil
    ) throws {
        var fit = RowFit(model: model, vocabulary: vocabulary, trie: trie, firstNew: firstNew)
        fit.collectOwnItems(views: views)
        try fit.encodeStates()
        fit.chooseCompetitors(budget: competitors)
        fit.collectOldViews(memory: memory)
        try fit.encodeStates(cache: cache)
        fit.computeBestOldLogits()
        fit.fit(margin: margin, steps: steps, negatives: negatives)
    }
}

/// IncDSI-style fit of each new document's output row and bias (Kishore et al. 2023),
/// everything else frozen. For document t with views V_t (states h_v that predict its
/// token) and competing views N_t (title and lead of the documents it shares a trie node
/// with, and the other new documents' views), minimise
///   Σ_{v∈V_t} max(0, m_v + δ − s_v)² + Σ_{u∈N_t} max(0, s_u − (m_u − δ))² + λ‖w − w₀‖²
/// where s = w·h + b and m is the best logit of the other rows there (all of them). At a
/// node with more than `competitors` (512) old documents (atomic docids: the root holds
/// every document), only the old documents whose rows score highest on a new document's
/// own views have their views encoded as competitors, max(32, 512 / new documents) per
/// new document: the ones its row could take queries from. So the fit's cost is set by
/// the new documents, not by N. Starts from the
/// mean of its views' states at the old rows' typical norm; new documents are fitted in
/// rounds, each against the others' current rows.
struct RowFit {
    let model: Seq2Seq
    let vocabulary: TargetVocabulary
    let trie: DocIDTrie
    let firstNew: Int
    let C: Int
    /// Views to encode: the new documents' own (`ownRange[i]`), then titles (or leads) of
    /// the competing old documents under the same trie nodes.
    var items: [(doc: Int, source: [Int32])] = []
    var ownRange: [Range<Int>] = []
    /// Trie node → old documents whose token hangs there.
    var oldSiblings: [Int: [Int]] = [:]
    /// Old documents whose views compete with the new ones (`chooseCompetitors`).
    var competing = Set<Int>()
    /// Trie node → its old documents' output rows and biases, gathered once
    /// (`outputRows`) for both the competitor choice and the best old logits.
    var nodeRows: [Int: (W: [Float], bias: [Float])] = [:]
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

    /// The new documents' own views, and every old document hanging at their nodes.
    mutating func collectOwnItems(views: [[[Int32]]]) {
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
        competing = Set(oldSiblings.values.joined())
    }

    /// Where a node holds more than `budget` old documents, keeps as competitors only each
    /// new document's max(32, budget / new documents there) old siblings whose rows score
    /// highest on its own views (needs the own views' states); elsewhere all of them
    /// (every node of a semantic tree: leaves hold at most `leafSize` documents).
    mutating func chooseCompetitors(budget: Int) {
        let newAt = Dictionary(grouping: 0..<newCount) { parent(firstNew + $0) }
        var chosen = Set<Int>()
        for (node, rows) in oldSiblings {
            let news = newAt[node] ?? []
            if rows.count <= budget || news.isEmpty {
                chosen.formUnion(rows)
                continue
            }
            let limit = max(32, budget / news.count)
            let (W, rowBias) = outputRows(at: node)
            // New documents in groups of at most 256 views in all, one product per group:
            // the node's rows (all N of them at the atomic root) are read once per group,
            // not once per new document.
            let live = news.filter { !ownRange[$0].isEmpty }
            var next = 0
            while next < live.count {
                var group: [Int] = []
                var items: [Int] = []
                var slotOfItem: [Int] = []
                while next < live.count && (group.isEmpty || items.count + ownRange[live[next]].count <= 256) {
                    let i = live[next]
                    slotOfItem += [Int](repeating: group.count, count: ownRange[i].count)
                    items += Array(ownRange[i])
                    group.append(i)
                    next += 1
                }
                var best = [Float](repeating: -.infinity, count: group.count * rows.count)
                forEachLogitRow(items: items, W: W, rowBias: rowBias) { r, z in
                    let b = slotOfItem[r] * rows.count
                    for q in 0..<rows.count { best[b + q] = max(best[b + q], z[q]) }
                }
                for slot in group.indices {
                    let b = slot * rows.count
                    // The `limit` best rows (ties to the earlier row), kept sorted by insertion.
                    var top: [(score: Float, row: Int)] = []
                    for q in 0..<rows.count where top.count < limit || best[b + q] > top[top.count - 1].score {
                        let at = top.firstIndex { best[b + q] > $0.score } ?? top.count
                        top.insert((best[b + q], q), at: at)
                        if top.count > limit { top.removeLast() }
                    }
                    for t in top { chosen.insert(rows[t.row]) }
                }
            }
        }
        competing = chosen
    }

    /// The output rows (R, C) and biases of the old documents at `node`, gathered on first use.
    mutating func outputRows(at node: Int) -> (W: [Float], bias: [Float]) {
        if let cached = nodeRows[node] { return cached }
        let docs = oldSiblings[node] ?? []
        let head = model.params.tensor("lm_head.weight")
        let bias = model.params.tensor("lm_head.bias")
        var W = [Float](repeating: 0, count: docs.count * C)
        var b = [Float](repeating: 0, count: docs.count)
        W.withUnsafeMutableBufferPointer { w in
            for (r, d) in docs.enumerated() {
                let t = ownToken(d)
                (w.baseAddress! + r * C).update(from: head.data + t * C, count: C)
                b[r] = bias[t]
            }
        }
        nodeRows[node] = (W, b)
        return (W, b)
    }

    /// Calls `body(r, logits)` for each item `its[r]` with its logits w·h + b over the rows
    /// (one sgemm per 256 items, so memory stays bounded however many rows there are).
    func forEachLogitRow(items its: [Int], W: [Float], rowBias: [Float], _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        let R = rowBias.count
        let chunk = 256
        var H = [Float](repeating: 0, count: min(chunk, its.count) * C)
        var Z = [Float](repeating: 0, count: min(chunk, its.count) * R)
        var start = 0
        while start < its.count {
            let n = min(chunk, its.count - start)
            for r in 0..<n { for x in 0..<C { H[r * C + x] = states[its[start + r] * C + x] } }
            for r in 0..<n { for q in 0..<R { Z[r * R + q] = rowBias[q] } }
            BLAS.sgemm(transB: true, m: n, n: R, k: C, a: H, lda: C, b: W, ldb: C, beta: 1, c: &Z, ldc: R)
            Z.withUnsafeBufferPointer { z in
                for r in 0..<n { body(start + r, UnsafeBufferPointer(rebasing: z[(r * R)..<(r * R + R)])) }
            }
            start += n
        }
    }

    /// Each competing old document's title (its lead when it has none) stands for its
    /// queries (adding its train queries measured no better on SciFact, and slower).
    mutating func collectOldViews(memory: ReplayMemory) {
        let S = model.config.sourceLength
        var hasTitle = Set<Int>()
        for v in memory.views where v.kind == .title && !v.tokens.isEmpty { hasTitle.insert(v.document) }
        for v in memory.views
        where competing.contains(v.document) && (v.kind == .title || (v.kind == .lead && !hasTitle.contains(v.document)))
            && !v.tokens.isEmpty
        {
            oldViews[v.document, default: []].append(items.count)
            items.append((v.document, Array(v.tokens.prefix(S))))
        }
    }

    /// The states of the items not encoded yet: one batched forward pass per 128. With a
    /// cache, the items of old documents (one view each: `collectOldViews`) are taken
    /// from it when there, and stored in it when encoded.
    mutating func encodeStates(cache: ViewStateCache? = nil) throws {
        let first = states.count / C
        states += [Float](repeating: 0, count: (items.count - first) * C)
        var pending: [Int] = []
        for j in first..<items.count {
            if let cache, items[j].doc < firstNew, let s = cache.state(of: items[j].doc) {
                states.replaceSubrange((j * C)..<((j + 1) * C), with: s)
            } else {
                pending.append(j)
            }
        }
        let ws = Workspace()
        var start = 0
        while start < pending.count {
            let chunk = Array(pending[start..<min(pending.count, start + 128)])
            let batch = Trainer.makeBatch(
                chunk.map { TrainingExample(source: items[$0].source, document: items[$0].doc) }, vocabulary: vocabulary,
                config: model.config)
            let h = try model.decoderStates(batch, workspace: ws)
            for (b, j) in chunk.enumerated() {
                let pos = vocabulary.tokens[items[j].doc].count - 1
                for x in 0..<C { states[j * C + x] = h[(b * batch.T + pos) * C + x] }
                if let cache, items[j].doc < firstNew { cache.store(Array(states[(j * C)..<((j + 1) * C)]), of: items[j].doc) }
            }
            start += chunk.count
        }
    }

    /// The best old logit on every item, one sgemm per trie node.
    mutating func computeBestOldLogits() {
        bestOld = [Float](repeating: -.infinity, count: items.count)
        for i in 0..<newCount { itemsAt[parent(firstNew + i), default: []] += Array(ownRange[i]) }
        for (node, docs) in oldSiblings { for d in docs { itemsAt[node, default: []] += oldViews[d] ?? [] } }
        for (node, its) in itemsAt {
            let rows = oldSiblings[node] ?? []
            if rows.isEmpty || its.isEmpty { continue }
            let (W, rowBias) = outputRows(at: node)
            forEachLogitRow(items: its, W: W, rowBias: rowBias) { r, z in bestOld[its[r]] = z.max() ?? -.infinity }
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
            let key = pool.map { dot(W0[i], $0) - bestOld[$0] }
            return pool.indices.sorted { key[$0] > key[$1] }.prefix(negatives).map { pool[$0] }
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
