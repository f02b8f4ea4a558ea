import DSIModel
import DSITensor
import Foundation

/// `dsi bench query`: trie-constrained beam search with the reference model over random
/// docids, the measurement `../shared/peers/torch_dsi.py` makes (random weights and
/// sources: speed only).
public enum QueryBenchmark {
    /// What `dsi bench query --json` prints.
    public struct Result: Sendable, Codable {
        public var docids: Int, beam: Int, topK: Int, threads: Int
        /// "nodes": tree-node tokens over a k-means-shaped tree (the default docids);
        /// "digits": random 8-digit docids over a 13-token vocabulary.
        public var scheme: String
        public var decoderVocabulary: Int
        public var msPerQueryB1P50: Double, msPerQueryB1P95: Double, msPerQueryB32: Double, msPerQueryB32Encoding: Double
        public var trieBytesPerDocid: Double
        public var trieBytesPerDocidBySize: [String: Double]
        public var peakRSSMB: Double
        public var blasCore: String
        /// Milliseconds per query in each `OpFamily` (exclusive; `OpProfile`), at batch 1
        /// and batch 32: encoder, decoder steps and the trie's bookkeeping (`other`).
        public var opMsPerQueryB1: [String: Double] = [:]
        public var opMsPerQueryB32: [String: Double] = [:]

        enum CodingKeys: String, CodingKey {
            case docids, beam, threads, scheme
            case decoderVocabulary = "decoder_vocabulary"
            case topK = "top_k"
            case msPerQueryB1P50 = "ms_per_query_b1_p50"
            case msPerQueryB1P95 = "ms_per_query_b1_p95"
            case msPerQueryB32 = "ms_per_query_b32"
            case msPerQueryB32Encoding = "ms_per_query_b32_encoding"
            case trieBytesPerDocid = "trie_bytes_per_docid"
            case trieBytesPerDocidBySize = "trie_bytes_per_docid_by_size"
            case peakRSSMB = "peak_rss_mb"
            case blasCore = "blas_core"
            case opMsPerQueryB1 = "op_ms_per_query_b1"
            case opMsPerQueryB32 = "op_ms_per_query_b32"
        }
    }

    public static func randomDocIDs(_ n: Int, digits: Int, seed: UInt64) -> DocIDAssignment {
        var rng = SeededRNG(seed: seed)
        var seen = Set<[Int32]>()
        var docids: [[Int32]] = []
        while docids.count < n {
            let d = (0..<digits).map { _ in Int32(rng.int(below: 10)) }
            if seen.insert(d).inserted { docids.append(d) }
        }
        return DocIDAssignment(scheme: .naive, corpusIDs: (0..<n).map(String.init), docids: docids)
    }

    /// Semantic docids shaped like the default k-means tree (branching 10, leaves of up to
    /// 100 documents: clusters of `n / 100` leaves, two leaf digits), in a random order.
    public static func treeDocIDs(_ n: Int, seed: UInt64) -> DocIDAssignment {
        let leaves = (n + 99) / 100
        let depth = max(1, String(max(0, leaves - 1)).count)
        var order = Array(0..<n)
        var rng = SeededRNG(seed: seed)
        order.shuffle(using: &rng)
        let docids = order.map { i -> [Int32] in
            let leaf = i / 100
            let path = String(leaf).leftPadded(to: depth).map { Int32(String($0))! }
            return path + [Int32((i % 100) / 10), Int32(i % 10)]
        }
        return DocIDAssignment(scheme: .semantic, corpusIDs: (0..<n).map(String.init), docids: docids)
    }

    public static func run(
        docids n: Int = 10_000, scheme: DocIDTokens = .nodes, beam: Int = 10, topK: Int = 10, queriesB1: Int = 30, batch: Int = 32,
        batches: Int = 8,
        trieSizes: [Int] = [5_000, 100_000, 1_000_000]
    ) throws -> Result {
        let vocabulary =
            scheme == .nodes
            ? TargetVocabulary(treeDocIDs(n, seed: 1), mode: .nodes, leafDigits: 2) : TargetVocabulary(randomDocIDs(n, digits: 8, seed: 1))
        var config = ModelConfig.reference
        config.targetVocab = vocabulary.size
        config.targetLength = scheme == .nodes ? vocabulary.maxLength + 1 : 9
        let model = try Seq2Seq(config: config, seed: 0)
        let trie = DocIDTrie(vocabulary)
        // As the model would be trained for that scheme: nodes with the trie objective.
        let search = ConstrainedBeamSearch(
            model: model, trie: trie, beam: beam, topK: topK, normalization: scheme == .nodes ? .allowed : .all)
        var rng = SeededRNG(seed: 2)
        func source() -> [Int32] { (0..<config.sourceLength).map { _ in Int32(5 + rng.int(below: config.sourceVocab - 5)) } }
        let clock = ContinuousClock()
        _ = try search.search([source()])  // warm-up
        var b1: [Double] = []
        func perQuery(_ f: [OpFamily: Double], _ queries: Int) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: f.map { ($0.key.rawValue, $0.value * 1000 / Double(max(1, queries))) })
        }
        OpProfile.shared.start()
        for _ in 0..<queriesB1 {
            let s = source()
            let t0 = clock.now
            let hits = try search.search([s])
            b1.append((clock.now - t0).seconds * 1000)
            precondition(hits[0].count == topK)
        }
        let opsB1 = perQuery(OpProfile.shared.stop(), queriesB1)
        _ = try search.search((0..<batch).map { _ in source() })
        var bb: [Double] = []
        OpProfile.shared.start()
        for _ in 0..<batches {
            let ss = (0..<batch).map { _ in source() }
            let t0 = clock.now
            _ = try search.search(ss)
            bb.append((clock.now - t0).seconds * 1000 / Double(batch))
        }
        let opsB32 = perQuery(OpProfile.shared.stop(), batches * batch)
        // The share of batch-32 time spent encoding (encoder + cross-attention K/V).
        var enc: [Double] = []
        let ws = Workspace()
        var state: DecodingState? = nil
        for _ in 0..<(batches + 1) {
            let ss = (0..<batch).map { _ in source() }
            let S = config.sourceLength
            let t0 = clock.now
            state = try model.beginDecoding(
                source: Array(ss.joined()), sourceMask: [Float](repeating: 1, count: batch * S), queries: batch, sourceLength: S,
                maxRows: batch * beam, workspace: ws, reusing: state)
            enc.append((clock.now - t0).seconds * 1000 / Double(batch))
        }
        b1.sort()
        // The searches' peak, before the trie-size probes below build tries of up to a
        // million docids in this process.
        let peakRSS = ProcessMemory.peakRSSMiB
        var trieBytes: [String: Double] = [:]
        for size in trieSizes {
            let t = DocIDTrie(TargetVocabulary(randomDocIDs(size, digits: 8, seed: 3)))
            trieBytes[String(size)] = Double(t.memoryBytes) / Double(size)
        }
        return Result(
            docids: n, beam: beam, topK: topK, threads: Threads.count, scheme: scheme.rawValue, decoderVocabulary: vocabulary.size,
            msPerQueryB1P50: b1[b1.count / 2], msPerQueryB1P95: b1[min(b1.count - 1, Int(Double(b1.count) * 0.95))],
            msPerQueryB32: bb.sorted()[bb.count / 2], msPerQueryB32Encoding: enc.dropFirst().sorted()[(enc.count - 1) / 2],
            trieBytesPerDocid: trieBytes[String(n)] ?? Double(trie.memoryBytes) / Double(n),
            trieBytesPerDocidBySize: trieBytes, peakRSSMB: peakRSS, blasCore: BLAS.coreName, opMsPerQueryB1: opsB1,
            opMsPerQueryB32: opsB32)
    }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
