import DSIModel
import DSITensor
import DSIText
import Foundation

/// Continual indexing: adds documents to a trained index without retraining it (after
/// DSI++ for replay and IncDSI for the per-document fit). Existing docids, tokens and
/// rows never change; new documents get docids where the index's scheme puts them
/// (`DocIDPlacement.swift`), the model grows by their tokens (`Seq2Seq.grown`), their
/// output rows are fitted (`RowFit.swift`), replay mode then fine-tunes with the one
/// training loop (`Replay.swift`), and a forgetting report samples old and new documents
/// (`ForgettingReport.swift`).
public enum ContinualIndexer {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Returns the grown index and the report; `old` is not modified.
    /// - Parameter queries: labelled queries for new documents: (text, position in `documents`).
    public static func add(
        _ old: TrainedIndex, documents: [Document], queries: [(text: String, document: Int)] = [], source: String,
        options: AddOptions = AddOptions(), log: (String) -> Void = { _ in }
    ) throws -> (TrainedIndex, AddReport) {
        let clock = ContinuousClock()
        let t0 = clock.now
        try check(old, documents: documents, mode: options.mode)
        if old.ngrams != nil {
            return try addNGrams(old, documents: documents, queries: queries, source: source, options: options, log: log)
        }
        let opts = old.options
        let D0 = old.docids.corpusIDs.count
        var news = NewDocument.tokenize(documents, queries: queries, index: old)
        var rng = SeededRNG(seed: options.seed &+ 0xADD)
        NewDocument.drawSpans(&news, count: options.spansPerDocument, viewLength: opts.viewLength, rng: &rng)

        // Docids, vocabulary and LSA vectors; the model grown by the new tokens.
        let newVectors = old.lsa.map { l in news.flatMap { l.project($0.full) } } ?? []
        let preferred = try preferredLeaves(old, news)
        let newDocids = try assignDocIDs(
            old, count: news.count, ids: documents.map(\.id), vectors: newVectors, keyTerms: news.map(\.terms), preferred: preferred)
        let docids = DocIDAssignment(
            scheme: old.docids.scheme, corpusIDs: old.docids.corpusIDs + documents.map(\.id), docids: old.docids.docids + newDocids)
        let vocabulary = opts.vocabulary(docids, symbols: old.tokenizer.count)
        for d in 0..<D0 where vocabulary.tokens[d] != old.vocabulary.tokens[d] {
            throw Failure(description: "internal error: adding documents changed the tokens of document \(old.docids.corpusIDs[d])")
        }
        // The old trie plus the new docids (one insert each), shared by every step below.
        var trie = old.trie
        for d in D0..<vocabulary.tokens.count { trie.insert(vocabulary.tokens[d], document: d) }
        let model = try old.model.grown(targetVocab: vocabulary.size, targetLength: vocabulary.maxLength + 1)
        var optimizer = old.optimizer

        let fitStart = clock.now
        if vocabulary.hasDocumentTokens {
            try fitRows(
                model: model, vocabulary: vocabulary, trie: trie, firstNew: D0, views: news.map { $0.views(viewLength: opts.viewLength) },
                memory: old.memory, margin: options.margin, steps: options.fitSteps, competitors: options.competitors,
                cache: old.viewStates)
        }
        let fitSeconds = (clock.now - fitStart).seconds
        log(String(format: "fitted %d new output rows in %.2f s", news.count, fitSeconds))
        let steps =
            options.mode == .replay
            ? try replay(
                model: model, optimizer: &optimizer, vocabulary: vocabulary, trie: trie, news: &news, firstNew: D0, memory: old.memory,
                trained: opts,
                options: options, log: log)
            : 0

        // The grown index: memory and generations extended.
        var memory = old.memory
        for (i, n) in news.enumerated() {
            memory.remember(
                document: D0 + i, full: n.full, title: n.title, terms: n.terms, span: n.spans.first, viewLength: opts.viewLength)
            for q in n.queries { memory.views.append(.init(document: D0 + i, kind: .query, tokens: q)) }
        }
        let generation = (old.generations.map(\.generation).max() ?? 0) + 1
        let grown = TrainedIndex(
            options: opts, tokenizer: old.tokenizer, docids: docids, titles: old.titles + documents.map(\.title), model: model,
            optimizer: optimizer,
            step: old.step + steps, trainingSeconds: old.trainingSeconds, corpusFingerprint: old.corpusFingerprint,
            lsa: old.lsa?.appending(documentRows: newVectors), memory: memory,
            generations: old.generations + [
                Generation(
                    generation: generation, firstDocument: D0, documents: documents.count, mode: options.mode.rawValue, source: source)
            ], vocabulary: vocabulary, trie: trie,
            // Fast mode leaves every old weight as it was: the old views' states still hold.
            viewStates: options.mode == .fast ? old.viewStates : nil,
            // and every moment: a file left on disk (`LoadPurpose.add`) is carried as it is;
            // the old weights, LSA rows and views stay in their files (`AppendBase`).
            carried: old.carried, appendBase: options.mode == .fast ? old.appendBase : nil)
        grown.evaluations = old.evaluations
        grown.fusionCalibration = old.fusionCalibration
        let seconds = (clock.now - t0).seconds
        grown.trainingSeconds += seconds
        var report = AddReport(
            added: documents.count, documents: docids.corpusIDs.count, seconds: seconds, mode: options.mode,
            generation: generation, steps: steps, fitSeconds: fitSeconds)
        if options.sample > 0 {
            try forgettingReport(&report, old: old, grown: grown, news: news, sample: options.sample, seed: options.seed)
        }
        return (grown, report)
    }

    /// Refuses documents already indexed or given twice, and fast mode where documents
    /// have no output token of their own.
    static func check(_ old: TrainedIndex, documents: [Document], mode: AddMode) throws {
        guard old.carried["lsa.safetensors"] == nil && old.carried["replay.tsv"] == nil else {
            throw Failure(
                description:
                    "this index was loaded to resume training (its LSA vectors and replay memory were left on disk); load it with LoadPurpose.training to add documents"
            )
        }
        guard old.carried["optimizer.safetensors"] == nil || mode == .fast || old.ngrams != nil else {
            throw Failure(
                description:
                    "replay mode trains the whole model and needs its optimizer moments, which this index left on disk (LoadPurpose.add); load it with LoadPurpose.training"
            )
        }
        let known = Set(old.docids.corpusIDs)
        var seen = Set<String>()
        for d in documents {
            guard !known.contains(d.id) else { throw Failure(description: "document \"\(d.id)\" is already indexed") }
            guard seen.insert(d.id).inserted else { throw Failure(description: "document \"\(d.id)\" appears twice") }
        }
        if mode == .fast && !old.addsFast {
            throw Failure(
                description:
                    "--mode fast fits a per-document output token; this checkpoint's docids are made of shared tokens ("
                    + (old.docids.scheme == .terms
                        ? "terms" : "\(old.options.docids.rawValue), --docid-tokens \(old.options.docidTokens.rawValue)")
                    + "); use --mode replay, or train with atomic docids (the default up to 100,000 documents) or semantic docids with node tokens"
            )
        }
    }

    /// N-gram retrieval (`--docids ngrams`, as SEAL): a new document is searchable once its
    /// tokens are in the n-gram index, so an add (either mode) indexes it and trains
    /// nothing; the model is shared with `old`. Labelled queries are remembered as views.
    static func addNGrams(
        _ old: TrainedIndex, documents: [Document], queries: [(text: String, document: Int)], source: String, options: AddOptions,
        log: (String) -> Void
    ) throws -> (TrainedIndex, AddReport) {
        let clock = ContinuousClock()
        let t0 = clock.now
        let D0 = old.docids.corpusIDs.count
        let news = NewDocument.tokenize(documents, queries: queries, index: old)
        var ngrams = old.ngrams!
        ngrams.append(news.map(\.full))
        let docids = DocIDAssignment(
            scheme: .ngrams, corpusIDs: old.docids.corpusIDs + documents.map(\.id),
            docids: old.docids.docids + documents.indices.map { [Int32(D0 + $0)] })
        var memory = old.memory
        for (i, n) in news.enumerated() {
            memory.remember(
                document: D0 + i, full: n.full, title: n.title, terms: n.terms, span: nil, viewLength: old.options.viewLength)
            for q in n.queries { memory.views.append(.init(document: D0 + i, kind: .query, tokens: q)) }
        }
        let generation = (old.generations.map(\.generation).max() ?? 0) + 1
        let grown = TrainedIndex(
            options: old.options, tokenizer: old.tokenizer, docids: docids, titles: old.titles + documents.map(\.title), model: old.model,
            optimizer: old.optimizer, step: old.step, trainingSeconds: old.trainingSeconds, corpusFingerprint: old.corpusFingerprint,
            lsa: old.lsa.map { l in l.appending(documentRows: news.flatMap { l.project($0.full) }) }, memory: memory,
            generations: old.generations + [
                Generation(
                    generation: generation, firstDocument: D0, documents: documents.count, mode: options.mode.rawValue, source: source)
            ], carried: old.carried, ngrams: ngrams, appendBase: old.appendBase)
        grown.evaluations = old.evaluations
        grown.fusionCalibration = old.fusionCalibration
        let seconds = (clock.now - t0).seconds
        log(
            String(format: "indexed the n-grams of %d documents in %.2f s (n-gram retrieval trains nothing on an add)", news.count, seconds)
        )
        var report = AddReport(
            added: documents.count, documents: docids.corpusIDs.count, seconds: seconds, mode: options.mode, generation: generation,
            steps: 0, fitSeconds: 0)
        if options.sample > 0 {
            try forgettingReport(&report, old: old, grown: grown, news: news, sample: options.sample, seed: options.seed)
        }
        return (grown, report)
    }
}
