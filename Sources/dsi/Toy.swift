import ArgumentParser
import DSIModel
import DSITensor
import Foundation

struct Toy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a small encoder-decoder to copy or reverse digit strings, and show it learning.")

    @Option(help: "What the model learns to do with digit strings.") var task: ToyTask.Kind = .reverse
    @Option(help: "Longest digit string.") var digits: Int = 8
    @Option(help: "Training steps.") var steps: Int = 600
    @Option(help: "Batch size.") var batch: Int = 64
    @Option(help: "Peak learning rate.") var lr: Float = 3e-3
    @Option(help: "Random seed (weights and data).") var seed: UInt64 = 1
    @Flag(help: "Print one JSON object instead of progress.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        let kind = task
        guard digits >= 1, digits <= 64 else { throw ValidationError("--digits must be in 1...64, got \(digits)") }
        guard steps >= 1, batch >= 1 else { throw ValidationError("--steps and --batch must be positive") }
        let toy = ToyTask(kind: kind, maxDigits: digits)
        let model = try Seq2Seq(config: toy.modelConfig(), seed: seed)
        if !json {
            print(
                "toy task: \(kind.rawValue) strings of 1-\(digits) digits; model \(model.params.parameterCount) parameters, \(Threads.count) threads"
            )
            print(String(format: "before training: exact-match accuracy %.3f", try toy.accuracy(of: model)))
        }
        let report = try toy.train(model, steps: steps, batchSize: batch, lr: lr, seed: seed, every: 100) { step, loss in
            if !json {
                FileHandle.standardError.write(String(format: "step %5d  loss %.4f\n", step, loss).data(using: .utf8)!)
            }
        }
        if json {
            try printJSON(report)
        } else {
            print(
                String(
                    format: "after %d steps (%.1f s): loss %.4f, exact-match accuracy %.3f", report.steps, report.seconds, report.finalLoss,
                    report.accuracy))
            var rng = SeededRNG(seed: 99)
            let examples = toy.batch(size: 3, rng: &rng)
            let state = try model.beginDecoding(
                source: examples.source, sourceMask: examples.sourceMask, queries: 3, sourceLength: examples.S)
            let out = model.greedyDecode(state, bos: ToyTask.bos, steps: examples.T)
            for b in 0..<3 {
                let src = (0..<examples.S).compactMap { i -> String? in
                    let t = examples.source[b * examples.S + i]
                    return t >= 3 ? String(t - 3) : nil
                }.joined()
                let got = out[b].prefix { $0 != ToyTask.eos }.map { $0 >= 3 ? String($0 - 3) : "?" }.joined()
                print("  \(src) -> \(got)")
            }
        }
    }
}
