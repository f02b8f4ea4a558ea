import DSIIndex
import DSIServer
import Foundation
import Hummingbird
import Synchronization
import Testing

@Suite("dsi serve: endpoints", .serialized)
struct EndpointTests {
    @Test("GET /search and POST /search give what dsi query gives for the same checkpoint")
    func searchEqualsQuery() async throws {
        let ck = try checkpointCopy()
        let queries = ["what is a comet", "saffron facts", "falcon"]
        // What `dsi query` computes: the checkpoint loaded for search, TrainedIndex.search.
        let direct = try TrainedIndex.load(from: ck, for: .search)
        let expected = try zip(queries, try direct.search(queries, beam: 10, topK: 5)).map {
            QueryResult(query: $0, hits: $1, index: direct)
        }
        let service = try IndexService(checkpoint: ck, options: quietOptions())
        try await withServer(service) { client in
            for (q, want) in zip(queries, expected) {
                let uri = "/search?q=\(q.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&k=5"
                try await client.execute(uri: uri, method: .get) { r in
                    #expect(r.status == .ok)
                    let got = try JSONDecoder().decode(QueryResult.self, from: Data(r.body.readableBytesView))
                    #expect(got.results.map(\.id) == want.results.map(\.id))
                    for (a, b) in zip(got.results, want.results) { #expect(abs(a.score - b.score) < 1e-4) }
                }
            }
            let req = "{\"queries\": [\"what is a comet\", \"saffron facts\", \"falcon\"], \"k\": 5}"
            try await client.execute(uri: "/search", method: .post, body: body(req)) { r in
                #expect(r.status == .ok)
                struct Many: Decodable { var results: [QueryResult] }
                let got = try JSONDecoder().decode(Many.self, from: Data(r.body.readableBytesView))
                #expect(got.results.map(\.query) == queries)
                #expect(got.results.map { $0.results.map(\.id) } == expected.map { $0.results.map(\.id) })
            }
        }
        service.shutdown()
    }

    @Test("dsi query --json, run as a program, gives the same ranking as GET /search")
    func searchEqualsCLI() async throws {
        guard let dsi = dsiBinary() else {
            Issue.record("the dsi executable is not built beside the test bundle (scripts/test.sh builds it first)")
            return
        }
        let ck = try checkpointCopy()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: dsi)
        p.arguments = ["query", "--checkpoint", ck, "--json", "--top-k", "5", "--threads", "1", "what is a comet"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let cli = try JSONDecoder().decode(QueryResult.self, from: data)
        let service = try IndexService(checkpoint: ck, options: quietOptions())
        try await withServer(service) { client in
            try await client.execute(uri: "/search?q=what%20is%20a%20comet&k=5", method: .get) { r in
                let got = try JSONDecoder().decode(QueryResult.self, from: Data(r.body.readableBytesView))
                #expect(got.results.map(\.id) == cli.results.map(\.id))
                for (a, b) in zip(got.results, cli.results) { #expect(abs(a.score - b.score) < 1e-3) }
            }
        }
        service.shutdown()
    }

    @Test("bad search requests are 400 naming the field; large bodies 413; unknown ids 404")
    func searchErrors() async throws {
        let service = try IndexService(checkpoint: try checkpointCopy(), options: quietOptions())
        var limits = ServerLimits()
        limits.maxBodyBytes = 2048
        limits.maxQueryCharacters = 50
        try await withServer(service, limits: limits) { client in
            let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String?)] = [
                ("/search", .get, nil, .badRequest, "q"),
                ("/search?q=", .get, nil, .badRequest, "q"),
                ("/search?q=comet&k=0", .get, nil, .badRequest, "k"),
                ("/search?q=comet&k=11&beam=10", .get, nil, .badRequest, "k"),
                ("/search?q=comet&beam=abc", .get, nil, .badRequest, "beam"),
                ("/search?q=\(String(repeating: "a", count: 60))", .get, nil, .badRequest, "q"),
                ("/search?q=%E2%98%83%E2%98%83", .get, nil, .badRequest, "q"),
                ("/search", .post, "{\"queries\": \"comet\"}", .badRequest, "queries"),
                ("/search", .post, "{\"queries\": [\"comet\", 3]}", .badRequest, "queries[1]"),
                ("/search", .post, "{\"queries\": [\"comet\"], \"k\": 2.5}", .badRequest, "k"),
                ("/search", .post, "{\"queries\": [\"comet\"], \"beam\": true}", .badRequest, "beam"),
                ("/search", .post, "{\"k\": 3}", .badRequest, "queries"),
                ("/search", .post, "{\"queries\": [", .badRequest, nil),
                ("/search", .post, "[1, 2]", .badRequest, nil),
                ("/search", .post, "{\"queries\": [\"\(String(repeating: "comet ", count: 400))\"]}", .contentTooLarge, nil),
                ("/documents/nope", .get, nil, .notFound, "id"),
            ]
            for (uri, method, b, status, field) in cases {
                try await client.execute(uri: uri, method: method, body: b.map(body)) { r in
                    #expect(r.status == status, "\(method) \(uri) \(b ?? "")")
                    #expect(r.contentType?.hasPrefix("application/json") == true)
                    let err = try json(r)["error"] as? [String: Any]
                    #expect(err?["status"] as? Int == Int(status.code))
                    #expect((err?["message"] as? String)?.isEmpty == false)
                    #expect(err?["field"] as? String == field, "\(uri)")
                }
            }
        }
        service.shutdown()
    }

    @Test("an added document is logged, searchable by its title at once, and described by GET /documents/{id}")
    func addAndFind() async throws {
        let ck = try checkpointCopy()
        let service = try IndexService(checkpoint: ck, options: quietOptions())
        try await withServer(service) { client in
            let doc =
                "{\"documents\": [{\"id\": \"new1\", \"title\": \"Notes on the zeppelin\", \"text\": \"The zeppelin is described here. Facts on zeppelin and more zeppelin details follow; the zeppelin matters.\"}]}"
            try await client.execute(uri: "/documents", method: .post, body: body(doc)) { r in
                #expect(r.status == .ok)
                let o = try json(r)
                #expect(o["documents"] as? Int == 31)
                #expect(o["pending"] as? Int == 1)
                let added = (o["added"] as? [[String: Any]])?.first
                #expect(added?["id"] as? String == "new1")
                #expect(added?["generation"] as? Int == 1)
            }
            // Logged before the reply.
            let wal = try WriteAheadLog(path: ck + ".wal")
            #expect(wal.records.map { $0.documents.map(\.id) } == [["new1"]])
            try await client.execute(uri: "/search?q=Notes%20on%20the%20zeppelin&k=3", method: .get) { r in
                let got = try JSONDecoder().decode(QueryResult.self, from: Data(r.body.readableBytesView))
                #expect(got.results.first?.id == "new1")
            }
            try await client.execute(uri: "/documents/new1", method: .get) { r in
                #expect(r.status == .ok)
                let o = try json(r)
                #expect(o["title"] as? String == "Notes on the zeppelin")
                #expect(o["generation"] as? Int == 1)
                #expect(o["pending"] as? Bool == true)
                #expect((o["docid"] as? String)?.isEmpty == false)
            }
            try await client.execute(uri: "/documents/doc3", method: .get) { r in
                let o = try json(r)
                #expect(o["generation"] as? Int == 0)
                #expect(o["pending"] as? Bool == false)
            }
        }
        service.shutdown()
    }

    @Test("bad documents are refused whole (400 naming the field, 409 for an indexed id) and nothing is logged or added")
    func addErrors() async throws {
        let ck = try checkpointCopy()
        let service = try IndexService(checkpoint: ck, options: quietOptions())
        try await withServer(service) { client in
            let good = "{\"id\": \"ok1\", \"title\": \"Kestrel\", \"text\": \"The kestrel hovers.\"}"
            let cases: [(String, HTTPResponse.Status, String?)] = [
                ("{\"documents\": [\(good), {\"id\": \"x\", \"title\": 5, \"text\": \"t\"}]}", .badRequest, "documents[1].title"),
                ("{\"documents\": [\(good), {\"id\": \"x\"}]}", .badRequest, "documents[1].text"),
                ("{\"documents\": [{\"id\": \"\", \"text\": \"t\"}]}", .badRequest, "documents[0].id"),
                ("{\"documents\": [{\"id\": true, \"text\": \"t\"}]}", .badRequest, "documents[0].id"),
                ("{\"documents\": [\(good), \(good)]}", .badRequest, "documents[1].id"),
                ("{\"documents\": [\(good), {\"id\": \"doc3\", \"text\": \"t\"}]}", .conflict, "documents[1].id"),
                ("{\"documents\": []}", .badRequest, "documents"),
                ("{\"documents\": 3}", .badRequest, "documents"),
                ("{\"docs\": []}", .badRequest, "documents"),
                ("[\(good), 7]", .badRequest, "documents[1]"),
                ("not json", .badRequest, nil),
                ("", .badRequest, nil),
            ]
            for (b, status, field) in cases {
                try await client.execute(uri: "/documents", method: .post, body: body(b)) { r in
                    #expect(r.status == status, "\(b)")
                    let f = try errorField(r)
                    #expect(f == field, "\(b)")
                }
            }
            try await client.execute(uri: "/stats", method: .get) { r in
                let o = try json(r)
                #expect(o["documents"] as? Int == 30)
                #expect(o["wal_records"] as? Int == 0)
            }
            // One document alone and an array of them are accepted too.
            try await client.execute(uri: "/documents", method: .post, body: body(good)) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/documents", method: .post, body: body("[\(good.replacingOccurrences(of: "ok1", with: "ok2"))]"))
            {
                r in #expect(r.status == .ok)
            }
            try await client.execute(uri: "/documents", method: .post, body: body(good)) { r in #expect(r.status == .conflict) }
        }
        #expect(try WriteAheadLog(path: ck + ".wal").records.count == 2)
        service.shutdown()
    }

    @Test("/health, /stats and /metrics (Prometheus text: requests by endpoint and status, latency histograms, batch sizes, adds)")
    func observability() async throws {
        let service = try IndexService(checkpoint: try checkpointCopy(), options: quietOptions())
        try await withServer(service) { client in
            try await client.execute(uri: "/health", method: .get) { r in
                let o = try json(r)
                #expect(o["status"] as? String == "ok")
            }
            try await client.execute(uri: "/search?q=comet", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/search?q=", method: .get) { r in #expect(r.status == .badRequest) }
            try await client.execute(uri: "/documents", method: .post, body: body("{\"id\": \"m1\", \"text\": \"The quokka smiles.\"}")) {
                r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/stats", method: .get) { r in
                let o = try json(r)
                #expect(o["documents"] as? Int == 31)
                #expect(o["pending_documents"] as? Int == 1)
                #expect(o["checkpoint_documents"] as? Int == 30)
                #expect(o["adds"] as? Int == 1)
                #expect(o["queries"] as? Int == 1)
                #expect(o["generations"] as? Int == 2)
                #expect(o["consolidating"] as? Bool == false)
                #expect((o["uptime_seconds"] as? Double ?? -1) >= 0)
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                #expect(r.contentType?.hasPrefix("text/plain") == true)
                let text = r.text
                #expect(text.contains(#"dsi_http_requests_total{endpoint="/search",method="GET",status="200"} 1"#))
                #expect(text.contains(#"dsi_http_requests_total{endpoint="/search",method="GET",status="400"} 1"#))
                #expect(text.contains(#"dsi_http_request_duration_seconds_count{endpoint="/search",method="GET"} 2"#))
                #expect(text.contains("dsi_search_batch_size_count 1"))
                #expect(text.contains("dsi_queries_total 1"))
                #expect(text.contains("dsi_documents_added_total 1"))
                #expect(text.contains("dsi_documents 31"))
                #expect(text.contains("dsi_pending_documents 1"))
            }
        }
        service.shutdown()
    }

    @Test("the page: a query box, ranked results with titles and scores, the index's size, the learning curve, and an add form that adds")
    func page() async throws {
        let service = try IndexService(checkpoint: try checkpointCopy(), options: quietOptions())
        try await withServer(service) { client in
            try await client.execute(uri: "/?q=what+is+a+comet", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.contentType?.hasPrefix("text/html") == true)
                let html = r.text
                #expect(html.contains("<form method=get"))
                #expect(html.contains("value=\"what is a comet\""))
                #expect(html.contains("All about the comet"))
                #expect(html.contains("30 documents in 1 generation"))
                #expect(html.contains("<svg"))
                #expect(html.contains("<form method=post"))
                #expect(!html.contains("http://") || html.contains("xmlns=\"http://www.w3.org/2000/svg\""))
            }
            try await client.execute(uri: "/?q=%3Cscript%3E", method: .get) { r in
                #expect(!r.text.contains("<script>"))
            }
            try await client.execute(
                uri: "/", method: .post, contentType: "application/x-www-form-urlencoded",
                body: body("id=form1&title=Notes+on+the+tamarind&text=The+tamarind+is+described+here.+Facts+on+tamarind.")
            ) { r in
                #expect(r.status == .ok)
                #expect(r.text.contains("Added form1"))
            }
            try await client.execute(uri: "/", method: .post, body: body("id=&text=x")) { r in
                #expect(r.status == .badRequest)
                #expect(r.text.contains("expected a non-empty string"))
            }
            try await client.execute(uri: "/documents/form1", method: .get) { r in #expect(r.status == .ok) }
        }
        service.shutdown()
    }
}

@Suite("dsi serve: durability, recovery and consolidation", .serialized)
struct DurabilityTests {
    @Test("a restart re-applies every logged document the checkpoint lacks")
    func recovery() async throws {
        let ck = try checkpointCopy()
        do {
            let service = try IndexService(checkpoint: ck, options: quietOptions())
            _ = try await service.add([newDocument(1, "zeppelin"), newDocument(2, "quokka")])
            _ = try await service.add([newDocument(3, "kestrel")])
            service.shutdown()
        }
        let again = try IndexService(checkpoint: ck, options: quietOptions())
        let s = again.snapshot
        #expect(s.documents == 33)
        #expect(s.checkpointDocuments == 30)
        #expect(Array(s.index.docids.corpusIDs.suffix(3)) == ["new1", "new2", "new3"])
        let hit = try await again.search("Notes on the kestrel", k: 3, beam: 10)
        #expect(hit.results.first?.id == "new3")
        again.shutdown()
    }

    @Test("a torn last record (a crash mid-write) is cut off with a warning; the acknowledged ones survive")
    func tornTail() async throws {
        let ck = try checkpointCopy()
        do {
            let service = try IndexService(checkpoint: ck, options: quietOptions())
            _ = try await service.add([newDocument(1, "zeppelin")])
            service.shutdown()
        }
        // Half of a second record, as a power cut mid-write leaves it.
        let record = try WriteAheadLog.bytes(of: WriteAheadLog.Record(sequence: 2, documents: [newDocument(2, "quokka")]))
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: ck + ".wal"))
        h.seekToEndOfFile()
        h.write(Data(record.prefix(record.count / 2)))
        try h.close()
        let warnings = Box()
        let service = try IndexService(checkpoint: ck, options: quietOptions(), log: { warnings.append($0) })
        #expect(service.snapshot.index.docids.corpusIDs.last == "new1")
        #expect(service.snapshot.documents == 31)
        #expect(warnings.lines.contains { $0.contains("torn last record") })
        // The log is whole again: a new add goes after the first record.
        _ = try await service.add([newDocument(3, "kestrel")])
        #expect(try WriteAheadLog(path: ck + ".wal").records.map(\.sequence) == [1, 2])
        service.shutdown()
    }

    @Test("consolidation writes a checkpoint generation holding the adds, keeps their docids and truncates the log")
    func consolidation() async throws {
        let ck = try checkpointCopy()
        let service = try IndexService(checkpoint: ck, options: quietOptions())
        _ = try await service.add([newDocument(1, "zeppelin")])
        _ = try await service.add([newDocument(2, "obsidian")])
        let before = service.snapshot
        let report = await service.consolidateAndWait()
        #expect(report?.error == nil)
        #expect(report?.documents == 2)
        #expect((report?.steps ?? 0) >= 5)
        let after = service.snapshot
        #expect(after.pendingDocuments == 0)
        #expect(after.index.docids.docids == before.index.docids.docids)
        #expect(try WriteAheadLog(path: ck + ".wal").records.isEmpty)
        let onDisk = try TrainedIndex.load(from: ck, for: .search)
        #expect(onDisk.docids.corpusIDs.suffix(2) == ["new1", "new2"])
        #expect(onDisk.generations.map(\.mode) == ["train", Generation.consolidatedMode, Generation.consolidatedMode])
        #expect(onDisk.step > before.index.step)
        let hit = try await service.search("Notes on the obsidian", k: 3, beam: 10)
        #expect(hit.results.map(\.id).contains("new2"))
        // A restart finds nothing to re-apply.
        service.shutdown()
        let again = try IndexService(checkpoint: ck, options: quietOptions())
        #expect(again.snapshot.documents == 32 && again.snapshot.pendingDocuments == 0)
        again.shutdown()
    }

    @Test("adds that arrive during a consolidation are applied on top of it and stay in the log")
    func addsDuringConsolidation() async throws {
        let ck = try checkpointCopy()
        var o = quietOptions()
        o.consolidation.minimumSteps = 40
        let service = try IndexService(checkpoint: ck, options: o)
        _ = try await service.add([newDocument(1, "zeppelin")])
        #expect(await service.requestConsolidation())
        _ = try await service.add([newDocument(2, "mandolin")])
        let report = await service.consolidateAndWait()
        #expect(report?.error == nil)
        let s = service.snapshot
        #expect(s.documents == 32)
        #expect(s.checkpointDocuments == 31)
        #expect(try WriteAheadLog(path: ck + ".wal").records.map { $0.documents.map(\.id) } == [["new2"]])
        service.shutdown()
        let again = try IndexService(checkpoint: ck, options: o)
        #expect(Array(again.snapshot.index.docids.corpusIDs.suffix(2)) == ["new1", "new2"])
        again.shutdown()
    }

    @Test("n-gram retrieval takes adds online: indexed and searchable at once, consolidation trains nothing, a restart keeps them")
    func ngramAdds() async throws {
        var opts = fixtureOptions()
        opts.docids = .ngrams
        let ck = try untrainedCheckpoint(opts, name: "ngrams")
        let service = try IndexService(checkpoint: ck, options: quietOptions())
        #expect(service.acceptsDocuments)
        let added = try await service.add([newDocument(1, "kestrel mandolin")])
        #expect(added.documents == 31)
        let hit = try await service.search("kestrel mandolin", k: 5, beam: 10)
        #expect(hit.results.first?.id == "new1", "the only document with both words: \(hit.results.map(\.id))")
        let report = await service.consolidateAndWait()
        #expect(report?.error == nil && report?.steps == 0)
        service.shutdown()
        let again = try IndexService(checkpoint: ck, options: quietOptions())
        #expect(again.snapshot.documents == 31)
        #expect(try await again.search("kestrel mandolin", k: 5, beam: 10).results.first?.id == "new1")
        again.shutdown()
    }

    @Test("a checkpoint whose docids are shared digit tokens is served read-only: adds are 501")
    func digitsReadOnly() async throws {
        var opts = fixtureOptions()
        opts.docidTokens = .digits
        let ck = try untrainedCheckpoint(opts, name: "digits")
        let service = try IndexService(checkpoint: ck, options: quietOptions())
        #expect(!service.acceptsDocuments)
        try await withServer(service) { client in
            try await client.execute(uri: "/documents", method: .post, body: body("{\"id\": \"n\", \"text\": \"t\"}")) { r in
                #expect(r.status == .notImplemented)
            }
        }
        service.shutdown()
    }
}

final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var _lines: [String] = []
    func append(_ s: String) { lock.withLock { _lines.append(s) } }
    var lines: [String] { lock.withLock { _lines } }
}

/// The `dsi` executable next to the test bundle (swift test builds it), or nil.
func dsiBinary() -> String? {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [dir.appendingPathComponent("dsi").path, dir.deletingLastPathComponent().appendingPathComponent("dsi").path]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

@Suite("dsi serve: batching")
struct BatchingTests {
    @Test("a lone search does not wait out the batch window; searches sent together are searched together")
    func batchWindowCloses() async throws {
        var o = quietOptions()
        o.batchWindow = .seconds(30)
        o.batchGap = .seconds(3)  // long: the tasks below may start late on a busy machine
        let service = try IndexService(checkpoint: try checkpointCopy(), options: o)
        // Each batch: its size and when it started, taken on the batch thread (the test's
        // own task may resume late on a machine busy with the other tests).
        let clock = ContinuousClock()
        let batches = Mutex<[(size: Int, started: ContinuousClock.Instant)]>([])
        service.onBatch = { n, s in batches.withLock { $0.append((n, clock.now - .seconds(s))) } }
        let t0 = clock.now
        _ = try await service.search("what is a comet", k: 5, beam: 10)
        // A batch is recorded just after its answers are handed out.
        func recorded(_ n: Int) async throws {
            for _ in 0..<500 where batches.withLock({ $0.count }) < n { try await Task.sleep(for: .milliseconds(20)) }
        }
        try await recorded(1)
        // The pause after the only query ends the wait: 3 s, not the 30 s window.
        let waited = try #require(batches.withLock { $0.first?.started }) - t0
        #expect(waited < .seconds(15), "a lone query waited \(waited) for its batch")
        // Eight queries sent at once arrive within the gap of each other: one batch.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for q in ["comet", "falcon", "cedar", "copper", "river", "quartz", "violin", "pepper"] {
                group.addTask { _ = try await service.search(q, k: 5, beam: 10) }
            }
            try await group.waitForAll()
        }
        try await recorded(2)
        #expect(batches.withLock { $0.map(\.size) } == [1, 8])
        service.shutdown()
    }
}
