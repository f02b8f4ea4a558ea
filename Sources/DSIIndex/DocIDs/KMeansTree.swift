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

    /// Reads the tree in one pass over the docids in lexicographic order, in which a
    /// leaf's documents follow each other: its documents' vectors are summed once per
    /// leaf, and each node's sum is its leaves' (a million documents make about ten
    /// thousand leaves, so the dictionaries are touched per leaf, not per document).
    init(_ a: DocIDAssignment, leafDigits: Int, vectors: Tensor) {
        self.leafDigits = leafDigits
        k = vectors.shape[1]
        let order = DocIDTrie.lexicographicOrder(a.docids)
        var i = 0
        var sum = [Float](repeating: 0, count: k)
        while i < order.count {
            let first = a.docids[order[i]]
            let depth = max(0, first.count - leafDigits)
            let path = Array(first.prefix(depth))
            var used = Set<Int>()
            for j in 0..<k { sum[j] = 0 }
            var j = i
            while j < order.count {
                let docid = a.docids[order[j]]
                guard docid.count == first.count, docid.prefix(depth).elementsEqual(path) else { break }
                used.insert(docid.suffix(leafDigits).reduce(0) { $0 * 10 + Int($1) })
                let row = vectors.data + order[j] * k
                for c in 0..<k { sum[c] += row[c] }
                j += 1
            }
            positions[path, default: []].formUnion(used)
            for d in 0..<depth { children[Array(path.prefix(d)), default: []].insert(path[d]) }
            for d in 0...depth {
                let p = Array(path.prefix(d))
                var (s, n) = sums[p] ?? ([Float](repeating: 0, count: k), 0)
                for c in 0..<k { s[c] += sum[c] }
                sums[p] = (s, n + j - i)
            }
            i = j
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
