import ArgumentParser
import DSIStartup
import DSITensor

@main
struct DSI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dsi",
        abstract: "swift-dsi: a Differentiable Search Index (generative retrieval) on OpenBLAS.",
        subcommands: [
            TrainCommand.self, AddCommand.self, QueryCommand.self, EvalCommand.self, BM25Command.self, Toy.self, TokenizerCommand.self,
            DocIDsCommand.self, HoldoutCommand.self, KernelsCommand.self, Bench.self, ServeCommand.self, ReportCommand.self,
        ])

    static func main() {
        // Before anything else: may re-execute with OpenBLAS's best kernels for this CPU.
        dsi_select_blas_kernels(CommandLine.unsafeArgv)
        main(nil)
    }
}

/// Options every command that computes shares.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and the parallel loops (default: all cores).")
    var threads: Int = Threads.available

    @Option(
        help: ArgumentHelp(
            "What the large matrix products multiply: float32, or bfloat16 (operands rounded to bfloat16, float32 accumulation; CPUs with AVX512-BF16).",
            valueName: "float32|bfloat16"))
    var precision: BLAS.Precision = .float32

    func apply() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        Threads.set(threads)
        do { try BLAS.setPrecision(precision) } catch { throw ValidationError(error.description) }
    }

    /// Whether start-up chose OpenBLAS's kernels for this CPU (see Sources/DSIStartup).
    static var kernelsChosenAtStartup: Bool { dsi_blas_kernels_forced() != 0 }
}

extension BLAS.Precision: ExpressibleByArgument {}
