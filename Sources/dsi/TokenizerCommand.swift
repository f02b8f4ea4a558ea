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
        let (tok, stats) = try TokenizerStats.train(corpus: corpus, vocabSize: vocabSize)
        if let output { try tok.save(to: output) }
        if json {
            try printJSON(stats)
        } else {
            print(try JSONOutput.string(stats))
            for t in texts {
                print("\(t) -> \(tok.encode(t).map { tok.vocab[Int($0)] }.joined(separator: " "))")
            }
        }
    }
}
