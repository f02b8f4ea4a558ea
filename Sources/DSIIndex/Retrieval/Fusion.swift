import Foundation

/// The model's ranking fused with the project's BM25 (`dsi query|eval --fusion bm25`), by
/// one of two methods:
///
/// - `rrf`: weighted reciprocal-rank fusion (Cormack, Clarke and Büttcher 2009): a
///   document scores `weight / (k + r_model) + (1 − weight) / (k + r_bm25)`, its ranks
///   counted from 1 in each run; a run that does not list the document adds nothing.
///   `weight` 0.5 is plain RRF (scaled by a half). Ranks only: a confident model counts
///   the same as a guessing one.
/// - `scores`: score interpolation: `weight · p_model + (1 − weight) · s_bm25 / max s_bm25`,
///   where `p_model` is the docid's probability (the exponential of the beam score, a
///   log-probability; with n-gram docids, whose scores are SEAL's sums of weights, the
///   score divided by the query's best) and BM25's scores are divided by the query's best; a document absent
///   from a run scores 0 there. The model's confidence decides how much it counts.
///
/// Ties go to the document the model ranks higher, then to BM25's order. The method and
/// the weight are chosen on dev (README, "Zero-label training and fused ranking").
public struct Fusion: Sendable, Equatable, Codable {
    public enum Method: String, Sendable, Codable, CaseIterable { case rrf, scores }
    public var method: Method = .rrf
    /// The model run's weight, 0…1 (BM25's is 1 − weight).
    public var weight: Double = 0.5
    /// RRF's rank offset (60 in the original paper).
    public var k: Double = 60
    /// BM25 results per query taken into the fusion.
    public var depth: Int = 100

    public init(method: Method = .rrf, weight: Double = 0.5, k: Double = 60, depth: Int = 100) {
        self.method = method
        self.weight = weight
        self.k = k
        self.depth = depth
    }

    /// Fuses two ranked lists of (document, score) (best first, no repeats within a
    /// list; the model's scores are log-probabilities, BM25's non-negative), returning the
    /// `top` best with their fused scores.
    public func fuse<D: Hashable>(model: [(D, Double)], bm25: [(D, Double)], top: Int) -> [(document: D, score: Double)] {
        var score: [D: Double] = [:]
        var modelRank: [D: Int] = [:]
        var bm25Rank: [D: Int] = [:]
        let best = bm25.map(\.1).max() ?? 0
        for (r, (d, s)) in model.enumerated() {
            score[d, default: 0] += weight * (method == .rrf ? 1 / (k + Double(r + 1)) : Foundation.exp(s))
            modelRank[d] = r
        }
        for (r, (d, s)) in bm25.enumerated() {
            score[d, default: 0] += (1 - weight) * (method == .rrf ? 1 / (k + Double(r + 1)) : (best > 0 ? s / best : 0))
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
    /// The model's scores are non-negative sums (`NGramSearch`), not log-probabilities:
    /// `scores` fusion takes them over the query's best.
    let relativeModelScores: Bool

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
        relativeModelScores = index.docids.scheme == .ngrams
        bm25 = BM25(documents: texts)
    }

    /// Each query's fused ranking (`topK` results, scores the fused ones) from the
    /// model's hits for it.
    public func fuse(queries: [String], modelHits: [[ConstrainedBeamSearch.Hit]], topK: Int) -> [[ConstrainedBeamSearch.Hit]] {
        zip(queries, modelHits).map { q, hits in
            let lexical = bm25.search(q, k: fusion.depth).map { (toIndex[$0.document], Double($0.score)) }
            let best = Double(hits.first?.score ?? 1)
            let model = hits.map { h in
                (
                    h.document,
                    relativeModelScores ? (best > 0 && h.score > 0 ? Foundation.log(Double(h.score) / best) : -.infinity) : Double(h.score)
                )
            }
            return fusion.fuse(model: model, bm25: lexical, top: topK).map {
                ConstrainedBeamSearch.Hit(document: $0.document, score: Float($0.score))
            }
        }
    }
}
