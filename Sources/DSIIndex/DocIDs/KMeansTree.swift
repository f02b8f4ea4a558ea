import DSITensor
import Foundation

/// The k-means tree of semantic docids, read back from the docids themselves (cluster
/// path, then the position in the leaf; `DocIDAssigner.semantic` built it) with each
/// node's centroid from its documents' LSA vectors. `dsi add` places new documents in it.
struct KMeansTree {
    let leafDigits: Int
    var children: [[Int32]: Set<Int32>] = [:]
    var positions: [[Int32]: Set<Int>] = [:]  // leaf path → used positions
    var sums: [[Int32]: ([Float], Int)] = [:]
    let k: Int

    init(_ a: DocIDAssignment, leafDigits: Int, vectors: Tensor) {
        self.leafDigits = leafDigits
        k = vectors.shape[1]
        for (d, docid) in a.docids.enumerated() {
            let path = Array(docid.prefix(max(0, docid.count - leafDigits)))
            let pos = Int(docid.suffix(leafDigits).map(String.init).joined()) ?? 0
            positions[path, default: []].insert(pos)
            for depth in 0..<path.count { children[Array(path.prefix(depth)), default: []].insert(path[depth]) }
            for depth in 0...path.count {
                let p = Array(path.prefix(depth))
                var (s, n) = sums[p] ?? ([Float](repeating: 0, count: k), 0)
                for j in 0..<k { s[j] += vectors[d * k + j] }
                sums[p] = (s, n + 1)
            }
        }
    }

    func distance(_ v: [Float], _ p: [Int32]) -> Float {
        guard let (s, n) = sums[p], n > 0 else { return .infinity }
        var d: Float = 0
        for j in 0..<k {
            let x = v[j] - s[j] / Float(n)
            d += x * x
        }
        return d
    }

    var capacity: Int { Int(pow(10, Double(leafDigits))) }

    /// Routes `v` to `leaf` when given (and known), else to the nearest leaf (nearest child centroid at every level), and takes
    /// its next free position; a full leaf spills to a new sibling leaf (a free digit
    /// under the same parent), else to the nearest leaf with room.
    mutating func place(_ v: [Float], leaf preferredLeaf: [Int32]? = nil) throws -> [Int32] {
        var path: [Int32] = []
        if let p = preferredLeaf, positions[p] != nil {
            path = p
        } else {
            while let kids = children[path], !kids.isEmpty, positions[path] == nil {
                path.append(kids.sorted().min { distance(v, path + [$0]) < distance(v, path + [$1]) }!)
            }
        }
        var leaf = path
        if (positions[leaf]?.count ?? 0) >= capacity {
            let parent = Array(leaf.dropLast())
            if !leaf.isEmpty, let free = (0..<10).map(Int32.init).first(where: { !(children[parent] ?? []).contains($0) }) {
                leaf = parent + [free]
                children[parent, default: []].insert(free)
                positions[leaf] = []
            } else if let other = positions.filter({ $0.value.count < capacity }).keys.min(by: {
                distance(v, $0) < distance(v, $1) || (distance(v, $0) == distance(v, $1) && $0.lexicographicallyPrecedes($1))
            }) {
                leaf = other
            } else {
                throw ContinualIndexer.Failure(
                    description: "every leaf of the docid tree is full (\(capacity) documents each); retrain with a larger --leaf-size")
            }
        }
        var pos = 0
        while positions[leaf]?.contains(pos) == true { pos += 1 }
        positions[leaf, default: []].insert(pos)
        let s = String(pos)
        return leaf + (String(repeating: "0", count: max(0, leafDigits - s.count)) + s).map { Int32(String($0))! }
    }
}
