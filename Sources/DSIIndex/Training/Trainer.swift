import CDSISystem
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

    let titleTokens: [[Int32]]
    let textTokens: [[Int32]]
    let keyTermTokens: [[Int32]]
    /// Where each sentence of `textTokens[d]` starts (`Sentences.split`); empty unless
    /// sentence views are on or the document has a held-out sentence.
    let sentenceStarts: [[Int32]]
    /// No labelled train queries: dev is held-out sentences (`HeldOutSentences`).
    public let zeroLabel: Bool
    /// Per token id: does it start a word? (The tokenizer's.)
    var wordStart: [Bool] { tokenizer.wordStart }
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
    public init(
        corpus: Corpus, options: TrainingOptions, tokenizer existing: Tokenizer? = nil, fitLSA: Bool = true,
        log: @escaping (String) -> Void = { _ in }
    ) throws {
        self.corpus = corpus
        self.options = options
        self.log = log
        let clock = ContinuousClock()
        let t0 = clock.now
        let tok =
            existing
            ?? Tokenizer.train(
                texts: Self.tokenizerSample(corpus.documents.count).lazy.map {
                    corpus.documents[$0].title + " " + corpus.documents[$0].text
                },
                vocabSize: options.vocabSize)
        tokenizer = tok
        // Train queries, split deterministically (by a hash of the id) into train and dev.
        var pairs: [(String, Int)] = []
        var dev: [(String, Set<Int>)] = []
        var skipped = 0
        if corpus.splits.contains("train") {
            let qrels = try corpus.qrels(split: "train")
            skipped = qrels.skippedUnknownDocuments
            for q in qrels.queryIDs {
                let docs = Set(qrels.judgements[q]!.keys.compactMap { corpus.position(of: $0) })
                guard let text = corpus.queries[q]?.text, !docs.isEmpty else { continue }
                if DevSplit.contains(q, fraction: options.devFraction) {
                    dev.append((text, docs))
                } else {
                    for d in docs.sorted() { pairs.append((text, d)) }
                }
            }
        }
        // Without labelled queries, dev is one held-out sentence of some documents,
        // removed from everything trained on (`HeldOutSentences`).
        zeroLabel = pairs.isEmpty && dev.isEmpty
        let heldOut = zeroLabel ? HeldOutSentences.choose(corpus.documents, fraction: options.devFraction) : [:]
        titleTokens = corpus.documents.map { tok.encode($0.title) }
        // With sentence views, or for a document with a held-out sentence, the text is
        // encoded sentence by sentence (the same tokens as the whole text: sentences are
        // cut between words), keeping where each sentence starts; otherwise in one piece
        // (splitting is not free: SciFact's tokenizer training and tokenization take 4.5 s
        // with every document split, 2.9 s without, 3.2 s with 10% held out).
        let needSentences = options.sentencesPerDocument > 0
        var text: [[Int32]] = []
        var starts: [[Int32]] = []
        text.reserveCapacity(corpus.documents.count)
        starts.reserveCapacity(corpus.documents.count)
        for (d, doc) in corpus.documents.enumerated() {
            guard needSentences || heldOut[d] != nil else {
                text.append(tok.encode(doc.text))
                starts.append([])
                continue
            }
            var tokens: [Int32] = []
            var s: [Int32] = []
            for (i, sentence) in Sentences.split(doc.text).enumerated() {
                if heldOut[d] == i {
                    dev.append((String(sentence), [d]))
                    continue
                }
                s.append(Int32(tokens.count))
                tokens += tok.encode(String(sentence))
            }
            text.append(tokens)
            starts.append(s)
        }
        textTokens = text
        sentenceStarts = starts
        log(String(format: "tokenizer: %d tokens, corpus tokenized in %.1f s", tok.count, (clock.now - t0).seconds))
        // Key terms: a document's highest TF-IDF tokens, strongest first. The rows of all
        // documents are held only to fit the LSA; otherwise each is made, used and
        // dropped, and the whole documents' token lists are joined one at a time
        // (`fullTokens(_:)`).
        let (title, text0) = (titleTokens, textTokens)
        let idf = LSA.idf(documents: title.count, vocabulary: tok.count) { title[$0] + text0[$0] }
        if fitLSA && (options.docids == .semantic || options.initMode == .lsa) {
            let rows = title.indices.map { LSA.tfidfRow(title[$0] + text0[$0], idf: idf) }
            keyTermTokens = rows.map { LSA.keyTerms($0, options.keyTerms) }
            let t1 = clock.now
            lsa = LSA.fit(tfidf: rows, idf: idf, vocabulary: tok.count, dimensions: options.lsaDimensions, seed: options.seed)
            log(String(format: "LSA: %d dimensions in %.1f s", options.lsaDimensions, (clock.now - t1).seconds))
        } else {
            keyTermTokens = title.indices.map { LSA.keyTerms(LSA.tfidfRow(title[$0] + text0[$0], idf: idf), options.keyTerms) }
            lsa = nil
        }
        trainPairs = pairs
        let sourceLength = options.sourceLength
        trainPairTokens = pairs.map { Array(tok.encode($0.0).prefix(sourceLength)) }
        devQueries = dev
        skippedQrels = skipped
        var perDocument = 0
        for d in corpus.documents.indices {
            perDocument +=
                (titleTokens[d].isEmpty && textTokens[d].isEmpty ? 0 : 1) + (titleTokens[d].isEmpty ? 0 : 1)
                + (keyTermTokens[d].isEmpty ? 0 : 1)
                + (textTokens[d].count > options.viewLength ? options.spansPerDocument : 0)
                + min(options.sentencesPerDocument, sentenceStarts[d].count)
        }
        examplesPerEpoch = perDocument + options.queryRepeats * trainPairTokens.filter { !$0.isEmpty }.count
        if zeroLabel {
            log(
                "no labelled train queries: zero-label training; "
                    + (devQueries.isEmpty
                        ? "no dev split (no document chosen for it has the three sentences a held-out one needs)"
                        : "dev = one held-out sentence of each of \(devQueries.count) documents (removed from their training views)"))
        }
        // Tokenizing, TF-IDF and the LSA leave gigabytes of freed temporaries at a million
        // documents, which glibc keeps in the heap; hand them back so they do not count
        // in training's resident set (`dsi bench scale`'s train phase).
        _ = dsi_release_free_memory()
    }

    /// A document's whole token list: its title's then its text's tokens (words never
    /// span the space between them, so joining the two encodings is encoding the whole).
    func fullTokens(_ d: Int) -> [Int32] { titleTokens[d] + textTokens[d] }

    /// Documents the tokenizer is trained on: all of them up to `tokenizerDocuments`,
    /// else every k-th (a deterministic, evenly spread sample of that many), so tokenizer
    /// training stops growing with the collection.
    public static let tokenizerDocuments = 100_000

    static func tokenizerSample(_ n: Int) -> [Int] {
        guard n > tokenizerDocuments else { return Array(0..<n) }
        return (0..<tokenizerDocuments).map { $0 * n / tokenizerDocuments }
    }

    // MARK: - The index before training

    /// Docids, the model (initialised as `options.initMode` says) and a fresh optimizer.
    public func makeIndex(corpusFingerprint: String) throws -> TrainedIndex {
        let ids = corpus.documents.map(\.id)
        let assignment: DocIDAssignment
        switch options.docids {
        case .atomic: assignment = DocIDAssigner.atomic(ids)
        case .naive: assignment = DocIDAssigner.naive(ids, seed: options.seed)
        case .terms: assignment = DocIDAssigner.terms(ids, keyTerms: keyTermTokens)
        case .ngrams: assignment = DocIDAssigner.ngrams(ids)
        case .semantic:
            assignment = DocIDAssigner.semantic(
                ids, vectors: lsa!.documentVectors, branching: options.branching, leafSize: options.leafSize, seed: options.seed)
        }
        let vocabulary = options.vocabulary(assignment, symbols: tokenizer.count)
        var config = options.preset.modelConfig(
            sourceVocab: tokenizer.count, sourceLength: options.sourceLength, targetVocab: vocabulary.size,
            targetLength: options.docids == .ngrams ? TrainingOptions.ngramLength : vocabulary.maxLength + 1, dropout: options.dropout)
        if let layers = options.layers {
            config.encoderLayers = layers
            config.decoderLayers = layers
        }
        let model = try Seq2Seq(config: config, seed: options.seed)
        if options.initMode == .lsa, let lsa {
            LSAInitializer.apply(lsa, to: model, vocabulary: vocabulary, temperature: options.lsaTemperature)
        }
        return TrainedIndex(
            options: options, tokenizer: tokenizer, docids: assignment, titles: corpus.documents.map(\.title), model: model,
            optimizer: AdamW(weightDecay: options.weightDecay), step: 0, trainingSeconds: 0, corpusFingerprint: corpusFingerprint,
            lsa: lsa, memory: replayMemory(),
            generations: [
                Generation(generation: 0, firstDocument: 0, documents: corpus.documents.count, mode: "train", source: corpus.directory)
            ],
            ngrams: options.docids == .ngrams
                ? NGramIndex(
                    // The whole documents (a zero-label dev sentence is held out of training, not of the index).
                    documents: corpus.documents.map { tokenizer.encode($0.title) + tokenizer.encode($0.text) },
                    depth: TrainingOptions.ngramLength) : nil)
    }

    // MARK: - Evaluation

    /// Hits@1 and Hits@10 of the dev queries (at most `limit`), by constrained beam search.
    public func evaluateDev(_ index: TrainedIndex, limit: Int = 300, beam: Int = 10) throws -> (hits1: Double, hits10: Double, queries: Int)
    {
        let qs = Array(devQueries.prefix(limit))
        if qs.isEmpty { return (.nan, .nan, 0) }
        let results = try index.search(qs.map(\.query), beam: beam, topK: beam)
        var h1 = 0
        var h10 = 0
        for (r, q) in zip(results, qs) {
            if let first = r.first, q.relevant.contains(first.document) { h1 += 1 }
            if r.prefix(10).contains(where: { q.relevant.contains($0.document) }) { h10 += 1 }
        }
        return (Double(h1) / Double(qs.count), Double(h10) / Double(qs.count), qs.count)
    }

    // MARK: - The loop

    /// Trains `index` within `budget`, evaluating on dev and writing the checkpoint to
    /// `output` every `evalEvery` steps and at the end. `stopAt` ends the run early at
    /// that step, with a checkpoint, as an interruption would (the schedule still follows
    /// `budget`). A non-finite step stops the run with `TrainingDiverged`, leaving the
    /// last checkpoint as it was.
    ///
    /// With a `collective` (`mpirun -np N dsi train`), every rank calls this with the same
    /// index and options: each trains on its share of every batch (`TrainingLoop`), and
    /// rank 0 alone evaluates, logs and writes the checkpoint. The report is rank 0's.
    public func train(
        _ index: TrainedIndex, budget: TrainingBudget, output: String, evalEvery: Int = 500, logEvery: Int = 50, stopAt: Int? = nil,
        collective: Collective? = nil, calibrateFusion: Bool = false
    ) throws -> TrainReport {
        let lead = (collective?.rank ?? 0) == 0
        try Checkpoint.checkReplaceable(output)
        let config = index.model.config
        let spe = (examplesPerEpoch + options.batchSize - 1) / options.batchSize
        let totalSteps: Int? =
            switch budget {
            case .steps(let n): n
            case .epochs(let e): Int((e * Double(spe)).rounded(.up))
            case .minutes: nil
            }
        let budgetSeconds: Double? = if case .minutes(let m) = budget { m * 60 } else { nil }
        let schedule = LearningRateSchedule(peak: options.effectiveLearningRate, warmupFraction: Double(options.warmupFraction))
        let loop = TrainingLoop(
            model: index.model, optimizer: index.optimizer, step: index.step, schedule: schedule, labelSmoothing: options.labelSmoothing,
            dropoutSeed: options.seed &+ 0xD0)
        loop.collective = collective
        if options.effectiveObjective == .trie {
            loop.candidates = TrieCandidates(trie: index.trie, maxCandidates: options.sampledCandidates, seed: options.seed)
        }
        let clock = ContinuousClock()
        let start = clock.now
        let secondsBefore = index.trainingSeconds
        var epochCache: (Int, EpochBatches)? = nil
        var lastLoss: Float = .nan
        var tokens = 0
        var lastLog = clock.now
        var dev: (hits1: Double, hits10: Double, queries: Int)? = nil
        var written: (step: Int, path: String)? = nil
        let counts = [
            "examples_per_epoch": examplesPerEpoch, "train_query_pairs": trainPairs.count, "dev_queries": devQueries.count,
            "skipped_qrels": skippedQrels,
        ]
        func elapsed() -> Double { secondsBefore + (clock.now - start).seconds }
        func progress() -> Double {
            if let totalSteps { return totalSteps == 0 ? 1 : Double(index.step) / Double(totalSteps) }
            return elapsed() / max(1, budgetSeconds!)
        }
        func done() -> Bool { progress() >= 1 || (stopAt.map { index.step >= $0 } ?? false) }
        // A weight chosen for the model before this run (a resumed checkpoint's) does not
        // hold for the model this run trains.
        index.fusionCalibration = nil
        func checkpoint(final: Bool = false) throws {
            guard lead else { return }
            dev = try evaluateDev(index)
            index.trainingSeconds = elapsed()
            if final && calibrateFusion {
                // The fusion weight for this model, chosen on dev (FusionCalibration).
                log("fusion with BM25: choosing the weight on dev (a beam of \(Fusion().depth) per dev query)")
                // A failure here must not cost the training run its final checkpoint.
                let calibration: Result<FusionCalibration, FusionCalibration.Skipped>
                do {
                    calibration = try FusionCalibration.choose(index: index, corpus: corpus)
                } catch {
                    calibration = .failure(FusionCalibration.Skipped(reason: "\(error)"))
                }
                switch calibration {
                case .success(let c):
                    index.fusionCalibration = c
                    log(c.text)
                case .failure(let skipped):
                    index.fusionCalibration = nil
                    log("fusion with BM25: no weight chosen (\(skipped.reason)); --fusion bm25 uses the default")
                }
            }
            index.evaluations.append(
                TrainingEvaluation(
                    step: index.step, minutes: index.trainingSeconds / 60, loss: lastLoss.isFinite ? Double(lastLoss) : nil,
                    devHits1: dev!.queries > 0 ? dev!.hits1 : nil, devHits10: dev!.queries > 0 ? dev!.hits10 : nil))
            try index.save(to: output, corpusDirectory: corpus.directory, counts: counts)
            written = (index.step, output)
            log("step \(index.step): " + Self.devText(dev!) + "; checkpoint written to " + output)
        }
        func batch(_ step: Int) -> Seq2SeqBatch {
            let epoch = step / spe
            if epochCache?.0 != epoch {
                epochCache = nil  // the old plan is freed before the new one is made
                epochCache = (epoch, epochBatches(epoch))
            }
            let b = self.batch(step % spe, of: epochCache!.1, vocabulary: index.vocabulary, config: config)
            tokens += b.B * b.S
            return b
        }
        log(
            "training: \(index.model.params.parameterCount) parameters, \(examplesPerEpoch) examples per epoch (\(spe) steps), budget \(budget), from step \(index.step)"
                + (collective.map {
                    ", \($0.size) ranks (data-parallel; each trains on 1/\($0.size) of every batch of \(options.batchSize))"
                } ?? "")
        )
        do {
            try loop.run(done: done, progress: progress, batch: batch) { result in
                index.step = loop.step
                index.optimizer = loop.optimizer
                lastLoss = result.loss
                if lead && (index.step % logEvery == 0 || (clock.now - lastLog).seconds > 30) {
                    lastLog = clock.now
                    let run = (clock.now - start).seconds
                    let p = progress()
                    var line = String(
                        format: "step %d  epoch %.2f  loss %.4f  lr %.2e  %.0f tokens/s", index.step, Double(index.step) / Double(spe),
                        result.loss,
                        result.learningRate, Double(tokens) / max(run, 1e-9))
                    if let dev { line += "  dev hits@10 " + (dev.queries > 0 ? String(format: "%.3f", dev.hits10) : "none") }
                    if p > 0 { line += String(format: "  ETA %.0f s", elapsed() / p - elapsed()) }
                    log(line)
                }
                if index.step % evalEvery == 0 && !done() { try checkpoint() }
            }
        } catch var e as TrainingDiverged {
            e.lastCheckpoint = written
            throw e
        }
        try checkpoint(final: true)
        let run = (clock.now - start).seconds
        var report = TrainReport(
            documents: corpus.documents.count, examples: examplesPerEpoch, steps: index.step, seconds: index.trainingSeconds,
            tokensPerSecond: Double(tokens) / max(run, 1e-9), loss: lastLoss.isFinite ? Double(lastLoss) : nil,
            devHits1: dev.flatMap { $0.queries > 0 ? $0.hits1 : nil }, devHits10: dev.flatMap { $0.queries > 0 ? $0.hits10 : nil },
            devQueries: dev?.queries ?? 0, skippedQrels: skippedQrels)
        report.fusionWeight = index.fusionCalibration?.weight
        if let collective {
            let steps = max(1, loop.exchange.calls)
            report.dataParallel = TrainReport.DataParallel(
                ranks: collective.size, exchangeMsPerStep: loop.exchange.seconds * 1000 / Double(steps),
                exchangeMBPerStep: Double(loop.exchange.bytes) / Double(steps) / 1_048_576)
        }
        return report
    }

    static func devText(_ dev: (hits1: Double, hits10: Double, queries: Int)) -> String {
        dev.queries == 0
            ? "no dev queries" : String(format: "dev hits@1 %.3f hits@10 %.3f (%d queries)", dev.hits1, dev.hits10, dev.queries)
    }
}
