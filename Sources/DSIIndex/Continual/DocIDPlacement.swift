import DSIModel
import DSITensor
import Foundation

/// Where new documents' docids go. Atomic: the next indices. Naive: the id's digits, or a
/// fresh random number. Terms: from the document's key terms (`TermDocIDs`), against the
/// docids that exist. Semantic: a leaf of the k-means tree (`KMeansTree`), preferably
/// the one the trained model itself walks to for the document's title and lead.
extension ContinualIndexer {
    /// Semantic docids: the leaf the trained model walks to for each new document's
    /// title and lead (greedy decoding; the majority, nil on a tie), so queries like them
    /// reach the new document; nil (the LSA routing decides) for other schemes.
    static func preferredLeaves(_ old: TrainedIndex, _ news: [NewDocument]) throws -> [[Int32]?] {
        guard old.docids.scheme == .semantic else { return [[Int32]?](repeating: nil, count: news.count) }
        let opts = old.options
        var qs: [[Int32]] = []
        var owner: [Int] = []
        for (i, n) in news.enumerated() {
            for v in [Array(n.title.prefix(opts.sourceLength)), Array(n.full.prefix(opts.viewLength))] where !v.isEmpty {
                qs.append(v)
                owner.append(i)
            }
        }
        let hits = try old.search(tokens: qs, beam: 1, topK: 1)
        var votes = [[[Int32]: Int]](repeating: [:], count: news.count)
        for (h, i) in zip(hits, owner) {
            if let d = h.first?.document { votes[i][Array(old.docids.docids[d].dropLast(opts.leafDigits)), default: 0] += 1 }
        }
        return votes.map { v in
            let best = v.values.max() ?? 0
            let leaves = v.filter { $0.value == best }.keys
            return leaves.count == 1 ? leaves.first : nil
        }
    }

    static func assignDocIDs(
        _ old: TrainedIndex, count: Int, ids: [String], vectors: [Float], keyTerms: [[Int32]], preferred: [[Int32]?] = []
    ) throws -> [[Int32]] {
        let a = old.docids
        switch a.scheme {
        case .atomic, .ngrams:
            return (0..<count).map { [Int32(a.docids.count + $0)] }
        case .terms:
            var t = TermDocIDs(existing: a.docids)
            return keyTerms.map { t.assign(keyTerms: $0) }
        case .naive:
            var used = Set(a.docids)
            var rng = SeededRNG(seed: old.options.seed &+ UInt64(a.docids.count))
            let width = max(1, a.maxLength)
            var out: [[Int32]] = []
            for id in ids {
                let digits =
                    id.allSatisfy { $0.isASCII && $0.isNumber } && !id.isEmpty && (id == "0" || !id.hasPrefix("0"))
                    ? id.map { Int32(String($0))! } : nil
                if let digits, !used.contains(digits) {
                    out.append(digits)
                    used.insert(digits)
                    continue
                }
                var w = width
                var tries = 0
                while true {
                    let x = (0..<w).map { _ in Int32(rng.int(below: 10)) }
                    if used.insert(x).inserted {
                        out.append(x)
                        break
                    }
                    tries += 1
                    if tries > 1000 {
                        w += 1
                        tries = 0
                    }
                }
            }
            return out
        case .semantic:
            guard let lsa = old.lsa else {
                throw Failure(description: "this checkpoint has no LSA projection (lsa.safetensors) to place new semantic docids")
            }
            var tree = KMeansTree(a, leafDigits: old.options.leafDigits, vectors: lsa.documentVectors)
            let k = lsa.dimensions
            return try (0..<count).map { i in
                try tree.place(Array(vectors[(i * k)..<((i + 1) * k)]), leaf: i < preferred.count ? preferred[i] : nil)
            }
        }
    }
}
