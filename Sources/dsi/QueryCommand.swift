import ArgumentParser
import DSIIndex
import Foundation

struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Ask a trained checkpoint for the documents that answer queries (arguments, or one per line on stdin).")

    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "Results per query (≤ beam).") var topK: Int = 10
    @Option(help: "Beam size.") var beam: Int = 10
    @Flag(help: "Print one JSON object per query.") var json = false
    @Argument(help: "Queries (default: read lines from standard input).") var queries: [String] = []
    @OptionGroup var fusion: FusionOptions
    @Option(help: "Corpus directory the checkpoint was trained on (needed by --fusion bm25, which searches its texts).") var corpus: String?
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        guard beam >= 1, topK >= 1, topK <= beam else { throw ValidationError("need 1 ≤ --top-k ≤ --beam") }
        var texts = queries
        if texts.isEmpty {
            while let line = readLine() { texts.append(line) }
        }
        for (i, q) in texts.enumerated() where q.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("query \(i + 1) is empty: give some words to search for")
        }
        guard !texts.isEmpty else { throw ValidationError("no queries: pass them as arguments or one per line on standard input") }
        let index = try TrainedIndex.load(from: checkpoint, for: .search)
        for (i, q) in texts.enumerated() where index.encode(q).allSatisfy({ $0 == 1 }) {
            throw ValidationError("query \(i + 1) (\"\(q)\") has no words the index knows")
        }
        var results: [[ConstrainedBeamSearch.Hit]]
        var fusionCorpus: Corpus?
        if fusion.requested {
            guard let corpus else { throw ValidationError("--fusion bm25 needs --corpus DIR: the corpus the checkpoint was trained on") }
            fusionCorpus = try Corpus(directory: corpus)
        }
        let fused = try fusion.resolved(
            calibrated: index.fusionCalibration, labelled: { try HeldOutSentences.corpusHasLabels(fusionCorpus!) })
        if let f = fused, let c = fusionCorpus {
            try Evaluation.checkCorpus(c, matches: index, checkpoint: checkpoint)
            let search = try FusedSearch(
                fusion: f, index: index, corpusIDs: c.documents.map(\.id), texts: c.documents.map { $0.title + " " + $0.text })
            results = try search.search(texts, index: index, beam: beam, topK: topK)
        } else {
            results = try index.search(texts, beam: beam, topK: topK)
        }
        for (q, hits) in zip(texts, results) {
            if json {
                try printJSON(QueryResult(query: q, hits: hits, index: index))
            } else {
                print("query: \(q)")
                func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
                for (r, h) in hits.enumerated() {
                    let rank = pad(String(r + 1), 3)
                    let score = String(format: "%8.3f", h.score)
                    print(
                        "\(rank)  \(pad(index.docids.corpusIDs[h.document], 12)) \(pad(index.readableDocID(h.document), 10)) \(score)  \(index.titles[h.document].prefix(80))"
                    )
                }
            }
        }
    }
}
