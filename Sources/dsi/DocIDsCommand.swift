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
        guard (2...10).contains(branching) else { throw ValidationError("--branching must be in 2...10, got \(branching)") }
        guard leafSize >= 1, dimensions >= 1 else { throw ValidationError("--leaf-size and --dimensions must be positive") }
        let c = try Corpus(directory: corpus)
        var options = TrainingOptions()
        options.docids = docids
        options.vocabSize = vocabSize
        options.lsaDimensions = dimensions
        options.branching = branching
        options.leafSize = leafSize
        options.seed = seed
        let (assignment, stats) = DocIDAssigner.assign(c, options: options)
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
