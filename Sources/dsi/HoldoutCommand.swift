import ArgumentParser
import DSIIndex
import Foundation

struct HoldoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "holdout",
        abstract: "Split a corpus for continual-indexing experiments: hold out a share of the documents (by a hash of the id).",
        discussion: """
            Writes OUTPUT/corpus.jsonl without the held-out documents, copies queries.jsonl and \
            qrels/ (dsi train skips and counts qrels naming held-out documents), and writes the \
            held-out documents to OUTPUT/held-out.jsonl, ready for dsi add --documents.
            """)

    @Option(help: "Corpus directory (BEIR layout).") var corpus: String
    @Option(help: "Share of documents to hold out.") var fraction: Double = 0.1
    @Option(help: "Directory to write (must not exist).") var output: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let r = try Holdout.split(corpus: corpus, fraction: fraction, output: output)
        if json {
            try printJSON(r)
        } else {
            print("\(r.kept) documents kept in \(output)/corpus.jsonl, \(r.heldOut) held out in \(output)/held-out.jsonl")
        }
    }
}
