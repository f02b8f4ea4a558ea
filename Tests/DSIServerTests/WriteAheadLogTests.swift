import DSIIndex
import DSIServer
import Foundation
import Hummingbird
import Testing

@Suite("write-ahead log")
struct WriteAheadLogTests {
    func docs(_ ids: String...) -> [Document] { ids.map { Document(id: $0, title: "t \($0)", text: "text of \($0) ✓") } }

    @Test("records survive reopening, in order, with their sequence numbers")
    func roundTrip() throws {
        let path = tempPath("wal")
        do {
            let wal = try WriteAheadLog(path: path)
            try wal.append(docs("a", "b"))
            try wal.append(docs("c"))
        }
        let wal = try WriteAheadLog(path: path)
        #expect(wal.records.map(\.sequence) == [1, 2])
        #expect(wal.records.map { $0.documents.map(\.id) } == [["a", "b"], ["c"]])
        #expect(wal.records[0].documents[0].text == "text of a ✓")
        #expect(wal.droppedTailBytes == 0)
        #expect(wal.nextSequence == 3)
    }

    @Test("every cut of the last record is a torn tail: dropped, the earlier records kept", arguments: [1, 10, 19, 20, 25, -1])
    func torn(cut: Int) throws {
        let path = tempPath("wal")
        do {
            let wal = try WriteAheadLog(path: path)
            try wal.append(docs("a"))
            try wal.append(docs("b"))
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let second = try WriteAheadLog.bytes(of: .init(sequence: 2, documents: docs("b")))
        let keep = data.count - second.count + (cut < 0 ? second.count - 1 : cut)
        try data.prefix(keep).write(to: URL(fileURLWithPath: path))
        let wal = try WriteAheadLog(path: path)
        #expect(wal.records.map(\.sequence) == [1])
        #expect(wal.droppedTailBytes == keep - (data.count - second.count))
        // The file was cut back: reopening finds nothing more to drop.
        #expect(try WriteAheadLog(path: path).droppedTailBytes == 0)
    }

    @Test("a flipped byte in the last record's payload fails its checksum and is dropped")
    func checksum() throws {
        let path = tempPath("wal")
        do {
            let wal = try WriteAheadLog(path: path)
            try wal.append(docs("a"))
            try wal.append(docs("b"))
        }
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count - 3] ^= 0x20
        try data.write(to: URL(fileURLWithPath: path))
        #expect(try WriteAheadLog(path: path).records.map(\.sequence) == [1])
    }

    @Test("damage before valid records is corruption, not a torn write: opening fails and the file is untouched")
    func corruptMiddle() throws {
        let path = tempPath("wal")
        do {
            let wal = try WriteAheadLog(path: path)
            try wal.append(docs("a"))
            try wal.append(docs("b"))
        }
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[24] ^= 0x01
        try data.write(to: URL(fileURLWithPath: path))
        #expect(throws: WriteAheadLog.Failure.self) { try WriteAheadLog(path: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == data)
    }

    @Test("truncate keeps only the later records; a failed record can be removed")
    func truncateAndRemove() throws {
        let path = tempPath("wal")
        let wal = try WriteAheadLog(path: path)
        try wal.append(docs("a"))
        try wal.append(docs("b"))
        let c = try wal.append(docs("c"))
        try wal.removeLast(c)
        try wal.append(docs("d"))
        try wal.truncate(through: 1)
        #expect(wal.records.map(\.sequence) == [2, 3])
        try wal.append(docs("e"))
        let again = try WriteAheadLog(path: path)
        #expect(again.records.map { $0.documents[0].id } == ["b", "d", "e"])
        try again.truncate(through: 99)
        #expect(try WriteAheadLog(path: path).records.isEmpty)
    }
}

@Suite("OpenAPI document and learning curve")
struct DocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Routes as the router registers them, read from Routes.swift: `router.get("/x")`.
    func registeredRoutes() throws -> Set<String> {
        let source = try String(contentsOf: Self.root.appendingPathComponent("Sources/DSIServer/Routes.swift"), encoding: .utf8)
        let re = try NSRegularExpression(pattern: #"router\.(get|post|put|delete|patch)\("([^"]+)"\)"#)
        let matches = re.matches(in: source, range: NSRange(source.startIndex..., in: source))
        return Set(
            matches.map { m in
                String(source[Range(m.range(at: 1), in: source)!]).uppercased() + " " + String(source[Range(m.range(at: 2), in: source)!])
            })
    }

    @Test("docs/openapi.json lists exactly the routes the server registers, and each answers as documented")
    func openAPI() async throws {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("docs/openapi.json"))
        let doc = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let paths = doc["paths"] as! [String: [String: Any]]
        var documented: [String: Set<String>] = [:]
        for (path, ops) in paths {
            for (method, op) in ops {
                let responses = (op as! [String: Any])["responses"] as! [String: Any]
                documented[method.uppercased() + " " + path] = Set(responses.keys)
            }
        }
        let registered = try registeredRoutes()
        #expect(Set(documented.keys) == registered)
        let statuses = documented
        // Each documented operation, called with a valid request, answers with a documented status.
        let requests: [String: (String, ByteBuffer?)] = [
            "GET /search": ("/search?q=comet", nil), "POST /search": ("/search", body("{\"queries\": [\"comet\"]}")),
            "POST /documents": ("/documents", body("{\"id\": \"o1\", \"text\": \"The cobalt glows.\"}")),
            "GET /documents/{id}": ("/documents/doc1", nil), "POST /consolidate": ("/consolidate", nil), "GET /health": ("/health", nil),
            "GET /stats": ("/stats", nil), "GET /metrics": ("/metrics", nil), "GET /": ("/?q=comet", nil),
            "POST /": ("/", body("id=o2&title=t&text=The+walnut+falls.")),
        ]
        #expect(Set(requests.keys) == Set(documented.keys))
        let service = try IndexService(checkpoint: try checkpointCopy(), options: quietOptions())
        try await withServer(service) { client in
            for (op, (uri, b)) in requests.sorted(by: { $0.key < $1.key }) {
                let method: HTTPRequest.Method = op.hasPrefix("GET") ? .get : .post
                try await client.execute(uri: uri, method: method, body: b) { r in
                    #expect(statuses[op]!.contains(String(r.status.code)), "\(op) answered \(r.status.code)")
                }
            }
        }
        _ = await service.consolidateAndWait()
        service.shutdown()
    }

    @Test("dsi train records its evaluations in the checkpoint; the learning curve is an SVG of them")
    func learningCurve() throws {
        let index = try TrainedIndex.load(from: try trainedCheckpoint.get(), for: .search)
        #expect(index.evaluations.map(\.step) == [30, 60])
        #expect(index.evaluations.allSatisfy { $0.loss != nil && $0.devHits10 != nil && $0.minutes > 0 })
        let svg = LearningCurve.svg(index.evaluations)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 3)
        #expect(svg.hasSuffix("</svg>"))
        #expect(LearningCurve.svg([]).contains("no evaluations recorded"))
        // The minute ticks read differently whatever the span (a 20-second run, 15 minutes, 10 hours).
        for span in [0.3, 15, 600] {
            let curve = LearningCurve.svg([
                TrainingEvaluation(step: 1, minutes: span / 2, loss: 2, devHits1: 0.5, devHits10: 0.8),
                TrainingEvaluation(step: 2, minutes: span, loss: 1, devHits1: 0.6, devHits10: 0.9),
            ])
            let ticks = curve.components(separatedBy: "text-anchor=\"middle\">").dropFirst().map { $0.prefix { $0 != "<" } }
                .filter { $0 != "training minutes" }
            #expect(ticks.count == 5 && Set(ticks).count == 5, "span \(span): \(ticks)")
        }
    }
}
