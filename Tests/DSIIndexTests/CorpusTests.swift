import DSIIndex
import Foundation
import Testing

/// A corpus directory in a fresh temporary folder.
func makeCorpus(corpus: String, queries: String? = nil, qrels: [String: String] = [:]) throws -> String {
    let dir = tempPath("corpus")
    try FileManager.default.createDirectory(atPath: dir + "/qrels", withIntermediateDirectories: true)
    try corpus.write(toFile: dir + "/corpus.jsonl", atomically: true, encoding: .utf8)
    if let queries { try queries.write(toFile: dir + "/queries.jsonl", atomically: true, encoding: .utf8) }
    for (split, text) in qrels { try text.write(toFile: dir + "/qrels/\(split).tsv", atomically: true, encoding: .utf8) }
    return dir
}

/// Where the real collections live: `$DSI_CORPORA`, else ../shared/corpora.
let sharedCorpora = ProcessInfo.processInfo.environment["DSI_CORPORA"] ?? "../shared/corpora"

/// The path of a collection in the shared corpora.
func sharedCollection(_ name: String) -> String { "\(sharedCorpora)/\(name)" }

/// Tests that need a real collection run only where it is (reported as skipped elsewhere).
func needsCollection(_ name: String) -> ConditionTrait {
    .enabled(
        if: FileManager.default.fileExists(atPath: sharedCollection(name) + "/corpus.jsonl"),
        "\(sharedCollection(name)) is absent (real collections live in ../shared/corpora)")
}

let goodCorpus = """
    {"id": "d1", "title": "Héllo", "text": "First document."}
    {"id": "d2", "title": "", "text": "Second — with ünïcode ✓ and \\"quotes\\"."}

    {"id": 3, "text": "Numeric id, no title.", "metadata": {}}
    """
let goodQueries = """
    {"id": "q1", "text": "first?"}
    {"id": "q2", "text": "second"}
    """

@Suite("BEIR corpus I/O")
struct CorpusTests {
    @Test("reads documents, queries and qrels; skips and counts qrels of unknown documents")
    func reads() throws {
        let dir = try makeCorpus(
            corpus: goodCorpus, queries: goodQueries,
            qrels: [
                "train": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tgone\t1\nq2\td2\t2\nq2\t3\t0\n",
                "test": "query-id\tcorpus-id\tscore\r\nq2\t3\t1\r\n",
            ])
        let c = try Corpus(directory: dir)
        #expect(c.documents.map(\.id) == ["d1", "d2", "3"])
        #expect(c.document(id: "d2")?.text == "Second — with ünïcode ✓ and \"quotes\".")
        #expect(c.document(id: "3")?.title == "")
        #expect(c.queries.count == 2)
        #expect(c.splits == ["test", "train"])
        let train = try c.qrels(split: "train")
        #expect(train.judgements == ["q1": ["d1": 1], "q2": ["d2": 2]])
        #expect(train.skippedUnknownDocuments == 1)
        #expect(train.nonRelevantRows == 1)
        #expect(try c.qrels(split: "test").judgements == ["q2": ["3": 1]])
    }

    @Test("reads a file larger than one read chunk, line by line")
    func largeFile() throws {
        let text = String(repeating: "x", count: 3000)
        let lines = (0..<1000).map { "{\"id\": \"d\($0)\", \"title\": \"t\", \"text\": \"\(text)\"}" }.joined(separator: "\n")
        let c = try Corpus(directory: try makeCorpus(corpus: lines))
        #expect(c.documents.count == 1000 && c.documents[999].text.count == 3000)
    }

    func expectError(
        _ corpus: String, queries: String? = nil, qrels: String? = nil, file: String, line: Int, mentions: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let dir = try makeCorpus(corpus: corpus, queries: queries, qrels: qrels.map { ["train": $0] } ?? [:])
        do {
            let c = try Corpus(directory: dir)
            _ = try c.qrels(split: "train")
            Issue.record("no error", sourceLocation: sourceLocation)
        } catch {
            let e = error
            #expect(e.file.hasSuffix(file), "\(e)", sourceLocation: sourceLocation)
            #expect(e.line == line, "\(e)", sourceLocation: sourceLocation)
            #expect(e.message.contains(mentions), "\(e)", sourceLocation: sourceLocation)
            #expect(e.description.contains("\(file):\(line)") || line == 0, sourceLocation: sourceLocation)
        }
    }

    @Test("bad input names the file, the line and the problem")
    func errors() throws {
        let q = goodQueries
        let header = "query-id\tcorpus-id\tscore\n"
        try expectError(
            "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"b\", \"text\": ", queries: q, qrels: header, file: "corpus.jsonl", line: 2,
            mentions: "malformed JSON")
        try expectError(
            "{\"id\": \"a\", \"title\": \"x\"}", queries: q, qrels: header, file: "corpus.jsonl", line: 1,
            mentions: "missing field \"text\"")
        try expectError(
            "{\"id\": \"a\", \"text\": 5}", queries: q, qrels: header, file: "corpus.jsonl", line: 1,
            mentions: "field \"text\": expected a string")
        try expectError(
            "{\"id\": \"a\", \"text\": \"x\"}\n\n{\"id\": \"a\", \"text\": \"y\"}", queries: q, qrels: header, file: "corpus.jsonl",
            line: 3, mentions: "duplicate document id \"a\" (first on line 1)")
        try expectError("[1, 2]", queries: q, qrels: header, file: "corpus.jsonl", line: 1, mentions: "expected a JSON object")
        try expectError(
            goodCorpus, queries: q, qrels: header + "q9\td1\t1\n", file: "train.tsv", line: 2,
            mentions: "query \"q9\" is not in the queries file")
        try expectError(goodCorpus, queries: q, qrels: "qid\tdid\tscore\n", file: "train.tsv", line: 1, mentions: "expected the header")
        try expectError(
            goodCorpus, queries: q, qrels: header + "q1\td1\n", file: "train.tsv", line: 2, mentions: "expected 3 tab-separated fields")
        try expectError(
            goodCorpus, queries: q, qrels: header + "q1\td1\thigh\n", file: "train.tsv", line: 2,
            mentions: "field \"score\": expected an integer")
        try expectError(
            goodCorpus, queries: "{\"id\": \"q1\"}", qrels: header, file: "queries.jsonl", line: 1, mentions: "missing field \"text\"")
    }

    @Test("invalid UTF-8 and missing files are reported")
    func encodingAndMissing() throws {
        let dir = try makeCorpus(corpus: "")
        var bytes = Data("{\"id\": \"a\", \"text\": \"".utf8)
        bytes += Data([0xFF, 0xFE])
        bytes += Data("\"}\n".utf8)
        try bytes.write(to: URL(fileURLWithPath: dir + "/corpus.jsonl"))
        #expect(throws: InputError(file: dir + "/corpus.jsonl", line: 1, "not valid UTF-8")) { _ = try Corpus(directory: dir) }
        #expect(throws: InputError.self) { _ = try Corpus(directory: dir + "/nope") }
        let ok = try Corpus(directory: try makeCorpus(corpus: goodCorpus))
        do {
            _ = try ok.qrels(split: "dev")
            Issue.record("a missing split was accepted")
        } catch { #expect(error.message.contains("no such file")) }
    }

    @Test("the shared SciFact collection loads with the counts its README gives", needsCollection("scifact"))
    func scifact() throws {
        let dir = sharedCollection("scifact")
        let c = try Corpus(directory: dir)
        #expect(c.documents.count == 5183)
        #expect(try c.qrels(split: "train").judgements.count == 809)
        let test = try c.qrels(split: "test")
        #expect(test.judgements.count == 300 && test.judgements.values.map(\.count).reduce(0, +) == 339)
    }
}

@Suite("synthetic collections (dsi bench scale)")
struct SyntheticCorpusTests {
    @Test("the same seed writes the same collection, in the BEIR layout, with 50-300 words per document")
    func deterministic() throws {
        let a = tempPath("synthetic-a")
        let b = tempPath("synthetic-b")
        try SyntheticCorpus.write(documents: 300, to: a, seed: 3)
        try SyntheticCorpus.write(documents: 300, to: b, seed: 3)
        let fa = try Data(contentsOf: URL(fileURLWithPath: a + "/corpus.jsonl"))
        #expect(fa == (try Data(contentsOf: URL(fileURLWithPath: b + "/corpus.jsonl"))))
        let c = try Corpus(directory: a)
        #expect(c.documents.count == 300 && Set(c.documents.map(\.id)).count == 300)
        #expect(c.documents.allSatisfy { (50...300).contains($0.text.split(separator: " ").count) })
        let queries = try String(contentsOfFile: a + "/queries.txt", encoding: .utf8).split(separator: "\n")
        #expect(!queries.isEmpty && queries.allSatisfy { $0.split(separator: " ").count == 8 })
        try SyntheticCorpus.write(documents: 300, to: b, seed: 4)
        #expect(fa != (try Data(contentsOf: URL(fileURLWithPath: b + "/corpus.jsonl"))))
    }
}

@Suite("tab-separated files")
struct TSVReaderTests {
    @Test("rows in memory: CRLF and LF line ends, blank lines skipped, fields split at tabs only, non-ASCII kept, errors name the line")
    func rows() throws {
        let text = "corpus-id\ttitle\r\nd1\tCafé\u{301} au lait\r\n \t \n\nd2\t\n𝔡3\tα\tβ\n"
        #expect(throws: InputError.self) { try TSVReader.rows(text, path: "t.tsv", header: ["corpus-id", "title"]) }
        do {
            _ = try TSVReader.rows(text, path: "t.tsv", header: ["corpus-id", "title"])
        } catch {
            #expect(error.description.hasPrefix("t.tsv:6:") && error.description.contains("found 3"))
        }
        let rows = try TSVReader.rows(text, path: "t.tsv", header: ["corpus-id", "title"], extraColumns: true)
        #expect(rows.map(\.line) == [2, 5, 6])
        #expect(rows.map(\.fields) == [["d1", "Café\u{301} au lait"], ["d2", ""], ["𝔡3", "α", "β"]])
    }
}
