import DSIModel
import DSITensor
import Foundation

public enum DocIDAssigner {
    /// Atomic docids: document i gets token i.
    public static func atomic(_ corpusIDs: [String]) -> DocIDAssignment {
        DocIDAssignment(scheme: .atomic, corpusIDs: corpusIDs, docids: corpusIDs.indices.map { [Int32($0)] })
    }

    /// N-gram retrieval: document i is known by its position (as `atomic`), but it has no
    /// decoder token (`TargetVocabulary`).
    public static func ngrams(_ corpusIDs: [String]) -> DocIDAssignment {
        DocIDAssignment(scheme: .ngrams, corpusIDs: corpusIDs, docids: corpusIDs.indices.map { [Int32($0)] })
    }

    /// Term docids (`TermDocIDs`): each document's key terms (strongest first), in
    /// corpus order.
    public static func terms(_ corpusIDs: [String], keyTerms: [[Int32]]) -> DocIDAssignment {
        var t = TermDocIDs()
        return DocIDAssignment(scheme: .terms, corpusIDs: corpusIDs, docids: keyTerms.map { t.assign(keyTerms: $0) })
    }

    /// Naive docids: the id's digits when every id is a decimal number (without leading
    /// zeros, so distinct ids give distinct docids); otherwise distinct random numbers of
    /// equal length drawn from `seed`.
    public static func naive(_ corpusIDs: [String], seed: UInt64) -> DocIDAssignment {
        let numeric = corpusIDs.allSatisfy { id in
            !id.isEmpty && id.allSatisfy { $0.isASCII && $0.isNumber } && (id == "0" || !id.hasPrefix("0"))
        }
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
    /// `leafSize` documents (no cluster larger than twice its share: `KMeans.cluster`'s
    /// capacity); a docid is the path of cluster indices (one digit each)
    /// followed by the document's position in its leaf, written with as many digits as
    /// `leafSize − 1` needs. All docids under a leaf have the same length and no leaf is a
    /// prefix of another node, so docids are distinct and prefix-free by construction.
    public static func semantic(_ corpusIDs: [String], vectors: Tensor, branching: Int = 10, leafSize: Int = 100, seed: UInt64 = 0)
        -> DocIDAssignment
    {
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
            // No cluster may take more than twice its share, so the tree stays shallow
            // (depth ≤ log_{b/2}(N / leafSize) + 1) however skewed the vectors are.
            let capacity = 2 * ((members.count + branching - 1) / branching)
            var groups = KMeans.cluster(vectors, rows: members, k: branching, capacity: capacity, rng: &rng)
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
