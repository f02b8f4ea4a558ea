import ArgumentParser
import DSIModel
import DSITensor
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (figures for the README come from here, never from tests).",
        subcommands: [Ops.self])
}

extension Bench {
    struct Ops: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "sgemm GFLOP/s and training throughput of the reference configuration.")

        @Option(help: "Timed training steps.") var steps: Int = 20
        @Option(help: "Untimed warm-up steps.") var warmup: Int = 3
        @Option(help: "Batch size.") var batch: Int = 64
        @Option(help: "Source length.") var sourceLength: Int = 64
        @Option(help: "Target length (docid digits + 1).") var targetLength: Int = 9
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var compute: ComputeOptions

        func run() throws {
            try compute.apply()
            var result = try OpsBenchmark.run(
                steps: steps, warmup: warmup, batch: batch, sourceLength: sourceLength, targetLength: targetLength)
            result.blasCoreForced = ComputeOptions.forcedAVX512
            if json {
                print(result.json)
            } else {
                print(result.text)
            }
        }
    }
}
