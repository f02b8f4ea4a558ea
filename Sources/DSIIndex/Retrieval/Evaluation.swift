import Foundation

/// `dsi eval`: a checkpoint measured on a split of its corpus (or on its documents'
/// titles as queries), with the old/new split of a grown index.
public enum Evaluation {
    public struct Options: Sendable {
        public var split = "test"
        public var beam = 10
        public var topK = 10
        public var normalization: ConstrainedBeamSearch.Normalization? = nil
        /// Every document's title as a query for itself (self-retrieval), instead of a split.
        public var titles = false
        /// Ids of the documents counted as "new" (default, for a grown index: those `dsi add` added).
        public var added: Set<String>? = nil
        /// Fuse the model's ranking with BM25's (`--fusion bm25`).
        public var fusion: Fusion? = nil
        public init() {}
    }

    public struct Result: Sendable {
        public var report: EvaluationReport
        /// Ranked (corpus id, score) per query id, for a TREC run file.
        public var run: [String: [(String, Float)]]
    }

    public struct Mismatch: Error, CustomStringConvertible {
        public let description: String
    }

    /// Refuses a corpus the checkpoint was not built from: the same corpus.jsonl (by its
    /// fingerprint) for a trained index; exactly the indexed documents for one grown by
    /// `dsi add` (whose corpus.jsonl is not the one trained on).
    public static func checkCorpus(_ corpus: Corpus, matches index: TrainedIndex, checkpoint: String) throws {
        if index.generations.count > 1 {
            let ids = Set(corpus.documents.map(\.id))
            let indexed = Set(index.docids.corpusIDs)
            guard ids == indexed else {
                throw Mismatch(
                    description:
                        "\(corpus.directory)/corpus.jsonl does not hold the checkpoint's documents: \(indexed.subtracting(ids).count) indexed documents missing from it, \(ids.subtracting(indexed).count) of its documents not indexed"
                )
            }
        } else {
            guard let fp = SHA256Digest.hex(file: (corpus.directory as NSString).appendingPathComponent("corpus.jsonl")),
                fp == index.corpusFingerprint
            else {
                throw Mismatch(description: "\(checkpoint) was not trained on \(corpus.directory)/corpus.jsonl (its fingerprint differs)")
            }
        }
    }

    /// The queries and judgements to evaluate: a split's, or the titles as queries.
    public static func queries(_ corpus: Corpus, options: Options, devFraction: Double) throws -> (
        texts: [String: String], qrels: [String: [String: Int]]
    ) {
        var qrels: [String: [String: Int]] = [:]
        var texts: [String: String] = [:]
        if options.titles {
            for d in corpus.documents where !d.title.isEmpty {
                qrels["title:" + d.id] = [d.id: 1]
                texts["title:" + d.id] = d.title
            }
        } else if try HeldOutSentences.definesDev(corpus, split: options.split) {
            for q in HeldOutSentences.queries(corpus.documents, fraction: devFraction) {
                qrels[q.id] = [corpus.documents[q.document].id: 1]
                texts[q.id] = q.text
            }
        } else {
            qrels = try EvaluationReport.qrels(corpus, split: options.split, devFraction: devFraction)
            for q in qrels.keys { texts[q] = corpus.queries[q]!.text }
        }
        return (texts, qrels)
    }

    /// Each document's text as BM25 indexes it (title and text) for a split: on the
    /// held-out dev split of a corpus without labels, without the held-out sentences.
    public static func searchableTexts(_ corpus: Corpus, split: String, devFraction: Double) throws -> [String] {
        let docs = corpus.documents
        if try HeldOutSentences.definesDev(corpus, split: split) {
            return zip(docs, HeldOutSentences.texts(docs, fraction: devFraction)).map { $0.title + " " + $1 }
        }
        return docs.map { $0.title + " " + $0.text }
    }

    public static func run(_ index: TrainedIndex, corpus: Corpus, checkpoint: String, options: Options) throws -> Result {
        try checkCorpus(corpus, matches: index, checkpoint: checkpoint)
        let (texts, qrels) = try queries(corpus, options: options, devFraction: index.options.devFraction)
        let ids = qrels.keys.sorted()
        // BM25 for fusion is built before the clock starts (ms/query is search time).
        let fused = try options.fusion.map {
            try FusedSearch(
                fusion: $0, index: index, corpusIDs: corpus.documents.map(\.id),
                texts: options.titles
                    ? corpus.documents.map { $0.title + " " + $0.text }
                    : searchableTexts(corpus, split: options.split, devFraction: index.options.devFraction))
        }
        let clock = ContinuousClock()
        let t0 = clock.now
        let queries = ids.map { texts[$0]! }
        let hits =
            try fused?.search(queries, index: index, beam: options.beam, topK: options.topK, normalization: options.normalization)
            ?? index.search(queries, beam: options.beam, topK: options.topK, normalization: options.normalization)
        let seconds = (clock.now - t0).seconds
        var ranked: [String: [String]] = [:]
        var scored: [String: [(String, Float)]] = [:]
        for (q, h) in zip(ids, hits) {
            ranked[q] = h.map { index.docids.corpusIDs[$0.document] }
            scored[q] = h.map { (index.docids.corpusIDs[$0.document], $0.score) }
        }
        var report = EvaluationReport(run: ranked, qrels: qrels, seenDocuments: EvaluationReport.seenDocuments(corpus), seconds: seconds)
        if index.generations.count > 1 || options.added != nil {
            // Queries with a relevant document added by dsi add (or listed) are "new", the rest "old".
            let first = index.generations.filter { $0.generation > 0 }.map(\.firstDocument).min() ?? index.docids.corpusIDs.count
            let added = options.added ?? Set(index.docids.corpusIDs[first...])
            report.old = EvaluationReport.subset(run: ranked, qrels: qrels.filter { !$0.value.keys.contains(where: added.contains) })
            report.new = EvaluationReport.subset(run: ranked, qrels: qrels.filter { $0.value.keys.contains(where: added.contains) })
        }
        return Result(report: report, run: scored)
    }
}

extension BM25 {
    /// `dsi bm25`: BM25 over a corpus's documents (title + text), evaluated on a split
    /// with the same report as `dsi eval`; the run keeps the top 100 per query.
    public static func evaluate(_ corpus: Corpus, split: String, k1: Float, b: Float) throws -> Evaluation.Result {
        var options = Evaluation.Options()
        options.split = split
        let fraction = TrainingOptions().devFraction
        let (texts, qrels) = try Evaluation.queries(corpus, options: options, devFraction: fraction)
        let bm25 = BM25(documents: try Evaluation.searchableTexts(corpus, split: split, devFraction: fraction), k1: k1, b: b)
        let ids = qrels.keys.sorted()
        let clock = ContinuousClock()
        let t0 = clock.now
        var ranked: [String: [String]] = [:]
        var scored: [String: [(String, Float)]] = [:]
        for q in ids {
            let hits = bm25.search(texts[q]!, k: 100)
            ranked[q] = hits.map { corpus.documents[$0.document].id }
            scored[q] = hits.map { (corpus.documents[$0.document].id, $0.score) }
        }
        let seconds = (clock.now - t0).seconds
        let report = EvaluationReport(run: ranked, qrels: qrels, seenDocuments: EvaluationReport.seenDocuments(corpus), seconds: seconds)
        return Evaluation.Result(report: report, run: scored)
    }
}
