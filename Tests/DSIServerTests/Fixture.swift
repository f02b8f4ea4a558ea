import DSIIndex
import DSIServer
import Foundation
import Hummingbird
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Every path a test of this process writes lies under one directory, removed when the
/// process exits (a crashed run leaves it for inspection).
private let testRootPath = FileManager.default.temporaryDirectory.appendingPathComponent("dsi-tests-\(getpid())").path
let testRoot: String = {
    try? FileManager.default.createDirectory(atPath: testRootPath, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: testRootPath) }
    return testRootPath
}()

func tempPath(_ name: String) -> String {
    (testRoot as NSString).appendingPathComponent("dsi-serve-\(name)-\(UUID().uuidString)")
}

/// A small corpus: 24 documents, each about its own subject, with queries.
func corpusDirectory() throws -> String {
    let subjects = [
        "apple", "river", "quartz", "violin", "glacier", "pepper", "comet", "falcon", "cedar", "copper", "lantern", "orchid",
        "tundra", "magnet", "saffron", "beetle", "harbor", "nickel", "walnut", "cobalt", "meadow", "sparrow", "basalt", "cactus",
        // words for the documents the tests add, so the tokenizer knows them
        "zeppelin", "quokka", "tamarind", "obsidian", "kestrel", "mandolin",
    ]
    let dir = tempPath("corpus")
    try FileManager.default.createDirectory(atPath: dir + "/qrels", withIntermediateDirectories: true)
    var corpus = ""
    var queries = ""
    var train = "query-id\tcorpus-id\tscore\n"
    for (i, s) in subjects.enumerated() {
        corpus +=
            "{\"id\": \"doc\(i)\", \"title\": \"All about the \(s)\", \"text\": \"The \(s) is described here. Facts on \(s) and more \(s) details follow; the \(s) matters.\"}\n"
        queries += "{\"id\": \"q\(i)a\", \"text\": \"what is a \(s)\"}\n{\"id\": \"q\(i)b\", \"text\": \"\(s) facts\"}\n"
        train += "q\(i)a\tdoc\(i)\t1\nq\(i)b\tdoc\(i)\t1\n"
    }
    try corpus.write(toFile: dir + "/corpus.jsonl", atomically: true, encoding: .utf8)
    try queries.write(toFile: dir + "/queries.jsonl", atomically: true, encoding: .utf8)
    try train.write(toFile: dir + "/qrels/train.tsv", atomically: true, encoding: .utf8)
    return dir
}

/// The fixtures' training options: the tiny preset and sizes for a 30-document corpus.
func fixtureOptions() -> TrainingOptions {
    var o = TrainingOptions()
    o.preset = .tiny
    o.batchSize = 16
    o.vocabSize = 300
    o.lsaDimensions = 16
    o.branching = 3
    o.leafSize = 4
    o.sourceLength = 24
    o.viewLength = 12
    o.seed = 7
    return o
}

/// An untrained checkpoint of the fixture corpus with these options (saved, not trained).
func untrainedCheckpoint(_ o: TrainingOptions, name: String) throws -> String {
    let corpus = try Corpus(directory: try corpusDirectory())
    let index = try Trainer(corpus: corpus, options: o).makeIndex(corpusFingerprint: "f")
    let ck = tempPath(name)
    try index.save(to: ck, corpusDirectory: corpus.directory, counts: [:])
    return ck
}

/// A checkpoint trained once per test process (tiny preset, semantic docids with node
/// tokens: the default scheme), copied for each test that changes it.
let trainedCheckpoint: Result<String, any Error> = Result {
    let corpus = try Corpus(directory: try corpusDirectory())
    let trainer = try Trainer(corpus: corpus, options: fixtureOptions())
    let index = try trainer.makeIndex(corpusFingerprint: "test")
    let out = tempPath("ck")
    _ = try trainer.train(index, budget: .steps(60), output: out, evalEvery: 30)
    return out
}

/// A fresh copy of the trained checkpoint (its own directory and log).
func checkpointCopy() throws -> String {
    let dst = tempPath("copy")
    try FileManager.default.copyItem(atPath: try trainedCheckpoint.get(), toPath: dst)
    return dst
}

func newDocument(_ i: Int, _ subject: String) -> Document {
    Document(
        id: "new\(i)", title: "Notes on the \(subject)",
        text: "The \(subject) is described here. Facts on \(subject) and more \(subject) details follow; the \(subject) matters.")
}

/// Fast tests: consolidation by count and by age off unless a test asks.
func quietOptions() -> ServiceOptions {
    var o = ServiceOptions()
    o.consolidateEvery = 0
    o.consolidateMinutes = 0
    o.consolidation.minimumSteps = 5
    o.consolidation.epochs = 1
    return o
}

func body(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

func json(_ r: TestResponse) throws -> [String: Any] {
    let parsed = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView))
    guard let obj = parsed as? [String: Any] else { throw Failure("not a JSON object: \(r.text)") }
    return obj
}

func errorField(_ r: TestResponse) throws -> String? {
    ((try json(r))["error"] as? [String: Any])?["field"] as? String
}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A response as the tests read it.
struct TestResponse: Sendable {
    var status: HTTPResponse.Status
    /// Header values by lower-cased name.
    var headerValues: [String: String]
    var body: ByteBuffer
    var contentType: String? { headerValues["content-type"] }
    var text: String { String(decoding: body.readableBytesView, as: UTF8.self) }
}

/// An HTTP client of a server on 127.0.0.1 (URLSession), with the shape of
/// Hummingbird's test client. (HummingbirdTesting itself is not used: it brings
/// async-http-client and a second BoringSSL, which doubled CI's build time.)
struct LiveClient: Sendable {
    let port: Int

    @discardableResult
    func execute<Return: Sendable>(
        uri: String, method: HTTPRequest.Method, contentType: String? = nil, body: ByteBuffer? = nil,
        testCallback: @Sendable (TestResponse) async throws -> Return = { $0 }
    ) async throws -> Return {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(uri)")!)
        request.httpMethod = method.rawValue
        request.timeoutInterval = 120
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        if let body { request.httpBody = Data(body.readableBytesView) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields { headers[String(describing: k).lowercased()] = String(describing: v) }
        let r = TestResponse(status: HTTPResponse.Status(code: http.statusCode), headerValues: headers, body: ByteBuffer(bytes: data))
        return try await testCallback(r)
    }
}

/// Runs `test` against the service served on an ephemeral loopback port, then shuts the
/// server down (gracefully, as SIGTERM would).
func withServer<T: Sendable>(
    _ service: IndexService, limits: ServerLimits = ServerLimits(), _ test: @Sendable (LiveClient) async throws -> T
) async throws -> T {
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = Server.application(service: service, host: "127.0.0.1", port: 0, limits: limits, onRunning: { continuation.yield($0) })
    let task = Task { try await app.run() }
    var next = ports.makeAsyncIterator()
    guard let port = await next.next() else { throw Failure("the server did not start") }
    do {
        let result = try await test(LiveClient(port: port))
        task.cancel()
        _ = await task.result
        return result
    } catch {
        task.cancel()
        _ = await task.result
        throw error
    }
}
