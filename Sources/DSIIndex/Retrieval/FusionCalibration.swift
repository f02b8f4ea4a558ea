import Foundation

/// The fusion weight a checkpoint chose on its own dev split (`dsi train`, at its end):
/// the model's z-score weight that gave the best fused dev nDCG@10 of a grid, which
/// `--fusion bm25` then uses unless `--fusion-weight` is given.
///
/// Why per checkpoint: the best weight is a property of the collection and the model. On
/// SciFact's dev splits it was 0.7 and 0.9 (two seeds) with labelled queries and 0.3
/// without; on the Quick start demo, where BM25 ranks better than the model, 0.4 (README,
/// "Zero-label training and fused ranking"). A fixed default serves one collection and
/// hurts the next.
///
/// How: the dev queries are `dsi eval --split dev`'s (the held-out train queries, or
/// with no labels the held-out sentences; at most `limit` of them, in query-id order),
/// BM25 indexes the documents as `dsi eval --split dev --fusion bm25` does, and the model
/// gives its best `depth` by a beam that wide. Each weight of the grid fuses the same two
/// runs (`Fusion.fuse`); the best nDCG@10 wins, a tie going to the weight nearest the
/// protocol default (`Fusion.defaultWeight`). The grid stops short of 0 and 1: a fusion
/// that asks for both rankings gets both.
public struct FusionCalibration: Sendable, Codable, Equatable {
    public var method: Fusion.Method
    /// The chosen model weight.
    public var weight: Double
    /// Dev queries it was chosen on.
    public var queries: Int
    /// The training step of the model it was chosen for.
    public var step: Int
    /// Every weight tried, with its fused dev nDCG@10.
    public var grid: [Point]

    public struct Point: Sendable, Codable, Equatable {
        public var weight: Double
        public var ndcg10: Double
    }

    /// The weights tried: 0.1, 0.2, …, 0.9.
    public static let weights: [Double] = (1...9).map { Double($0) / 10 }
    /// Fewer dev queries than this choose nothing (the default weight stays).
    public static let minimumQueries = 10

    /// The fused dev nDCG@10 at `weight`, if it was tried.
    public func ndcg10(at weight: Double) -> Double? { grid.first { abs($0.weight - weight) < 1e-9 }?.ndcg10 }

    /// Chooses the z-score fusion weight for `index` on `corpus`'s dev split; `.failure`
    /// (with the reason) when the split has fewer than `minimumQueries` queries.
    public static func choose(
        index: TrainedIndex, corpus: Corpus, limit: Int = 300, depth: Int = Fusion().depth, weights: [Double] = weights,
        minimumQueries: Int = minimumQueries
    ) throws -> Result<FusionCalibration, Skipped> {
        var options = Evaluation.Options()
        options.split = "dev"
        let fraction = index.options.devFraction
        let (texts, qrels) = try Evaluation.queries(corpus, options: options, devFraction: fraction)
        let ids = Array(qrels.keys.sorted().prefix(limit))
        guard ids.count >= minimumQueries else {
            return .failure(Skipped(reason: "\(ids.count) dev queries, fewer than the \(minimumQueries) a weight is chosen on"))
        }
        let labelled = try HeldOutSentences.corpusHasLabels(corpus)
        let fallback = Fusion.defaultWeight(method: .zscore, labelled: labelled)
        let search = try FusedSearch(
            fusion: Fusion(method: .zscore, weight: fallback, depth: depth), index: index, corpusIDs: corpus.documents.map(\.id),
            texts: Evaluation.searchableTexts(corpus, split: "dev", devFraction: fraction))
        let queries = ids.map { texts[$0]! }
        let kept = Set(ids)
        let judged = qrels.filter { kept.contains($0.key) }
        let hits = try index.search(queries, beam: depth, topK: depth)
        var grid: [Point] = []
        for w in weights {
            var s = search
            s.fusion.weight = w
            let fused = s.fuse(queries: queries, modelHits: hits, topK: 10)
            var run: [String: [String]] = [:]
            for (q, h) in zip(ids, fused) { run[q] = h.map { index.docids.corpusIDs[$0.document] } }
            grid.append(Point(weight: w, ndcg10: Metrics.summarize(run: run, qrels: judged).ndcg10))
        }
        let best = grid.min { a, b in
            if a.ndcg10 != b.ndcg10 { return a.ndcg10 > b.ndcg10 }
            return abs(a.weight - fallback) < abs(b.weight - fallback)
        }!
        return .success(FusionCalibration(method: .zscore, weight: best.weight, queries: ids.count, step: index.step, grid: grid))
    }

    public struct Skipped: Error, Sendable {
        public let reason: String
        public init(reason: String) { self.reason = reason }
    }

    /// One line for `dsi train`'s log.
    public var text: String {
        let g = grid.map { String(format: "%.1f: %.3f", $0.weight, $0.ndcg10) }.joined(separator: ", ")
        return String(format: "fusion with BM25: zscore weight %.1f chosen on %d dev queries", weight, queries)
            + " (fused dev nDCG@10 by weight: \(g))"
    }
}
