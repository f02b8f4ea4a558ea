import DSIModel
import DSITensor
import DSIText
import Foundation

/// `dsi bench scale`: what building, training and searching cost as the number of
/// documents grows. Each phase runs in its own process (the CLI starts them), so each
/// peak RSS is that phase's alone.
public enum ScaleBenchmark {
    /// One line of `dsi bench scale --json`.
    public struct Result: Sendable, Codable {
        public var documents: Int
        public var docids: String
        public var buildSeconds: Double
        public var buildPeakRSSMB: Double
        public var checkpointBytes: Int
        public var decoderVocabulary: Int
        public var trainMsPerStep: Double
        public var trainPeakRSSMB: Double
        public var loadSeconds: Double
        public var loadPeakRSSMB: Double
        public var queryPeakRSSMB: Double
        /// After the queries: resident anonymous memory, and resident pages of mapped files
        /// (the checkpoint's weights: shared page cache the kernel can reclaim).
        public var queryRSSAnonMB: Double?
        public var queryRSSFileMB: Double?
        public var msPerQueryB1P50: Double
        public var msPerQueryB1P95: Double
        public var msPerQueryB32: Double
        public var trieBytesPerDocid: Double
        public var threads: Int
        public var blasCore: String

        /// The three phases' figures for `documents` documents.
        public init(documents: Int, docids: DocIDScheme, build: Build, train: Train, query: Query) {
            self.documents = documents
            self.docids = docids.rawValue
            buildSeconds = build.seconds
            buildPeakRSSMB = build.peakRSSMB
            checkpointBytes = build.checkpointBytes
            decoderVocabulary = build.decoderVocabulary
            trainMsPerStep = train.msPerStep
            trainPeakRSSMB = train.peakRSSMB
            loadSeconds = query.loadSeconds
            loadPeakRSSMB = query.loadPeakRSSMB
            queryPeakRSSMB = query.peakRSSMB
            queryRSSAnonMB = query.rssAnonMB
            queryRSSFileMB = query.rssFileMB
            msPerQueryB1P50 = query.b1P50
            msPerQueryB1P95 = query.b1P95
            msPerQueryB32 = query.b32
            trieBytesPerDocid = query.trieBytesPerDocid
            threads = Threads.count
            blasCore = BLAS.coreName
        }

        enum CodingKeys: String, CodingKey {
            case documents, docids, threads
            case buildSeconds = "build_seconds"
            case buildPeakRSSMB = "build_peak_rss_mb"
            case checkpointBytes = "checkpoint_bytes"
            case decoderVocabulary = "decoder_vocabulary"
            case trainMsPerStep = "train_ms_per_step"
            case trainPeakRSSMB = "train_peak_rss_mb"
            case loadSeconds = "load_seconds"
            case loadPeakRSSMB = "load_peak_rss_mb"
            case queryPeakRSSMB = "query_peak_rss_mb"
            case queryRSSAnonMB = "query_rss_anon_mb"
            case queryRSSFileMB = "query_rss_file_mb"
            case msPerQueryB1P50 = "ms_per_query_b1_p50"
            case msPerQueryB1P95 = "ms_per_query_b1_p95"
            case msPerQueryB32 = "ms_per_query_b32"
            case trieBytesPerDocid = "trie_bytes_per_docid"
            case blasCore = "blas_core"
        }
    }

    /// Phase 1: tokenizer, tokenisation, LSA, docids and the initialised model (as
    /// `dsi train --steps 0`), then the checkpoint written.
    public struct Build: Sendable, Codable {
        public var seconds: Double
        public var peakRSSMB: Double
        public var checkpointBytes: Int
        public var decoderVocabulary: Int
    }

    public static func build(corpus: String, output: String, docids: DocIDScheme, log: @escaping (String) -> Void) throws -> Build {
        var options = TrainingOptions()
        options.docids = docids
        let clock = ContinuousClock()
        let t0 = clock.now
        let (_, index) = try TrainingRun.prepare(corpus: corpus, options: options, output: output, resume: false, log: log)
        let seconds = (clock.now - t0).seconds
        try index.save(to: output, corpusDirectory: corpus, counts: [:])
        let bytes = try FileManager.default.contentsOfDirectory(atPath: output).reduce(0) { sum, f in
            sum + ((try? FileManager.default.attributesOfItem(atPath: output + "/" + f)[.size] as? Int) ?? 0)
        }
        return Build(
            seconds: seconds, peakRSSMB: ProcessMemory.peakRSSMiB, checkpointBytes: bytes, decoderVocabulary: index.model.config.targetVocab
        )
    }

    /// Phase 2: training steps of the checkpoint's model (batch `batch`, the default
    /// objective) on the first batches of epoch 0, planned and made as `dsi train` makes
    /// them (`Trainer.epochBatches`); median milliseconds per timed step.
    public struct Train: Sendable, Codable {
        public var msPerStep: Double
        public var peakRSSMB: Double
    }

    public static func train(corpus: String, checkpoint: String, steps: Int, warmup: Int, batch: Int) throws -> Train {
        // As `dsi train --resume` does: the training data first (its temporaries freed),
        // then the weights and optimizer state.
        let header = try TrainedIndex.header(from: checkpoint)
        var options = header.options
        options.batchSize = batch
        let trainer = try Trainer(corpus: try Corpus(directory: corpus), options: options, tokenizer: header.tokenizer, fitLSA: false)
        let index = try TrainedIndex.load(from: checkpoint, for: .resume)
        // As `dsi train` holds an epoch: its batch plan, each batch made when its step comes.
        let plan = trainer.epochBatches(0)
        let n = steps + warmup
        precondition(plan.count >= n, "fewer batches in an epoch than steps to time")
        let loop = TrainingLoop(
            model: index.model, optimizer: index.optimizer, step: 0, schedule: LearningRateSchedule(peak: 1e-4, warmupFraction: 0),
            labelSmoothing: index.options.labelSmoothing, dropoutSeed: 1)
        if index.options.objective == .trie {
            loop.candidates = TrieCandidates(trie: index.trie, maxCandidates: index.options.sampledCandidates, seed: 1)
        }
        let clock = ContinuousClock()
        var last = clock.now
        var times: [Double] = []
        try loop.run(
            done: { loop.step >= n }, progress: { Double(loop.step) / Double(n) },
            batch: { trainer.batch($0, of: plan, vocabulary: index.vocabulary, config: index.model.config) },
            after: { _ in
                let now = clock.now
                if loop.step > warmup { times.append((now - last).seconds * 1000) }
                last = now
            })
        times.sort()
        return Train(msPerStep: times[times.count / 2], peakRSSMB: ProcessMemory.peakRSSMiB)
    }

    /// Phase 3: a search-only load, then queries one at a time and in batches of 32.
    public struct Query: Sendable, Codable {
        public var loadSeconds: Double
        public var peakRSSMB: Double
        public var rssAnonMB: Double?
        public var rssFileMB: Double?
        public var loadPeakRSSMB: Double
        public var b1P50: Double
        public var b1P95: Double
        public var b32: Double
        public var trieBytesPerDocid: Double
    }

    public static func query(checkpoint: String, queries: [String], beam: Int = 10) throws -> Query {
        let clock = ContinuousClock()
        let t0 = clock.now
        let index = try TrainedIndex.load(from: checkpoint, for: .search)
        let load = (clock.now - t0).seconds
        let loadPeak = ProcessMemory.peakRSSMiB
        let tokens = queries.map(index.encode)
        _ = try index.search(tokens: [tokens[0]], beam: beam, topK: beam)  // warm-up
        var b1: [Double] = []
        for q in tokens.prefix(50) {
            let t = clock.now
            _ = try index.search(tokens: [q], beam: beam, topK: beam)
            b1.append((clock.now - t).seconds * 1000)
        }
        b1.sort()
        var b32: [Double] = []
        var i = 0
        while i + 32 <= tokens.count && b32.count < 4 {
            let t = clock.now
            _ = try index.search(tokens: Array(tokens[i..<(i + 32)]), beam: beam, topK: beam, batch: 32)
            b32.append((clock.now - t).seconds * 1000 / 32)
            i += 32
        }
        b32.sort()
        return Query(
            loadSeconds: load, peakRSSMB: ProcessMemory.peakRSSMiB, rssAnonMB: ProcessMemory.residentMiB?.anonymous,
            rssFileMB: ProcessMemory.residentMiB?.file, loadPeakRSSMB: loadPeak, b1P50: b1[b1.count / 2],
            b1P95: b1[min(b1.count - 1, Int(Double(b1.count) * 0.95))], b32: b32.isEmpty ? .nan : b32[b32.count / 2],
            trieBytesPerDocid: Double(index.trie.memoryBytes) / Double(index.docids.corpusIDs.count))
    }
}
