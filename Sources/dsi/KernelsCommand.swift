import ArgumentParser
import DSIIndex
import DSIStartup
import DSITensor

struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Which OpenBLAS kernels dsi runs on this CPU (chosen at start-up; OPENBLAS_CORETYPE overrides).")

    @Flag(help: "Print only the core name (for OPENBLAS_CORETYPE).") var core = false
    @Flag(help: "Print one JSON object.") var json = false

    struct Report: Encodable {
        var blasCore: String
        var blasCoreForced: Bool
        var cpuTier: String
        var configuration: String
        enum CodingKeys: String, CodingKey {
            case blasCore = "blas_core"
            case blasCoreForced = "blas_core_forced"
            case cpuTier = "cpu_tier"
            case configuration
        }
    }

    func run() throws {
        let tiers = ["base", "avx", "avx2", "avx512"]
        let tier = Int(dsi_cpu_simd_tier())
        let report = Report(
            blasCore: BLAS.coreName, blasCoreForced: ComputeOptions.kernelsChosenAtStartup,
            cpuTier: tiers.indices.contains(tier) ? tiers[tier] : "unknown", configuration: BLAS.configuration)
        if core {
            print(report.blasCore)
        } else if json {
            try printJSON(report)
        } else {
            print(
                "OpenBLAS \(report.blasCore) kernels\(report.blasCoreForced ? " (chosen at start-up for this CPU)" : ""); CPU tier \(report.cpuTier); \(report.configuration)"
            )
        }
    }
}
