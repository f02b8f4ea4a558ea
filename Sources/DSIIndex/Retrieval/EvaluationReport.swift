import Foundation

/// The report `dsi eval` and `dsi bm25` print (keys are stable: scripts read them): the
/// metrics over all judged queries, the time per query, and the same metrics for `seen`
/// queries (a relevant document is relevant to some train query) and `unseen` ones, and,
/// for a grown index, `old` and `new`. A subset without queries is null, not zeros.
public struct EvaluationReport: Sendable, Codable, Equatable {
    public var all: Metrics.Summary
    public var msPerQuery: Double
    public var seen: Metrics.Summary?
    public var unseen: Metrics.Summary?
    public var old: Metrics.Summary?
    public var new: Metrics.Summary?

    public init(run: [String: [String]], qrels: [String: [String: Int]], seenDocuments: Set<String>, seconds: Double) {
        all = Metrics.summarize(run: run, qrels: qrels)
        msPerQuery = qrels.isEmpty ? 0 : 1000 * seconds / Double(qrels.count)
        seen = Self.subset(run: run, qrels: qrels.filter { $0.value.keys.contains(where: seenDocuments.contains) })
        unseen = Self.subset(run: run, qrels: qrels.filter { !$0.value.keys.contains(where: seenDocuments.contains) })
    }

    /// The summary of a subset of the queries; nil when it has none.
    public static func subset(run: [String: [String]], qrels: [String: [String: Int]]) -> Metrics.Summary? {
        qrels.isEmpty ? nil : Metrics.summarize(run: run, qrels: qrels)
    }

    enum Keys: String, CodingKey {
        case seen, unseen, old, new
        case msPerQuery = "ms_per_query"
    }

    /// Flat keys for the whole set (queries, hits@1, ...), beside ms_per_query and the subsets.
    public func encode(to encoder: Encoder) throws {
        try all.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(msPerQuery, forKey: .msPerQuery)
        try c.encode(seen, forKey: .seen)
        try c.encode(unseen, forKey: .unseen)
        if old != nil || new != nil {
            try c.encode(old, forKey: .old)
            try c.encode(new, forKey: .new)
        }
    }

    public init(from decoder: Decoder) throws {
        all = try Metrics.Summary(from: decoder)
        let c = try decoder.container(keyedBy: Keys.self)
        msPerQuery = try c.decode(Double.self, forKey: .msPerQuery)
        seen = try c.decodeIfPresent(Metrics.Summary.self, forKey: .seen)
        unseen = try c.decodeIfPresent(Metrics.Summary.self, forKey: .unseen)
        old = try c.decodeIfPresent(Metrics.Summary.self, forKey: .old)
        new = try c.decodeIfPresent(Metrics.Summary.self, forKey: .new)
    }

    /// The judgements of a split. `dev` is not a file: it is the share of the train
    /// queries `dsi train` holds out (`DevSplit`), so baselines and checkpoints can be
    /// compared on the split used for tuning.
    public static func qrels(_ corpus: Corpus, split: String, devFraction: Double = TrainingOptions().devFraction) throws(InputError)
        -> [String: [String: Int]]
    {
        if split == "dev" && !corpus.splits.contains("dev") {
            return try corpus.qrels(split: "train").judgements.filter { DevSplit.contains($0.key, fraction: devFraction) }
        }
        return try corpus.qrels(split: split).judgements
    }

    /// Documents relevant to some query of the corpus's train split (none without one).
    public static func seenDocuments(_ corpus: Corpus) -> Set<String> {
        Set(((try? corpus.qrels(split: "train"))?.judgements.values.flatMap { $0.keys }) ?? [])
    }

    /// The report as text lines; an empty subset says "none".
    public func text(title: String) -> String {
        var s =
            title
            + String(
                format: ": %d queries, hits@1 %.3f, hits@10 %.3f, mrr@10 %.3f, ndcg@10 %.3f, recall@10 %.3f, %.1f ms/query",
                all.queries, all.hits1, all.hits10, all.mrr10, all.ndcg10, all.recall10, msPerQuery)
        for (name, p) in [("seen", seen), ("unseen", unseen), ("old", old), ("new", new)] {
            if name == "old" || name == "new", old == nil && new == nil { continue }
            if let p {
                s +=
                    "\n  \(name)"
                    + String(format: ": %d queries, hits@1 %.3f, hits@10 %.3f, ndcg@10 %.3f", p.queries, p.hits1, p.hits10, p.ndcg10)
            } else {
                s += "\n  \(name): none"
            }
        }
        return s
    }
}
