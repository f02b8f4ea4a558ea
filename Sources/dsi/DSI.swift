import ArgumentParser
import DSITensor

@main
struct DSI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dsi",
        abstract: "swift-dsi: a Differentiable Search Index (generative retrieval) on OpenBLAS.",
        subcommands: [Toy.self, Bench.self])
}

/// Options every command that computes shares.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and the parallel loops (default: all cores).")
    var threads: Int = Threads.available

    func apply() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        Threads.set(threads)
    }
}
