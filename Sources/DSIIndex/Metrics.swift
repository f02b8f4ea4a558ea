import Foundation

/// Retrieval metrics over a run (ranked document ids per query) and graded judgements,
/// with the definitions trec_eval and ranx use: Hits@k (success@k: a relevant document in
/// the top k), MRR@10, nDCG@10 (gain = grade, discount 1/log2(rank + 1), ideal from the
/// judgements), Recall@k (relevant retrieved in the top k / all relevant).
public enum Metrics {
    public struct Summary: Sendable, Equatable {
        public var queries: Int
        public var hits1: Double, hits10: Double, mrr10: Double, ndcg10: Double, recall10: Double

        public var json: [String: Any] {
            ["queries": queries, "hits@1": hits1, "hits@10": hits10, "mrr@10": mrr10, "ndcg@10": ndcg10, "recall@10": recall10]
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
            let r = run[q] ?? [], rel = qrels[q]!
            s.hits1 += hits(r, rel, at: 1); s.hits10 += hits(r, rel, at: 10)
            s.mrr10 += reciprocalRank(r, rel, at: 10); s.ndcg10 += ndcg(r, rel, at: 10)
            s.recall10 += recall(r, rel, at: 10)
        }
        let n = Double(qs.count)
        s.hits1 /= n; s.hits10 /= n; s.mrr10 /= n; s.ndcg10 /= n; s.recall10 /= n
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

/// The report `dsi eval` and `dsi bm25` print: the metrics over all judged queries, the
/// time per query, and the same metrics for `seen` queries (a relevant document is
/// relevant to some train query) and `unseen` ones.
public enum EvaluationReport {
    public static func make(run: [String: [String]], qrels: [String: [String: Int]], seenDocuments: Set<String>, seconds: Double) -> [String: Any] {
        var result = Metrics.summarize(run: run, qrels: qrels).json
        result["ms_per_query"] = qrels.isEmpty ? 0 : 1000 * seconds / Double(qrels.count)
        let seen = qrels.filter { $0.value.keys.contains(where: seenDocuments.contains) }
        let unseen = qrels.filter { !$0.value.keys.contains(where: seenDocuments.contains) }
        result["seen"] = Metrics.summarize(run: run, qrels: seen).json
        result["unseen"] = Metrics.summarize(run: run, qrels: unseen).json
        return result
    }

    /// The judgements of a split. `dev` is not a file: it is the share of the train
    /// queries `dsi train` holds out (`Trainer.isDev`), so baselines and checkpoints can
    /// be compared on the split used for tuning.
    public static func qrels(_ corpus: Corpus, split: String, devFraction: Double = TrainingOptions().devFraction) throws(InputError) -> [String: [String: Int]] {
        if split == "dev" && !corpus.splits.contains("dev") {
            return try corpus.qrels(split: "train").judgements.filter { Trainer.isDev($0.key, fraction: devFraction) }
        }
        return try corpus.qrels(split: split).judgements
    }

    /// Documents relevant to some query of the corpus's train split (none without one).
    public static func seenDocuments(_ corpus: Corpus) -> Set<String> {
        Set(((try? corpus.qrels(split: "train"))?.judgements.values.flatMap { $0.keys }) ?? [])
    }

    /// The report as text lines.
    public static func text(_ r: [String: Any], title: String) -> String {
        func d(_ k: String, _ m: [String: Any]) -> Double { m[k] as? Double ?? 0 }
        var s = title + String(format: ": %d queries, hits@1 %.3f, hits@10 %.3f, mrr@10 %.3f, ndcg@10 %.3f, recall@10 %.3f, %.1f ms/query",
                       r["queries"] as? Int ?? 0, d("hits@1", r), d("hits@10", r), d("mrr@10", r), d("ndcg@10", r), d("recall@10", r), d("ms_per_query", r))
        for name in ["seen", "unseen", "old", "new"] {
            guard let p = r[name] as? [String: Any] else { continue }
            s += "\n  \(name)" + String(format: ": %d queries, hits@1 %.3f, hits@10 %.3f, ndcg@10 %.3f", p["queries"] as? Int ?? 0, d("hits@1", p), d("hits@10", p), d("ndcg@10", p))
        }
        return s
    }
}
