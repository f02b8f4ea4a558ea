import DSIIndex
import Foundation
import Hummingbird
import Logging

/// `dsi serve`: the service on Hummingbird's HTTP/1.1 server. Runs until SIGTERM or
/// SIGINT, then stops accepting connections, answers the requests in flight, waits for
/// the add being applied, and returns.
public enum Server {
    public static func application(
        service: IndexService, host: String, port: Int, limits: ServerLimits = ServerLimits(), idleTimeout: Double = 60,
        metrics: ServerMetrics = ServerMetrics(), onRunning: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> some ApplicationProtocol {
        connect(service, metrics)
        var logger = Logger(label: "dsi-serve")
        logger.logLevel = .warning
        return Application(
            router: Routes.router(service: service, metrics: metrics, limits: limits),
            server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(idleTimeout * 1000)))),
            configuration: .init(address: .hostname(host, port: port), serverName: "swift-dsi"),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// Runs the service until a shutdown signal; checks every 10 s whether pending adds
    /// are due for consolidation.
    public static func run(
        service: IndexService, host: String, port: Int, limits: ServerLimits, idleTimeout: Double,
        onRunning: @escaping @Sendable (Int) -> Void
    ) async throws {
        let app = application(service: service, host: host, port: port, limits: limits, idleTimeout: idleTimeout, onRunning: onRunning)
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(10))
                service.consolidateIfDue()
            }
        }
        defer { ticker.cancel() }
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        service.shutdown()
    }

    /// Wires the service's events to the metrics.
    static func connect(_ service: IndexService, _ metrics: ServerMetrics) {
        service.onBatch = { n, _ in metrics.batch(size: n) }
        service.onAdd = { n, s in
            metrics.added.increment(by: n)
            metrics.addSeconds.recordNanoseconds(Int64(s * 1e9))
        }
        service.onConsolidation = { r in
            if r.error == nil { metrics.consolidations.increment() } else { metrics.consolidationFailures.increment() }
        }
    }
}
