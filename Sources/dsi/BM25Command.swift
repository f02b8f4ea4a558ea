import ArgumentParser
import DSIIndex
import Foundation

struct BM25Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bm25",
        abstract: "The BM25 baseline on a split of a corpus, with the same metrics and JSON keys as dsi eval.")

    @Option(help: "Corpus directory (BEIR layout).") var corpus: String
    @Option(help: "Qrels split to evaluate (dev: the train queries dsi train holds out).") var split: String = "test"
    @Option(help: "BM25 k1 (term-frequency saturation).") var k1: Float = 1.5
    @Option(help: "BM25 b (length normalisation).") var b: Float = 0.75
    @Option(name: .customLong("run"), help: "Write a TREC run file here.") var runFile: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard k1 >= 0, (0...1).contains(b) else { throw ValidationError("need k1 ≥ 0 and 0 ≤ b ≤ 1") }
        let result = try BM25.evaluate(try Corpus(directory: corpus), split: split, k1: k1, b: b)
        if let runFile { try Metrics.trecRun(result.run, tag: "bm25").write(toFile: runFile, atomically: true, encoding: .utf8) }
        if json {
            try printJSON(result.report)
        } else {
            print(result.report.text(title: "BM25 (k1 \(k1), b \(b)), split \(split)"))
        }
    }
}
