import DSIModel
import DSITensor
import Foundation

/// How documents get their identifiers.
public enum DocIDScheme: String, Codable, Sendable, CaseIterable {
    /// Digit strings from recursive k-means over LSA document vectors (DSI's semantic
    /// docids): documents with similar content share prefixes.
    case semantic
    /// One output token per document.
    case atomic
    /// The corpus id's digits, or a random unique number where ids are not all numeric.
    case naive
}

/// Docids of a corpus, in corpus order: each a sequence of docid tokens (digits 0–9 for
/// `semantic` and `naive`; a document index for `atomic`).
public struct DocIDAssignment: Sendable, Equatable {
    public let scheme: DocIDScheme
    /// Corpus ids, in corpus order.
    public let corpusIDs: [String]
    /// Docid tokens per document.
    public let docids: [[Int32]]

    public init(scheme: DocIDScheme, corpusIDs: [String], docids: [[Int32]]) {
        self.scheme = scheme; self.corpusIDs = corpusIDs; self.docids = docids
    }

    /// The textual docid: digits joined ("3742"), or "#index" for atomic ones.
    public func text(_ i: Int) -> String {
        scheme == .atomic ? "#\(docids[i][0])" : docids[i].map(String.init).joined()
    }

    /// `docids.tsv`: a header, then "corpus-id<TAB>docid" per document.
    public func tsv() -> String {
        var s = "corpus-id\tdocid\n"
        for i in corpusIDs.indices { s += "\(corpusIDs[i])\t\(text(i))\n" }
        return s
    }

    public static func parse(tsv: String, scheme: DocIDScheme, path: String) throws(InputError) -> DocIDAssignment {
        var ids: [String] = [], docids: [[Int32]] = []
        for (n, line) in tsv.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if n == 0 {
                guard line == "corpus-id\tdocid" else { throw InputError(file: path, line: 1, "expected the header \"corpus-id<TAB>docid\"") }
                continue
            }
            if line.isEmpty { continue }
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard cols.count == 2 else { throw InputError(file: path, line: n + 1, "expected 2 tab-separated fields (corpus-id, docid)") }
            let d = cols[1]
            let tokens: [Int32]?
            if scheme == .atomic {
                tokens = d.hasPrefix("#") ? Int32(d.dropFirst()).map { [$0] } : nil
            } else {
                tokens = d.allSatisfy(\.isASCII) && d.allSatisfy(\.isNumber) && !d.isEmpty ? d.map { Int32(String($0))! } : nil
            }
            guard let tokens else { throw InputError(file: path, line: n + 1, "field \"docid\": \"\(d)\" is not a \(scheme.rawValue) docid") }
            ids.append(String(cols[0]))
            docids.append(tokens)
        }
        return DocIDAssignment(scheme: scheme, corpusIDs: ids, docids: docids)
    }

    /// The longest docid, in tokens.
    public var maxLength: Int { docids.map(\.count).max() ?? 0 }
}

public enum DocIDAssigner {
    /// Atomic docids: document i gets token i.
    public static func atomic(_ corpusIDs: [String]) -> DocIDAssignment {
        DocIDAssignment(scheme: .atomic, corpusIDs: corpusIDs, docids: corpusIDs.indices.map { [Int32($0)] })
    }

    /// Naive docids: the id's digits when every id is a decimal number (without leading
    /// zeros, so distinct ids give distinct docids); otherwise distinct random numbers of
    /// equal length drawn from `seed`.
    public static func naive(_ corpusIDs: [String], seed: UInt64) -> DocIDAssignment {
        let numeric = corpusIDs.allSatisfy { id in !id.isEmpty && id.allSatisfy { $0.isASCII && $0.isNumber } && (id == "0" || !id.hasPrefix("0")) }
        if numeric {
            return DocIDAssignment(scheme: .naive, corpusIDs: corpusIDs, docids: corpusIDs.map { $0.map { Int32(String($0))! } })
        }
        var rng = SeededRNG(seed: seed)
        let width = max(1, String(corpusIDs.count * 10).count)
        var range = 1
        for _ in 0..<width { range *= 10 }
        var used = Set<Int>()
        let docids: [[Int32]] = corpusIDs.map { _ in
            var x: Int
            repeat { x = rng.int(below: range) } while !used.insert(x).inserted
            let s = String(x)
            return (String(repeating: "0", count: width - s.count) + s).map { Int32(String($0))! }
        }
        return DocIDAssignment(scheme: .naive, corpusIDs: corpusIDs, docids: docids)
    }

    /// Semantic docids (Tay et al. 2022, §3.2.3): recursive k-means over document
    /// vectors with `branching` clusters per level until a cluster holds at most
    /// `leafSize` documents; a docid is the path of cluster indices (one digit each)
    /// followed by the document's position in its leaf, written with as many digits as
    /// `leafSize − 1` needs. All docids under a leaf have the same length and no leaf is a
    /// prefix of another node, so docids are distinct and prefix-free by construction.
    public static func semantic(_ corpusIDs: [String], vectors: Tensor, branching: Int = 10, leafSize: Int = 100, seed: UInt64 = 0) -> DocIDAssignment {
        precondition(branching >= 2 && branching <= 10, "branching factor must be in 2...10 (one digit per level)")
        precondition(leafSize >= 1)
        let D = vectors.shape[0]
        let leafDigits = String(max(0, leafSize - 1)).count
        var docids = [[Int32]](repeating: [], count: D)
        var rng = SeededRNG(seed: seed)
        func recurse(_ members: [Int], _ prefix: [Int32], _ depth: Int) {
            if members.count <= leafSize || depth > 24 {
                for (pos, m) in members.enumerated() {
                    let s = String(pos)
                    docids[m] = prefix + (String(repeating: "0", count: leafDigits - s.count) + s).map { Int32(String($0))! }
                }
                return
            }
            var groups = KMeans.cluster(vectors, rows: members, k: branching, rng: &rng)
            if groups.filter({ !$0.isEmpty }).count < 2 {
                // Identical vectors cannot be split by distance: split them evenly.
                groups = (0..<branching).map { g in stride(from: g, to: members.count, by: branching).map { members[$0] } }
            }
            for (g, sub) in groups.enumerated() where !sub.isEmpty {
                recurse(sub, prefix + [Int32(g)], depth + 1)
            }
        }
        recurse(Array(0..<D), [], 0)
        return DocIDAssignment(scheme: .semantic, corpusIDs: corpusIDs, docids: docids)
    }
}

/// k-means (Lloyd's algorithm with k-means++ seeding) on rows of a (n, d) matrix;
/// distances through sgemm. Deterministic for a generator state.
public enum KMeans {
    /// Groups `rows` into at most k clusters (members in increasing row order).
    public static func cluster(_ x: Tensor, rows: [Int], k: Int, iterations: Int = 25, rng: inout SeededRNG) -> [[Int]] {
        let n = rows.count, d = x.shape[1]
        let k = min(k, n)
        let pts = Tensor(zeros: [n, d])
        for (i, r) in rows.enumerated() { (pts.data + i * d).update(from: x.data + r * d, count: d) }
        let norms = (0..<n).map { i in (0..<d).reduce(Float(0)) { $0 + pts[i * d + $1] * pts[i * d + $1] } }
        // k-means++ seeding.
        let centers = Tensor(zeros: [k, d])
        var first = rng.int(below: n)
        (centers.data).update(from: pts.data + first * d, count: d)
        var best = (0..<n).map { i in dist2(pts, i, centers, 0, d) }
        for c in 1..<k {
            let total = best.reduce(0, +)
            var pick = n - 1
            if total > 0 {
                var u = Float(rng.uniform()) * total
                for i in 0..<n {
                    u -= best[i]
                    if u <= 0 { pick = i; break }
                }
            } else {
                pick = rng.int(below: n)
            }
            first = pick
            (centers.data + c * d).update(from: pts.data + pick * d, count: d)
            for i in 0..<n { best[i] = min(best[i], dist2(pts, i, centers, c, d)) }
        }
        var assign = [Int](repeating: -1, count: n)
        let dots = Tensor(zeros: [n, k])
        for _ in 0..<iterations {
            // ‖p − c‖² = ‖p‖² − 2 p·c + ‖c‖²; p·c for all pairs in one product.
            BLAS.sgemm(transB: true, m: n, n: k, k: d, a: pts.data, lda: d, b: centers.data, ldb: d, c: dots.data, ldc: k, parallel: true)
            let cn = (0..<k).map { c in (0..<d).reduce(Float(0)) { $0 + centers[c * d + $1] * centers[c * d + $1] } }
            var changed = false
            for i in 0..<n {
                var bc = 0
                var bd = Float.infinity
                for c in 0..<k {
                    let dd = norms[i] - 2 * dots[i * k + c] + cn[c]
                    if dd < bd { bd = dd; bc = c }
                }
                if assign[i] != bc { assign[i] = bc; changed = true }
            }
            if !changed { break }
            centers.zero()
            var count = [Int](repeating: 0, count: k)
            for i in 0..<n {
                count[assign[i]] += 1
                let c = centers.data + assign[i] * d, p = pts.data + i * d
                for j in 0..<d { c[j] += p[j] }
            }
            for c in 0..<k {
                if count[c] == 0 {
                    // An empty cluster takes the point farthest from its center.
                    var far = 0
                    var fd = -Float.infinity
                    for i in 0..<n {
                        let dd = norms[i] - 2 * dots[i * k + assign[i]]
                        if dd > fd { fd = dd; far = i }
                    }
                    (centers.data + c * d).update(from: pts.data + far * d, count: d)
                } else {
                    for j in 0..<d { centers[c * d + j] /= Float(count[c]) }
                }
            }
        }
        var groups = [[Int]](repeating: [], count: k)
        for i in 0..<n { groups[assign[i]].append(rows[i]) }
        return groups
    }

    @inline(__always) static func dist2(_ p: Tensor, _ i: Int, _ c: Tensor, _ j: Int, _ d: Int) -> Float {
        var s: Float = 0
        for t in 0..<d {
            let x = p[i * d + t] - c[j * d + t]
            s += x * x
        }
        return s
    }
}
