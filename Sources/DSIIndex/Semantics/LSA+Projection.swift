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

    /// This LSA with `rows` (n × k, row-major) appended to the document vectors. Rows
    /// mapped from a file (`mappedRows`) are mapped again, not copied: at a million
    /// documents a fast add would otherwise copy 1 GB of vectors to append a hundred.
    public func appending(documentRows rows: [Float]) -> LSA {
        let k = dimensions
        let D = documentVectors.shape[0]
        let n = rows.count / k
        if let m = mappedRows {
            let tail = Array(UnsafeBufferPointer(start: documentVectors.data + m.rows * k, count: (D - m.rows) * k)) + rows
            if let grown = tail.withUnsafeBufferPointer({ Self.mappedVectors(m, k: k, tail: $0) }) {
                var l = LSA(documentVectors: grown, termVectors: termVectors, singularValues: singularValues, idf: idf)
                l.mappedRows = m
                return l
            }
        }
        let grown = Tensor(zeros: [D + n, k])
        grown.data.update(from: documentVectors.data, count: D * k)
        rows.withUnsafeBufferPointer { (grown.data + D * k).update(from: $0.baseAddress!, count: n * k) }
        return LSA(documentVectors: grown, termVectors: termVectors, singularValues: singularValues, idf: idf)
    }

    /// The document vectors `m` locates, mapped, followed by `tail` (copied) in one
    /// region; nil when they cannot be mapped (not page-aligned in their file).
    static func mappedVectors(_ m: MappedRows, k: Int, tail: UnsafeBufferPointer<Float>) -> Tensor? {
        let total = m.rows + tail.count / k
        guard total > 0, let region = try? MappedRegion(bytes: total * k * 4),
            region.map(path: m.path, fileOffset: m.fileOffset, bytes: m.rows * k * 4, at: 0)
        else { return nil }
        let p = region.base.bindMemory(to: Float.self, capacity: total * k)
        if let t = tail.baseAddress { (p + m.rows * k).update(from: t, count: tail.count) }
        return Tensor(viewing: p, shape: [total, k], owner: region)
    }

    /// Writes `lsa.safetensors` to `handle` (streamed, never whole in memory):
    /// document_vectors (D, k), term_vectors (V, k), singular_values (k), idf (V), each
    /// starting on a 4,096-byte page so the document vectors can be mapped (`load(...,
    /// mapping:)`).
    public func writeSafetensors(to handle: FileHandle) throws {
        try singularValues.withUnsafeBufferPointer { s in
            try idf.withUnsafeBufferPointer { i in
                try Safetensors.write(
                    [
                        ("document_vectors", documentVectors.shape, UnsafePointer(documentVectors.data)),
                        ("term_vectors", termVectors.shape, UnsafePointer(termVectors.data)),
                        ("singular_values", [s.count], s.baseAddress!),
                        ("idf", [i.count], i.baseAddress!),
                    ], metadata: ["format": "swift-dsi-lsa"], to: handle, alignment: WeightFile.pageBytes)
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

    /// With `mapping`, the document vectors are mapped from the file at `path` (whose
    /// bytes `data` are) where they are page-aligned in it, and copied otherwise.
    public static func load(_ data: Data, path: String, mapping: Bool = false) throws(Safetensors.FormatError) -> LSA {
        let (entries, _, start) = try Safetensors.header(data, path: path)
        if mapping, let e = entries["document_vectors"], e.shape.count == 2, e.shape[1] > 0 {
            let m = MappedRows(path: path, fileOffset: start + e.range.lowerBound, rows: e.shape[0])
            if let vectors = mappedVectors(m, k: e.shape[1], tail: UnsafeBufferPointer(start: nil, count: 0)) {
                var l = try load(data, path: path, documentVectors: vectors)
                l.mappedRows = m
                return l
            }
        }
        return try load(data, path: path, documentVectors: nil)
    }

    static func load(_ data: Data, path: String, documentVectors: Tensor?) throws(Safetensors.FormatError) -> LSA {
        let (entries, _, start) = try Safetensors.header(data, path: path)
        func tensor(_ name: String, rank: Int) throws(Safetensors.FormatError) -> Tensor {
            guard let e = entries[name], e.shape.count == rank else {
                throw Safetensors.FormatError(path: path, message: "tensor \"\(name)\" missing or not of rank \(rank)")
            }
            let t = Tensor(zeros: e.shape)
            try Safetensors.read(name, expectedShape: e.shape, from: data, entries: entries, dataStart: start, into: t.data, path: path)
            return t
        }
        let d: Tensor
        if let documentVectors { d = documentVectors } else { d = try tensor("document_vectors", rank: 2) }
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
