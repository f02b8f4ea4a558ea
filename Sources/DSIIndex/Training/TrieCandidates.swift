import DSIModel
import DSITensor

/// What each docid position's softmax is taken over in training (`--objective`).
public enum OutputObjective: String, Codable, Sendable, CaseIterable {
    /// The tokens the docid trie allows after the gold prefix (the hierarchical softmax
    /// the tree implies; beam search normalises the same way). A step's output cost is
    /// set by the tree's fan-out, not by the number of documents.
    case trie
    /// Every token of the decoder vocabulary (the objective before the scale work; its
    /// cost grows with the number of documents).
    case full

    /// How beam search normalises for a model trained with this objective.
    public var searchNormalization: ConstrainedBeamSearch.Normalization { self == .trie ? .allowed : .all }
}

/// Builds a batch's `OutputCandidates` for the trie objective from its labels: position
/// i of an example is scored over the tokens the trie allows after the example's first
/// i labels. Positions where only one token is allowed (EOS after a complete docid) carry
/// no information and are not scored.
///
/// A node with more than `maxCandidates` allowed tokens (atomic docids: the root's N
/// children) is scored by a sampled softmax: the labels of the batch's positions at that
/// node (in-batch negatives) plus tokens drawn uniformly from the node's children until
/// the set has `maxCandidates`, drawn from (seed, step). Every view of every document
/// appears the same number of times per epoch, so a document's chance of being in the
/// set is the same for all documents; the log-Q correction of sampled softmax is then
/// the same constant for every candidate and cancels in the softmax, so none is applied.
public struct TrieCandidates: Sendable {
    public let trie: DocIDTrie
    public let maxCandidates: Int
    public let seed: UInt64

    public init(trie: DocIDTrie, maxCandidates: Int, seed: UInt64) {
        precondition(maxCandidates >= 2, "need at least 2 candidates")
        self.trie = trie
        self.maxCandidates = maxCandidates
        self.seed = seed
    }

    public func candidates(for batch: Seq2SeqBatch, step: Int) -> OutputCandidates {
        let B = batch.B
        let T = batch.T
        var nodeOf = [Int](repeating: -1, count: B * T)
        for b in 0..<B {
            var node: Int? = 0
            for i in 0..<T {
                let y = batch.targetOut[b * T + i]
                guard y != Seq2Seq.ignoreIndex, let n = node else { break }
                nodeOf[b * T + i] = n
                node = y == TargetVocabulary.eos ? nil : trie.step(n, y)
            }
        }
        var setOfNode: [Int: Int32] = [:]
        var sets: [[Int32]] = []
        var setOfPosition = [Int32](repeating: -1, count: B * T)
        var rng = SeededRNG(seed: seed &+ 0x5A3 &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15)
        for node in Set(nodeOf).filter({ $0 >= 0 }).sorted() {
            let children = trie.childTokens(at: node)
            let terminal = trie.isTerminal(node)
            let count = children.count + (terminal ? 1 : 0)
            if count < 2 { continue }
            var set: [Int32]
            if count <= maxCandidates {
                set = terminal ? [TargetVocabulary.eos] + children : children
            } else {
                var chosen = Set<Int32>()
                for p in nodeOf.indices where nodeOf[p] == node { chosen.insert(batch.targetOut[p]) }
                while chosen.count < maxCandidates {
                    let k = rng.int(below: count)
                    chosen.insert(terminal ? (k == 0 ? TargetVocabulary.eos : children[k - 1]) : children[k])
                }
                set = chosen.sorted()
            }
            setOfNode[node] = Int32(sets.count)
            sets.append(set)
        }
        for p in nodeOf.indices where nodeOf[p] >= 0 { setOfPosition[p] = setOfNode[nodeOf[p]] ?? -1 }
        return OutputCandidates(sets: sets, setOfPosition: setOfPosition)
    }
}
