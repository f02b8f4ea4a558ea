import DSIModel
import DSITensor
import DSIText
import Foundation

/// Continual indexing: adds documents to a trained index without retraining it (after
/// DSI++ for replay and IncDSI for the per-document fit). Existing docids, tokens and
/// rows never change; new documents get docids where the index's scheme puts them
/// (semantic: routed down the k-means tree by their LSA vector).
public enum ContinualIndexer {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A new document's tokenized views.
    struct NewDocument {
        var document: Document
        var full: [Int32], title: [Int32], text: [Int32], terms: [Int32]
        var queries: [[Int32]]
    }

    /// Returns the grown index and the report; `old` is not modified.
    /// - Parameter queries: labelled queries for new documents: (text, position in `documents`).
    public static func add(_ old: TrainedIndex, documents: [Document], queries: [(text: String, document: Int)] = [], source: String,
                           options: AddOptions = AddOptions(), log: (String) -> Void = { _ in }) throws -> (TrainedIndex, AddReport) {
        let clock = ContinuousClock()
        let t0 = clock.now
        let known = Set(old.docids.corpusIDs)
        var seen = Set<String>()
        for d in documents {
            guard !known.contains(d.id) else { throw Failure(description: "document \"\(d.id)\" is already indexed") }
            guard seen.insert(d.id).inserted else { throw Failure(description: "document \"\(d.id)\" appears twice") }
        }
        if options.mode == .fast && !hasDocumentTokens(old.vocabulary) {
            throw Failure(description: "--mode fast fits a per-document output token; this checkpoint's docids are shared digit tokens (\(old.options.docids.rawValue), --docid-tokens \(old.options.docidTokens.rawValue)); use --mode replay, or train with atomic docids or semantic docids with node tokens (the default)")
        }
        let opts = old.options
        let tok = old.tokenizer
        let D0 = old.docids.corpusIDs.count
        // Views of the new documents.
        var news: [NewDocument] = documents.map { d in
            NewDocument(document: d, full: tok.encode(d.title + " " + d.text), title: tok.encode(d.title), text: tok.encode(d.text), terms: [], queries: [])
        }
        let idf = old.lsa?.idf ?? [Float](repeating: 1, count: tok.count)
        for i in news.indices { news[i].terms = LSA.keyTerms(LSA.tfidfRow(news[i].full, idf: idf), opts.keyTerms) }
        for q in queries where q.document >= 0 && q.document < news.count {
            let t = Array(tok.encode(q.text).prefix(opts.sourceLength))
            if !t.isEmpty { news[q.document].queries.append(t) }
        }

        // Docids, vocabulary, LSA vectors.
        var lsa = old.lsa
        var newVectors: [Float] = []
        if let l = lsa { for n in news { newVectors += l.project(n.full) } }
        // Semantic docids: the leaf the trained model itself walks to for the document's
        // title and lead (greedy decoding; the majority, ties to the LSA-nearest), so
        // queries like them reach the new document; the LSA routing decides when the
        // model's votes give no leaf.
        var preferred = [[Int32]?](repeating: nil, count: news.count)
        if old.docids.scheme == .semantic {
            var qs: [[Int32]] = [], owner: [Int] = []
            for (i, n) in news.enumerated() {
                for v in [Array(n.title.prefix(opts.sourceLength)), Array(n.full.prefix(opts.viewLength))] where !v.isEmpty { qs.append(v); owner.append(i) }
            }
            let hits = try old.search(tokens: qs, beam: 1, topK: 1)
            var votes = [[[Int32]: Int]](repeating: [:], count: news.count)
            for (h, i) in zip(hits, owner) {
                if let d = h.first?.document { votes[i][Array(old.docids.docids[d].dropLast(opts.leafDigits)), default: 0] += 1 }
            }
            for i in news.indices {
                let best = votes[i].values.max() ?? 0
                let leaves = votes[i].filter { $0.value == best }.keys
                preferred[i] = leaves.count == 1 ? leaves.first : nil
            }
        }
        let newDocids = try assignDocIDs(old, count: news.count, ids: documents.map(\.id), vectors: newVectors, preferred: preferred)
        let docids = DocIDAssignment(scheme: old.docids.scheme, corpusIDs: old.docids.corpusIDs + documents.map(\.id), docids: old.docids.docids + newDocids)
        if let l = lsa { lsa = l.appending(documentRows: newVectors) }
        let vocabulary = opts.vocabulary(docids)
        for d in 0..<D0 where vocabulary.tokens[d] != old.vocabulary.tokens[d] {
            throw Failure(description: "internal error: adding documents changed the tokens of document \(old.docids.corpusIDs[d])")
        }

        // The grown model: every existing parameter and moment copied, new rows zero.
        var config = old.model.config
        config.targetVocab = vocabulary.size
        config.targetLength = max(config.targetLength, vocabulary.maxLength + 1)
        let model = try Seq2Seq(config: config)
        copyParameters(from: old.model, to: model)
        var optimizer = old.optimizer

        // Fit the rows of the new documents' own tokens.
        let fitStart = clock.now
        func drawSpans(_ rng: inout SeededRNG) -> [[[Int32]]] {
            let L = opts.viewLength
            return news.map { n in
                n.text.count > L ? (0..<options.spansPerDocument).map { _ in let s = rng.int(below: n.text.count - L + 1); return Array(n.text[s..<(s + L)]) } : []
            }
        }
        var rng = SeededRNG(seed: options.seed &+ 0xADD)
        var spans = drawSpans(&rng)
        func views(_ i: Int) -> [[Int32]] {
            let n = news[i]
            return ([Array(n.full.prefix(opts.viewLength)), Array(n.title.prefix(opts.viewLength)), n.terms] + spans[i] + n.queries).filter { !$0.isEmpty }
        }
        if hasDocumentTokens(vocabulary) {
            try fitRows(model: model, vocabulary: vocabulary, firstNew: D0, views: (0..<news.count).map(views), memory: old.memory, margin: options.margin, steps: options.fitSteps)
        }
        let fitSeconds = (clock.now - fitStart).seconds
        log(String(format: "fitted %d new output rows in %.2f s", news.count, fitSeconds))

        // Replay: fine-tune on new views mixed with old ones.
        var steps = 0
        if options.mode == .replay {
            let memory = old.memory.views
            let newPerEpoch = (0..<news.count).reduce(0) { $0 + views($1).count + news[$1].queries.count }
            let oldPerEpoch = memory.isEmpty ? 0 : Int((Double(newPerEpoch) * options.replayRatio).rounded())
            let perEpoch = newPerEpoch + oldPerEpoch
            let total = max(options.minimumSteps, 1, Int((options.epochs * Double(perEpoch) / Double(options.batchSize)).rounded(.up)))
            let peak = options.learningRate ?? opts.effectiveLearningRate / 2
            let ws = Workspace()
            log("replay: \(total) steps (\(newPerEpoch) new and \(oldPerEpoch) replayed examples per epoch), peak lr \(peak)")
            var batches: [Seq2SeqBatch] = []
            var epoch = 0
            while steps < total {
                if batches.isEmpty {
                    var erng = SeededRNG(seed: options.seed &+ 0xE0 &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
                    if epoch > 0 { spans = drawSpans(&erng) }
                    var ex: [TrainingExample] = []
                    for i in news.indices {
                        for v in views(i) { ex.append(TrainingExample(source: v, document: D0 + i)) }
                        for q in news[i].queries { ex.append(TrainingExample(source: q, document: D0 + i)) }  // queries twice, as in training
                    }
                    for _ in 0..<oldPerEpoch {
                        let v = memory[erng.int(below: memory.count)]
                        ex.append(TrainingExample(source: v.tokens, document: v.document))
                    }
                    ex.shuffle(using: &erng)
                    var j = 0
                    while j < ex.count {
                        batches.append(Trainer.makeBatch(Array(ex[j..<min(ex.count, j + options.batchSize)]), vocabulary: vocabulary, config: config))
                        j += options.batchSize
                    }
                    batches.reverse()
                    epoch += 1
                }
                let progress = Double(steps) / Double(total)
                let lr = progress < 0.05 ? peak * Float(max(progress / 0.05, 0.01)) : peak * Float(0.1 + 0.9 * 0.5 * (1 + cos(Double.pi * (progress - 0.05) / 0.95)))
                var srng = SeededRNG(seed: options.seed &+ 0xD1 &+ UInt64(steps) &* 0x9E37_79B9_7F4A_7C15)
                let r = try model.trainStep(batches.removeLast(), workspace: ws, optimizer: &optimizer, lr: lr, clipNorm: 1, smoothing: opts.labelSmoothing, rng: &srng)
                steps += 1
                if steps % 50 == 0 || steps == total { log(String(format: "replay step %d/%d  loss %.4f", steps, total, r.loss)) }
            }
        }

        // The grown index: memory and generations extended.
        var memory = old.memory
        for (i, n) in news.enumerated() {
            let d = D0 + i
            memory.remember(document: d, full: n.full, title: n.title, terms: n.terms, span: spans[i].first, viewLength: opts.viewLength)
            for q in n.queries { memory.views.append(.init(document: d, kind: .query, tokens: q)) }
        }
        let generation = (old.generations.map(\.generation).max() ?? 0) + 1
        let grown = TrainedIndex(
            options: opts, tokenizer: tok, docids: docids, titles: old.titles + documents.map(\.title), model: model, optimizer: optimizer,
            step: old.step + steps, trainingSeconds: old.trainingSeconds, corpusFingerprint: old.corpusFingerprint, lsa: lsa, memory: memory,
            generations: old.generations + [Generation(generation: generation, firstDocument: D0, documents: documents.count, mode: options.mode.rawValue, source: source)])
        let seconds = (clock.now - t0).seconds
        grown.trainingSeconds += seconds

        // Forgetting report on samples: new documents by their title and a span; old
        // documents by their title, before and after.
        var report = AddReport(added: documents.count, seconds: seconds, mode: options.mode, generation: generation, steps: steps, fitSeconds: fitSeconds,
                               newSelfHits1: .nan, newSelfHits10: .nan, oldSelfHits10Before: .nan, oldSelfHits10After: .nan, sampled: (0, 0))
        if options.sample > 0 {
            var srng = SeededRNG(seed: options.seed &+ 0x5A)
            var oldDocs = (0..<D0).filter { !old.titles[$0].isEmpty }
            oldDocs.shuffle(using: &srng)
            oldDocs = Array(oldDocs.prefix(options.sample))
            let oldQueries = oldDocs.map { old.encode(old.titles[$0]) }
            let before = try old.search(tokens: oldQueries)
            let after = try grown.search(tokens: oldQueries)
            func hits(_ r: [[ConstrainedBeamSearch.Hit]], _ targets: [Int], _ k: Int) -> Double {
                targets.isEmpty ? .nan : Double(zip(r, targets).filter { pair in pair.0.prefix(k).contains { $0.document == pair.1 } }.count) / Double(targets.count)
            }
            report.oldSelfHits10Before = hits(before, oldDocs, 10)
            report.oldSelfHits10After = hits(after, oldDocs, 10)
            var newDocs = Array(news.indices)
            newDocs.shuffle(using: &srng)
            newDocs = Array(newDocs.prefix(options.sample))
            var qs: [[Int32]] = [], targets: [Int] = []
            for i in newDocs {
                if !news[i].title.isEmpty { qs.append(Array(news[i].title.prefix(opts.sourceLength))); targets.append(D0 + i) }
                if let s = spans[i].first ?? (news[i].text.isEmpty ? nil : Array(news[i].text.prefix(opts.viewLength))) { qs.append(s); targets.append(D0 + i) }
            }
            let r = try grown.search(tokens: qs)
            report.newSelfHits1 = hits(r, targets, 1)
            report.newSelfHits10 = hits(r, targets, 10)
            report.sampled = (oldDocs.count, newDocs.count)
        }
        return (grown, report)
    }

    /// Whether every document has a decoder token of its own (atomic docids, or tree
    /// nodes), so a new document's row can be fitted alone.
    static func hasDocumentTokens(_ v: TargetVocabulary) -> Bool { v.scheme == .atomic || v.mode == .nodes }

    // MARK: - Docids

    static func assignDocIDs(_ old: TrainedIndex, count: Int, ids: [String], vectors: [Float], preferred: [[Int32]?] = []) throws -> [[Int32]] {
        let a = old.docids
        var used = Set(a.docids)
        switch a.scheme {
        case .atomic:
            return (0..<count).map { [Int32(a.docids.count + $0)] }
        case .naive:
            var rng = SeededRNG(seed: old.options.seed &+ UInt64(a.docids.count))
            let width = max(1, a.maxLength)
            var out: [[Int32]] = []
            for id in ids {
                let digits = id.allSatisfy { $0.isASCII && $0.isNumber } && !id.isEmpty && (id == "0" || !id.hasPrefix("0")) ? id.map { Int32(String($0))! } : nil
                if let digits, !used.contains(digits) {
                    out.append(digits); used.insert(digits); continue
                }
                var w = width, tries = 0
                while true {
                    let x = (0..<w).map { _ in Int32(rng.int(below: 10)) }
                    if used.insert(x).inserted { out.append(x); break }
                    tries += 1
                    if tries > 1000 { w += 1; tries = 0 }
                }
            }
            return out
        case .semantic:
            guard let lsa = old.lsa else { throw Failure(description: "this checkpoint has no LSA projection (lsa.safetensors) to place new semantic docids") }
            var tree = KMeansTree(a, leafDigits: old.options.leafDigits, vectors: lsa.documentVectors)
            let k = lsa.dimensions
            return try (0..<count).map { i in try tree.place(Array(vectors[(i * k)..<((i + 1) * k)]), leaf: i < preferred.count ? preferred[i] : nil) }
        }
    }

    /// The k-means tree implied by semantic docids (cluster path, then the position in
    /// the leaf), with centroids from the documents' LSA vectors.
    struct KMeansTree {
        let leafDigits: Int
        var children: [[Int32]: Set<Int32>] = [:]
        var positions: [[Int32]: Set<Int>] = [:]  // leaf path → used positions
        var sums: [[Int32]: ([Float], Int)] = [:]
        let k: Int

        init(_ a: DocIDAssignment, leafDigits: Int, vectors: Tensor) {
            self.leafDigits = leafDigits
            k = vectors.shape[1]
            for (d, docid) in a.docids.enumerated() {
                let path = Array(docid.prefix(max(0, docid.count - leafDigits)))
                let pos = Int(docid.suffix(leafDigits).map(String.init).joined()) ?? 0
                positions[path, default: []].insert(pos)
                for depth in 0..<path.count { children[Array(path.prefix(depth)), default: []].insert(path[depth]) }
                for depth in 0...path.count {
                    let p = Array(path.prefix(depth))
                    var (s, n) = sums[p] ?? ([Float](repeating: 0, count: k), 0)
                    for j in 0..<k { s[j] += vectors[d * k + j] }
                    sums[p] = (s, n + 1)
                }
            }
        }

        func distance(_ v: [Float], _ p: [Int32]) -> Float {
            guard let (s, n) = sums[p], n > 0 else { return .infinity }
            var d: Float = 0
            for j in 0..<k { let x = v[j] - s[j] / Float(n); d += x * x }
            return d
        }

        var capacity: Int { Int(pow(10, Double(leafDigits))) }

        /// Routes `v` to `leaf` when given (and known), else to the nearest leaf (nearest child centroid at every level), and takes
        /// its next free position; a full leaf spills to a new sibling leaf (a free digit
        /// under the same parent), else to the nearest leaf with room.
        mutating func place(_ v: [Float], leaf preferredLeaf: [Int32]? = nil) throws -> [Int32] {
            var path: [Int32] = []
            if let p = preferredLeaf, positions[p] != nil {
                path = p
            } else {
                while let kids = children[path], !kids.isEmpty, positions[path] == nil {
                    path.append(kids.sorted().min { distance(v, path + [$0]) < distance(v, path + [$1]) }!)
                }
            }
            var leaf = path
            if (positions[leaf]?.count ?? 0) >= capacity {
                let parent = Array(leaf.dropLast())
                if !leaf.isEmpty, let free = (0..<10).map(Int32.init).first(where: { !(children[parent] ?? []).contains($0) }) {
                    leaf = parent + [free]
                    children[parent, default: []].insert(free)
                    positions[leaf] = []
                } else if let other = positions.filter({ $0.value.count < capacity }).keys.min(by: { distance(v, $0) < distance(v, $1) || (distance(v, $0) == distance(v, $1) && $0.lexicographicallyPrecedes($1)) }) {
                    leaf = other
                } else {
                    throw Failure(description: "every leaf of the docid tree is full (\(capacity) documents each); retrain with a larger --leaf-size")
                }
            }
            var pos = 0
            while positions[leaf]?.contains(pos) == true { pos += 1 }
            positions[leaf, default: []].insert(pos)
            let s = String(pos)
            return leaf + (String(repeating: "0", count: max(0, leafDigits - s.count)) + s).map { Int32(String($0))! }
        }
    }

    // MARK: - Model

    /// Copies every parameter and AdamW moment of `old` into `new`, whose target
    /// vocabulary (and decoder length) may be larger: the extra rows stay zero.
    static func copyParameters(from old: Seq2Seq, to new: Seq2Seq) {
        for e in new.params.entries {
            guard let o = old.params.entry(e.name) else { continue }
            let cols = e.shape.count == 2 ? e.shape[1] : 1
            precondition(o.shape.count == e.shape.count && (e.shape.count == 1 || o.shape[1] == cols), "\(e.name): \(o.shape) → \(e.shape)")
            let n = min(o.count, e.count)
            for (src, dst) in [(old.params.values, new.params.values), (old.params.m, new.params.m), (old.params.v, new.params.v)] {
                (dst.data + e.offset).update(from: src.data + o.offset, count: n)
            }
        }
    }

    /// IncDSI-style fit of each new document's output row and bias (Kishore et al.
    /// 2023), everything else frozen. For document t with views V_t (states h_v that
    /// predict its token) and competing views N_t (title and lead of the documents it
    /// shares a trie node with, and the other new documents' views), minimise
    ///   Σ_{v∈V_t} max(0, m_v + δ − s_v)² + Σ_{u∈N_t} max(0, s_u − (m_u − δ))² + λ‖w − w₀‖²
    /// where s = w·h + b and m is the best logit of the other rows there. Starts from
    /// the mean of its views' states at the old rows' typical norm; new documents are
    /// fitted in rounds, each against the others' current rows.
    static func fitRows(model: Seq2Seq, vocabulary: TargetVocabulary, firstNew: Int, views: [[[Int32]]], memory: ReplayMemory,
                        margin: Float, steps: Int, negatives: Int = 128) throws {
        let c = model.config, C = c.dModel
        let head = model.params.tensor("lm_head.weight"), bias = model.params.tensor("lm_head.bias")
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
                guard t != TargetVocabulary.eos, let next = trie.step(node, t), let d = trie.document(at: next), d < firstNew else { return nil }
                return d
            }
        }
        let wanted = Set(oldSiblings.values.joined())
        var oldViews: [Int: [Int]] = [:]  // old document → item indices
        // Each old sibling's title (its lead when it has none) stands for its queries
        // (adding its train queries measured no better on SciFact, and slower).
        var hasTitle = Set<Int>()
        for v in memory.views where v.kind == .title && !v.tokens.isEmpty { hasTitle.insert(v.document) }
        for v in memory.views where wanted.contains(v.document) && (v.kind == .title || (v.kind == .lead && !hasTitle.contains(v.document))) && !v.tokens.isEmpty {
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
            let batch = Trainer.makeBatch(chunk.map { TrainingExample(source: $0.source, document: $0.doc) }, vocabulary: vocabulary, config: c)
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
            var H = [Float](repeating: 0, count: its.count * C), W = [Float](repeating: 0, count: rows.count * C)
            for (r, it) in its.enumerated() { for x in 0..<C { H[r * C + x] = states[it * C + x] } }
            for (r, d) in rows.enumerated() { let t = ownToken(d); for x in 0..<C { W[r * C + x] = head[t * C + x] } }
            var Z = [Float](repeating: 0, count: its.count * rows.count)
            BLAS.sgemm(transB: true, m: its.count, n: rows.count, k: C, a: H, lda: C, b: W, ldb: C, c: &Z, ldc: rows.count)
            for (r, it) in its.enumerated() {
                for (q, d) in rows.enumerated() { bestOld[it] = max(bestOld[it], Z[r * rows.count + q] + bias[ownToken(d)]) }
            }
        }
        // Typical norm and bias of old document rows.
        var oldNorm: Float = 0, oldBias: Float = 0
        for d in 0..<firstNew {
            let t = ownToken(d)
            var n: Float = 0
            for x in 0..<C { n += head[t * C + x] * head[t * C + x] }
            oldNorm += n.squareRoot(); oldBias += bias[t]
        }
        oldNorm = firstNew > 0 ? oldNorm / Float(firstNew) : 1; oldBias = firstNew > 0 ? oldBias / Float(firstNew) : 0
        func dot(_ w: [Float], _ item: Int) -> Float {
            var z: Float = 0
            for x in 0..<C { z += w[x] * states[item * C + x] }
            return z
        }
        // Starting rows.
        var W = [[Float]](), B = [Float]()
        for i in 0..<N {
            var w0 = [Float](repeating: 0, count: C)
            for it in ownRange[i] { for x in 0..<C { w0[x] += states[it * C + x] } }
            let n0 = w0.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let scale = n0 > 0 ? oldNorm / n0 : 0
            W.append(w0.map { $0 * scale }); B.append(oldBias)
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
                var w = W[i], b = B[i]
                // Mean hinge² over positives plus mean over negatives, minimised with Adam
                // (the states share a large common component, which plain gradient
                // descent crawls along).
                let wp = 1 / Float(max(1, pos.count)), wn = 1 / Float(max(1, neg.count))
                var m1 = [Float](repeating: 0, count: C + 1), m2 = [Float](repeating: 0, count: C + 1)
                let lr = 0.02 * max(oldNorm, 0.1)
                for step in 1...max(1, steps) {
                    var g = [Float](repeating: 0, count: C + 1), active = false
                    for (it, m) in pos where m.isFinite {
                        let gap = m + margin - (dot(w, it) + b)
                        if gap > 0 { active = true; for x in 0..<C { g[x] -= 2 * wp * gap * states[it * C + x] }; g[C] -= 2 * wp * gap }
                    }
                    for (it, m) in neg where m.isFinite {
                        let over = dot(w, it) + b - (m - margin)
                        if over > 0 { active = true; for x in 0..<C { g[x] += 2 * wn * over * states[it * C + x] }; g[C] += 2 * wn * over }
                    }
                    if !active { break }
                    for x in 0..<C { g[x] += 2 * lambda * (w[x] - W0[i][x]) }
                    let c1 = 1 - powf(0.9, Float(step)), c2 = 1 - powf(0.999, Float(step))
                    for x in 0...C {
                        m1[x] = 0.9 * m1[x] + 0.1 * g[x]
                        m2[x] = 0.999 * m2[x] + 0.001 * g[x] * g[x]
                        let u = lr * (m1[x] / c1) / ((m2[x] / c2).squareRoot() + 1e-8)
                        if x < C { w[x] -= u } else { b -= u }
                    }
                }
                W[i] = w; B[i] = b
            }
        }
        for i in 0..<N {
            let t = ownToken(firstNew + i)
            for x in 0..<C { head[t * C + x] = W[i][x] }
            bias[t] = B[i]
        }
    }
}
