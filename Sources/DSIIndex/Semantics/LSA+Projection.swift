import DSIModel
import DSITensor
import DSIText
import Foundation

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
        let k = dimensions
        let D = documentVectors.shape[0]
        let n = rows.count / k
        let grown = Tensor(zeros: [D + n, k])
        grown.data.update(from: documentVectors.data, count: D * k)
        rows.withUnsafeBufferPointer { (grown.data + D * k).update(from: $0.baseAddress!, count: n * k) }
        return LSA(documentVectors: grown, termVectors: termVectors, singularValues: singularValues, idf: idf)
    }

    /// Writes `lsa.safetensors` to `handle` (streamed, never whole in memory):
    /// document_vectors (D, k), term_vectors (V, k), singular_values (k), idf (V).
    public func writeSafetensors(to handle: FileHandle) throws {
        try singularValues.withUnsafeBufferPointer { s in
            try idf.withUnsafeBufferPointer { i in
                try Safetensors.write(
                    [
                        ("document_vectors", documentVectors.shape, UnsafePointer(documentVectors.data)),
                        ("term_vectors", termVectors.shape, UnsafePointer(termVectors.data)),
                        ("singular_values", [s.count], s.baseAddress!),
                        ("idf", [i.count], i.baseAddress!),
                    ], metadata: ["format": "swift-dsi-lsa"], to: handle)
            }
        }
    }

    /// Writes the document vectors from row `first` on, alone, as the LSA file of one
    /// generation of added documents (`document_vectors` (n, k)): the projection and the
    /// older rows stay in the files before it.
    public func writeDocumentRows(from first: Int, to handle: FileHandle) throws {
        let k = dimensions
        try Safetensors.write(
            [("document_vectors", [documentVectors.shape[0] - first, k], UnsafePointer(documentVectors.data + first * k))],
            metadata: ["format": "swift-dsi-lsa-rows"], to: handle)
    }

    /// The rows of a file `writeDocumentRows` wrote, row-major, checked to have `dimensions` columns.
    public static func loadDocumentRows(_ data: Data, dimensions k: Int, path: String) throws(Safetensors.FormatError) -> [Float] {
        let (entries, _, start) = try Safetensors.header(data, path: path)
        guard let e = entries["document_vectors"], e.shape.count == 2, e.shape[1] == k else {
            throw Safetensors.FormatError(
                path: path, message: "expected a tensor \"document_vectors\" of shape (documents, \(k)), the checkpoint's LSA dimensions")
        }
        var rows = [Float](repeating: 0, count: e.shape[0] * k)
        try rows.withUnsafeMutableBufferPointer { (b) throws(Safetensors.FormatError) in
            guard let p = b.baseAddress else { return }
            try Safetensors.read(
                "document_vectors", expectedShape: e.shape, from: data, entries: entries, dataStart: start, into: p, path: path)
        }
        return rows
    }

    public static func load(_ data: Data, path: String) throws(Safetensors.FormatError) -> LSA {
        let (entries, _, start) = try Safetensors.header(data, path: path)
        func tensor(_ name: String, rank: Int) throws(Safetensors.FormatError) -> Tensor {
            guard let e = entries[name], e.shape.count == rank else {
                throw Safetensors.FormatError(path: path, message: "tensor \"\(name)\" missing or not of rank \(rank)")
            }
            let t = Tensor(zeros: e.shape)
            try Safetensors.read(name, expectedShape: e.shape, from: data, entries: entries, dataStart: start, into: t.data, path: path)
            return t
        }
        let d = try tensor("document_vectors", rank: 2)
        let v = try tensor("term_vectors", rank: 2)
        let s = try tensor("singular_values", rank: 1)
        let i = try tensor("idf", rank: 1)
        guard d.shape[1] == s.count, v.shape[1] == s.count, v.shape[0] == i.count else {
            throw Safetensors.FormatError(
                path: path, message: "shapes disagree: documents \(d.shape), terms \(v.shape), \(s.count) singular values, \(i.count) idf")
        }
        return LSA(documentVectors: d, termVectors: v, singularValues: s.toArray(), idf: i.toArray())
    }
}
