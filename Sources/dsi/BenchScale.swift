import ArgumentParser
import DSIIndex
import DSITensor
import Foundation

extension Bench {
    struct Scale: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build, train-step and search cost from thousands to a million documents (synthetic corpora).",
            discussion: """
                For each size: a synthetic corpus (Zipf words over a 50,000-word vocabulary, 50-300 words \
                per document, 200 topics; deterministic in --seed) is written under --work, then three \
                processes run one after the other, so each peak RSS is its phase's alone: build (tokenizer, \
                LSA, docids, initialised model, as dsi train --steps 0; then the checkpoint written), train \
                (--steps timed steps of batch 64), query (search-only load, 50 queries one at a time, \
                batches of 32). One JSON line per size.
                """)

        @Option(help: "Collection sizes, comma-separated.") var documents: String = "10000,100000"
        @Option(help: "Docid scheme.") var docids: DocIDScheme = .semantic
        @Option(help: "Where corpora and checkpoints go (reused when present).") var work: String = "/tmp/dsi-bench-scale"
        @Option(help: "Timed training steps.") var steps: Int = 10
        @Option(help: "Corpus seed.") var seed: UInt64 = 1
        @Flag(help: "Print one JSON object per size (the default prints the same, one line each).") var json = false
        @OptionGroup var compute: ComputeOptions

        func run() throws {
            try compute.apply()
            let sizes = try documents.split(separator: ",").map { s -> Int in
                guard let n = Int(s.trimmingCharacters(in: .whitespaces)), n >= 100 else {
                    throw ValidationError("--documents: expected sizes of at least 100, comma-separated; got \"\(s)\"")
                }
                return n
            }
            let log: (String) -> Void = { FileHandle.standardError.write(Data(("bench scale: " + $0 + "\n").utf8)) }
            for n in sizes {
                let corpus = "\(work)/corpus-\(n)-seed\(seed)"
                if !FileManager.default.fileExists(atPath: corpus + "/queries.txt") {
                    log("writing a synthetic corpus of \(n) documents to \(corpus)")
                    try SyntheticCorpus.write(documents: n, to: corpus, seed: seed)
                }
                let ck = "\(work)/checkpoint-\(n)-\(docids.rawValue)"
                let threads = ["--threads", String(Threads.count)]
                log("\(n) documents: build")
                let build: ScaleBenchmark.Build = try phase(
                    ["build", "--corpus", corpus, "--output", ck, "--docids", docids.rawValue] + threads)
                log(String(format: "%d documents: built in %.1f s; train", n, build.seconds))
                let train: ScaleBenchmark.Train = try phase(
                    ["train", "--corpus", corpus, "--checkpoint", ck, "--steps", String(steps)] + threads)
                log(String(format: "%d documents: %.0f ms per step; query", n, train.msPerStep))
                let query: ScaleBenchmark.Query = try phase(["query", "--checkpoint", ck, "--queries", corpus + "/queries.txt"] + threads)
                try printJSON(ScaleBenchmark.Result(documents: n, docids: docids, build: build, train: train, query: query))
            }
        }

        /// Runs `dsi bench scale-phase ARGS` and decodes the JSON it prints.
        func phase<T: Decodable>(_ args: [String]) throws -> T {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            p.arguments = ["bench", "scale-phase"] + args
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw ValidationError("bench scale-phase \(args.first ?? "") failed (exit \(p.terminationStatus)); see the lines above")
            }
            return try JSONDecoder().decode(T.self, from: data)
        }
    }

    /// One phase of `dsi bench scale`, in its own process.
    struct ScalePhase: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scale-phase", abstract: "One phase of dsi bench scale (build, train or query), in its own process.",
            shouldDisplay: false)

        @Argument(help: "build, train or query") var phase: String
        @Option var corpus: String?
        @Option var output: String?
        @Option var checkpoint: String?
        @Option var queries: String?
        @Option var docids: DocIDScheme = .semantic
        @Option var steps: Int = 10
        @OptionGroup var compute: ComputeOptions

        func run() throws {
            try compute.apply()
            let log: (String) -> Void = { FileHandle.standardError.write(Data(("  " + $0 + "\n").utf8)) }
            func need(_ v: String?, _ name: String) throws -> String {
                guard let v else { throw ValidationError("scale-phase \(phase) needs --\(name)") }
                return v
            }
            switch phase {
            case "build":
                try printJSON(
                    try ScaleBenchmark.build(corpus: need(corpus, "corpus"), output: need(output, "output"), docids: docids, log: log))
            case "train":
                try printJSON(
                    try ScaleBenchmark.train(
                        corpus: need(corpus, "corpus"), checkpoint: need(checkpoint, "checkpoint"), steps: steps, warmup: 2, batch: 64))
            case "query":
                let path = try need(queries, "queries")
                let qs = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
                try printJSON(try ScaleBenchmark.query(checkpoint: need(checkpoint, "checkpoint"), queries: qs))
            default:
                throw ValidationError("phase must be build, train or query; got \(phase)")
            }
        }
    }
}
