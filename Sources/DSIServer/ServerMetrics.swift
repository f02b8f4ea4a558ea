import CoreMetrics
import Foundation
import Metrics
import Prometheus

/// The service's metrics, through swift-metrics with a Prometheus registry of its own
/// (not the process-wide `MetricsSystem`, so several servers, as in the tests, keep
/// their figures apart). `GET /metrics` renders the registry in Prometheus's text format.
public final class ServerMetrics: @unchecked Sendable {
    public let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var requestCounters: [String: CoreMetrics.Counter] = [:]
    private var latencyTimers: [String: CoreMetrics.Timer] = [:]
    let queries: CoreMetrics.Counter
    let added: CoreMetrics.Counter
    let consolidations: CoreMetrics.Counter
    let consolidationFailures: CoreMetrics.Counter
    let batchSize: CoreMetrics.Recorder
    let addSeconds: CoreMetrics.Timer
    let queriesPerSecond: CoreMetrics.Gauge
    let documents: CoreMetrics.Gauge
    let pending: CoreMetrics.Gauge
    // Queries per second over the last full 10-second window.
    private var windowStart = Date()
    private var windowQueries = 0

    public init() {
        var f = PrometheusMetricsFactory(registry: registry)
        f.valueHistogramBuckets["dsi_search_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128]
        f.durationHistogramBuckets["dsi_http_request_duration_seconds"] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50),
            .milliseconds(100), .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        f.durationHistogramBuckets["dsi_add_duration_seconds"] = [
            .milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5),
            .seconds(10), .seconds(30),
        ]
        factory = f
        queries = Counter(label: "dsi_queries_total", factory: f)
        added = Counter(label: "dsi_documents_added_total", factory: f)
        consolidations = Counter(label: "dsi_consolidations_total", factory: f)
        consolidationFailures = Counter(label: "dsi_consolidation_failures_total", factory: f)
        batchSize = CoreMetrics.Recorder(label: "dsi_search_batch_size", aggregate: true, factory: f)
        addSeconds = Timer(label: "dsi_add_duration_seconds", factory: f)
        queriesPerSecond = CoreMetrics.Gauge(label: "dsi_queries_per_second", factory: f)
        documents = CoreMetrics.Gauge(label: "dsi_documents", factory: f)
        pending = CoreMetrics.Gauge(label: "dsi_pending_documents", factory: f)
    }

    /// One finished request: its count by endpoint, method and status, and its latency
    /// by endpoint and method.
    func request(endpoint: String, method: String, status: Int, seconds: Double) {
        let key = "\(endpoint)\u{0}\(method)\u{0}\(status)"
        let timerKey = "\(endpoint)\u{0}\(method)"
        let (counter, timer) = lock.withLock {
            let c =
                requestCounters[key]
                ?? {
                    let c = Counter(
                        label: "dsi_http_requests_total",
                        dimensions: [("endpoint", endpoint), ("method", method), ("status", String(status))], factory: factory)
                    requestCounters[key] = c
                    return c
                }()
            let t =
                latencyTimers[timerKey]
                ?? {
                    let t = Timer(
                        label: "dsi_http_request_duration_seconds", dimensions: [("endpoint", endpoint), ("method", method)],
                        factory: factory)
                    latencyTimers[timerKey] = t
                    return t
                }()
            return (c, t)
        }
        counter.increment()
        timer.recordNanoseconds(Int64(seconds * 1e9))
    }

    func batch(size: Int) {
        batchSize.record(size)
        queries.increment(by: size)
        let now = Date()
        let rate: Double? = lock.withLock {
            windowQueries += size
            let span = now.timeIntervalSince(windowStart)
            guard span >= 10 else { return nil }
            defer {
                windowStart = now
                windowQueries = 0
            }
            return Double(windowQueries) / span
        }
        if let rate { queriesPerSecond.record(rate) }
    }

    /// The registry in Prometheus's text exposition format.
    public func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
