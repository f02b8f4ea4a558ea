import ArgumentParser
import DSIDistributed
import DSIIndex
import Foundation

struct AddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add documents to a trained checkpoint without retraining it (continual indexing).",
        discussion: """
            New documents get docids where the checkpoint's scheme puts them (semantic: the \
            nearest leaf of the k-means tree); existing docids never change. --mode replay \
            (default) fits the new documents' output rows, then fine-tunes on their views mixed \
            with replayed views and queries of old documents; --mode fast fits only the new \
            rows (old documents' logits are untouched). The checkpoint is written atomically \
            (to --output, or in place): an interrupted add leaves the previous one intact.
            """)

    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "New documents, JSON lines {\"id\", \"title\", \"text\"}.") var documents: String
    @Option(help: "Queries for the new documents, JSON lines {\"id\", \"text\"} (with --qrels).") var queries: String?
    @Option(help: "Qrels TSV (query-id, corpus-id, score) linking --queries to new documents.") var qrels: String?
    @Option(help: "How the model learns the new documents (see the discussion above).") var mode: AddMode = .replay
    @Option(help: "Write the grown checkpoint here (default: in place).") var output: String?
    @Option(help: "Replay: passes over the new documents' views.") var epochs: Double = 4
    @Option(help: "Replay: old examples per new example.") var replayRatio: Double = 1
    @Option(help: "Replay: peak learning rate (default: half the preset's).") var lr: Float?
    @Option(help: "Documents sampled for the forgetting report (0: skip it).") var sample: Int = 200
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Flag(help: "Print one JSON object (progress goes to stderr).") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (queries == nil) == (qrels == nil) else { throw ValidationError("give --queries and --qrels together") }
        guard epochs > 0, replayRatio >= 0, sample >= 0 else {
            throw ValidationError("need --epochs > 0, --replay-ratio ≥ 0, --sample ≥ 0")
        }
    }

    func run() throws {
        try refuseUnderMPI("add")
        try compute.apply()
        let log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        var options = AddOptions()
        options.mode = mode
        options.epochs = epochs
        options.replayRatio = replayRatio
        options.learningRate = lr
        options.sample = sample
        options.seed = seed
        let out = output ?? checkpoint
        let report = try ContinualIndexer.add(
            checkpoint: checkpoint, documents: documents, queries: queries, qrels: qrels, output: out, options: options, log: log)
        if json {
            try printJSON(report)
        } else {
            print(report.text(checkpoint: out))
        }
    }
}
