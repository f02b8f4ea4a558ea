import DSIModel
import DSITensor
import Foundation

/// Docids of a corpus, in corpus order: each a sequence of docid tokens (digits 0–9 for
/// `semantic` and `naive`; a document index for `atomic` and `ngrams`; tokenizer token ids, or numbers
/// −(n + 1), for `terms`).
public struct DocIDAssignment: Sendable, Equatable {
    public let scheme: DocIDScheme
    /// Corpus ids, in corpus order.
    public let corpusIDs: [String]
    /// Docid tokens per document.
    public let docids: [[Int32]]

    public init(scheme: DocIDScheme, corpusIDs: [String], docids: [[Int32]]) {
        self.scheme = scheme
        self.corpusIDs = corpusIDs
        self.docids = docids
    }

    /// The textual docid: digits joined ("3742"), "#index" for atomic ones, and for term
    /// docids the token ids joined by dots, numbers as "#n" ("1523.88.402", "1523.88.#0").
    public func text(_ i: Int) -> String {
        switch scheme {
        case .atomic, .ngrams: "#\(docids[i][0])"
        case .terms: docids[i].map { $0 >= 0 ? String($0) : "#\(-Int($0) - 1)" }.joined(separator: ".")
        default: docids[i].map(String.init).joined()
        }
    }

    /// `docids.tsv`: a header, then "corpus-id<TAB>docid" per document.
    public func tsv() -> String {
        var s = "corpus-id\tdocid\n"
        for i in corpusIDs.indices { s += "\(corpusIDs[i])\t\(text(i))\n" }
        return s
    }

    public static func parse(tsv: String, scheme: DocIDScheme, path: String) throws(InputError) -> DocIDAssignment {
        var ids: [String] = []
        var docids: [[Int32]] = []
        for row in try TSVReader.rows(tsv, path: path, header: ["corpus-id", "docid"]) {
            let d = row.fields[1]
            let tokens: [Int32]?
            if scheme == .atomic || scheme == .ngrams {
                tokens = d.hasPrefix("#") ? Int32(d.dropFirst()).map { [$0] } : nil
            } else if scheme == .terms {
                let symbols = d.split(separator: ".", omittingEmptySubsequences: false).map { s -> Int32? in
                    if s.hasPrefix("#") { return Int32(s.dropFirst()).flatMap { $0 >= 0 ? TermDocIDs.number(Int($0)) : nil } }
                    return Int32(s).flatMap { $0 >= 0 ? $0 : nil }
                }
                tokens = symbols.allSatisfy { $0 != nil } ? symbols.map { $0! } : nil
            } else {
                // Digits 0-9 only (bytes, not characters: no string per digit).
                tokens = !d.isEmpty && d.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? d.utf8.map { Int32($0 - 0x30) } : nil
            }
            guard let tokens else {
                throw InputError(file: path, line: row.line, "field \"docid\": \"\(d)\" is not a \(scheme.rawValue) docid")
            }
            ids.append(row.fields[0])
            docids.append(tokens)
        }
        return DocIDAssignment(scheme: scheme, corpusIDs: ids, docids: docids)
    }

    /// The longest docid, in tokens.
    public var maxLength: Int { docids.map(\.count).max() ?? 0 }
}
