import ArgumentParser
import DSIDistributed
import DSIIndex
import DSIServer
import Foundation

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a checkpoint over HTTP: search, online document adds, a search page, metrics.",
        discussion: """
            Loads the checkpoint once and answers GET/POST /search, POST /documents, \
            GET /documents/{id}, GET /health, /stats, /metrics (Prometheus), POST /consolidate \
            and a search page at / (docs/openapi.json describes them). Concurrent searches are \
            batched. An add is written to the write-ahead log (--wal, default <checkpoint>.wal) \
            and fsynced, added in fast mode, and searchable before the reply. Pending adds are \
            consolidated in the background (replay mode) into a new checkpoint generation, \
            written atomically in place, after which the log is truncated. On start, logged \
            documents the checkpoint lacks are added again. SIGTERM or SIGINT: the server \
            answers the requests in flight and exits.
            """)

    @Option(help: "Checkpoint directory (rewritten in place by consolidation).") var checkpoint: String
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed at start).") var port = 8080
    @Option(help: "Write-ahead log (default: <checkpoint>.wal beside the checkpoint).") var wal: String?
    @Option(help: "Queries searched together at most.") var maxBatch = 32
    @Option(help: "Milliseconds a query waits for others to batch with.") var batchWindow: Double = 2
    @Option(help: "Milliseconds without a new query that end that wait sooner.") var batchGap: Double = 0.25
    @Option(help: "Consolidate when this many added documents are pending (0: not by count).") var consolidateEvery = 100
    @Option(help: "Consolidate when the oldest pending add is this many minutes old (0: not by age).") var consolidateMinutes: Double = 10
    @Option(help: "Largest request body, bytes.") var maxBodyBytes = 4 << 20
    @Option(help: "Longest query, characters.") var maxQueryCharacters = 1000
    @Option(help: "Seconds a search may wait in the queue before it is answered 503.") var searchTimeout: Double = 30
    @Option(help: "Seconds an idle connection is kept open.") var idleTimeout: Double = 60
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535, got \(port)") }
        guard maxBatch >= 1, batchWindow >= 0, batchGap >= 0, consolidateEvery >= 0, consolidateMinutes >= 0 else {
            throw ValidationError(
                "need --max-batch ≥ 1, --batch-window ≥ 0, --batch-gap ≥ 0, --consolidate-every ≥ 0, --consolidate-minutes ≥ 0")
        }
        guard maxBodyBytes >= 1024, maxQueryCharacters >= 1, searchTimeout > 0, idleTimeout > 0 else {
            throw ValidationError("need --max-body-bytes ≥ 1024, --max-query-characters ≥ 1, --search-timeout > 0, --idle-timeout > 0")
        }
    }

    func run() throws {
        try refuseUnderMPI("serve")
        try compute.apply()
        let log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("dsi serve: " + $0 + "\n").utf8)) }
        var options = ServiceOptions()
        options.maxBatch = maxBatch
        options.batchWindow = .microseconds(Int64(batchWindow * 1000))
        options.batchGap = .microseconds(Int64(batchGap * 1000))
        options.searchTimeout = .milliseconds(Int64(searchTimeout * 1000))
        options.consolidateEvery = consolidateEvery
        options.consolidateMinutes = consolidateMinutes
        var limits = ServerLimits()
        limits.maxBodyBytes = maxBodyBytes
        limits.maxQueryCharacters = maxQueryCharacters
        let t0 = Date()
        let service = try IndexService(checkpoint: checkpoint, wal: wal, options: options, log: log)
        let s = service.stats
        log(
            String(
                format: "loaded %@ in %.1f s: %d documents (%d pending consolidation), %d threads", checkpoint,
                Date().timeIntervalSince(t0),
                s.documents, s.pendingDocuments, compute.threads))
        let (host, port, idle) = (self.host, self.port, idleTimeout)
        let done = DispatchSemaphore(value: 0)
        let failure = LockedError()
        Task {
            do {
                try await Server.run(
                    service: service, host: host, port: port, limits: limits, idleTimeout: idle,
                    onRunning: { p in
                        log("listening on http://\(host):\(p)")
                        print("listening on http://\(host):\(p)")
                        fflush(stdout)
                    })
                log("stopped")
            } catch {
                failure.set(error)
            }
            done.signal()
        }
        done.wait()
        if let e = failure.get() { throw e }
    }
}

final class LockedError: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?
    func set(_ e: any Error) { lock.withLock { error = e } }
    func get() -> (any Error)? { lock.withLock { error } }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "A checkpoint's training record: its dev evaluations as a table, JSON or an SVG learning curve.")

    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "Write the learning curve (loss and dev hits against minutes) as SVG to this file.") var svg: String?
    @Flag(help: "Print the evaluations as JSON.") var json = false

    func run() throws {
        let index = try TrainedIndex.load(from: checkpoint, for: .search)
        let evals = index.evaluations
        if let svg {
            do {
                try Data(LearningCurve.svg(evals).utf8).write(to: URL(fileURLWithPath: svg), options: .atomic)
            } catch {
                throw ValidationError("\(svg): cannot be written (\(error.localizedDescription))")
            }
        }
        if json {
            try printJSON(evals)
        } else if svg == nil || !evals.isEmpty {
            if evals.isEmpty { print("\(checkpoint): no evaluations recorded (trained before swift-dsi recorded them, or 0 steps)") }
            for e in evals {
                func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "none" }
                print(
                    String(
                        format: "step %6d  %7.2f min  loss %@  dev hits@1 %@  hits@10 %@", e.step, e.minutes, f(e.loss), f(e.devHits1),
                        f(e.devHits10)))
            }
        }
        if let svg { FileHandle.standardError.write(Data("learning curve (\(evals.count) evaluations) written to \(svg)\n".utf8)) }
    }
}
