import CDSISystem
import DSIIndex
import DSIModel
import DSITensor
import Foundation

/// What searches read: an immutable index and the lookups derived from it. The writer
/// publishes a new snapshot after each add or consolidation; a search keeps the one it
/// started with.
public struct ServiceSnapshot: Sendable {
    public let index: TrainedIndex
    /// Corpus id → position (row of docids.tsv).
    public let positions: [String: Int]
    /// Documents the checkpoint on disk holds; the rest were added since, in fast mode,
    /// and live in the write-ahead log until a consolidation writes them.
    public let checkpointDocuments: Int

    init(index: TrainedIndex, checkpointDocuments: Int) {
        self.index = index
        self.checkpointDocuments = checkpointDocuments
        var p: [String: Int] = [:]
        p.reserveCapacity(index.docids.corpusIDs.count)
        for (i, id) in index.docids.corpusIDs.enumerated() { p[id] = i }
        positions = p
    }

    public var documents: Int { index.docids.corpusIDs.count }
    public var pendingDocuments: Int { documents - checkpointDocuments }

    /// The generation a document arrived in.
    public func generation(of position: Int) -> Int? {
        index.generations.first { position >= $0.firstDocument && position < $0.firstDocument + $0.documents }?.generation
    }
}

/// Settings of the service (`dsi serve`'s options).
public struct ServiceOptions: Sendable {
    /// Queries searched together at most, how long the first one waits for others, and
    /// the pause in arrivals that ends the wait sooner.
    public var maxBatch = 32
    public var batchWindow: Duration = .milliseconds(2)
    public var batchGap: Duration = .microseconds(250)
    /// A search still queued after this long is answered 503.
    public var searchTimeout: Duration = .seconds(30)
    /// Consolidate when this many documents are pending (0: never by count) or the
    /// oldest pending one is this many minutes old (0: never by age).
    public var consolidateEvery = 100
    public var consolidateMinutes: Double = 10
    /// Replay settings of consolidation (its mode is ignored: consolidation is replay).
    public var consolidation = AddOptions()
    /// Fast-mode settings of each add (the forgetting report is skipped).
    public var fastAdd: AddOptions = {
        var o = AddOptions()
        o.mode = .fast
        o.sample = 0
        return o
    }()
    public init() {}
}

/// The service's errors, each with the HTTP status it is answered with.
public struct ServiceError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case badRequest, notFound, conflict, unsupported, unavailable, payloadTooLarge, internalError }
    public let kind: Kind
    /// The request field at fault ("documents[2].id", "q"), when there is one.
    public let field: String?
    public let message: String

    public init(_ kind: Kind, field: String? = nil, _ message: String) {
        self.kind = kind
        self.field = field
        self.message = message
    }

    public var description: String { field.map { "\($0): \(message)" } ?? message }
}

/// The search service without HTTP: loads a checkpoint once, recovers the write-ahead log,
/// answers searches in batches from immutable snapshots, applies adds in order on one
/// writer (logged and fsynced first, then added in fast mode, then published), and
/// consolidates fast adds in the background (replay, a new checkpoint generation written
/// atomically, the log truncated).
public final class IndexService: @unchecked Sendable {
    public struct AddResult: Codable, Sendable {
        public struct Added: Codable, Sendable {
            public var id: String, docid: String, generation: Int
        }
        public var added: [Added]
        public var documents: Int
        public var pending: Int
        public var seconds: Double
    }

    public struct Consolidation: Codable, Sendable {
        public var documents: Int
        public var steps: Int
        public var seconds: Double
        public var finished: String
        public var error: String?
    }

    public struct Stats: Codable, Sendable {
        public var documents: Int
        public var generations: Int
        public var pendingDocuments: Int
        public var walRecords: Int
        public var checkpoint: String
        public var checkpointDocuments: Int
        public var step: Int
        public var uptimeSeconds: Double
        public var queries: Int
        public var adds: Int
        public var consolidations: Int
        public var consolidating: Bool
        public var lastConsolidation: Consolidation?
        public var acceptsDocuments: Bool

        enum CodingKeys: String, CodingKey {
            case documents, generations, checkpoint, step, queries, adds, consolidations, consolidating
            case pendingDocuments = "pending_documents"
            case walRecords = "wal_records"
            case checkpointDocuments = "checkpoint_documents"
            case uptimeSeconds = "uptime_seconds"
            case lastConsolidation = "last_consolidation"
            case acceptsDocuments = "accepts_documents"
        }
    }

    /// Hooks for metrics (set before serving).
    public var onBatch: @Sendable (_ size: Int, _ seconds: Double) -> Void = { _, _ in }
    public var onAdd: @Sendable (_ documents: Int, _ seconds: Double) -> Void = { _, _ in }
    public var onConsolidation: @Sendable (_ report: Consolidation) -> Void = { _ in }

    public let checkpoint: String
    public let options: ServiceOptions
    public let started = Date()
    let wal: WriteAheadLog
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var current: ServiceSnapshot
    private var queries = 0
    private var adds = 0
    private var consolidations = 0
    private var lastConsolidation: Consolidation?
    // Writer state: touched only on `writer`.
    /// Adds run here one at a time: nice 10 and one thread, so a search arriving during an
    /// add keeps the compute pool and wins the cores (docs/ARCHITECTURE.md, "dsi serve").
    private let writer = WriterThread(name: "dsi.writer", nice: 10, threads: 1)
    private var consolidating: Bool {
        get { lock.withLock { consolidatingFlag } }
        set { lock.withLock { consolidatingFlag = newValue } }
    }
    private var consolidatingFlag = false
    private var pendingSince: Date?
    private var batcher: SearchBatcher!
    private let corpusDirectory: String

    /// Loads `checkpoint` and its write-ahead log (default: `<checkpoint>.wal` beside it),
    /// cuts off a torn last record, and re-applies (fast mode) every logged document the
    /// checkpoint does not hold.
    public init(
        checkpoint: String, wal walPath: String? = nil, options: ServiceOptions = ServiceOptions(),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.checkpoint = checkpoint
        self.options = options
        self.log = log
        var index = try TrainedIndex.load(from: checkpoint, for: .training)
        corpusDirectory = index.generations.first?.source ?? ""
        let path = walPath ?? (URL(fileURLWithPath: checkpoint).standardizedFileURL.path + ".wal")
        wal = try WriteAheadLog(path: path)
        if wal.droppedTailBytes > 0 {
            log("warning: \(path): cut off a torn last record (\(wal.droppedTailBytes) bytes; it was never acknowledged)")
        }
        let checkpointDocuments = index.docids.corpusIDs.count
        let known = Set(index.docids.corpusIDs)
        // Records the checkpoint holds already (a consolidation wrote it, then the process
        // died before truncating the log) are dropped; the others are applied again.
        let stale = wal.records.prefix { $0.documents.allSatisfy { known.contains($0.id) } }
        if let last = stale.last { try wal.truncate(through: last.sequence) }
        let replay = wal.records.flatMap(\.documents).filter { !known.contains($0.id) }
        if !replay.isEmpty {
            log("recovering \(replay.count) logged documents from \(wal.records.count) records of \(path)")
            (index, _) = try ContinualIndexer.add(index, documents: replay, source: "dsi serve", options: options.fastAdd)
            pendingSince = Date()
        }
        current = ServiceSnapshot(index: index, checkpointDocuments: checkpointDocuments)
        batcher = SearchBatcher(
            maxBatch: options.maxBatch, window: options.batchWindow, gap: options.batchGap, timeout: options.searchTimeout,
            snapshot: { self.snapshot }, onBatch: { n, s in self.onBatch(n, s) })
    }

    /// The current snapshot.
    public var snapshot: ServiceSnapshot { lock.withLock { current } }

    /// Whether documents can be added (fast mode needs a decoder token per document).
    public var acceptsDocuments: Bool { snapshot.index.addsFast }

    // MARK: Search

    /// Ranked results for one query, searched in a batch with concurrent ones.
    public func search(_ query: String, k: Int, beam: Int) async throws -> QueryResult {
        let snap = snapshot
        let tokens = snap.index.encode(query)
        guard !tokens.allSatisfy({ $0 == 1 }) else {
            throw ServiceError(.badRequest, field: "q", "the query \"\(query.prefix(80))\" has no words the index knows")
        }
        let (used, hits) = try await batcher.search(tokens: tokens, beam: beam, k: k)
        lock.withLock { queries += 1 }
        return QueryResult(query: query, hits: hits, index: used.index)
    }

    // MARK: Adds

    /// Adds documents: checked against the index (409 for an id already indexed), logged
    /// and fsynced, added in fast mode, published; then returns. Adds run one at a time,
    /// in arrival order; searches go on meanwhile against the previous snapshot.
    public func add(_ documents: [Document]) async throws -> AddResult {
        try await withCheckedThrowingContinuation { c in
            writer.async { c.resume(with: Result { try self.applyAdd(documents) }) }
        }
    }

    private func applyAdd(_ documents: [Document]) throws -> AddResult {
        let t0 = ContinuousClock.now
        let snap = snapshot
        guard acceptsDocuments else {
            throw ServiceError(
                .unsupported,
                "this checkpoint's docids are shared digit tokens (\(snap.index.options.docids.rawValue), --docid-tokens \(snap.index.options.docidTokens.rawValue)); documents can be added online only with atomic docids, tree-node tokens or n-grams; use dsi add --mode replay"
            )
        }
        guard !documents.isEmpty else { throw ServiceError(.badRequest, field: "documents", "expected at least one document") }
        var seen: [String: Int] = [:]
        for (i, d) in documents.enumerated() {
            if let first = seen[d.id] {
                throw ServiceError(.badRequest, field: "documents[\(i)].id", "document \"\(d.id)\" appears twice (first at \(first))")
            }
            seen[d.id] = i
            if snap.positions[d.id] != nil {
                throw ServiceError(.conflict, field: "documents[\(i)].id", "document \"\(d.id)\" is already indexed")
            }
        }
        let record = try wal.append(documents)
        let grown: TrainedIndex
        do {
            (grown, _) = try ContinualIndexer.add(snap.index, documents: documents, source: "dsi serve", options: options.fastAdd)
        } catch {
            try wal.removeLast(record)
            throw ServiceError(.internalError, "the documents could not be added (nothing was kept): \(error)")
        }
        let next = ServiceSnapshot(index: grown, checkpointDocuments: snap.checkpointDocuments)
        lock.withLock {
            current = next
            adds += documents.count
        }
        if pendingSince == nil { pendingSince = Date() }
        let generation = grown.generations.last!.generation
        let seconds = (ContinuousClock.now - t0).seconds
        onAdd(documents.count, seconds)
        if options.consolidateEvery > 0 && next.pendingDocuments >= options.consolidateEvery { startConsolidation() }
        return AddResult(
            added: documents.map { d in
                let p = next.positions[d.id]!
                return .init(id: d.id, docid: grown.docids.text(p), generation: generation)
            }, documents: next.documents, pending: next.pendingDocuments, seconds: seconds)
    }

    // MARK: Consolidation

    /// Starts a consolidation of the pending documents unless one is running or none is
    /// pending. Returns whether one started.
    @discardableResult
    public func requestConsolidation() async -> Bool {
        await withCheckedContinuation { c in writer.async { c.resume(returning: self.startConsolidation()) } }
    }

    /// Consolidates now and waits for it (and for any running one) to finish.
    public func consolidateAndWait() async -> Consolidation? {
        _ = await requestConsolidation()
        while consolidating {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return lock.withLock { lastConsolidation }
    }

    /// Starts one when the oldest pending document is older than `consolidateMinutes`.
    public func consolidateIfDue() {
        writer.async {
            guard self.options.consolidateMinutes > 0, let since = self.pendingSince else { return }
            if Date().timeIntervalSince(since) >= self.options.consolidateMinutes * 60 { self.startConsolidation() }
        }
    }

    /// On `writer`.
    @discardableResult
    private func startConsolidation() -> Bool {
        let snap = snapshot
        guard !consolidating, snap.pendingDocuments > 0, let through = wal.records.last?.sequence else { return false }
        consolidating = true
        let docs = Array(wal.records.flatMap(\.documents).suffix(snap.pendingDocuments))
        log("consolidating \(docs.count) documents added since the checkpoint (replay mode, in the background)")
        let options = self.options.consolidation
        let (checkpoint, corpusDirectory, log) = (self.checkpoint, self.corpusDirectory, self.log)
        Thread.detachNewThread {
            // Background work: searches and adds come first for the CPU and the pool.
            _ = dsi_set_thread_nice(19)
            Threads.limitCurrentThread(to: 1)
            let t0 = ContinuousClock.now
            do {
                let (index, steps) = try ContinualIndexer.consolidate(
                    snap.index, documents: docs, firstDocument: snap.checkpointDocuments, options: options, log: log)
                try index.save(to: checkpoint, corpusDirectory: corpusDirectory, counts: ["consolidated": docs.count])
                let report = Consolidation(
                    documents: docs.count, steps: steps, seconds: (ContinuousClock.now - t0).seconds,
                    finished: ISO8601DateFormatter().string(from: Date()), error: nil)
                self.writer.async { self.finishConsolidation(index, through: through, report: report) }
            } catch {
                let report = Consolidation(
                    documents: docs.count, steps: 0, seconds: (ContinuousClock.now - t0).seconds,
                    finished: ISO8601DateFormatter().string(from: Date()), error: "\(error)")
                log("error: consolidation failed (the documents stay in the write-ahead log and are searchable): \(error)")
                self.writer.async {
                    self.consolidating = false
                    self.lock.withLock { self.lastConsolidation = report }
                    self.onConsolidation(report)
                }
            }
        }
        return true
    }

    /// On `writer`: the consolidated index, with the adds that arrived meanwhile applied
    /// again on top of it, becomes the snapshot; the log keeps only those adds.
    private func finishConsolidation(_ consolidated: TrainedIndex, through: UInt64, report: Consolidation) {
        defer { consolidating = false }
        var report = report
        let later = wal.records.filter { $0.sequence > through }
        do {
            var index = consolidated
            let docs = later.flatMap(\.documents)
            if !docs.isEmpty {
                (index, _) = try ContinualIndexer.add(consolidated, documents: docs, source: "dsi serve", options: options.fastAdd)
            }
            let next = ServiceSnapshot(index: index, checkpointDocuments: consolidated.docids.corpusIDs.count)
            lock.withLock { current = next }
            try wal.truncate(through: through)
            pendingSince = later.isEmpty ? nil : Date()
            log(
                String(
                    format: "consolidated %d documents in %.1f s (%d replay steps); checkpoint %@ written, %d records left in the log",
                    report.documents, report.seconds, report.steps, checkpoint, later.count))
        } catch {
            report.error = "\(error)"
            log("error: after consolidation: \(error) (the log is kept whole; a restart recovers from it)")
        }
        lock.withLock {
            consolidations += 1
            lastConsolidation = report
        }
        onConsolidation(report)
    }

    // MARK: Stats and shutdown

    public var stats: Stats {
        let snap = snapshot
        let records = wal.recordCount
        let accepts = acceptsDocuments
        return lock.withLock {
            Stats(
                documents: snap.documents, generations: snap.index.generations.count, pendingDocuments: snap.pendingDocuments,
                walRecords: records, checkpoint: checkpoint, checkpointDocuments: snap.checkpointDocuments, step: snap.index.step,
                uptimeSeconds: Date().timeIntervalSince(started), queries: queries, adds: adds, consolidations: consolidations,
                consolidating: consolidatingFlag, lastConsolidation: lastConsolidation, acceptsDocuments: accepts)
        }
    }

    /// Stops taking searches (queued ones are still answered) and waits for the add being
    /// applied (if any) to finish. Call it when done with the service: the search thread
    /// holds the service until then.
    public func shutdown() {
        batcher.stop()
        writer.stop()
    }
}
