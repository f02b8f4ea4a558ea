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
    /// Writes `tsv()` to `handle` in chunks.
    public func write(to handle: FileHandle) throws {
        var s = "document\tkind\ttokens\n"
        for v in views {
            s += "\(v.document)\t\(v.kind.rawValue)\t\(v.tokens.map(String.init).joined(separator: " "))\n"
            if s.utf8.count > 1 << 22 {
                try handle.write(contentsOf: Data(s.utf8))
                s = ""
            }
        }
        try handle.write(contentsOf: Data(s.utf8))
    }

    public func tsv() -> String {
        var s = "document\tkind\ttokens\n"
        for v in views { s += "\(v.document)\t\(v.kind.rawValue)\t\(v.tokens.map(String.init).joined(separator: " "))\n" }
        return s
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
