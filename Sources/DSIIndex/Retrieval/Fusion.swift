import Foundation

/// The model's ranking fused with the project's BM25 (`dsi query|eval --fusion bm25`), by
/// one of three methods. Each run contributes its best `depth` documents (the model's by
/// a beam of at least `depth`).
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
/// - `zscore` (the default): each run's scores standardised over its own list
///   (`(s − mean) / sd`, the population standard deviation; the model's scores are its
///   log-probabilities), then `weight · z_model + (1 − weight) · z_bm25`. A document
///   absent from a run gets that run's lowest standardised score (it ranked below
///   everything the run listed). Standardising puts a log-probability and a BM25 score
///   on one scale per query (CombSUM of z-scores, as hybrid lexical-dense search does);
///   on SciFact it was the best on the zero-label dev split and within 0.004 of `scores`
///   on the labelled one (84 queries), and the best on test in both (README, "Zero-label
///   training and fused ranking").
///
/// Ties go to the document the model ranks higher, then to BM25's order. The method and
/// the weight are chosen on dev (README, "Zero-label training and fused ranking").
public struct Fusion: Sendable, Equatable, Codable {
    public enum Method: String, Sendable, Codable, CaseIterable { case rrf, scores, zscore }
    public var method: Method = .zscore
    /// The model run's weight, 0…1 (BM25's is 1 − weight).
    public var weight: Double = 0.7
    /// RRF's rank offset (60 in the original paper).
    public var k: Double = 60
    /// Results per query taken from each run into the fusion (BM25's best `depth`, the
    /// model's best `depth`).
    public var depth: Int = 100

    /// The default weight: for `zscore`, the model's weight chosen on SciFact's dev splits
    /// (README, "Zero-label training and fused ranking"): 0.7 for a model trained on
    /// labelled queries (its ranking is the better one), 0.3 for one trained on the
    /// documents alone (BM25's is); for `rrf` and `scores`, 0.5.
    public static func defaultWeight(method: Method = .zscore, labelled: Bool) -> Double {
        method == .zscore ? (labelled ? 0.7 : 0.3) : 0.5
    }

    public init(method: Method = .zscore, weight: Double = 0.7, k: Double = 60, depth: Int = 100) {
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
        for (r, (d, _)) in model.enumerated() { modelRank[d] = r }
        for (r, (d, _)) in bm25.enumerated() { bm25Rank[d] = r }
        switch method {
        case .rrf:
            for (r, (d, _)) in model.enumerated() { score[d, default: 0] += weight / (k + Double(r + 1)) }
            for (r, (d, _)) in bm25.enumerated() { score[d, default: 0] += (1 - weight) / (k + Double(r + 1)) }
        case .scores:
            let best = bm25.map(\.1).max() ?? 0
            for (d, s) in model { score[d, default: 0] += weight * Foundation.exp(s) }
            for (d, s) in bm25 { score[d, default: 0] += (1 - weight) * (best > 0 ? s / best : 0) }
        case .zscore:
            let documents = Set(modelRank.keys).union(bm25Rank.keys)
            for d in documents { score[d] = 0 }
            for (run, w) in [(model, weight), (bm25, 1 - weight)] where !run.isEmpty {
                let z = Self.standardized(run.map(\.1))
                var listed = Set<D>()
                for ((d, _), zd) in zip(run, z) {
                    score[d]! += w * zd
                    listed.insert(d)
                }
                let floor = z.min()!
                for d in documents where !listed.contains(d) { score[d]! += w * floor }
            }
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

    /// `(s − mean) / sd` over a list (population standard deviation; all zeros when the
    /// scores are all equal).
    static func standardized(_ s: [Double]) -> [Double] {
        let n = Double(s.count)
        let mean = s.reduce(0, +) / n
        let sd = (s.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
        return s.map { sd > 0 ? ($0 - mean) / sd : 0 }
    }
}

/// BM25 over the documents of an index, for fusion: built from a corpus holding exactly
/// the index's documents (as `dsi eval` requires), its results given as index positions.
public struct FusedSearch: Sendable {
    public var fusion: Fusion
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

    /// The fused ranking of each query (`topK` results): the model searched for its best
    /// `depth` (at least `topK`; a beam at least that wide), then fused with BM25's.
    public func search(
        _ queries: [String], index: TrainedIndex, beam: Int, topK: Int, normalization: ConstrainedBeamSearch.Normalization? = nil
    ) throws -> [[ConstrainedBeamSearch.Hit]] {
        let depth = max(topK, fusion.depth)
        let hits = try index.search(queries, beam: max(beam, depth), topK: depth, normalization: normalization)
        return fuse(queries: queries, modelHits: hits, topK: topK)
    }

    /// Each query's fused ranking (`topK` results, scores the fused ones) from the
    /// model's hits for it (its best `fusion.depth`).
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
