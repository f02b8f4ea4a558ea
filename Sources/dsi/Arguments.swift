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
    @Option(help: "Fuse the model's ranking with the project's BM25 (README, \"Fused ranking\").")
    var fusion: FusionSource?
    @Option(
        help:
            "How to fuse: zscore (each run's scores standardised per query, then weighted), rrf (reciprocal ranks) or scores (the model's probability and BM25's score over the query's best)."
    )
    var fusionMethod: Fusion.Method = .zscore
    @Option(
        help:
            "The model's weight in the fusion, 0...1 (BM25's is 1 - weight; zscore's default: the weight dsi train chose on dev and recorded in the checkpoint, or for checkpoints without one 0.7 when the corpus has labelled train queries, 0.3 without; rrf's and scores': 0.5)."
    )
    var fusionWeight: Double?
    @Option(help: "Reciprocal-rank fusion's rank offset k.") var fusionK: Double = 60
    @Option(help: "Results per query taken from each run (BM25's and the model's, whose beam widens to it) into the fusion.")
    var fusionDepth: Int = 100

    var requested: Bool { fusion != nil }

    /// Where the weight of `fusion` came from, for the report.
    func weightSource(_ fusion: Fusion, calibrated: FusionCalibration?) -> String {
        if fusionWeight != nil { return "weight \(fusion.weight)" }
        if let c = calibrated, c.method == fusion.method { return "weight \(fusion.weight), chosen on dev by dsi train" }
        return "weight \(fusion.weight), the default"
    }

    /// The fusion asked for, if any. The weight: `--fusion-weight`, else the one the
    /// checkpoint chose on dev (`calibrated`, for its method), else the protocol default;
    /// `labelled` (whether the corpus has labelled train queries) is asked only then.
    func resolved(calibrated: FusionCalibration?, labelled: () throws -> Bool) throws -> Fusion? {
        guard fusion != nil else {
            if fusionWeight != nil || fusionK != 60 || fusionDepth != 100 || fusionMethod != .zscore {
                throw ValidationError("--fusion-method, --fusion-weight, --fusion-k and --fusion-depth need --fusion bm25")
            }
            return nil
        }
        let chosen = calibrated.flatMap { $0.method == fusionMethod ? $0.weight : nil }
        let weight = try fusionWeight ?? chosen ?? Fusion.defaultWeight(method: fusionMethod, labelled: labelled())
        guard (0...1).contains(weight) else { throw ValidationError("--fusion-weight must be between 0 and 1, got \(weight)") }
        guard fusionK >= 0 else { throw ValidationError("--fusion-k must be 0 or more, got \(fusionK)") }
        guard fusionDepth >= 1 else { throw ValidationError("--fusion-depth must be at least 1, got \(fusionDepth)") }
        return Fusion(method: fusionMethod, weight: weight, k: fusionK, depth: fusionDepth)
    }
}
