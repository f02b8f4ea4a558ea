import DSIText
import Foundation

/// Okapi BM25 (Robertson et al.), the baseline every figure is reported next to.
/// Tokenisation: NFKC + lower case, words = runs of letters and digits, English stop
/// words removed, Porter stemming. Scoring: idf = ln(1 + (N − df + 0.5)/(df + 0.5))
/// (Lucene's, as bm25s uses), term weight tf·(k1 + 1)/(tf + k1·(1 − b + b·dl/avgdl)).
public struct BM25: Sendable {
    public let k1: Float
    public let b: Float
    private let postings: [String: [(doc: Int32, tf: Float)]]
    private let docLength: [Float]
    private let averageLength: Float
    public let documentCount: Int

    public static let stopWords: Set<String> = [
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
        "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "did", "do", "does",
        "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
        "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
        "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or",
        "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than",
        "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
        "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which",
        "while", "who", "whom", "why", "will", "with", "you", "your", "yours", "yourself", "yourselves",
    ]

    public static func terms(_ text: String) -> [String] {
        Tokenizer.words(Tokenizer.normalize(text)).map(String.init).filter { !stopWords.contains($0) }.map(PorterStemmer.stem)
    }

    public init(documents: [String], k1: Float = 1.5, b: Float = 0.75) {
        self.k1 = k1
        self.b = b
        var postings: [String: [(doc: Int32, tf: Float)]] = [:]
        var lengths: [Float] = []
        for (d, text) in documents.enumerated() {
            let ts = Self.terms(text)
            lengths.append(Float(ts.count))
            var tf: [String: Int] = [:]
            for t in ts { tf[t, default: 0] += 1 }
            for (t, n) in tf { postings[t, default: []].append((Int32(d), Float(n))) }
        }
        self.postings = postings
        self.docLength = lengths
        self.documentCount = documents.count
        self.averageLength = lengths.isEmpty ? 1 : max(1e-9, lengths.reduce(0, +) / Float(lengths.count))
    }

    /// The top `k` documents (corpus positions) and scores, best first; ties by position.
    public func search(_ query: String, k: Int = 10) -> [(document: Int, score: Float)] {
        var scores: [Int32: Float] = [:]
        let N = Float(documentCount)
        for t in Set(Self.terms(query)) {
            guard let list = postings[t] else { continue }
            let idf = logf(1 + (N - Float(list.count) + 0.5) / (Float(list.count) + 0.5))
            for (d, tf) in list {
                let norm = k1 * (1 - b + b * docLength[Int(d)] / averageLength)
                scores[d, default: 0] += idf * tf * (k1 + 1) / (tf + norm)
            }
        }
        return scores.map { (Int($0.key), $0.value) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            .prefix(k).map { ($0.0, $0.1) }
    }
}
