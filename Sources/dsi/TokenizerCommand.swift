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
        var tokens = 0, words = 0, unknown = 0
        for t in texts {
            let ids = tok.encode(t)
            tokens += ids.count
            unknown += ids.filter { $0 == Tokenizer.unk }.count
            words += Tokenizer.words(Tokenizer.normalize(t)).count
        }
        let t3 = clock.now
        if let output { try tok.save(to: output) }
        let stats: [String: Any] = [
            "documents": c.documents.count, "vocab": tok.count, "merges": tok.merges.count,
            "load_seconds": (t1 - t0).seconds, "train_seconds": (t2 - t1).seconds, "encode_seconds": (t3 - t2).seconds,
            "tokens_per_document": Double(tokens) / Double(texts.count), "tokens_per_word": Double(tokens) / Double(max(1, words)),
            "unknown_tokens": unknown,
        ]
        if json {
            print(String(data: try JSONSerialization.data(withJSONObject: stats, options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            for k in stats.keys.sorted() { print("\(k): \(stats[k]!)") }
            for t in self.texts {
                print("\(t) -> \(tok.encode(t).map { tok.vocab[Int($0)] }.joined(separator: " "))")
            }
        }
    }
}
