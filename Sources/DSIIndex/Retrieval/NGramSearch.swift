import DSIModel
import DSITensor
import Foundation

/// Retrieval with n-gram identifiers (`DocIDScheme.ngrams`, after SEAL, Bevilacqua et
/// al. 2022): the decoder generates n-grams that occur in the corpus, and documents are
/// ranked by the n-grams they contain.
///
/// Decoding is beam search over tokenizer tokens, constrained by the `NGramIndex`: from a
/// hypothesis only the tokens that follow it somewhere in the corpus may come next, and
/// the first token must start a word (as every training target does). Every hypothesis
/// that survives a step, of every length up to the index's depth, is a key: an n-gram
/// with its conditional log-probability log P(n|q). The best single tokens of the first
/// step are keys too (as many as the beams give), as SEAL adds its best unigrams.
///
/// Scoring, SEAL's "intersective" aggregation with its defaults: a key's weight is
/// w(n) = max(0, log[P(n|q)(1 − P(n))] − log[P(n)(1 − P(n|q))])^α, α = 2, where
/// P(n) = (F(n) + 5) / (tokens + 5) is its smoothed corpus frequency; keys are visited by
/// decreasing weight, and an occurrence counts for its document only if none of its
/// token positions is already covered by an occurrence of a heavier key (each key counts
/// once per document). A document's score is the sum of its keys' weights, each times
/// 1 − β + β × (share of the key's token kinds not already in the document's heavier
/// keys), β = 0.8. Keys occurring more than `maxOccurrences` times are skipped (their
/// weight is near zero: such an n-gram is in most documents).
public struct NGramSearch {
    public let model: Seq2Seq
    public let index: NGramIndex
    /// Per tokenizer token: may it begin an n-gram (it starts a word)?
    public let wordStart: [Bool]
    public var beam: Int
    public var topK: Int
    public var alpha: Float = 2
    public var beta: Float = 0.8
    public var smoothing: Float = 5
    public var maxOccurrences = 20_000
    private let scratch: SearchBuffers

    public init(
        model: Seq2Seq, index: NGramIndex, wordStart: [Bool], beam: Int = 10, topK: Int = 10, buffers: SearchBuffers = SearchBuffers()
    ) {
        precondition(beam >= 1 && topK >= 1, "need beam ≥ 1 and top-k ≥ 1")
        self.scratch = buffers
        self.model = model
        self.index = index
        self.wordStart = wordStart
        self.beam = beam
        self.topK = topK
    }

    /// A generated n-gram (tokenizer tokens) and log P(n|q).
    public struct Key: Sendable, Equatable {
        public var tokens: [Int32]
        public var logp: Float

        public init(tokens: [Int32], logp: Float) {
            self.tokens = tokens
            self.logp = logp
        }
    }

    /// Ranked documents for each source (token ids, truncated to the model's length).
    public func search(_ sources: [[Int32]]) throws -> [[ConstrainedBeamSearch.Hit]] {
        try generate(sources).map { rank($0) }
    }

    /// The keys of each source, by constrained beam search.
    public func generate(_ sources: [[Int32]]) throws -> [[Key]] {
        let Q = sources.count
        if Q == 0 { return [] }
        let (src, mask, S) = ConstrainedBeamSearch.pack(sources, maxLength: model.config.sourceLength)
        let steps = min(index.depth, model.config.targetLength)
        let state = try model.beginDecoding(
            source: src, sourceMask: mask, queries: Q, sourceLength: S, maxRows: Q * beam, workspace: scratch.workspace,
            reusing: scratch.state)
        scratch.state = state
        let V = model.config.targetVocab
        let offset = Int(TargetVocabulary.offset)
        struct Hyp {
            var tokens: [Int32]
            var range: Range<Int>
            var score: Float
        }
        var hyps = [[Hyp]](repeating: [Hyp(tokens: [], range: index.all, score: 0)], count: Q)
        var keys = [[Key]](repeating: [], count: Q)
        let first = index.continuations(index.all, length: 0).filter { Int($0.token) < wordStart.count && wordStart[Int($0.token)] }
        var tokens = [Int32](repeating: TargetVocabulary.bos, count: Q)
        var k = 0
        while k < steps {
            let g = state.group
            let logits = model.decodeStep(state, tokens: tokens)
            var next = [[Hyp]](repeating: [], count: Q)
            var cands = [[(score: Float, beam: Int, token: Int32, range: Range<Int>)]](repeating: [], count: Q)
            for q in 0..<Q {
                for (b, h) in hyps[q].enumerated() where !h.range.isEmpty {
                    let row = logits.baseAddress! + (q * g + b) * V
                    var mx = -Float.infinity
                    for j in offset..<V { mx = max(mx, row[j]) }
                    var sum: Float = 0
                    for j in offset..<V { sum += expf(row[j] - mx) }
                    let lse = mx + logf(sum)
                    let options = k == 0 ? first : index.continuations(h.range, length: k)
                    for c in options where offset + Int(c.token) < V {
                        cands[q].append((h.score + row[offset + Int(c.token)] - lse, b, c.token, c.range))
                    }
                }
                cands[q].sort {
                    $0.score != $1.score ? $0.score > $1.score : ($0.beam != $1.beam ? $0.beam < $1.beam : $0.token < $1.token)
                }
                for c in cands[q].prefix(beam) {
                    let h = Hyp(tokens: hyps[q][c.beam].tokens + [c.token], range: c.range, score: c.score)
                    next[q].append(h)
                    keys[q].append(Key(tokens: h.tokens, logp: h.score))
                }
                if k == 0 {
                    // The best single tokens beyond the beams, as many as the beams give keys.
                    for c in cands[q].dropFirst(beam).prefix(beam * (steps - 1)) { keys[q].append(Key(tokens: [c.token], logp: c.score)) }
                }
            }
            k += 1
            let width = next.map(\.count).max() ?? 0
            if width == 0 || k == steps { break }
            var parents: [Int] = []
            tokens = []
            for q in 0..<Q {
                var qh: [Hyp] = []
                for b in 0..<width {
                    if b < next[q].count {
                        let h = next[q][b]
                        parents.append(q * g + cands[q][b].beam)
                        tokens.append(Int32(offset) + h.tokens.last!)
                        qh.append(h)
                    } else {
                        parents.append(q * g)
                        tokens.append(TargetVocabulary.eos)
                        qh.append(Hyp(tokens: [], range: 0..<0, score: -.infinity))
                    }
                }
                hyps[q] = qh
            }
            state.reorder(parents)
        }
        return keys
    }

    /// The weight of a key occurring `count` times: SEAL's w(n)^α (see the type's comment).
    public func weight(logp: Float, count: Int) -> Float {
        guard count > 0 else { return 0 }
        let sr = Double(min(logp, -1e-6))
        let snr = log((Double(count) + Double(smoothing)) / (Double(index.tokenCount) + Double(smoothing)))
        let s = (sr + log(-expm1(snr))) - (snr + log(-expm1(sr)))
        return s > 0 ? Float(pow(s, Double(alpha))) : 0
    }

    /// Documents ranked by the keys they contain (see the type's comment), best first,
    /// ties to the smaller document index; at most `topK`.
    public func rank(_ keys: [Key]) -> [ConstrainedBeamSearch.Hit] {
        // Distinct n-grams (the best log-probability of each), by decreasing weight.
        var best: [[Int32]: Float] = [:]
        for key in keys { best[key.tokens] = max(best[key.tokens] ?? -.infinity, key.logp) }
        var weighted: [(tokens: [Int32], range: Range<Int>, w: Float)] = []
        for (tokens, logp) in best {
            let r = index.range(of: tokens)
            guard r.count <= maxOccurrences else { continue }
            let w = weight(logp: logp, count: r.count)
            if w > 0 { weighted.append((tokens, r, w)) }
        }
        weighted.sort { $0.w != $1.w ? $0.w > $1.w : $0.tokens.lexicographicallyPrecedes($1.tokens) }
        var covered = Set<Int>()
        var perDocument: [Int: [Int]] = [:]  // document → indices into `weighted`, heaviest first
        for (i, key) in weighted.enumerated() {
            var counted = Set<Int>()
            for s in key.range {
                let p = index.position(s)
                let span = p..<(p + key.tokens.count)
                guard !span.contains(where: covered.contains) else { continue }
                for x in span { covered.insert(x) }
                let d = index.document(at: p)
                if counted.insert(d).inserted { perDocument[d, default: []].append(i) }
            }
        }
        var hits: [ConstrainedBeamSearch.Hit] = []
        for (d, list) in perDocument {
            var seen = Set<Int32>()
            var score: Float = 0
            for i in list {
                let kinds = Set(weighted[i].tokens)
                let fresh = kinds.subtracting(seen).count
                score += (1 - beta + beta * Float(fresh) / Float(kinds.count)) * weighted[i].w
                seen.formUnion(kinds)
            }
            hits.append(.init(document: d, score: score))
        }
        hits.sort { $0.score != $1.score ? $0.score > $1.score : $0.document < $1.document }
        return Array(hits.prefix(topK))
    }
}
