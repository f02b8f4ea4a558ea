import Foundation

/// A collection in the BEIR layout: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`.
public struct Corpus: Sendable {
    public let directory: String
    public let documents: [Document]
    public let queries: [String: Query]
    private let index: [String: Int]

    public func document(id: String) -> Document? { index[id].map { documents[$0] } }
    public func position(of id: String) -> Int? { index[id] }

    /// Loads `corpus.jsonl` and `queries.jsonl` (absent queries file: no queries).
    public init(directory: String) throws(InputError) {
        self.directory = directory
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw InputError(
                file: directory, line: 0,
                "not a directory (expected a corpus in the BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
        }
        let docs = try Self.readDocuments((directory as NSString).appendingPathComponent("corpus.jsonl"))
        self.documents = docs
        self.index = Dictionary(uniqueKeysWithValues: docs.enumerated().map { ($1.id, $0) })
        self.queries = try Self.readQueries((directory as NSString).appendingPathComponent("queries.jsonl"), required: false)
    }

    /// Documents of a JSON-lines file (`{"id", "title"?, "text"}` per line), checked:
    /// malformed lines, missing or mistyped fields and duplicate ids are errors naming
    /// the line; `known` ids (already indexed) are refused too.
    public static func readDocuments(_ path: String, known: (String) -> Bool = { _ in false }) throws(InputError) -> [Document] {
        var docs: [Document] = []
        var firstLine: [String: Int] = [:]
        try readJSONL(path, required: true) { line, obj throws(InputError) in
            let doc = try document(obj, file: path, line: line)
            if let first = firstLine[doc.id] {
                throw InputError(file: path, line: line, "duplicate document id \"\(doc.id)\" (first on line \(first))")
            }
            if known(doc.id) { throw InputError(file: path, line: line, "field \"id\": document \"\(doc.id)\" is already indexed") }
            firstLine[doc.id] = line
            docs.append(doc)
        }
        guard !docs.isEmpty else { throw InputError(file: path, line: 0, "no documents") }
        return docs
    }

    /// One BEIR-style document object (`{"id", "title"?, "text"}`; an integer id is taken
    /// as its decimal text), checked the same way wherever documents come from (a file's
    /// line, or an HTTP request's array element: `file` and `line` say where).
    public static func document(_ obj: [String: Any], file: String, line: Int) throws(InputError) -> Document {
        let id = try string(obj, "id", file, line)
        let text = try string(obj, "text", file, line)
        let title = try string(obj, "title", file, line, optional: true) ?? ""
        guard !id.isEmpty else { throw InputError(file: file, line: line, "field \"id\": expected a non-empty string") }
        return Document(id: id, title: title, text: text)
    }

    /// Queries of a JSON-lines file (`{"id", "text"}` per line); duplicate ids are errors.
    public static func readQueries(_ path: String, required: Bool = true) throws(InputError) -> [String: Query] {
        var queries: [String: Query] = [:]
        try readJSONL(path, required: required) { line, obj throws(InputError) in
            let id = try string(obj, "id", path, line)
            let text = try string(obj, "text", path, line)
            if queries[id] != nil { throw InputError(file: path, line: line, "duplicate query id \"\(id)\"") }
            queries[id] = Query(id: id, text: text)
        }
        return queries
    }

    /// Whether a document is in the held-out share (continual-indexing experiments):
    /// FNV-1a of the id, salted differently from the dev split. Stable across machines.
    public static func isHeldOut(_ id: String, fraction: Double) -> Bool {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in "holdout:\(id)".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Double(h % 10_000) < fraction * 10_000
    }

    /// The splits with a qrels file, sorted.
    public var splits: [String] {
        let dir = (directory as NSString).appendingPathComponent("qrels")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return files.filter { $0.hasSuffix(".tsv") }.map { String($0.dropLast(4)) }.sorted()
    }

    /// Loads `qrels/<split>.tsv`: a header `query-id<TAB>corpus-id<TAB>score`, then rows.
    /// A row naming an unknown query is an error; one naming an unknown document is
    /// skipped and counted.
    public func qrels(split: String) throws(InputError) -> Qrels {
        let path = ((directory as NSString).appendingPathComponent("qrels") as NSString).appendingPathComponent("\(split).tsv")
        guard FileManager.default.fileExists(atPath: path) else {
            throw InputError(file: path, line: 0, "no such file (splits here: \(splits.joined(separator: ", ")))")
        }
        return try Self.readQrels(path, queries: { queries[$0] != nil }, documents: { index[$0] != nil })
    }

    /// Qrels from a TSV file: the header, then (query-id, corpus-id, score) rows. A row
    /// naming an unknown query is an error; one naming an unknown document is skipped
    /// and counted.
    public static func readQrels(_ path: String, queries: (String) -> Bool, documents: (String) -> Bool) throws(InputError) -> Qrels {
        var judgements: [String: [String: Int]] = [:]
        var skipped = 0
        var nonRelevant = 0
        for row in try TSVReader.rows(file: path, header: ["query-id", "corpus-id", "score"], extraColumns: true) {
            let (line, cols) = (row.line, row.fields)
            guard let score = Int(cols[2].trimmingCharacters(in: .whitespaces)) else {
                throw InputError(file: path, line: line, "field \"score\": expected an integer, found \"\(cols[2])\"")
            }
            let q = cols[0]
            let d = cols[1]
            guard queries(q) else {
                throw InputError(file: path, line: line, "field \"query-id\": query \"\(q)\" is not in the queries file")
            }
            guard documents(d) else {
                skipped += 1
                continue
            }
            if score <= 0 {
                nonRelevant += 1
                continue
            }
            judgements[q, default: [:]][d] = score
        }
        return Qrels(judgements: judgements, skippedUnknownDocuments: skipped, nonRelevantRows: nonRelevant)
    }

    // MARK: - JSON lines

    static func readJSONL(_ path: String, required: Bool, _ row: (Int, [String: Any]) throws(InputError) -> Void) throws(InputError) {
        try readJSONL(path, required: required) { line, obj, _ throws(InputError) in try row(line, obj) }
    }

    /// Every non-blank line of a JSON-lines file as (line number, object, the line's text).
    static func readJSONL(_ path: String, required: Bool, _ row: (Int, [String: Any], String) throws(InputError) -> Void) throws(InputError)
    {
        guard FileManager.default.fileExists(atPath: path) else {
            if required { throw InputError(file: path, line: 0, "no such file") }
            return
        }
        for (line, text) in LineReader(path: path) {
            guard let text else { throw InputError(file: path, line: line, "not valid UTF-8") }
            if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let parsed: Any
            do {
                parsed = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [])
            } catch {
                throw InputError(file: path, line: line, "malformed JSON (expected one object per line)")
            }
            guard let obj = parsed as? [String: Any] else {
                throw InputError(file: path, line: line, "expected a JSON object, found \(type(of: parsed))")
            }
            try row(line, obj, text)
        }
    }

    static func string(_ obj: [String: Any], _ field: String, _ file: String, _ line: Int, optional: Bool = false) throws(InputError)
        -> String?
    {
        guard let value = obj[field], !(value is NSNull) else {
            if optional { return nil }
            throw InputError(file: file, line: line, "missing field \"\(field)\" (expected a string)")
        }
        if let s = value as? String { return s }
        // BEIR ids are sometimes numbers; accept integers as their decimal text. (On
        // Linux, `0 is Bool` and `1 is Bool` are true for JSON numbers: JSON booleans
        // are told apart by their Objective-C type "c".)
        let number = value as? NSNumber
        let kind = number.map { String(cString: $0.objCType) }
        if field == "id", let number, let kind, !["c", "f", "d"].contains(kind) { return number.stringValue }
        let found = kind == "c" ? "a boolean" : number != nil ? "a number that is not an integer" : "\(type(of: value))"
        throw InputError(
            file: file, line: line, "field \"\(field)\": expected a string\(field == "id" ? " or an integer" : ""), found \(found)")
    }

    static func string(_ obj: [String: Any], _ field: String, _ file: String, _ line: Int) throws(InputError) -> String {
        try string(obj, field, file, line, optional: false)!
    }
}
