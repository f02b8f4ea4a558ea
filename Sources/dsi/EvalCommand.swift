import ArgumentParser
import DSIIndex
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a checkpoint on a split of its corpus: Hits@1/10, MRR@10, nDCG@10, Recall@10, by seen and unseen documents.")

    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "Corpus directory (the one the checkpoint was trained on).") var corpus: String
    @Option(help: "Qrels split to evaluate (dev: the train queries dsi train holds out).") var split: String = "test"
    @Option(help: "Beam size.") var beam: Int = 10
    @Option(help: "Results per query (≤ beam).") var topK: Int = 10
    @Option(help: "Softmax at each step over all tokens (all) or only those the trie allows (allowed); default: as the model was trained.")
    var normalization: ConstrainedBeamSearch.Normalization?
    @Option(name: .customLong("run"), help: "Write a TREC run file here.") var runFile: String?
    @Option(help: "Split metrics into old and new by these documents (JSON lines with ids; default: the documents dsi add added).")
    var added: String?
    @Flag(help: "Instead of queries, use every document's title as a query for itself (self-retrieval).") var titles = false
    @OptionGroup var fusion: FusionOptions
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        guard beam >= 1, topK >= 1, topK <= beam else { throw ValidationError("need 1 ≤ --top-k ≤ --beam") }
        let index = try TrainedIndex.load(from: checkpoint, for: .search)
        let c = try Corpus(directory: corpus)
        var options = Evaluation.Options()
        options.split = split
        options.beam = beam
        options.topK = topK
        options.normalization = normalization
        options.titles = titles
        options.fusion = try fusion.resolved(calibrated: index.fusionCalibration, labelled: { try HeldOutSentences.corpusHasLabels(c) })
        options.added = try added.map { Set(try Corpus.readDocuments($0).map(\.id)) }
        let result = try Evaluation.run(index, corpus: c, checkpoint: checkpoint, options: options)
        if let runFile { try Metrics.trecRun(result.run, tag: "swift-dsi").write(toFile: runFile, atomically: true, encoding: .utf8) }
        if json {
            try printJSON(result.report)
        } else {
            print(
                result.report.text(
                    title: (titles ? "titles as queries" : "split \(split)")
                        + (options.fusion.map {
                            ", fused with BM25 (\($0.method.rawValue), \(fusion.weightSource($0, calibrated: index.fusionCalibration)))"
                        } ?? "")))
        }
    }
}
