import DSIModel
import DSITensor
import DSIText
import Foundation

/// Tokenized views of the indexed documents that `dsi add --mode replay` rehearses so
/// the old documents are not forgotten (DSI++'s replay): per document its leading
/// tokens, title, key terms and one span, plus the labelled train queries.
public struct ReplayMemory: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case lead, title, terms, span, query }

    public struct View: Sendable, Equatable {
        public var document: Int
        public var kind: Kind
        public var tokens: [Int32]
        public init(document: Int, kind: Kind, tokens: [Int32]) {
            self.document = document
            self.kind = kind
            self.tokens = tokens
        }
    }

    public var views: [View]
    public init(views: [View] = []) { self.views = views }

    /// Remembers a document: its leading `viewLength` tokens, title, key terms, and a span
    /// (each when not empty).
    public mutating func remember(document d: Int, full: [Int32], title: [Int32], terms: [Int32], span: [Int32]?, viewLength: Int) {
        if !full.isEmpty { views.append(View(document: d, kind: .lead, tokens: Array(full.prefix(viewLength)))) }
        if !title.isEmpty { views.append(View(document: d, kind: .title, tokens: Array(title.prefix(viewLength)))) }
        if !terms.isEmpty { views.append(View(document: d, kind: .terms, tokens: terms)) }
        if let span, !span.isEmpty { views.append(View(document: d, kind: .span, tokens: span)) }
    }

    /// `replay.tsv`: a header, then "document<TAB>kind<TAB>space-separated token ids".
    /// Writes `tsv()` to `handle` in chunks, formatting the numbers as bytes (at a million
    /// documents the file is about 460 MB).
    public func write(to handle: FileHandle) throws {
        var out: [UInt8] = Array("document\tkind\ttokens\n".utf8)
        out.reserveCapacity(1 << 22 + 4096)
        let kinds = Dictionary(uniqueKeysWithValues: Kind.allCases.map { ($0, Array($0.rawValue.utf8)) })
        func number(_ x: Int) {
            if x < 10 {
                out.append(UInt8(48 + x))
                return
            }
            var digits:
                (
                    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                    UInt8, UInt8, UInt8
                ) =
                    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var n = 0
            var v = x
            withUnsafeMutableBytes(of: &digits) { d in
                while v > 0 {
                    d[n] = UInt8(48 + v % 10)
                    v /= 10
                    n += 1
                }
                for i in stride(from: n - 1, through: 0, by: -1) { out.append(d[i]) }
            }
        }
        for v in views {
            number(v.document)
            out.append(9)
            out += kinds[v.kind]!
            out.append(9)
            for (i, t) in v.tokens.enumerated() {
                if i > 0 { out.append(32) }
                number(Int(t))
            }
            out.append(10)
            if out.count > 1 << 22 {
                try handle.write(contentsOf: out)
                out.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: out)
    }

    public func tsv() -> String {
        var s = "document\tkind\ttokens\n"
        for v in views { s += "\(v.document)\t\(v.kind.rawValue)\t\(v.tokens.map(String.init).joined(separator: " "))\n" }
        return s
    }

    /// Parses replay.tsv's bytes. Well-formed files (what `write` produces) are read
    /// byte by byte; anything else (blank lines, extra spaces, a bad field) goes through
    /// `parse(tsv:...)`, which accepts what it can and names the line and field it cannot.
    public static func parse(data: Data, path: String, documents: Int, vocabulary: Int) throws(InputError) -> ReplayMemory {
        if let fast = parseWellFormed(data, documents: documents, vocabulary: vocabulary) { return fast }
        return try parse(tsv: String(decoding: data, as: UTF8.self), path: path, documents: documents, vocabulary: vocabulary)
    }

    /// The views of a file exactly as `write` makes it (header, then each line:
    /// digits, tab, a kind, tab, token ids separated by one space; "\n" ends each), or
    /// nil at the first byte that does not fit or the first number out of range.
    public static func parseWellFormed(_ data: Data, documents: Int, vocabulary: Int) -> ReplayMemory? {
        data.withUnsafeBytes { parseWellFormed($0, documents: documents, vocabulary: vocabulary) }
    }

    static func parseWellFormed(_ b: UnsafeRawBufferPointer, documents: Int, vocabulary: Int) -> ReplayMemory? {
        let header = Array("document\tkind\ttokens\n".utf8)
        guard b.count >= header.count, zip(b.prefix(header.count), header).allSatisfy({ $0 == $1 }) else { return nil }
        let kinds = Kind.allCases.map { (Array($0.rawValue.utf8), $0) }
        var views: [View] = []
        var i = header.count
        let n = b.count
        // A number below `limit` at i, then `i` past it; nil for no digit, one past the
        // end of the file, or a number out of range.
        func number(below limit: Int) -> Int? {
            var x = 0
            let start = i
            while i < n, b[i] >= 48, b[i] <= 57 {
                x = x * 10 + Int(b[i] - 48)
                i += 1
                if x >= limit { return nil }
            }
            return i > start && i < n ? x : nil
        }
        while i < n {
            guard let d = number(below: documents), b[i] == 9 else { return nil }
            i += 1
            let k0 = i
            while i < n, b[i] != 9, b[i] != 10 { i += 1 }
            guard i < n, b[i] == 9,
                let kind = kinds.first(where: { $0.0.count == i - k0 && $0.0.elementsEqual(b[k0..<i]) })?.1
            else { return nil }
            i += 1
            var tokens: [Int32] = []
            if i < n, b[i] != 10 {
                while true {
                    guard let t = number(below: vocabulary) else { return nil }
                    tokens.append(Int32(t))
                    if b[i] == 10 { break }
                    guard b[i] == 32 else { return nil }
                    i += 1
                }
            }
            guard i < n, b[i] == 10 else { return nil }
            i += 1
            views.append(View(document: d, kind: kind, tokens: tokens))
        }
        return ReplayMemory(views: views)
    }

    public static func parse(tsv: String, path: String, documents: Int, vocabulary: Int) throws(InputError) -> ReplayMemory {
        var views: [View] = []
        for row in try TSVReader.rows(tsv, path: path, header: ["document", "kind", "tokens"]) {
            let (n, cols) = (row.line, row.fields)
            guard let d = Int(cols[0]), d >= 0, d < documents else {
                throw InputError(
                    file: path, line: n, "field \"document\": expected a document index below \(documents), got \"\(cols[0])\"")
            }
            guard let kind = Kind(rawValue: cols[1]) else {
                throw InputError(
                    file: path, line: n, "field \"kind\": expected one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var tokens: [Int32] = []
            for t in cols[2].split(separator: " ") {
                guard let x = Int32(t), x >= 0, Int(x) < vocabulary else {
                    throw InputError(file: path, line: n, "field \"tokens\": \"\(t)\" is not a token id below \(vocabulary)")
                }
                tokens.append(x)
            }
            views.append(View(document: d, kind: kind, tokens: tokens))
        }
        return ReplayMemory(views: views)
    }
}
