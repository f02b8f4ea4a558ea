import ArgumentParser
import DSIIndex
import DSIText
import Foundation

struct DocIDsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docids",
        abstract: "Assign docids to a corpus (semantic: LSA + recursive k-means; atomic; naive) and write docids.tsv.")

    @Option(help: "Corpus directory (BEIR layout).") var corpus: String
    @Option(help: "Docid scheme.") var docids: DocIDScheme = .semantic
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
        let scheme = docids
        guard (2...10).contains(branching) else { throw ValidationError("--branching must be in 2...10, got \(branching)") }
        guard leafSize >= 1, dimensions >= 1 else { throw ValidationError("--leaf-size and --dimensions must be positive") }
        let clock = ContinuousClock()
        let t0 = clock.now
        let c = try Corpus(directory: corpus)
        var stats = DocIDStats(documents: c.documents.count, scheme: scheme)
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
            stats.tokenizerSeconds = (t1 - t0).seconds
            stats.lsaSeconds = (t2 - t1).seconds
            stats.kmeansSeconds = (clock.now - t2).seconds
            stats.lsaTopSingularValues = Array(lsa.singularValues.prefix(5)).map(Double.init)
        }
        let lengths = assignment.docids.map(\.count)
        stats.seconds = (clock.now - t0).seconds
        stats.maxLength = lengths.max() ?? 0
        stats.minLength = lengths.min() ?? 0
        stats.distinct = Set(assignment.docids).count
        if let output { try assignment.tsv().write(toFile: output, atomically: true, encoding: .utf8) }
        if json {
            try printJSON(stats)
        } else {
            print(try JSONOutput.string(stats))
            for i in 0..<min(5, c.documents.count) {
                print("  \(assignment.text(i))  \(c.documents[i].id)  \(c.documents[i].title.prefix(70))")
            }
        }
    }
}

/// What `dsi docids` reports.
struct DocIDStats: Encodable {
    var documents: Int
    var scheme: DocIDScheme
    var seconds = 0.0
    var maxLength = 0, minLength = 0, distinct = 0
    var tokenizerSeconds: Double?, lsaSeconds: Double?, kmeansSeconds: Double?
    var lsaTopSingularValues: [Double]?

    enum CodingKeys: String, CodingKey {
        case documents, scheme, seconds, distinct
        case maxLength = "max_length"
        case minLength = "min_length"
        case tokenizerSeconds = "tokenizer_seconds"
        case lsaSeconds = "lsa_seconds"
        case kmeansSeconds = "kmeans_seconds"
        case lsaTopSingularValues = "lsa_top_singular_values"
    }
}
