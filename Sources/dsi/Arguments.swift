import ArgumentParser
import DSIIndex
import DSIModel

// Enum options parse through ArgumentParser, so `--help` lists the values and shells
// complete them.
extension Preset: ExpressibleByArgument {}
extension DocIDScheme: ExpressibleByArgument {}
extension DocIDTokens: ExpressibleByArgument {}
extension InitMode: ExpressibleByArgument {}
extension OutputObjective: ExpressibleByArgument {}
extension AddMode: ExpressibleByArgument {}
extension ConstrainedBeamSearch.Normalization: ExpressibleByArgument {}
extension ToyTask.Kind: ExpressibleByArgument {}
extension Fusion.Method: ExpressibleByArgument {}

/// Prints a report as one JSON line (`--json`).
func printJSON(_ value: some Encodable) throws { print(try JSONOutput.string(value)) }

/// What `--fusion` fuses the model's ranking with.
enum FusionSource: String, ExpressibleByArgument, CaseIterable { case bm25 }

/// `--fusion bm25 [--fusion-weight W] [--fusion-k K] [--fusion-depth D]` (`dsi query`, `dsi eval`).
struct FusionOptions: ParsableArguments {
    @Option(help: "Fuse the model's ranking with the project's BM25 (reciprocal-rank fusion; README, \"Fused ranking\").")
    var fusion: FusionSource?
    @Option(help: "How to fuse: rrf (reciprocal ranks) or scores (the model's probability and BM25's score over the query's best).")
    var fusionMethod: Fusion.Method = .rrf
    @Option(help: "The model's weight in the fusion, 0...1 (BM25's is 1 - weight; 0.5 is plain RRF).") var fusionWeight: Double = 0.5
    @Option(help: "Reciprocal-rank fusion's rank offset k.") var fusionK: Double = 60
    @Option(help: "BM25 results per query taken into the fusion.") var fusionDepth: Int = 100

    func resolved() throws -> Fusion? {
        guard fusion != nil else {
            if fusionWeight != 0.5 || fusionK != 60 || fusionDepth != 100 || fusionMethod != .rrf {
                throw ValidationError("--fusion-method, --fusion-weight, --fusion-k and --fusion-depth need --fusion bm25")
            }
            return nil
        }
        guard (0...1).contains(fusionWeight) else { throw ValidationError("--fusion-weight must be between 0 and 1, got \(fusionWeight)") }
        guard fusionK >= 0 else { throw ValidationError("--fusion-k must be 0 or more, got \(fusionK)") }
        guard fusionDepth >= 1 else { throw ValidationError("--fusion-depth must be at least 1, got \(fusionDepth)") }
        return Fusion(method: fusionMethod, weight: fusionWeight, k: fusionK, depth: fusionDepth)
    }
}
