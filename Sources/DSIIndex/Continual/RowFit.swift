import DSIModel
import DSITensor
import Foundation

extension ContinualIndexer {
    /// IncDSI-style fit of each new document's output row and bias (Kishore et al.
    /// 2023), everything else frozen. For document t with views V_t (states h_v that
    /// predict its token) and competing views N_t (title and lead of the documents it
    /// shares a trie node with, and the other new documents' views), minimise
    ///   Σ_{v∈V_t} max(0, m_v + δ − s_v)² + Σ_{u∈N_t} max(0, s_u − (m_u − δ))² + λ‖w − w₀‖²
    /// where s = w·h + b and m is the best logit of the other rows there. Starts from
    /// the mean of its views' states at the old rows' typical norm; new documents are
    /// fitted in rounds, each against the others' current rows.
    static func fitRows(
        model: Seq2Seq, vocabulary: TargetVocabulary, firstNew: Int, views: [[[Int32]]], memory: ReplayMemory,
        margin: Float, steps: Int, negatives: Int = 128
    ) throws {
        let c = model.config
        let C = c.dModel
        let head = model.params.tensor("lm_head.weight")
        let bias = model.params.tensor("lm_head.bias")
        let trie = DocIDTrie(vocabulary)
        let N = views.count
        let ownToken = { (d: Int) in Int(vocabulary.tokens[d].last!) }
        let parent = { (d: Int) in trie.node(for: vocabulary.tokens[d].dropLast())! }
        // Views to encode: the new documents' own, then titles and leads of old siblings.
        var items: [(doc: Int, source: [Int32])] = []
        var ownRange: [Range<Int>] = []
        for (i, vs) in views.enumerated() {
            let start = items.count
            for v in vs { items.append((firstNew + i, Array(v.prefix(c.sourceLength)))) }
            ownRange.append(start..<items.count)
        }
        let newParents = Set((0..<N).map { parent(firstNew + $0) })
        var oldSiblings: [Int: [Int]] = [:]  // trie node → old documents whose token hangs there
        for node in newParents {
            oldSiblings[node] = trie.allowed(at: node).compactMap { t -> Int? in
                guard t != TargetVocabulary.eos, let next = trie.step(node, t), let d = trie.document(at: next), d < firstNew else {
                    return nil
                }
                return d
            }
        }
        let wanted = Set(oldSiblings.values.joined())
        var oldViews: [Int: [Int]] = [:]  // old document → item indices
        // Each old sibling's title (its lead when it has none) stands for its queries
        // (adding its train queries measured no better on SciFact, and slower).
        var hasTitle = Set<Int>()
        for v in memory.views where v.kind == .title && !v.tokens.isEmpty { hasTitle.insert(v.document) }
        for v in memory.views
        where wanted.contains(v.document) && (v.kind == .title || (v.kind == .lead && !hasTitle.contains(v.document))) && !v.tokens.isEmpty
        {
            oldViews[v.document, default: []].append(items.count)
            items.append((v.document, Array(v.tokens.prefix(c.sourceLength))))
        }
        // Decoder states at the position that predicts each item's document token.
        var states = [Float](repeating: 0, count: items.count * C)
        let ws = Workspace()
        var rng = SeededRNG(seed: 0)
        var j = 0
        while j < items.count {
            let chunk = Array(items[j..<min(items.count, j + 128)])
            let batch = Trainer.makeBatch(
                chunk.map { TrainingExample(source: $0.source, document: $0.doc) }, vocabulary: vocabulary, config: c)
            _ = try model.forward(batch, workspace: ws, training: false, rng: &rng)
            let h = ws.lastDecoderStates
            for (b, it) in chunk.enumerated() {
                let pos = vocabulary.tokens[it.doc].count - 1
                for x in 0..<C { states[(j + b) * C + x] = h[(b * batch.T + pos) * C + x] }
            }
            j += chunk.count
        }
        // Best old logit on every item, per trie node (one sgemm per node).
        var bestOld = [Float](repeating: -.infinity, count: items.count)
        var itemsAt: [Int: [Int]] = [:]  // node → items (new and old) competing there
        for i in 0..<N { itemsAt[parent(firstNew + i), default: []] += Array(ownRange[i]) }
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
        // Typical norm and bias of old document rows.
        var oldNorm: Float = 0
        var oldBias: Float = 0
        for d in 0..<firstNew {
            let t = ownToken(d)
            var n: Float = 0
            for x in 0..<C { n += head[t * C + x] * head[t * C + x] }
            oldNorm += n.squareRoot()
            oldBias += bias[t]
        }
        oldNorm = firstNew > 0 ? oldNorm / Float(firstNew) : 1
        oldBias = firstNew > 0 ? oldBias / Float(firstNew) : 0
        func dot(_ w: [Float], _ item: Int) -> Float {
            var z: Float = 0
            for x in 0..<C { z += w[x] * states[item * C + x] }
            return z
        }
        // Starting rows.
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
        let docOf = { (item: Int) in items[item].doc }
        // Negatives per document: the competing items it scores highest on at the start.
        var negs: [[Int]] = []
        for i in 0..<N {
            let node = parent(firstNew + i)
            let pool = (itemsAt[node] ?? []).filter { docOf($0) != firstNew + i }
            negs.append(Array(pool.sorted { dot(W0[i], $0) - bestOld[$0] > dot(W0[i], $1) - bestOld[$1] }.prefix(negatives)))
        }
        let lambda: Float = 0.01
        // The score every other row gives an item (old best, or a new row's current logit).
        func competitor(_ item: Int, excluding i: Int) -> Float {
            var best = bestOld[item]
            for k in newAt[parent(firstNew + i)] ?? [] where k != i { best = max(best, dot(W[k], item) + B[k]) }
            return best
        }
        func ownScore(_ item: Int) -> Float? {
            let d = docOf(item)
            return d >= firstNew ? dot(W[d - firstNew], item) + B[d - firstNew] : nil
        }
        for _ in 0..<3 {
            for i in 0..<N where !ownRange[i].isEmpty {
                let pos = ownRange[i].map { ($0, competitor($0, excluding: i)) }
                // A negative must stay below its own document's score (old: the best old logit).
                let neg = negs[i].map { it in (it, ownScore(it).map { max($0, bestOld[it]) } ?? bestOld[it]) }
                var w = W[i]
                var b = B[i]
                // Mean hinge² over positives plus mean over negatives, minimised with Adam
                // (the states share a large common component, which plain gradient
                // descent crawls along).
                let wp = 1 / Float(max(1, pos.count))
                let wn = 1 / Float(max(1, neg.count))
                var adam = AdamW(weightDecay: 0)
                var wb = w + [b]
                var m1 = [Float](repeating: 0, count: C + 1)
                var m2 = m1
                let lr = 0.02 * max(oldNorm, 0.1)
                for _ in 1...max(1, steps) {
                    w = Array(wb[0..<C])
                    b = wb[C]
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
                    for x in 0..<C { g[x] += 2 * lambda * (w[x] - W0[i][x]) }
                    adam.update(&wb, grads: g, m: &m1, v: &m2, lr: lr)
                }
                W[i] = Array(wb[0..<C])
                B[i] = wb[C]
            }
        }
        for i in 0..<N {
            let t = ownToken(firstNew + i)
            for x in 0..<C { head[t * C + x] = W[i][x] }
            bias[t] = B[i]
        }
    }
}
