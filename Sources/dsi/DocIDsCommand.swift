import ArgumentParser
import DSIIndex
import DSIText
import Foundation

struct DocIDsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docids",
        abstract: "Assign docids to a corpus (semantic: LSA + recursive k-means; atomic; naive) and write docids.tsv.")

    @Option(help: "Corpus directory (BEIR layout).") var corpus: String
    @Option(help: "semantic, atomic or naive.") var docids: String = "semantic"
    @Option(help: "Tokenizer vocabulary size (the LSA's terms).") var vocabSize: Int = 8192
    @Option(help: "LSA dimensions.") var dimensions: Int = 256
    @Option(help: "k-means branching factor (2-10).") var branching: Int = 10
    @Option(help: "Largest leaf of the k-means tree.") var leafSize: Int = 100
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Write docids.tsv here.") var output: String?
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        guard let scheme = DocIDScheme(rawValue: docids) else {
            throw ValidationError("--docids must be one of \(DocIDScheme.allCases.map(\.rawValue).joined(separator: ", ")), got '\(docids)'")
        }
        guard (2...10).contains(branching) else { throw ValidationError("--branching must be in 2...10, got \(branching)") }
        guard leafSize >= 1, dimensions >= 1 else { throw ValidationError("--leaf-size and --dimensions must be positive") }
        let clock = ContinuousClock()
        let t0 = clock.now
        let c = try Corpus(directory: corpus)
        var stats: [String: Any] = ["documents": c.documents.count, "scheme": scheme.rawValue]
        let ids = c.documents.map(\.id)
        let assignment: DocIDAssignment
        switch scheme {
        case .atomic: assignment = DocIDAssigner.atomic(ids)
        case .naive: assignment = DocIDAssigner.naive(ids, seed: seed)
        case .semantic:
            let texts = c.documents.map { $0.title + " " + $0.text }
            let tok = Tokenizer.train(texts: texts, vocabSize: vocabSize)
            let t1 = clock.now
            let lsa = LSA.fit(documents: texts.map { tok.encode($0) }, vocabulary: tok.count, dimensions: dimensions, seed: seed)
            let t2 = clock.now
            assignment = DocIDAssigner.semantic(ids, vectors: lsa.documentVectors, branching: branching, leafSize: leafSize, seed: seed)
            stats["tokenizer_seconds"] = (t1 - t0).seconds
            stats["lsa_seconds"] = (t2 - t1).seconds
            stats["kmeans_seconds"] = (clock.now - t2).seconds
            stats["lsa_top_singular_values"] = Array(lsa.singularValues.prefix(5)).map(Double.init)
        }
        let lengths = assignment.docids.map(\.count)
        stats["seconds"] = (clock.now - t0).seconds
        stats["max_length"] = lengths.max() ?? 0
        stats["min_length"] = lengths.min() ?? 0
        stats["distinct"] = Set(assignment.docids).count
        if let output { try assignment.tsv().write(toFile: output, atomically: true, encoding: .utf8) }
        if json {
            print(String(data: try JSONSerialization.data(withJSONObject: stats, options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            for k in stats.keys.sorted() { print("\(k): \(stats[k]!)") }
            for i in 0..<min(5, c.documents.count) {
                print("  \(assignment.text(i))  \(c.documents[i].id)  \(c.documents[i].title.prefix(70))")
            }
        }
    }
}
