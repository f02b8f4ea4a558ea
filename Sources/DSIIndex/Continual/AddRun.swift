import Foundation

extension ContinualIndexer {
    /// `dsi add` from files: reads and checks everything first (the new documents, their
    /// labelled queries), then adds them and writes the grown checkpoint to `output`
    /// (atomically; only over a checkpoint). Nothing is changed when any input is bad.
    public static func add(
        checkpoint: String, documents path: String, queries: String? = nil, qrels: String? = nil, output: String,
        options: AddOptions, log: (String) -> Void = { _ in }
    ) throws -> AddReport {
        try Checkpoint.checkReplaceable(output)
        // Fast mode changes no moment: they stay on disk and the grown checkpoint links
        // the same file (an add then costs the weights it grows, not the moments too).
        let clock = ContinuousClock()
        let t0 = clock.now
        let index = try TrainedIndex.load(from: checkpoint, for: options.mode == .fast ? .add : .training)
        log("loaded \(checkpoint) (\(index.docids.corpusIDs.count) documents) in " + String(format: "%.1f s", (clock.now - t0).seconds))
        let known = Set(index.docids.corpusIDs)
        let docs = try Corpus.readDocuments(path, known: known.contains)
        var labelled: [(text: String, document: Int)] = []
        var skipped = 0
        if let queries, let qrels {
            let qs = try Corpus.readQueries(queries)
            let position = Dictionary(uniqueKeysWithValues: docs.enumerated().map { ($1.id, $0) })
            let judged = try Corpus.readQrels(qrels, queries: { qs[$0] != nil }, documents: { position[$0] != nil })
            skipped = judged.skippedUnknownDocuments
            for q in judged.queryIDs { for d in judged.judgements[q]!.keys.sorted() { labelled.append((qs[q]!.text, position[d]!)) } }
        }
        log(
            "adding \(docs.count) documents to \(checkpoint) (\(index.docids.corpusIDs.count) indexed), "
                + (index.ngrams != nil ? "n-gram index only (nothing to train)" : "mode \(options.mode.rawValue)")
                + (labelled.isEmpty ? "" : ", \(labelled.count) labelled queries"))
        var (grown, report) = try add(index, documents: docs, queries: labelled, source: path, options: options, log: log)
        report.skippedQrels = skipped
        let t1 = clock.now
        try grown.save(
            to: output, corpusDirectory: grown.generations.first?.source ?? "", counts: ["added": docs.count, "skipped_qrels": skipped])
        log("wrote \(output) in " + String(format: "%.1f s", (clock.now - t1).seconds))
        return report
    }
}
