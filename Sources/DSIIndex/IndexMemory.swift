import DSIModel
import DSITensor
import DSIText
import Foundation

// What a checkpoint keeps beyond the model so that documents can be added later
// (`dsi add`) without the original corpus: the LSA projection (to embed and route new
// documents), a replay memory of old documents' views (to rehearse them), and the
// generations (which documents arrived when).

extension LSA {
    /// The LSA vector (U·Σ row) of a tokenized document under this projection:
    /// its TF-IDF row (with the stored idf, L2-normalised) times the term vectors.
    public func project(_ tokens: [Int32]) -> [Float] {
        let k = dimensions
        var out = [Float](repeating: 0, count: k)
        for (t, x) in LSA.tfidfRow(tokens, idf: idf) { for j in 0..<k { out[j] += x * termVectors[Int(t) * k + j] } }
        return out
    }

    /// This LSA with `rows` (n × k, row-major) appended to the document vectors.
    public func appending(documentRows rows: [Float]) -> LSA {
        let k = dimensions, D = documentVectors.shape[0], n = rows.count / k
        let grown = Tensor(zeros: [D + n, k])
        grown.data.update(from: documentVectors.data, count: D * k)
        rows.withUnsafeBufferPointer { (grown.data + D * k).update(from: $0.baseAddress!, count: n * k) }
        return LSA(documentVectors: grown, termVectors: termVectors, singularValues: singularValues, idf: idf)
    }

    /// `lsa.safetensors`: document_vectors (D, k), term_vectors (V, k), singular_values (k), idf (V).
    public func safetensorsData() throws -> Data {
        try singularValues.withUnsafeBufferPointer { s in
            try idf.withUnsafeBufferPointer { i in
                try Safetensors.encode([
                    ("document_vectors", documentVectors.shape, UnsafePointer(documentVectors.data)),
                    ("term_vectors", termVectors.shape, UnsafePointer(termVectors.data)),
                    ("singular_values", [s.count], s.baseAddress!),
                    ("idf", [i.count], i.baseAddress!),
                ], metadata: ["format": "swift-dsi-lsa"])
            }
        }
    }

    public static func load(_ data: Data, path: String) throws(Safetensors.FormatError) -> LSA {
        let (entries, _, start) = try Safetensors.header(data, path: path)
        func tensor(_ name: String, rank: Int) throws(Safetensors.FormatError) -> Tensor {
            guard let e = entries[name], e.shape.count == rank else {
                throw Safetensors.FormatError(path: path, message:  "tensor \"\(name)\" missing or not of rank \(rank)")
            }
            let t = Tensor(zeros: e.shape)
            try Safetensors.read(name, expectedShape: e.shape, from: data, entries: entries, dataStart: start, into: t.data, path: path)
            return t
        }
        let d = try tensor("document_vectors", rank: 2), v = try tensor("term_vectors", rank: 2)
        let s = try tensor("singular_values", rank: 1), i = try tensor("idf", rank: 1)
        guard d.shape[1] == s.count, v.shape[1] == s.count, v.shape[0] == i.count else {
            throw Safetensors.FormatError(path: path, message:  "shapes disagree: documents \(d.shape), terms \(v.shape), \(s.count) singular values, \(i.count) idf")
        }
        return LSA(documentVectors: d, termVectors: v, singularValues: s.toArray(), idf: i.toArray())
    }
}

/// Tokenized views of the indexed documents that `dsi add --mode replay` rehearses so
/// the old documents are not forgotten (DSI++'s replay): per document its leading
/// tokens, title, key terms and one span, plus the labelled train queries.
public struct ReplayMemory: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case lead, title, terms, span, query }

    public struct View: Sendable, Equatable {
        public var document: Int
        public var kind: Kind
        public var tokens: [Int32]
        public init(document: Int, kind: Kind, tokens: [Int32]) { self.document = document; self.kind = kind; self.tokens = tokens }
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
    public func tsv() -> String {
        var s = "document\tkind\ttokens\n"
        for v in views { s += "\(v.document)\t\(v.kind.rawValue)\t\(v.tokens.map(String.init).joined(separator: " "))\n" }
        return s
    }

    public static func parse(tsv: String, path: String, documents: Int, vocabulary: Int) throws(InputError) -> ReplayMemory {
        var views: [View] = []
        for (n, line) in tsv.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if n == 0 {
                guard line == "document\tkind\ttokens" else { throw InputError(file: path, line: 1, "expected the header \"document<TAB>kind<TAB>tokens\"") }
                continue
            }
            if line.isEmpty { continue }
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard cols.count == 3 else { throw InputError(file: path, line: n + 1, "expected 3 tab-separated fields (document, kind, tokens)") }
            guard let d = Int(cols[0]), d >= 0, d < documents else { throw InputError(file: path, line: n + 1, "field \"document\": expected a document index below \(documents), got \"\(cols[0])\"") }
            guard let kind = Kind(rawValue: String(cols[1])) else { throw InputError(file: path, line: n + 1, "field \"kind\": expected one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))") }
            var tokens: [Int32] = []
            for t in cols[2].split(separator: " ") {
                guard let x = Int32(t), x >= 0, Int(x) < vocabulary else { throw InputError(file: path, line: n + 1, "field \"tokens\": \"\(t)\" is not a token id below \(vocabulary)") }
                tokens.append(x)
            }
            views.append(View(document: d, kind: kind, tokens: tokens))
        }
        return ReplayMemory(views: views)
    }
}

/// A batch of documents that arrived together: generation 0 is `dsi train`, each
/// `dsi add` appends one. Documents are stored in arrival order, so a generation is a
/// range of document positions (rows of docids.tsv).
public struct Generation: Codable, Sendable, Equatable {
    public var generation: Int
    public var firstDocument: Int
    public var documents: Int
    /// "train", or the `dsi add` mode.
    public var mode: String
    public var source: String
    public var created: String

    public init(generation: Int, firstDocument: Int, documents: Int, mode: String, source: String, created: String = ISO8601DateFormatter().string(from: Date())) {
        self.generation = generation; self.firstDocument = firstDocument; self.documents = documents
        self.mode = mode; self.source = source; self.created = created
    }

    enum CodingKeys: String, CodingKey {
        case generation, documents, mode, source, created
        case firstDocument = "first_document"
    }
}
