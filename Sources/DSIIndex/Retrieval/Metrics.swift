import Foundation

/// Retrieval metrics over a run (ranked document ids per query) and graded judgements,
/// with the definitions trec_eval and ranx use: Hits@k (success@k: a relevant document in
/// the top k), MRR@10, nDCG@10 (gain = grade, discount 1/log2(rank + 1), ideal from the
/// judgements), Recall@k (relevant retrieved in the top k / all relevant).
public enum Metrics {
    public struct Summary: Sendable, Equatable, Codable {
        public var queries: Int
        public var hits1: Double, hits10: Double, mrr10: Double, ndcg10: Double, recall10: Double

        enum CodingKeys: String, CodingKey {
            case queries
            case hits1 = "hits@1"
            case hits10 = "hits@10"
            case mrr10 = "mrr@10"
            case ndcg10 = "ndcg@10"
            case recall10 = "recall@10"
        }
    }

    public static func hits(_ ranked: [String], _ rel: [String: Int], at k: Int) -> Double {
        ranked.prefix(k).contains { (rel[$0] ?? 0) > 0 } ? 1 : 0
    }

    public static func reciprocalRank(_ ranked: [String], _ rel: [String: Int], at k: Int) -> Double {
        for (i, d) in ranked.prefix(k).enumerated() where (rel[d] ?? 0) > 0 { return 1 / Double(i + 1) }
        return 0
    }

    public static func ndcg(_ ranked: [String], _ rel: [String: Int], at k: Int) -> Double {
        var dcg = 0.0
        for (i, d) in ranked.prefix(k).enumerated() { dcg += Double(rel[d] ?? 0) / log2(Double(i + 2)) }
        let ideal = rel.values.filter { $0 > 0 }.sorted(by: >).prefix(k)
        var idcg = 0.0
        for (i, g) in ideal.enumerated() { idcg += Double(g) / log2(Double(i + 2)) }
        return idcg > 0 ? dcg / idcg : 0
    }

    public static func recall(_ ranked: [String], _ rel: [String: Int], at k: Int) -> Double {
        let relevant = rel.values.filter { $0 > 0 }.count
        guard relevant > 0 else { return 0 }
        return Double(ranked.prefix(k).filter { (rel[$0] ?? 0) > 0 }.count) / Double(relevant)
    }

    /// Means over the judged queries (a judged query missing from the run scores 0).
    public static func summarize(run: [String: [String]], qrels: [String: [String: Int]]) -> Summary {
        let qs = qrels.keys.sorted()
        var s = Summary(queries: qs.count, hits1: 0, hits10: 0, mrr10: 0, ndcg10: 0, recall10: 0)
        guard !qs.isEmpty else { return s }
        for q in qs {
            let r = run[q] ?? []
            let rel = qrels[q]!
            s.hits1 += hits(r, rel, at: 1)
            s.hits10 += hits(r, rel, at: 10)
            s.mrr10 += reciprocalRank(r, rel, at: 10)
            s.ndcg10 += ndcg(r, rel, at: 10)
            s.recall10 += recall(r, rel, at: 10)
        }
        let n = Double(qs.count)
        s.hits1 /= n
        s.hits10 /= n
        s.mrr10 /= n
        s.ndcg10 /= n
        s.recall10 /= n
        return s
    }

    /// A TREC run file: "qid Q0 docid rank score tag" per line.
    public static func trecRun(_ run: [String: [(String, Float)]], tag: String) -> String {
        var out = ""
        for q in run.keys.sorted() {
            for (i, (d, score)) in run[q]!.enumerated() { out += "\(q) Q0 \(d) \(i + 1) \(score) \(tag)\n" }
        }
        return out
    }
}
