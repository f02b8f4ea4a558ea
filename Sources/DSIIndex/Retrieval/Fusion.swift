/// The model's ranking fused with the project's BM25 (`dsi query|eval --fusion bm25`):
/// weighted reciprocal-rank fusion (Cormack, Clarke and Büttcher 2009). A document's fused
/// score is `weight / (k + r_model) + (1 − weight) / (k + r_bm25)`, its ranks counted from
/// 1 in each run; a run that does not list the document adds nothing. Ties go to the
/// document the model ranks higher, then to BM25's order. `weight` 0.5 is plain RRF (scaled
/// by a half); it is chosen on dev (README, "Fused ranking").
public struct Fusion: Sendable, Equatable, Codable {
    /// The model run's weight, 0…1 (BM25's is 1 − weight).
    public var weight: Double = 0.5
    /// RRF's rank offset (60 in the original paper).
    public var k: Double = 60
    /// BM25 results per query taken into the fusion.
    public var depth: Int = 100

    public init(weight: Double = 0.5, k: Double = 60, depth: Int = 100) {
        self.weight = weight
        self.k = k
        self.depth = depth
    }

    /// Fuses two ranked lists of documents (most relevant first, no repeats within a
    /// list), returning the `top` best with their fused scores.
    public func fuse<D: Hashable>(model: [D], bm25: [D], top: Int) -> [(document: D, score: Double)] {
        var score: [D: Double] = [:]
        var modelRank: [D: Int] = [:]
        var bm25Rank: [D: Int] = [:]
        for (r, d) in model.enumerated() {
            score[d, default: 0] += weight / (k + Double(r + 1))
            modelRank[d] = r
        }
        for (r, d) in bm25.enumerated() {
            score[d, default: 0] += (1 - weight) / (k + Double(r + 1))
            bm25Rank[d] = r
        }
        let ranked = score.sorted { a, b in
            if a.value != b.value { return a.value > b.value }
            let ma = modelRank[a.key] ?? .max
            let mb = modelRank[b.key] ?? .max
            if ma != mb { return ma < mb }
            return (bm25Rank[a.key] ?? .max) < (bm25Rank[b.key] ?? .max)
        }
        return ranked.prefix(top).map { ($0.key, $0.value) }
    }
}

/// BM25 over the documents of an index, for fusion: built from a corpus holding exactly
/// the index's documents (as `dsi eval` requires), its results given as index positions.
public struct FusedSearch: Sendable {
    public let fusion: Fusion
    let bm25: BM25
    /// Corpus position → index position.
    let toIndex: [Int]

    /// `texts`: each corpus document's searchable text (title and text), in corpus order.
    public init(fusion: Fusion, index: TrainedIndex, corpusIDs: [String], texts: [String]) throws {
        var position: [String: Int] = [:]
        for (i, id) in index.docids.corpusIDs.enumerated() { position[id] = i }
        var map: [Int] = []
        for id in corpusIDs {
            guard let p = position[id] else {
                throw Evaluation.Mismatch(
                    description: "document \(id) of the corpus is not in the index: fusion needs the index's own corpus")
            }
            map.append(p)
        }
        self.fusion = fusion
        toIndex = map
        bm25 = BM25(documents: texts)
    }

    /// Each query's fused ranking (`topK` results, scores the fused ones) from the
    /// model's hits for it.
    public func fuse(queries: [String], modelHits: [[ConstrainedBeamSearch.Hit]], topK: Int) -> [[ConstrainedBeamSearch.Hit]] {
        zip(queries, modelHits).map { q, hits in
            let lexical = bm25.search(q, k: fusion.depth).map { toIndex[$0.document] }
            return fusion.fuse(model: hits.map(\.document), bm25: lexical, top: topK).map {
                ConstrainedBeamSearch.Hit(document: $0.document, score: Float($0.score))
            }
        }
    }
}
