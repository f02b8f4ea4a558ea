import DSIIndex
import Foundation
import Hummingbird

/// Limits on what a request may ask (`dsi serve`'s options).
public struct ServerLimits: Sendable {
    /// Request bodies larger than this are answered 413.
    public var maxBodyBytes = 4 << 20
    public var maxQueryCharacters = 1000
    public var maxQueriesPerRequest = 256
    public var maxBeam = 100
    public var maxDocumentsPerRequest = 1000
    public init() {}
}

/// The HTTP interface (docs/openapi.json describes it; a test checks the two agree).
public enum Routes {
    public static func router(service: IndexService, metrics: ServerMetrics, limits: ServerLimits = ServerLimits())
        -> Router<BasicRequestContext>
    {
        let router = Router()
        router.add(middleware: ErrorAndMetricsMiddleware(metrics: metrics))

        router.get("/health") { _, _ in
            try json(["status": "ok"])
        }
        router.get("/stats") { _, _ in
            try json(service.stats)
        }
        router.get("/metrics") { _, _ in
            let s = service.snapshot
            metrics.documents.record(s.documents)
            metrics.pending.record(s.pendingDocuments)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/search") { request, _ in
            let p = FormFields(request.uri.query ?? "")
            guard let q = p["q"] else { throw ServiceError(.badRequest, field: "q", "missing (expected the query text: /search?q=...)") }
            let beam = try integer(p["beam"], field: "beam", default: 10, in: 1...limits.maxBeam)
            let k = try integer(p["k"], field: "k", default: min(10, beam), in: 1...beam)
            try checkQuery(q, field: "q", limits)
            return try json(try await service.search(q, k: k, beam: beam))
        }
        router.post("/search") { request, context in
            let obj = try await object(request, context, limits)
            guard let list = obj["queries"] else {
                throw ServiceError(.badRequest, field: "queries", "missing (expected an array of query strings)")
            }
            guard let qs = list as? [Any], !qs.isEmpty, qs.count <= limits.maxQueriesPerRequest else {
                throw ServiceError(
                    .badRequest, field: "queries", "expected an array of 1 to \(limits.maxQueriesPerRequest) query strings")
            }
            let beam = try integer(obj["beam"], field: "beam", default: 10, in: 1...limits.maxBeam)
            let k = try integer(obj["k"], field: "k", default: min(10, beam), in: 1...beam)
            var texts: [String] = []
            for (i, q) in qs.enumerated() {
                guard let s = q as? String else { throw ServiceError(.badRequest, field: "queries[\(i)]", "expected a string") }
                try checkQuery(s, field: "queries[\(i)]", limits)
                texts.append(s)
            }
            let results = try await withThrowingTaskGroup(of: (Int, QueryResult).self) { group in
                for (i, q) in texts.enumerated() {
                    group.addTask {
                        do { return (i, try await service.search(q, k: k, beam: beam)) } catch let e as ServiceError {
                            throw ServiceError(e.kind, field: "queries[\(i)]", e.message)
                        }
                    }
                }
                var out = [QueryResult?](repeating: nil, count: texts.count)
                for try await (i, r) in group { out[i] = r }
                return out.map { $0! }
            }
            return try json(SearchResponse(results: results))
        }
        router.post("/documents") { request, context in
            let body = try await parsedBody(request, context, limits)
            let docs = try documents(from: body, limits)
            return try json(try await service.add(docs))
        }
        router.get("/documents/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            let s = service.snapshot
            guard let p = s.positions[id] else { throw ServiceError(.notFound, field: "id", "no document \"\(id)\" is indexed") }
            return try json(
                DocumentInfo(
                    id: id, docid: s.index.docids.text(p), title: s.index.titles[p], generation: s.generation(of: p) ?? 0, position: p,
                    pending: p >= s.checkpointDocuments))
        }
        router.post("/consolidate") { _, _ in
            let started = await service.requestConsolidation()
            return try json(["started": started], status: started ? .accepted : .ok)
        }
        router.get("/") { request, _ in
            let p = FormFields(request.uri.query ?? "")
            return await Page.render(service: service, query: p["q"], limits: limits)
        }
        router.post("/") { request, context in
            // The page's add form (application/x-www-form-urlencoded: id, title, text).
            var request = request
            let body = try await collect(&request, context, limits)
            let f = FormFields(String(decoding: body.readableBytesView, as: UTF8.self))
            var message: (ok: Bool, text: String)
            do {
                let doc = try Corpus.document(
                    ["id": f["id"] ?? "", "title": f["title"] ?? "", "text": f["text"] ?? ""], file: "form", line: 0)
                let r = try await service.add([doc])
                message = (
                    true, "Added \(doc.id) as docid \(r.added[0].docid) (generation \(r.added[0].generation)); it is searchable now."
                )
            } catch {
                message = (false, "\(error)")
            }
            return await Page.render(service: service, query: nil, limits: limits, message: message)
        }
        return router
    }

    struct SearchResponse: Codable { var results: [QueryResult] }

    struct DocumentInfo: Codable {
        var id: String, docid: String, title: String, generation: Int, position: Int, pending: Bool
    }

    static func checkQuery(_ q: String, field: String, _ limits: ServerLimits) throws {
        guard !q.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ServiceError(.badRequest, field: field, "expected a non-empty query")
        }
        guard q.count <= limits.maxQueryCharacters else {
            throw ServiceError(
                .badRequest, field: field, "the query has \(q.count) characters; at most \(limits.maxQueryCharacters) are allowed")
        }
    }

    /// An integer parameter: absent → `default`; otherwise an integer in `range`.
    static func integer(_ value: Any?, field: String, default d: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let value, !(value is NSNull) else { return d }
        var n: Int?
        if let s = value as? String {
            n = Int(s)
        } else if let x = value as? NSNumber, !["c", "f", "d"].contains(String(cString: x.objCType)) {
            n = x.intValue
        }
        guard let n, range.contains(n) else {
            throw ServiceError(.badRequest, field: field, "expected an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    static func collect(_ request: inout Request, _ context: BasicRequestContext, _ limits: ServerLimits) async throws -> ByteBuffer {
        do {
            return try await request.collectBody(upTo: limits.maxBodyBytes)
        } catch let e as HTTPError where e.status == .contentTooLarge {
            throw ServiceError(.payloadTooLarge, "the request body is larger than \(limits.maxBodyBytes) bytes")
        }
    }

    static func parsedBody(_ request: Request, _ context: BasicRequestContext, _ limits: ServerLimits) async throws -> Any {
        var request = request
        let body = try await collect(&request, context, limits)
        guard body.readableBytes > 0 else { throw ServiceError(.badRequest, "the request body is empty (expected JSON)") }
        do {
            return try JSONSerialization.jsonObject(with: Data(body.readableBytesView), options: [])
        } catch {
            throw ServiceError(.badRequest, "the request body is not valid JSON")
        }
    }

    static func object(_ request: Request, _ context: BasicRequestContext, _ limits: ServerLimits) async throws -> [String: Any] {
        let parsed = try await parsedBody(request, context, limits)
        guard let obj = parsed as? [String: Any] else { throw ServiceError(.badRequest, "expected a JSON object") }
        return obj
    }

    /// Documents from a body: `{"documents": [...]}`, an array of documents, or one
    /// document object; each checked as `dsi add` checks a line of its file.
    static func documents(from body: Any, _ limits: ServerLimits) throws -> [Document] {
        let list: [Any]
        if let obj = body as? [String: Any], obj["id"] == nil {
            guard let d = obj["documents"] else {
                throw ServiceError(.badRequest, field: "documents", "missing (expected an array of {\"id\", \"title\", \"text\"} objects)")
            }
            guard let a = d as? [Any] else {
                throw ServiceError(.badRequest, field: "documents", "expected an array of {\"id\", \"title\", \"text\"} objects")
            }
            list = a
        } else if let obj = body as? [String: Any] {
            list = [obj]
        } else if let a = body as? [Any] {
            list = a
        } else {
            throw ServiceError(.badRequest, "expected a document object, an array of them, or {\"documents\": [...]}")
        }
        guard !list.isEmpty, list.count <= limits.maxDocumentsPerRequest else {
            throw ServiceError(.badRequest, field: "documents", "expected 1 to \(limits.maxDocumentsPerRequest) documents")
        }
        return try list.enumerated().map { i, item in
            guard let obj = item as? [String: Any] else {
                throw ServiceError(.badRequest, field: "documents[\(i)]", "expected an object {\"id\", \"title\", \"text\"}")
            }
            do {
                return try Corpus.document(obj, file: "documents[\(i)]", line: 0)
            } catch let error as InputError {
                throw ServiceError(.badRequest, field: fieldName(of: error, in: "documents[\(i)]"), error.message)
            }
        }
    }

    /// "documents[2].title" from an error whose message begins `field "title"` or
    /// `missing field "title"`.
    static func fieldName(of error: InputError, in prefix: String) -> String {
        let m = error.message
        guard let a = m.range(of: "field \""), let b = m[a.upperBound...].firstIndex(of: "\"") else { return prefix }
        return prefix + "." + m[a.upperBound..<b]
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        var data = try encoder.encode(value)
        data.append(0x0A)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// `a=1&b=x+y%21` → ["a": "1", "b": "x y!"] (HTML forms' encoding: `+` is a space).
struct FormFields {
    private var values: [String: String] = [:]
    init(_ s: String) {
        for pair in s.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ x: Substring) -> String {
                let plus = x.replacingOccurrences(of: "+", with: " ")
                return plus.removingPercentEncoding ?? plus
            }
            let k = decode(kv[0])
            if values[k] == nil { values[k] = kv.count > 1 ? decode(kv[1]) : "" }
        }
    }
    subscript(_ key: String) -> String? { values[key] }
}

/// Answers every error as JSON (`{"error": {"status", "field", "message"}}`) with the
/// status its kind calls for, and counts and times every request by endpoint.
struct ErrorAndMetricsMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let metrics: ServerMetrics

    struct Body: Codable {
        struct Detail: Codable {
            var status: Int
            var field: String?
            var message: String
        }
        var error: Detail
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let t0 = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = Self.response(for: error)
        }
        metrics.request(
            endpoint: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code,
            seconds: (ContinuousClock.now - t0).seconds)
        return response
    }

    static func response(for error: any Error) -> Response {
        let status: HTTPResponse.Status
        var field: String? = nil
        let message: String
        switch error {
        case let e as ServiceError:
            field = e.field
            message = e.message
            switch e.kind {
            case .badRequest: status = .badRequest
            case .notFound: status = .notFound
            case .conflict: status = .conflict
            case .unsupported: status = .notImplemented
            case .unavailable: status = .serviceUnavailable
            case .payloadTooLarge: status = .contentTooLarge
            case .internalError: status = .internalServerError
            }
        case let e as SearchBatcher.TimedOut:
            status = .serviceUnavailable
            message = e.description
        case is CancellationError:
            status = .serviceUnavailable
            message = "the server is shutting down"
        case let e as HTTPError:
            status = e.status
            message = e.body ?? e.status.reasonPhrase
        case let e as any HTTPResponseError:
            status = e.status
            message = e.status.reasonPhrase
        default:
            status = .internalServerError
            message = "\(error)"
        }
        let body = Body(error: .init(status: status.code, field: field, message: message))
        return (try? Routes.json(body, status: status)) ?? Response(status: status)
    }
}
