import ArgumentParser
import DSIIndex
import DSIModel
import DSIText
import Foundation

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train the subword (BPE) tokenizer on a corpus and report what it does to it.")

    @Option(help: "Corpus directory (BEIR layout).") var corpus: String
    @Option(help: "Vocabulary size, specials included.") var vocabSize: Int = 8192
    @Option(help: "Write tokenizer.json here.") var output: String?
    @Argument(help: "Texts to show tokenized.") var texts: [String] = []
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard vocabSize >= 64 else { throw ValidationError("--vocab-size must be at least 64, got \(vocabSize)") }
        let clock = ContinuousClock()
        let t0 = clock.now
        let c = try Corpus(directory: corpus)
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
        if let output { try tok.save(to: output) }
        let stats = TokenizerStats(
            documents: c.documents.count, vocab: tok.count, merges: tok.merges.count,
            loadSeconds: (t1 - t0).seconds, trainSeconds: (t2 - t1).seconds, encodeSeconds: (t3 - t2).seconds,
            tokensPerDocument: Double(tokens) / Double(texts.count), tokensPerWord: Double(tokens) / Double(max(1, words)),
            unknownTokens: unknown)
        if json {
            try printJSON(stats)
        } else {
            print(try JSONOutput.string(stats))
            for t in self.texts {
                print("\(t) -> \(tok.encode(t).map { tok.vocab[Int($0)] }.joined(separator: " "))")
            }
        }
    }
}

/// What `dsi tokenizer` reports.
struct TokenizerStats: Encodable {
    var documents: Int, vocab: Int, merges: Int
    var loadSeconds: Double, trainSeconds: Double, encodeSeconds: Double
    var tokensPerDocument: Double, tokensPerWord: Double
    var unknownTokens: Int

    enum CodingKeys: String, CodingKey {
        case documents, vocab, merges
        case loadSeconds = "load_seconds"
        case trainSeconds = "train_seconds"
        case encodeSeconds = "encode_seconds"
        case tokensPerDocument = "tokens_per_document"
        case tokensPerWord = "tokens_per_word"
        case unknownTokens = "unknown_tokens"
    }
}
