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
            "What the large matrix products multiply: float32, bfloat16 (operands rounded to bfloat16, float32 accumulation; CPUs with AVX512-BF16), or auto: bfloat16 where the CPU has AVX512-BF16, else float32.",
            valueName: "auto|float32|bfloat16"))
    var precision: PrecisionChoice = .auto

    func apply() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        Threads.set(threads)
        do { try BLAS.setPrecision(precision.resolved) } catch { throw ValidationError(error.description) }
    }

    /// Whether start-up chose OpenBLAS's kernels for this CPU (see Sources/DSIStartup).
    static var kernelsChosenAtStartup: Bool { dsi_blas_kernels_forced() != 0 }
}

/// `--precision`: a product precision, or `auto`, the default.
///
/// `auto` is bfloat16 on CPUs with AVX512-BF16 and float32 elsewhere: the measurement
/// behind it (README, "bfloat16 products") found SciFact quality unchanged and training
/// 1.3-1.4x faster. Master weights, gradients, optimizer moments and every element-wise
/// kernel are float32 either way.
enum PrecisionChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, float32, bfloat16

    var resolved: BLAS.Precision {
        switch self {
        case .float32: .float32
        case .bfloat16: .bfloat16
        case .auto: BLAS.bfloat16Available ? .bfloat16 : .float32
        }
    }
}
