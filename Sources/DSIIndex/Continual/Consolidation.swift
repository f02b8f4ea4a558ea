import DSIModel
import DSITensor
import Foundation

extension ContinualIndexer {
    /// Consolidates documents that were added in fast mode: replay mode's fine-tuning
    /// (`replay`, the one training loop: their views mixed with replayed views of the
    /// rest) run on an index that already holds them, so their docids stay as they are.
    /// `documents` are the index's documents `firstDocument...` in order (`dsi serve`
    /// keeps them in its write-ahead log). Returns a new index; `index` is not modified
    /// (the model and its optimizer moments are copied first), so it can go on serving
    /// while this runs.
    public static func consolidate(
        _ index: TrainedIndex, documents: [Document], firstDocument D0: Int, options: AddOptions = AddOptions(),
        log: (String) -> Void = { _ in }
    ) throws -> (index: TrainedIndex, steps: Int) {
        guard !index.searchOnly && index.carried.isEmpty else {
            throw Failure(description: "consolidation needs an index loaded for training (LoadPurpose.training)")
        }
        guard D0 >= 0, D0 + documents.count == index.docids.corpusIDs.count, !documents.isEmpty else {
            throw Failure(
                description:
                    "consolidation: expected the last \(index.docids.corpusIDs.count - D0) documents of the index, got \(documents.count)")
        }
        for (i, d) in documents.enumerated() where index.docids.corpusIDs[D0 + i] != d.id {
            throw Failure(
                description: "consolidation: document \(D0 + i) is \"\(index.docids.corpusIDs[D0 + i])\", not \"\(d.id)\"")
        }
        let opts = index.options
        // N-gram retrieval trains nothing on an add: there is nothing to rehearse.
        if index.ngrams != nil { return (index, 0) }
        var news = NewDocument.tokenize(documents, queries: [], index: index)
        var rng = SeededRNG(seed: options.seed &+ 0xC0)
        NewDocument.drawSpans(&news, count: options.spansPerDocument, viewLength: opts.viewLength, rng: &rng)
        // A copy of the weights and moments: the index being consolidated keeps serving.
        let model = try index.model.grown(targetVocab: index.model.config.targetVocab, targetLength: index.model.config.targetLength)
        var optimizer = index.optimizer
        let steps = try replay(
            model: model, optimizer: &optimizer, vocabulary: index.vocabulary, trie: index.trie, news: &news, firstNew: D0,
            memory: index.memory, trained: opts, options: options, log: log)
        let generations = index.generations.map { g in
            var g = g
            if g.firstDocument >= D0 && g.mode == AddMode.fast.rawValue { g.mode = Generation.consolidatedMode }
            return g
        }
        let consolidated = TrainedIndex(
            options: opts, tokenizer: index.tokenizer, docids: index.docids, titles: index.titles, model: model, optimizer: optimizer,
            step: index.step + steps, trainingSeconds: index.trainingSeconds, corpusFingerprint: index.corpusFingerprint,
            lsa: index.lsa, memory: index.memory, generations: generations, vocabulary: index.vocabulary, trie: index.trie)
        consolidated.evaluations = index.evaluations
        consolidated.fusionCalibration = index.fusionCalibration
        return (consolidated, steps)
    }
}

extension Generation {
    /// The mode of a generation added in fast mode and later rehearsed by
    /// `ContinualIndexer.consolidate`.
    public static let consolidatedMode = "fast+replay"
}
