import Foundation

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
