import DSIModel
import DSITensor
import Foundation

/// Beam search over the docid trie (GENRE-style constrained decoding): at each step the
/// log-softmax over the whole decoder vocabulary is taken, tokens the trie does not allow
/// from a beam's node get −∞, and the best `beam` extensions by cumulative
/// log-probability survive (ties broken by beam, then token, so runs repeat). A beam that
/// emits EOS is a finished docid. Normalising over all tokens (not only the allowed ones)
/// keeps a beam's score the model's own probability of that docid.
public struct ConstrainedBeamSearch {
    public let model: Seq2Seq
    public let trie: DocIDTrie
    public var beam: Int
    public var topK: Int
    public var normalization: Normalization
    /// Encoder activations, reused by every search of this value (so one searcher per
    /// thread).
    private let workspace = Workspace()

    /// What each step's softmax is taken over.
    public enum Normalization: String, Sendable, Codable, CaseIterable {
        /// Every token of the decoder vocabulary (the model's own probability, as trained).
        case all
        /// Only the tokens the trie allows from the beam's node (a distribution over the
        /// children, as in a hierarchical softmax).
        case allowed
    }

    public init(model: Seq2Seq, trie: DocIDTrie, beam: Int = 10, topK: Int = 10, normalization: Normalization = .all) {
        precondition(beam >= 1 && topK >= 1 && topK <= beam, "need 1 ≤ top-k ≤ beam")
        self.model = model
        self.trie = trie
        self.beam = beam
        self.topK = topK
        self.normalization = normalization
    }

    public struct Hit: Sendable, Equatable {
        public var document: Int
        public var score: Float
    }

    /// Ranked documents for each source (token ids, truncated to the model's length).
    public func search(_ sources: [[Int32]]) throws -> [[Hit]] {
        let Q = sources.count
        if Q == 0 { return [] }
        let S = max(1, min(model.config.sourceLength, sources.map(\.count).max() ?? 1))
        var src = [Int32](repeating: 0, count: Q * S)
        var mask = [Float](repeating: 0, count: Q * S)
        for (q, s) in sources.enumerated() {
            for (i, t) in s.prefix(S).enumerated() {
                src[q * S + i] = t
                mask[q * S + i] = 1
            }
        }
        let state = try model.beginDecoding(
            source: src, sourceMask: mask, queries: Q, sourceLength: S, maxRows: Q * beam, workspace: workspace)
        let V = model.config.targetVocab
        // Live beams per query: trie node (−1: a padding row) and cumulative score.
        // Row r of the state holds beam r % g of query r / g.
        var nodes = [[Int]](repeating: [0], count: Q)
        var scores = [[Float]](repeating: [0], count: Q)
        var finished = [[Hit]](repeating: [], count: Q)
        var tokens = [Int32](repeating: TargetVocabulary.bos, count: Q)
        while state.steps < model.config.targetLength {
            let g = state.group
            let logits = model.decodeStep(state, tokens: tokens)
            var live = [[(score: Float, beam: Int, token: Int32)]](repeating: [], count: Q)
            for q in 0..<Q {
                var cands: [(score: Float, beam: Int, token: Int32)] = []
                for b in 0..<nodes[q].count where nodes[q][b] >= 0 {
                    let row = logits.baseAddress! + (q * g + b) * V
                    let allowed = trie.allowed(at: nodes[q][b])
                    var mx = -Float.infinity
                    var sum: Float = 0
                    switch normalization {
                    case .all:
                        for j in 0..<V { mx = max(mx, row[j]) }
                        for j in 0..<V { sum += expf(row[j] - mx) }
                    case .allowed:
                        for t in allowed where Int(t) < V { mx = max(mx, row[Int(t)]) }
                        for t in allowed where Int(t) < V { sum += expf(row[Int(t)] - mx) }
                    }
                    let lse = mx + logf(sum)
                    for t in allowed where Int(t) < V {
                        cands.append((scores[q][b] + row[Int(t)] - lse, b, t))
                    }
                }
                cands.sort { $0.score != $1.score ? $0.score > $1.score : ($0.beam != $1.beam ? $0.beam < $1.beam : $0.token < $1.token) }
                for c in cands {
                    if c.token == TargetVocabulary.eos {
                        if let d = trie.document(at: nodes[q][c.beam]) { finished[q].append(Hit(document: d, score: c.score)) }
                    } else if live[q].count < beam {
                        live[q].append(c)
                    }
                }
                finished[q].sort { $0.score != $1.score ? $0.score > $1.score : $0.document < $1.document }
                if finished[q].count > topK { finished[q].removeLast(finished[q].count - topK) }
                // Scores only fall as a beam grows: once the k-th finished hit beats every
                // live beam, this query is done.
                if finished[q].count == topK, let best = live[q].first, finished[q][topK - 1].score >= best.score {
                    live[q] = []
                }
            }
            let width = live.map(\.count).max() ?? 0
            if width == 0 { break }
            // Every query keeps `width` rows; missing ones are padding (node −1).
            var parents: [Int] = []
            var next: [Int32] = []
            for q in 0..<Q {
                var qNodes: [Int] = []
                var qScores: [Float] = []
                for b in 0..<width {
                    if b < live[q].count {
                        let c = live[q][b]
                        parents.append(q * g + c.beam)
                        next.append(c.token)
                        qNodes.append(trie.step(nodes[q][c.beam], c.token)!)
                        qScores.append(c.score)
                    } else {
                        parents.append(q * g)
                        next.append(TargetVocabulary.eos)
                        qNodes.append(-1)
                        qScores.append(-.infinity)
                    }
                }
                nodes[q] = qNodes
                scores[q] = qScores
            }
            state.reorder(parents)
            tokens = next
        }
        return finished
    }
}
