import ArgumentParser
import DSIIndex
import DSIModel
import DSIStartup
import DSITensor
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (figures for the README come from here, never from tests).",
        subcommands: [Ops.self, QueryBench.self, Scale.self, ScalePhase.self])
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
            result.blasCoreForced = ComputeOptions.kernelsChosenAtStartup
            (result.fmaPeakGFLOPS, result.fmaVectorFloats) = fmaPeak()
            if json {
                try printJSON(result)
            } else {
                print(result.text)
            }
        }
    }
}

extension Bench {
    struct QueryBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "query",
            abstract: "Trie-constrained beam search speed (reference model, random weights) and trie memory.")

        @Option(help: "Docids in the trie.") var docids: Int = 10_000
        @Option(help: "nodes: tree-node tokens over a k-means-shaped tree (the default docids); digits: random 8-digit docids.")
        var scheme: DocIDTokens = .nodes
        @Option(help: "Beam size.") var beam: Int = 10
        @Option(help: "Results per query.") var topK: Int = 10
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var compute: ComputeOptions

        func run() throws {
            try compute.apply()
            guard docids >= topK, topK >= 1, topK <= beam else { throw ValidationError("need 1 ≤ --top-k ≤ --beam and --top-k ≤ --docids") }
            try printJSON(try QueryBenchmark.run(docids: docids, scheme: scheme, beam: beam, topK: topK))
        }
    }
}

/// The machine's FMA peak on `Threads.count` threads at once: each runs 12 independent
/// FMA chains on the widest vectors this CPU supports (Sources/DSIStartup/peak.c); the
/// best of five rounds of about 0.2 s, summed over threads.
func fmaPeak() -> (gflops: Double, vectorFloats: Int) {
    let tier = dsi_cpu_simd_tier()
    let floats = tier >= Int32(DSI_TIER_AVX512.rawValue) ? 16 : tier >= Int32(DSI_TIER_AVX2.rawValue) ? 8 : 4
    let n = Threads.count
    var best = 0.0
    for _ in 0..<5 {
        let rates = UnsafeMutableBufferPointer<Double>.allocate(capacity: n)
        defer { rates.deallocate() }
        DispatchQueue.concurrentPerform(iterations: n) { i in rates[i] = dsi_fma_chains_gflops(tier, 200_000_000 / Int(floats)) }
        best = max(best, rates.reduce(0, +))
    }
    return (best, floats)
}
