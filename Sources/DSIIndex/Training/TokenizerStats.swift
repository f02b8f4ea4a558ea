import DSIModel
import DSIText

/// What `dsi tokenizer` reports.
public struct TokenizerStats: Sendable, Encodable {
    public var documents: Int, vocab: Int, merges: Int
    public var loadSeconds: Double, trainSeconds: Double, encodeSeconds: Double
    public var tokensPerDocument: Double, tokensPerWord: Double
    public var unknownTokens: Int

    enum CodingKeys: String, CodingKey {
        case documents, vocab, merges
        case loadSeconds = "load_seconds"
        case trainSeconds = "train_seconds"
        case encodeSeconds = "encode_seconds"
        case tokensPerDocument = "tokens_per_document"
        case tokensPerWord = "tokens_per_word"
        case unknownTokens = "unknown_tokens"
    }

    /// `dsi tokenizer`: trains the BPE tokenizer on a corpus's documents (title + text)
    /// and measures what it does to them.
    public static func train(corpus directory: String, vocabSize: Int) throws -> (Tokenizer, TokenizerStats) {
        let clock = ContinuousClock()
        let t0 = clock.now
        let c = try Corpus(directory: directory)
        let t1 = clock.now
        let texts = c.documents.map { $0.title + " " + $0.text }
        let tok = Tokenizer.train(texts: texts, vocabSize: vocabSize)
        let t2 = clock.now
        var tokens = 0
        var words = 0
        var unknown = 0
        for t in texts {
            let ids = tok.encode(t)
            tokens += ids.count
            unknown += ids.filter { $0 == Tokenizer.unk }.count
            words += Tokenizer.words(Tokenizer.normalize(t)).count
        }
        let t3 = clock.now
        let stats = TokenizerStats(
            documents: c.documents.count, vocab: tok.count, merges: tok.merges.count,
            loadSeconds: (t1 - t0).seconds, trainSeconds: (t2 - t1).seconds, encodeSeconds: (t3 - t2).seconds,
            tokensPerDocument: Double(tokens) / Double(texts.count), tokensPerWord: Double(tokens) / Double(max(1, words)),
            unknownTokens: unknown)
        return (tok, stats)
    }
}
