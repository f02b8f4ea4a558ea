import DSIIndex
import DSITensor
import Foundation
import Testing

/// Two topics with distinct vocabularies, `perTopic` documents each, as token lists.
func twoTopicDocs(perTopic: Int, seed: UInt64 = 1) -> [[Int32]] {
    var rng = SeededRNG(seed: seed)
    return (0..<(2 * perTopic)).map { i in
        let base: Int32 = i % 2 == 0 ? 10 : 40  // topic A uses tokens 10..<40, topic B 40..<70
        return (0..<30).map { _ in base + Int32(rng.int(below: 30)) }
    }
}

@Suite("LSA and docids")
struct DocIDTests {
    @Test("at full rank the SVD reconstructs the TF-IDF matrix")
    func exactReconstruction() {
        let docs = twoTopicDocs(perTopic: 6)
        let V = 72
        let lsa = LSA.fit(documents: docs, vocabulary: V, dimensions: 12, oversample: 0, powerIterations: 2, seed: 3, blockRows: 5)
        let (rows, _) = LSA.tfidf(docs, vocabulary: V)
        let k = lsa.dimensions
        #expect(zip(lsa.singularValues, lsa.singularValues.dropFirst()).allSatisfy { $0 >= $1 })
        var worst: Float = 0
        for d in 0..<docs.count {
            var dense = [Float](repeating: 0, count: V)
            for (t, w) in rows[d] { dense[Int(t)] = w }
            for t in 0..<V {
                var s: Float = 0
                for j in 0..<k { s += lsa.documentVectors[d * k + j] * lsa.termVectors[t * k + j] }
                worst = max(worst, abs(s - dense[t]))
            }
        }
        #expect(worst < 1e-3, "largest reconstruction error \(worst)")
    }

    @Test("documents of one topic are closer to each other than to the other topic")
    func topics() {
        let docs = twoTopicDocs(perTopic: 40)
        let lsa = LSA.fit(documents: docs, vocabulary: 80, dimensions: 8, seed: 1)
        let k = lsa.dimensions
        func cos(_ a: Int, _ b: Int) -> Float {
            var d: Float = 0
            var na: Float = 0
            var nb: Float = 0
            for j in 0..<k {
                let x = lsa.documentVectors[a * k + j]
                let y = lsa.documentVectors[b * k + j]
                d += x * y
                na += x * x
                nb += y * y
            }
            return d / (na * nb).squareRoot()
        }
        var same: Float = 0
        var cross: Float = 0
        for i in 0..<20 {
            same += cos(2 * i, 2 * i + 2)
            cross += cos(2 * i, 2 * i + 1)
        }
        #expect(same / 20 > cross / 20 + 0.3, "same-topic \(same / 20), cross-topic \(cross / 20)")
    }

    @Test("semantic docids are valid, unique, prefix-free, deterministic, and follow topics")
    func semantic() {
        let docs = twoTopicDocs(perTopic: 150)
        let lsa = LSA.fit(documents: docs, vocabulary: 80, dimensions: 8, seed: 1)
        let ids = docs.indices.map { "doc\($0)" }
        let a = DocIDAssigner.semantic(ids, vectors: lsa.documentVectors, branching: 4, leafSize: 20, seed: 5)
        let b = DocIDAssigner.semantic(ids, vectors: lsa.documentVectors, branching: 4, leafSize: 20, seed: 5)
        #expect(a == b)
        let texts = docs.indices.map { a.text($0) }
        #expect(Set(texts).count == docs.count)
        #expect(a.docids.allSatisfy { $0.allSatisfy { (0...9).contains($0) } })
        let sorted = texts.sorted()
        for (x, y) in zip(sorted, sorted.dropFirst()) { #expect(!y.hasPrefix(x), "\(x) is a prefix of \(y)") }
        // The first split separates the two topics almost perfectly.
        var agree = 0
        for i in stride(from: 0, to: docs.count, by: 2) where a.docids[i].first == a.docids[0].first { agree += 1 }
        var crossAgree = 0
        for i in stride(from: 1, to: docs.count, by: 2) where a.docids[i].first == a.docids[0].first { crossAgree += 1 }
        #expect(agree > 100 && crossAgree < 20, "topic A in A's branch: \(agree)/150, topic B: \(crossAgree)/150")
        // A leaf never holds more than leafSize documents.
        let leaves = Dictionary(grouping: docs.indices) { a.docids[$0].dropLast(2) }
        #expect(leaves.values.allSatisfy { $0.count <= 20 })
    }

    @Test("tree-node tokens: one per k-means node and one per document; children follow the tree; appending keeps every token")
    func nodeTokens() {
        let docs = twoTopicDocs(perTopic: 60)
        let lsa = LSA.fit(documents: docs, vocabulary: 80, dimensions: 8, seed: 1)
        let ids = docs.indices.map { "doc\($0)" }
        let a = DocIDAssigner.semantic(ids, vectors: lsa.documentVectors, branching: 3, leafSize: 10, seed: 2)
        let v = TargetVocabulary(a, mode: .nodes, leafDigits: 1)
        let digitsOf = { (d: Int) in Array(a.docids[d].dropLast(1)) }  // cluster path
        // One token per distinct cluster prefix plus one per document.
        var prefixes = Set<[Int32]>()
        for d in docs.indices {
            for k in stride(from: 1, through: digitsOf(d).count, by: 1) { prefixes.insert(Array(digitsOf(d).prefix(k))) }
        }
        #expect(v.size == Int(TargetVocabulary.offset) + prefixes.count + docs.count)
        // A token stands for one prefix: documents share a token at depth k iff they share the prefix.
        for d in docs.indices {
            #expect(v.tokens[d].count == digitsOf(d).count + 1)
            for e in docs.indices where e > d {
                for k in 0..<min(digitsOf(d).count, digitsOf(e).count) {
                    #expect((v.tokens[d][k] == v.tokens[e][k]) == (digitsOf(d).prefix(k + 1) == digitsOf(e).prefix(k + 1)))
                }
            }
        }
        #expect(Set(v.tokens.map { $0.last! }).count == docs.count)
        // The trie walks the tree: below a node only its children (at most `branching` clusters, or its leaf's documents).
        let trie = DocIDTrie(v)
        #expect(trie.allowedNext([]).count <= 3)
        let first = v.tokens[0][0]
        #expect(Set(trie.allowedNext([first])) == Set(docs.indices.filter { v.tokens[$0][0] == first }.map { v.tokens[$0][1] }))
        // Members: a node's documents, a document's own token.
        let m = v.members()
        #expect(m[Int(first - TargetVocabulary.offset)] == docs.indices.filter { v.tokens[$0][0] == first })
        #expect(m[Int(v.tokens[5].last! - TargetVocabulary.offset)] == [5])
        // Appending a document (continual indexing) keeps every existing token.
        var grown = v
        let new = grown.append(a.docids[3].dropLast(1) + [9])
        #expect(Array(grown.tokens.prefix(docs.count)) == v.tokens)
        #expect(Array(new.dropLast()) == Array(v.tokens[3].dropLast()) && new.last! == Int32(v.size) && grown.size == v.size + 1)
        // Digit mode and other schemes use symbols.
        #expect(TargetVocabulary(a, mode: .digits).tokens[0] == a.docids[0].map { $0 + TargetVocabulary.offset })
        #expect(TargetVocabulary(DocIDAssigner.atomic(ids), mode: .nodes).tokens[7] == [TargetVocabulary.offset + 7])
    }

    @Test("atomic and naive docids; docids.tsv round-trips and bad lines are named")
    func otherSchemes() throws {
        let atomic = DocIDAssigner.atomic(["x", "y", "z"])
        #expect(atomic.docids == [[0], [1], [2]] && atomic.text(2) == "#2")
        let numeric = DocIDAssigner.naive(["4983", "5836", "7"], seed: 1)
        #expect(numeric.docids == [[4, 9, 8, 3], [5, 8, 3, 6], [7]])
        let named = DocIDAssigner.naive(["alpha", "beta", "gamma", "007"], seed: 1)
        #expect(Set(named.docids).count == 4 && Set(named.docids.map(\.count)).count == 1)
        #expect(named == DocIDAssigner.naive(["alpha", "beta", "gamma", "007"], seed: 1))
        #expect(named != DocIDAssigner.naive(["alpha", "beta", "gamma", "007"], seed: 2))
        for a in [atomic, numeric, named] {
            #expect(try DocIDAssignment.parse(tsv: a.tsv(), scheme: a.scheme, path: "docids.tsv") == a)
        }
        #expect(throws: InputError(file: "docids.tsv", line: 2, "field \"docid\": \"12a\" is not a naive docid")) {
            _ = try DocIDAssignment.parse(tsv: "corpus-id\tdocid\nx\t12a\n", scheme: .naive, path: "docids.tsv")
        }
    }

    @Test("term docids: three of each document's key terms, unique by construction, numbers only when its terms run out")
    func termDocIDs() throws {
        let keyTerms: [[Int32]] = [
            [40, 7, 9, 2], [40, 7, 9, 2], [40, 7, 9], [40, 7, 9], [5], [], [8, 8, 3, 1], (0..<30).map { Int32($0) },
        ]
        let ids = keyTerms.indices.map { "d\($0)" }
        let a = DocIDAssigner.terms(ids, keyTerms: keyTerms)
        #expect(a.docids.allSatisfy { $0.count == TermDocIDs.length })
        #expect(Set(a.docids).count == a.docids.count)
        // The first document takes its three strongest terms; the copy the next free
        // combination; the third, whose three terms are taken, a number after its first two.
        #expect(a.docids[0] == [40, 7, 9] && a.docids[1] == [40, 7, 2] && a.docids[2] == [40, 7, TermDocIDs.number(0)])
        #expect(a.docids[3] == [40, 7, TermDocIDs.number(1)])
        #expect(a.docids[4] == [5, TermDocIDs.number(0), TermDocIDs.number(0)])
        #expect(a.docids[5] == [TermDocIDs.number(0), TermDocIDs.number(0), TermDocIDs.number(0)])
        #expect(a.docids[6] == [8, 3, 1], "a repeated term counts once")
        #expect(a.docids[7] == [0, 1, 2])
        // Every term symbol is one of the document's key terms.
        for (d, docid) in a.docids.enumerated() {
            for s in docid where s >= 0 { #expect(keyTerms[d].contains(s)) }
        }
        #expect(a == DocIDAssigner.terms(ids, keyTerms: keyTerms))
        #expect(a.text(2) == "40.7.#0")
        #expect(try DocIDAssignment.parse(tsv: a.tsv(), scheme: .terms, path: "docids.tsv") == a)
        #expect(throws: InputError(file: "docids.tsv", line: 2, "field \"docid\": \"4.#x.2\" is not a terms docid")) {
            _ = try DocIDAssignment.parse(tsv: "corpus-id\tdocid\nx\t4.#x.2\n", scheme: .terms, path: "docids.tsv")
        }
        // A document added later never takes an existing docid.
        var later = TermDocIDs(existing: a.docids)
        #expect(later.assign(keyTerms: [40, 7, 9, 2]) == [40, 9, 2])
        #expect(later.assign(keyTerms: [40, 7, 9, 2]) == [7, 9, 2])
        #expect(later.assign(keyTerms: [40, 7, 9, 2]) == [40, 7, TermDocIDs.number(2)])
        // Decoder tokens: one per distinct symbol, in order of first appearance.
        let v = TargetVocabulary(a)
        #expect(v.tokens[0] == [3, 4, 5] && v.tokens[1] == [3, 4, 6] && v.tokens[2] == [3, 4, 7])
        #expect(v.size == Int(TargetVocabulary.offset) + Set(a.docids.joined()).count)
        #expect(!v.hasDocumentTokens)
    }
}

/// The trie as it was before the scale work (children inserted in corpus order into
/// sorted arrays, found by a linear scan): the reference the new one must equal.
struct ReferenceTrie {
    var children: [[(token: Int32, node: Int)]] = [[]]
    var terminal: [Int] = [-1]

    mutating func insert(_ tokens: [Int32], document: Int) {
        var node = 0
        for t in tokens {
            if let c = children[node].first(where: { $0.token == t }) {
                node = c.node
            } else {
                children.append([])
                terminal.append(-1)
                let pos = children[node].firstIndex { $0.token > t } ?? children[node].count
                children[node].insert((t, children.count - 1), at: pos)
                node = children.count - 1
            }
        }
        terminal[node] = document
    }

    func allowedNext(_ prefix: [Int32]) -> [Int32]? {
        var n = 0
        for t in prefix {
            guard let c = children[n].first(where: { $0.token == t }) else { return nil }
            n = c.node
        }
        return (terminal[n] >= 0 ? [TargetVocabulary.eos] : []) + children[n].map(\.token)
    }

    func document(_ docid: [Int32]) -> Int? {
        var n = 0
        for t in docid {
            guard let c = children[n].first(where: { $0.token == t }) else { return nil }
            n = c.node
        }
        return terminal[n] >= 0 ? terminal[n] : nil
    }
}

@Suite("docid trie")
struct TrieTests {
    @Test("the trie built in sorted order equals the reference on random docids, for every prefix", arguments: [1, 2, 3])
    func equalsReference(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        var docids: [[Int32]] = []
        var seen = Set<[Int32]>()
        // Fixed-length docids over a small alphabet (prefix-free), in random order.
        while docids.count < 400 {
            let d = (0..<4).map { _ in Int32(3 + rng.int(below: 7)) }
            if seen.insert(d).inserted { docids.append(d) }
        }
        var reference = ReferenceTrie()
        for (i, d) in docids.enumerated() { reference.insert(d, document: i) }
        var trie = DocIDTrie()
        for i in docids.indices.sorted(by: { docids[$0].lexicographicallyPrecedes(docids[$1]) }) { trie.insert(docids[i], document: i) }
        var prefixes = Set<[Int32]>([[]])
        for d in docids { for k in 1...d.count { prefixes.insert(Array(d.prefix(k))) } }
        for _ in 0..<200 { prefixes.insert((0..<rng.int(below: 5)).map { _ in Int32(2 + rng.int(below: 9)) }) }
        for p in prefixes {
            #expect(trie.allowedNext(p) == (reference.allowedNext(p) ?? []), "prefix \(p)")
        }
        for (i, d) in docids.enumerated() {
            #expect(trie.document(at: trie.node(for: d)!) == i && reference.document(d) == i)
        }
        // Inserting one more docid later (continual indexing) keeps the order.
        let extra: [Int32] = [9, 9, 9, 10]
        trie.insert(extra, document: docids.count)
        reference.insert(extra, document: docids.count)
        #expect(trie.allowedNext([9, 9, 9]) == reference.allowedNext([9, 9, 9]))
        let again = trie.insert(extra, document: 0)
        #expect(!again, "a docid already present is refused")
    }

    @Test("lexicographic order over a flat copy equals sorting the arrays: prefixes first, equal ones by index", arguments: [1, 2])
    func lexicographicOrder(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        // Variable lengths (0-4) over a tiny alphabet: many prefixes and duplicates.
        let sequences: [[Int32]] = (0..<500).map { _ in (0..<rng.int(below: 5)).map { _ in Int32(rng.int(below: 3)) - 1 } }
        let expected = sequences.indices.sorted {
            sequences[$0].lexicographicallyPrecedes(sequences[$1]) || (sequences[$0] == sequences[$1] && $0 < $1)
        }
        #expect(DocIDTrie.lexicographicOrder(sequences) == expected)
        #expect(DocIDTrie.lexicographicOrder([]) == [])
    }

    @Test("the trie of 200,000 atomic docids (one node with 200,000 children) builds by appending")
    func atomicBuild() {
        let ids = (0..<200_000).map { "d\($0)" }
        let v = TargetVocabulary(DocIDAssigner.atomic(ids))
        let trie = DocIDTrie(v)
        #expect(trie.childTokens(at: 0).count == 200_000)
        #expect(trie.document(at: trie.node(for: [Int32(3 + 123_456)])!) == 123_456)
    }
}

@Suite("balanced k-means")
struct BalancedKMeansTests {
    @Test("a capacity caps every cluster, keeps every point once, and leaves a clustering that fits untouched")
    func capacity() {
        var rng = SeededRNG(seed: 4)
        // 90 points around one centre, 10 around another.
        let x = Tensor(zeros: [100, 3])
        for i in 0..<100 {
            let c: Float = i < 90 ? 0 : 10
            for j in 0..<3 { x[i * 3 + j] = c + rng.normal() * 0.5 }
        }
        var r1 = SeededRNG(seed: 1)
        let plain = KMeans.cluster(x, rows: Array(0..<100), k: 2, rng: &r1)
        #expect(plain.map(\.count).max()! > 55, "the unconstrained split is skewed")
        var r2 = SeededRNG(seed: 1)
        let capped = KMeans.cluster(x, rows: Array(0..<100), k: 2, capacity: 55, rng: &r2)
        #expect(capped.map(\.count).max()! <= 55)
        #expect(Set(capped.joined()) == Set(0..<100) && capped.joined().count == 100)
        // The ten far points stay together.
        #expect(capped.contains { Set(90..<100).isSubset(of: Set($0)) })
        var r3 = SeededRNG(seed: 1)
        #expect(KMeans.cluster(x, rows: Array(0..<100), k: 2, capacity: 100, rng: &r3) == plain)
    }

    /// Depth of recursive k-means (branching 10, leaves of 10) with or without the cap.
    static func depth(_ x: Tensor, rows: [Int], capped: Bool, rng: inout SeededRNG) -> Int {
        if rows.count <= 10 { return 0 }
        let cap = capped ? 2 * ((rows.count + 9) / 10) : nil
        let groups = KMeans.cluster(x, rows: rows, k: 10, capacity: cap, rng: &rng).filter { !$0.isEmpty }
        if groups.count < 2 { return 0 }
        return 1 + groups.map { depth(x, rows: $0, capped: capped, rng: &rng) }.max()!
    }

    @Test("on a heavy-tailed collection the cap keeps the k-means tree shallow where plain k-means goes deep")
    func shallowTree() {
        var rng = SeededRNG(seed: 2)
        let n = 3000
        let x = Tensor(zeros: [n, 2])
        for i in 0..<n {
            // Log-normal radii: a dense core and a long tail that k-means++ seeds favour.
            let r = exp(2.5 * rng.normal())
            x[i * 2] = r * rng.normal()
            x[i * 2 + 1] = r * rng.normal()
        }
        var r1 = SeededRNG(seed: 1)
        let plain = Self.depth(x, rows: Array(0..<n), capped: false, rng: &r1)
        var r2 = SeededRNG(seed: 1)
        let capped = Self.depth(x, rows: Array(0..<n), capped: true, rng: &r2)
        // Balanced: 3 levels for 3,000 documents in leaves of 10; the cap allows log_5(300) + 1.
        #expect(capped <= 5, "capped depth \(capped), plain \(plain)")
        #expect(plain > capped, "capped depth \(capped), plain \(plain)")
        let a = DocIDAssigner.semantic((0..<n).map { "d\($0)" }, vectors: x, branching: 10, leafSize: 10, seed: 1)
        #expect(a.docids.map(\.count).max()! - 1 <= 5)
    }
}
