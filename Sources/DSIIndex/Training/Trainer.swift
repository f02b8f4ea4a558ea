import DSIModel
import DSITensor
import DSIText
import Foundation

/// Builds a corpus's training data and trains a `TrainedIndex` on it.
///
/// Everything random is derived from the seed and the step (the data of epoch e from
/// (seed, e); the dropout masks of step s from (seed, s)), so `--resume` from a checkpoint
/// at step s continues exactly as an uninterrupted run would.
public final class Trainer {
    public let corpus: Corpus
    public let options: TrainingOptions
    /// Progress lines (stderr in the CLI).
    public var log: (String) -> Void = { _ in }

    let fullTokens: [[Int32]]  // title + text, per document
    let titleTokens: [[Int32]]
    let textTokens: [[Int32]]
    let keyTermTokens: [[Int32]]
    public let trainPairs: [(query: String, document: Int)]
    /// The train queries' tokens, cut to the source length (parallel to `trainPairs`).
    let trainPairTokens: [[Int32]]
    /// Examples in one epoch (the same every epoch).
    public let examplesPerEpoch: Int
    public let devQueries: [(query: String, relevant: Set<Int>)]
    public let skippedQrels: Int
    public let tokenizer: Tokenizer
    let lsa: LSA?

    /// Tokenizes the corpus, splits train queries into train and dev, and (for semantic
    /// docids or LSA initialisation) fits the LSA.
    public init(corpus: Corpus, options: TrainingOptions, tokenizer existing: Tokenizer? = nil, fitLSA: Bool = true, log: @escaping (String) -> Void = { _ in }) throws {
        self.corpus = corpus
        self.options = options
        self.log = log
        let clock = ContinuousClock()
        let t0 = clock.now
        let texts = corpus.documents.map { $0.title + " " + $0.text }
        let tok = existing ?? Tokenizer.train(texts: texts, vocabSize: options.vocabSize)
        tokenizer = tok
        fullTokens = texts.map { tok.encode($0) }
        titleTokens = corpus.documents.map { tok.encode($0.title) }
        textTokens = corpus.documents.map { tok.encode($0.text) }
        log(String(format: "tokenizer: %d tokens, corpus tokenized in %.1f s", tok.count, (clock.now - t0).seconds))
        // Key terms: a document's highest TF-IDF tokens, strongest first.
        let full = fullTokens
        let (rows, idf) = LSA.tfidf(full, vocabulary: tok.count)
        keyTermTokens = rows.map { LSA.keyTerms($0, options.keyTerms) }
        if fitLSA && (options.docids == .semantic || options.initMode == .lsa) {
            let t1 = clock.now
            lsa = LSA.fit(tfidf: rows, idf: idf, vocabulary: tok.count, dimensions: options.lsaDimensions, seed: options.seed)
            log(String(format: "LSA: %d dimensions in %.1f s", options.lsaDimensions, (clock.now - t1).seconds))
        } else {
            lsa = nil
        }
        // Train queries, split deterministically (by a hash of the id) into train and dev.
        var pairs: [(String, Int)] = [], dev: [(String, Set<Int>)] = []
        var skipped = 0
        if corpus.splits.contains("train") {
            let qrels = try corpus.qrels(split: "train")
            skipped = qrels.skippedUnknownDocuments
            for q in qrels.queryIDs {
                let docs = Set(qrels.judgements[q]!.keys.compactMap { corpus.position(of: $0) })
                guard let text = corpus.queries[q]?.text, !docs.isEmpty else { continue }
                if Self.isDev(q, fraction: options.devFraction) {
                    dev.append((text, docs))
                } else {
                    for d in docs.sorted() { pairs.append((text, d)) }
                }
            }
        }
        trainPairs = pairs
        let sourceLength = options.sourceLength
        trainPairTokens = pairs.map { Array(tok.encode($0.0).prefix(sourceLength)) }
        devQueries = dev
        skippedQrels = skipped
        var perDocument = 0
        for d in corpus.documents.indices {
            perDocument += (full[d].isEmpty ? 0 : 1) + (titleTokens[d].isEmpty ? 0 : 1) + (keyTermTokens[d].isEmpty ? 0 : 1)
                + (textTokens[d].count > options.viewLength ? options.spansPerDocument : 0)
        }
        examplesPerEpoch = perDocument + options.queryRepeats * trainPairTokens.filter { !$0.isEmpty }.count
    }

    /// Dev membership from FNV-1a of the query id: stable across runs and machines.
    public static func isDev(_ id: String, fraction: Double) -> Bool {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Double(h % 10_000) < fraction * 10_000
    }

    // MARK: - The index before training

    /// Docids, the model (initialised as `options.initMode` says) and a fresh optimizer.
    public func makeIndex(corpusFingerprint: String) throws -> TrainedIndex {
        let ids = corpus.documents.map(\.id)
        let assignment: DocIDAssignment
        switch options.docids {
        case .atomic: assignment = DocIDAssigner.atomic(ids)
        case .naive: assignment = DocIDAssigner.naive(ids, seed: options.seed)
        case .semantic:
            assignment = DocIDAssigner.semantic(ids, vectors: lsa!.documentVectors, branching: options.branching, leafSize: options.leafSize, seed: options.seed)
        }
        let vocabulary = options.vocabulary(assignment)
        var config = options.preset.modelConfig(
            sourceVocab: tokenizer.count, sourceLength: options.sourceLength, targetVocab: vocabulary.size,
            targetLength: vocabulary.maxLength + 1, dropout: options.dropout)
        if let layers = options.layers { config.encoderLayers = layers; config.decoderLayers = layers }
        let model = try Seq2Seq(config: config, seed: options.seed)
        if options.initMode == .lsa, let lsa { LSAInitializer.apply(lsa, to: model, vocabulary: vocabulary, temperature: options.lsaTemperature) }
        return TrainedIndex(options: options, tokenizer: tokenizer, docids: assignment, titles: corpus.documents.map(\.title), model: model,
                            optimizer: AdamW(weightDecay: options.weightDecay), step: 0, trainingSeconds: 0, corpusFingerprint: corpusFingerprint,
                            lsa: lsa, memory: replayMemory(),
                            generations: [Generation(generation: 0, firstDocument: 0, documents: corpus.documents.count, mode: "train", source: corpus.directory)])
    }

    /// The views `dsi add` rehearses: per document its leading tokens, title, key terms
    /// and one span (drawn from the seed), and every labelled train query (not dev).
    public func replayMemory() -> ReplayMemory {
        var rng = SeededRNG(seed: options.seed &+ 0x4E_4D)
        let L = options.viewLength
        var memory = ReplayMemory()
        for d in corpus.documents.indices {
            let text = textTokens[d]
            let span = text.count > L ? { let s = rng.int(below: text.count - L + 1); return Array(text[s..<(s + L)]) }() : nil
            memory.remember(document: d, full: fullTokens[d], title: titleTokens[d], terms: keyTermTokens[d], span: span, viewLength: L)
        }
        for (s, (_, d)) in zip(trainPairTokens, trainPairs) where !s.isEmpty { memory.views.append(.init(document: d, kind: .query, tokens: s)) }
        return memory
    }

    // MARK: - Training data

    /// The examples of one epoch, shuffled: per document its leading tokens, its title,
    /// `spansPerDocument` random spans and its key terms; each train query `queryRepeats`
    /// times.
    public func examples(epoch: Int) -> [TrainingExample] {
        var rng = SeededRNG(seed: options.seed &+ 0x5EED &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        let L = options.viewLength
        var out: [TrainingExample] = []
        for d in corpus.documents.indices {
            let full = fullTokens[d], text = textTokens[d]
            if !full.isEmpty { out.append(TrainingExample(source: Array(full.prefix(L)), document: d)) }
            if !titleTokens[d].isEmpty { out.append(TrainingExample(source: Array(titleTokens[d].prefix(L)), document: d)) }
            for _ in 0..<options.spansPerDocument where text.count > L {
                let start = rng.int(below: text.count - L + 1)
                out.append(TrainingExample(source: Array(text[start..<(start + L)]), document: d))
            }
            if !keyTermTokens[d].isEmpty { out.append(TrainingExample(source: keyTermTokens[d], document: d)) }
        }
        for _ in 0..<options.queryRepeats {
            for (s, (_, d)) in zip(trainPairTokens, trainPairs) where !s.isEmpty {
                out.append(TrainingExample(source: s, document: d))
            }
        }
        out.shuffle(using: &rng)
        return out
    }

    /// An epoch's batches: shuffled examples, bucketed by length within windows of 32
    /// batches (less padding), the batch order shuffled again.
    func batches(epoch: Int, vocabulary: TargetVocabulary, config: ModelConfig) -> [Seq2SeqBatch] {
        var rng = SeededRNG(seed: options.seed &+ 0xBA7C &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        let ex = examples(epoch: epoch)
        let B = options.batchSize, window = B * 32
        var groups: [[TrainingExample]] = []
        var i = 0
        while i < ex.count {
            let chunk = ex[i..<min(ex.count, i + window)].sorted { $0.source.count < $1.source.count }
            var j = 0
            while j < chunk.count {
                groups.append(Array(chunk[j..<min(chunk.count, j + B)]))
                j += B
            }
            i += window
        }
        groups.shuffle(using: &rng)
        return groups.map { Self.makeBatch($0, vocabulary: vocabulary, config: config) }
    }

    static func makeBatch(_ ex: [TrainingExample], vocabulary: TargetVocabulary, config: ModelConfig) -> Seq2SeqBatch {
        let B = ex.count
        let S = max(1, min(config.sourceLength, ex.map(\.source.count).max() ?? 1))
        let T = config.targetLength
        var src = [Int32](repeating: Tokenizer.pad, count: B * S), mask = [Float](repeating: 0, count: B * S)
        var tin = [Int32](repeating: TargetVocabulary.pad, count: B * T), tout = [Int32](repeating: Seq2Seq.ignoreIndex, count: B * T)
        for (b, e) in ex.enumerated() {
            for (i, t) in e.source.prefix(S).enumerated() { src[b * S + i] = t; mask[b * S + i] = 1 }
            let target = vocabulary.target(e.document)
            for (i, t) in target.enumerated() where i < T {
                tout[b * T + i] = t
                tin[b * T + i] = i == 0 ? TargetVocabulary.bos : target[i - 1]
            }
        }
        return Seq2SeqBatch(B: B, S: S, T: T, source: src, sourceMask: mask, targetIn: tin, targetOut: tout)
    }

    // MARK: - Evaluation

    /// Hits@1 and Hits@10 of the dev queries (at most `limit`), by constrained beam search.
    public func evaluateDev(_ index: TrainedIndex, limit: Int = 300, beam: Int = 10) throws -> (hits1: Double, hits10: Double, queries: Int) {
        let qs = Array(devQueries.prefix(limit))
        if qs.isEmpty { return (.nan, .nan, 0) }
        let results = try index.search(qs.map(\.query), beam: beam, topK: beam)
        var h1 = 0, h10 = 0
        for (r, q) in zip(results, qs) {
            if let first = r.first, q.relevant.contains(first.document) { h1 += 1 }
            if r.prefix(10).contains(where: { q.relevant.contains($0.document) }) { h10 += 1 }
        }
        return (Double(h1) / Double(qs.count), Double(h10) / Double(qs.count), qs.count)
    }

    // MARK: - The loop

    /// Trains `index` within `budget`, evaluating on dev and writing the checkpoint to
    /// `output` every `evalEvery` steps and at the end.
    /// `stopAt` ends the run early at that step, with a checkpoint, as an interruption would
    /// (the schedule still follows `budget`).
    public func train(_ index: TrainedIndex, budget: TrainingBudget, output: String, evalEvery: Int = 500, logEvery: Int = 50, stopAt: Int? = nil) throws -> TrainReport {
        let model = index.model
        let config = model.config
        let spe = (examplesPerEpoch + options.batchSize - 1) / options.batchSize
        let totalSteps: Int? = switch budget {
        case let .steps(n): n
        case let .epochs(e): Int((e * Double(spe)).rounded(.up))
        case .minutes: nil
        }
        let budgetSeconds: Double? = if case let .minutes(m) = budget { m * 60 } else { nil }
        let peak = options.effectiveLearningRate
        func lr(_ progress: Double) -> Float {
            let w = Double(options.warmupFraction)
            if progress < w { return peak * Float(max(progress / w, 0.01)) }
            let p = min(1, (progress - w) / max(1e-9, 1 - w))
            return peak * Float(0.1 + 0.9 * 0.5 * (1 + cos(Double.pi * p)))
        }
        let ws = Workspace()
        let clock = ContinuousClock()
        let start = clock.now
        let secondsBefore = index.trainingSeconds
        var epochCache: (Int, [Seq2SeqBatch])? = nil
        var lastLoss: Float = .nan
        var tokens = 0
        var lastLog = clock.now
        var dev = (hits1: Double.nan, hits10: Double.nan, queries: 0)
        let counts = ["examples_per_epoch": examplesPerEpoch, "train_query_pairs": trainPairs.count, "dev_queries": devQueries.count, "skipped_qrels": skippedQrels]
        func elapsed() -> Double { secondsBefore + (clock.now - start).seconds }
        func progress() -> Double {
            if let totalSteps { return totalSteps == 0 ? 1 : Double(index.step) / Double(totalSteps) }
            return elapsed() / max(1, budgetSeconds!)
        }
        func done() -> Bool { progress() >= 1 || (stopAt.map { index.step >= $0 } ?? false) }
        func checkpoint() throws {
            dev = try evaluateDev(index)
            index.trainingSeconds = elapsed()
            try index.save(to: output, corpusDirectory: corpus.directory, counts: counts)
            log(String(format: "step %d: dev hits@1 %.3f hits@10 %.3f (%d queries); checkpoint written to ", index.step, dev.hits1, dev.hits10, dev.queries) + output)
        }
        log("training: \(model.params.parameterCount) parameters, \(examplesPerEpoch) examples per epoch (\(spe) steps), budget \(budget), from step \(index.step)")
        while !done() {
            let epoch = index.step / spe
            if epochCache?.0 != epoch { epochCache = (epoch, batches(epoch: epoch, vocabulary: index.vocabulary, config: config)) }
            let batch = epochCache!.1[index.step % spe]
            var rng = SeededRNG(seed: options.seed &+ 0xD0 &+ UInt64(index.step) &* 0x9E37_79B9_7F4A_7C15)
            let result = try model.trainStep(batch, workspace: ws, optimizer: &index.optimizer, lr: lr(progress()), clipNorm: 1,
                                             smoothing: options.labelSmoothing, rng: &rng)
            lastLoss = result.loss
            tokens += batch.B * batch.S
            index.step += 1
            if index.step % logEvery == 0 || (clock.now - lastLog).seconds > 30 {
                lastLog = clock.now
                let run = (clock.now - start).seconds
                let eta = progress() > 0 ? (elapsed() / progress() - elapsed()) : .nan
                log(String(format: "step %d  epoch %.2f  loss %.4f  lr %.2e  %.0f tokens/s  dev hits@10 %.3f  ETA %.0f s",
                           index.step, Double(index.step) / Double(spe), lastLoss, lr(progress()), Double(tokens) / max(run, 1e-9), dev.hits10, eta))
            }
            if index.step % evalEvery == 0 && !done() { try checkpoint() }
        }
        try checkpoint()
        let run = (clock.now - start).seconds
        return TrainReport(documents: corpus.documents.count, examples: examplesPerEpoch, steps: index.step, seconds: index.trainingSeconds,
                           tokensPerSecond: Double(tokens) / max(run, 1e-9), loss: lastLoss, devHits1: dev.hits1, devHits10: dev.hits10,
                           devQueries: dev.queries, skippedQrels: skippedQrels)
    }
}
