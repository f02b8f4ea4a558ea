import DSIIndex
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("dsi serve as a process")
struct ProcessTests {
    /// Starts `dsi serve` on a free port; returns the process and the port it printed.
    func start(_ checkpoint: String) throws -> (Process, Int) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: dsiBinary()!)
        p.arguments = ["serve", "--checkpoint", checkpoint, "--port", "0", "--threads", "1", "--consolidate-every", "0"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while !text.contains("\n") && Date() < deadline {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        guard let r = text.range(of: #":(\d+)\n"#, options: .regularExpression), let port = Int(text[r].dropFirst().dropLast()) else {
            p.terminate()
            throw Failure("dsi serve printed no port: \(text)")
        }
        return (p, port)
    }

    func request(_ url: String, body: String? = nil) async throws -> (Int, String) {
        var r = URLRequest(url: URL(string: url)!)
        r.timeoutInterval = 120
        if let body {
            r.httpMethod = "POST"
            r.httpBody = Data(body.utf8)
        }
        let (data, response) = try await URLSession.shared.data(for: r)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    @Test(
        "SIGTERM while an add is in flight: the add is answered, the server exits 0, and the document is there after a restart",
        .enabled(if: dsiBinary() != nil, "the dsi executable is not built beside the test bundle"))
    func sigtermDrains() async throws {
        let ck = try checkpointCopy()
        let (server, port) = try start(ck)
        let base = "http://127.0.0.1:\(port)"
        let (status, _) = try await request(base + "/search?q=comet")
        #expect(status == 200)
        let late = "{\"id\": \"late\", \"title\": \"Notes on the kestrel\", \"text\": \"The kestrel hovers over fields.\"}"
        async let added = request(base + "/documents", body: late)
        // SIGTERM only once the server holds the add (it is in the log before it is applied and
        // answered): a fixed sleep raced the client's connect on a loaded machine, and a
        // request that never reached the server before shutdown is refused, not drained.
        let wal = URL(fileURLWithPath: ck).standardizedFileURL.path + ".wal"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let d = FileManager.default.contents(atPath: wal), String(decoding: d, as: UTF8.self).contains("kestrel") { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        server.terminate()  // SIGTERM
        let (addStatus, addBody) = try await added
        server.waitUntilExit()
        #expect(addStatus == 200, "\(addBody)")
        #expect(server.terminationReason == .exit && server.terminationStatus == 0)
        let (again, port2) = try start(ck)
        let (s2, doc) = try await request("http://127.0.0.1:\(port2)/documents/late")
        #expect(s2 == 200, "\(doc)")
        again.terminate()
        again.waitUntilExit()
        #expect(again.terminationStatus == 0)
    }
}

@Suite("dsi report")
struct ReportTests {
    @Test(
        "dsi report --svg writes the learning curve of the recorded evaluations; --json prints them",
        .enabled(if: dsiBinary() != nil, "the dsi executable is not built beside the test bundle"))
    func report() throws {
        let ck = try trainedCheckpoint.get()
        let svg = tempPath("curve") + ".svg"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: dsiBinary()!)
        p.arguments = ["report", "--checkpoint", ck, "--svg", svg, "--json"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let evals = try JSONDecoder().decode([TrainingEvaluation].self, from: data)
        #expect(evals.map(\.step) == [30, 60])
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(text == LearningCurve.svg(evals))
    }
}
